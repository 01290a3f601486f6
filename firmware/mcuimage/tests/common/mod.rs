//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use mcuimage::{tlv::kind, SignOptions, SigningKey, Version, DEV_SECRET_KEY_PEM};
use sha2::{Digest, Sha256};
use twinbed_contract::rng::SplitMix64;

/// The development key.
pub fn dev_key() -> SigningKey {
    SigningKey::from_pem(DEV_SECRET_KEY_PEM).expect("the dev key parses")
}

/// Another key, for wrong-key tests.
pub fn other_key() -> SigningKey {
    SigningKey::from_seed([7; 32])
}

/// The payload of the golden images in tests/data: bytes 0, 1, ..., 99.
pub fn payload100() -> Vec<u8> {
    (0..100u8).collect()
}

/// The project's `imgtool sign` options with a version.
pub fn opts(version: &str) -> SignOptions {
    SignOptions { version: version.parse::<Version>().expect("test version"), ..SignOptions::default() }
}

/// The tests' seeded generator (the contract's SplitMix64, the one every test draws from), so
/// every random test can be replayed from its seed.
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(seed))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.0.next_u8()).collect()
    }
}

/// Builds an image by hand, for layouts `sign` does not make: header (hdr_size 0x200, 0xff
/// padding), `payload`, a protected area holding `prot` (none if empty), and an unprotected area
/// holding what `tlvs` returns for the image's SHA-256 digest.
pub fn assemble(
    version: Version,
    payload: &[u8],
    prot: &[(u16, Vec<u8>)],
    tlvs: impl FnOnce(&[u8; 32]) -> Vec<(u16, Vec<u8>)>,
) -> Vec<u8> {
    let area = |magic: u16, entries: &[(u16, Vec<u8>)]| {
        let mut body = Vec::new();
        for (k, v) in entries {
            body.extend_from_slice(&k.to_le_bytes());
            body.extend_from_slice(&(v.len() as u16).to_le_bytes());
            body.extend_from_slice(v);
        }
        let mut out = magic.to_le_bytes().to_vec();
        out.extend_from_slice(&((body.len() + 4) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out
    };
    let prot = if prot.is_empty() { Vec::new() } else { area(0x6908, prot) };
    let header = mcuimage::ImageHeader {
        load_addr: 0,
        hdr_size: 0x200,
        protect_tlv_size: prot.len() as u16,
        img_size: payload.len() as u32,
        flags: 0,
        version,
        pad1: 0,
    };
    let mut img = vec![0xff; 0x200];
    img[..32].copy_from_slice(&header.to_bytes());
    img.extend_from_slice(payload);
    img.extend_from_slice(&prot);
    let digest: [u8; 32] = Sha256::digest(&img).into();
    img.extend_from_slice(&area(0x6907, &tlvs(&digest)));
    img
}

/// The TLVs `sign` writes: SHA256, KEYHASH, ED25519 (signed by `key`).
pub fn standard_tlvs(key: &SigningKey, digest: &[u8; 32]) -> Vec<(u16, Vec<u8>)> {
    vec![
        (kind::SHA256, digest.to_vec()),
        (kind::KEYHASH, mcuimage::key_hash(&key.public_key()).to_vec()),
        (kind::ED25519, key.sign(digest).to_vec()),
    ]
}
