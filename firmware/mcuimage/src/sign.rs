//! Signing, as `imgtool sign` does it for an Ed25519 key (feature `std`).
//!
//! The layout is that of imgtool 2.5.0 (`scripts/imgtool/image.py`: `Image.load`,
//! `Image.create`, `Image.add_header`, `Image.pad_to`, `Image._trailer_size`); the tests
//! compare our bytes with imgtool's.

use std::string::String;
use std::vec::Vec;

use sha2::{Digest, Sha256};

use crate::header::{ImageHeader, Version, IMAGE_HEADER_SIZE};
use crate::tlv::{self, kind};
use crate::{key_hash, public_key_der};

/// How the signing key appears in the image (imgtool `--public-key-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublicKeyFormat {
    /// A KEYHASH TLV: SHA-256 of the key's DER SubjectPublicKeyInfo (imgtool's default, `hash`).
    #[default]
    Hash,
    /// A PUBKEY TLV: the DER SubjectPublicKeyInfo itself (`full`).
    Full,
}

/// The options of `imgtool sign` that [`sign`] supports. [`Default`] is the project's command,
/// `imgtool sign --header-size 0x200 --pad-header --align 4 --version 0.0.0+0 --slot-size 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// `--version`.
    pub version: Version,
    /// `--header-size`: bytes before the payload (at least 32).
    pub header_size: u16,
    /// `--pad-header`: put `header_size` bytes of `erased_val` before the payload (the header
    /// then overwrites the first 32). Without it the payload must start with `header_size` zero
    /// bytes, which the header replaces.
    pub pad_header: bool,
    /// `--align`: the flash write size (1, 2, 4, 8, 16 or 32); sizes the swap trailer.
    pub align: u8,
    /// `--slot-size`: the slot's size; 0 skips the size check (as imgtool does for 0). The image
    /// plus the swap trailer must fit.
    pub slot_size: u32,
    /// `--pad`: pad the image to `slot_size` with `erased_val`, ending with the trailer's magic.
    pub pad: bool,
    /// `--confirm`: pad, and set `image_ok` in the trailer.
    pub confirm: bool,
    /// `--max-sectors`: sectors of the swap status area (imgtool's default is 128).
    pub max_sectors: u32,
    /// `--erased-val`: what erased flash reads as (0xff or 0).
    pub erased_val: u8,
    /// `--security-counter N`: a protected SEC_CNT TLV.
    pub security_counter: Option<u32>,
    /// `--public-key-format`.
    pub public_key_format: PublicKeyFormat,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            version: Version::default(),
            header_size: 0x200,
            pad_header: true,
            align: 4,
            slot_size: 0,
            pad: false,
            confirm: false,
            max_sectors: 128,
            erased_val: 0xff,
            security_counter: None,
            public_key_format: PublicKeyFormat::Hash,
        }
    }
}

/// Why [`sign`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// `header_size` is smaller than the 32-byte header.
    #[error("header size {0} is smaller than the 32-byte header")]
    HeaderTooSmall(u16),
    /// `align` is not 1, 2, 4, 8, 16 or 32.
    #[error("invalid alignment {0} (1, 2, 4, 8, 16 or 32)")]
    BadAlign(u8),
    /// Without `pad_header`, the payload must start with `header_size` zero bytes.
    #[error("header padding was not requested and the payload does not start with {0} zero bytes")]
    HeaderNotZeroed(u16),
    /// The payload does not fit the header's 32-bit size fields.
    #[error("payload of {0} bytes is too large for an image")]
    PayloadTooLarge(usize),
    /// The image and the swap trailer do not fit in `slot_size`.
    #[error("image ({image} bytes) plus trailer ({trailer} bytes) exceed the slot size {slot}")]
    ExceedsSlot {
        /// Image bytes.
        image: usize,
        /// Trailer bytes.
        trailer: usize,
        /// `slot_size`.
        slot: u32,
    },
    /// `pad` or `confirm` without a `slot_size`.
    #[error("padding needs a slot size")]
    PadWithoutSlotSize,
}

/// An Ed25519 signing key.
#[derive(Clone)]
pub struct SigningKey(ed25519_compact::KeyPair);

impl core::fmt::Debug for SigningKey {
    /// Shows the public key only.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SigningKey").field("public_key", &self.public_key()).finish_non_exhaustive()
    }
}

/// A key file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not an unencrypted Ed25519 key in PEM (PKCS#8 `PRIVATE KEY` as written by `imgtool keygen -t ed25519`, \
     or SubjectPublicKeyInfo `PUBLIC KEY` for a public key): {0}"
)]
pub struct KeyError(String);

impl SigningKey {
    /// Reads imgtool's private key file (`imgtool keygen -t ed25519 -k key.pem`, no password):
    /// PEM `PRIVATE KEY`, PKCS#8 v1 with the 32-byte seed.
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        ed25519_compact::KeyPair::from_pem(pem).map(SigningKey).map_err(|e| KeyError(std::format!("{e}")))
    }

    /// The key whose RFC 8032 seed (the 32 bytes in the PKCS#8 file) is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        SigningKey(ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed)))
    }

    /// The public key, 32 bytes, as [`verify`](crate::verify) takes it.
    pub fn public_key(&self) -> [u8; 32] {
        *self.0.pk
    }

    /// Signs `message` (deterministic: RFC 8032 with no added noise, as imgtool's `cryptography`
    /// does, so equal inputs give equal signatures).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        *self.0.sk.sign(message, None)
    }
}

/// The 32-byte public key from a PEM file: a public key (`PUBLIC KEY`, as `imgtool getpub -e
/// pem` writes it) or a private key (`PRIVATE KEY`, whose public half is derived).
pub fn public_key_from_pem(pem: &str) -> Result<[u8; 32], KeyError> {
    if pem.contains("-----BEGIN PRIVATE KEY-----") {
        return SigningKey::from_pem(pem).map(|k| k.public_key());
    }
    ed25519_compact::PublicKey::from_pem(pem).map(|pk| *pk).map_err(|e| KeyError(std::format!("{e}")))
}

/// Builds a signed image from `payload`: what `imgtool sign -k key.pem` writes for an Ed25519
/// key with the same options, byte for byte.
///
/// ```text
/// [header 32 B][erased_val up to header_size][payload]
/// [protected TLVs: info 0x6908 + SEC_CNT, only with security_counter]
/// [unprotected TLVs: info 0x6907, SHA256, KEYHASH (or PUBKEY), ED25519]
/// [with pad/confirm: erased_val up to slot_size, the swap trailer ending in its magic]
/// ```
pub fn sign(payload: &[u8], opts: &SignOptions, key: &SigningKey) -> Result<Vec<u8>, SignError> {
    if usize::from(opts.header_size) < IMAGE_HEADER_SIZE {
        return Err(SignError::HeaderTooSmall(opts.header_size));
    }
    if !matches!(opts.align, 1 | 2 | 4 | 8 | 16 | 32) {
        return Err(SignError::BadAlign(opts.align));
    }
    let pad = opts.pad || opts.confirm;
    if pad && opts.slot_size == 0 {
        return Err(SignError::PadWithoutSlotSize);
    }
    let hs = usize::from(opts.header_size);

    // Image.load: the header area, then the payload.
    let mut img = Vec::with_capacity(hs + payload.len() + 256);
    if opts.pad_header {
        img.resize(hs, opts.erased_val);
        img.extend_from_slice(payload);
    } else {
        if payload.len() < hs || payload[..hs].iter().any(|&b| b != 0) {
            return Err(SignError::HeaderNotZeroed(opts.header_size));
        }
        img.extend_from_slice(payload);
    }

    // Image.create: protected TLVs first (they are hashed), then the header.
    let mut prot = Vec::new();
    if let Some(counter) = opts.security_counter {
        push_tlv(&mut prot, kind::SEC_CNT, &counter.to_le_bytes());
    }
    let prot = if prot.is_empty() { prot } else { with_info(tlv::TLV_PROT_INFO_MAGIC, &prot) };

    let img_size = img.len() - hs;
    let too_large = || SignError::PayloadTooLarge(payload.len());
    let header = ImageHeader {
        load_addr: 0,
        hdr_size: opts.header_size,
        protect_tlv_size: u16::try_from(prot.len()).map_err(|_| too_large())?,
        img_size: u32::try_from(img_size).map_err(|_| too_large())?,
        flags: 0,
        version: opts.version,
        pad1: 0,
    };
    if header.protected_tlv_end() > u64::from(u32::MAX) {
        return Err(too_large());
    }
    img[..IMAGE_HEADER_SIZE].copy_from_slice(&header.to_bytes());
    img.extend_from_slice(&prot);

    // The digest of header + payload + protected TLVs; Ed25519 signs the digest.
    let digest: [u8; 32] = Sha256::digest(&img).into();
    let public_key = key.public_key();
    let mut tlvs = Vec::new();
    push_tlv(&mut tlvs, kind::SHA256, &digest);
    match opts.public_key_format {
        PublicKeyFormat::Hash => push_tlv(&mut tlvs, kind::KEYHASH, &key_hash(&public_key)),
        PublicKeyFormat::Full => push_tlv(&mut tlvs, kind::PUBKEY, &public_key_der(&public_key)),
    }
    push_tlv(&mut tlvs, kind::ED25519, &key.sign(&digest));
    img.extend_from_slice(&with_info(tlv::TLV_INFO_MAGIC, &tlvs));

    // Image.check_trailer, then Image.save with --pad.
    let trailer = Trailer::new(opts);
    if opts.slot_size > 0
        && (img.len() as u64).saturating_add(trailer.size as u64) > u64::from(opts.slot_size)
    {
        return Err(SignError::ExceedsSlot { image: img.len(), trailer: trailer.size, slot: opts.slot_size });
    }
    if pad {
        // The check above makes the image + trailer fit, so these indices are in range.
        let slot = opts.slot_size as usize;
        img.resize(slot, opts.erased_val);
        img[slot - trailer.magic.len()..].copy_from_slice(&trailer.magic);
        if opts.confirm {
            // image_ok: one max_align-sized field before the (aligned) magic.
            img[slot - trailer.image_ok_from_end] = 0x01;
        }
    }
    Ok(img)
}

/// Appends one TLV (type u16, len u16, value).
fn push_tlv(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&kind.to_le_bytes());
    // Values here are at most 64 bytes.
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// A TLV area: info (magic, total including the info) then the TLVs.
fn with_info(magic: u16, tlvs: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tlvs.len() + 4);
    out.extend_from_slice(&magic.to_le_bytes());
    out.extend_from_slice(&((tlvs.len() + 4) as u16).to_le_bytes());
    out.extend_from_slice(tlvs);
    out
}

/// MCUboot's swap trailer as imgtool sizes it (`Image._trailer_size`, not overwrite-only, not
/// encrypted).
struct Trailer {
    /// Bytes reserved at the end of the slot.
    size: usize,
    /// The trailer magic, written at the very end of the slot.
    magic: Vec<u8>,
    /// Distance of the image_ok byte from the end of the slot.
    image_ok_from_end: usize,
}

impl Trailer {
    fn new(opts: &SignOptions) -> Trailer {
        const MAGIC_SIZE: usize = 16;
        let align = usize::from(opts.align);
        let max_align = align.max(8);
        let magic_align_size = MAGIC_SIZE.next_multiple_of(max_align);
        let size = (opts.max_sectors as usize)
            .saturating_mul(3 * align) // swap status
            .saturating_add(max_align * 4) // image_ok, copy_done, swap_info, swap_size
            .saturating_add(magic_align_size);
        let magic = if max_align == 8 {
            std::vec![
                0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79,
                0x80
            ]
        } else {
            // Larger write sizes: the alignment (u16 LE), then a 14-byte magic.
            let mut m = (max_align as u16).to_le_bytes().to_vec();
            m.extend_from_slice(&[
                0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a,
            ]);
            m
        };
        Trailer { size, magic, image_ok_from_end: magic_align_size + max_align }
    }
}
