//! Verification: structure, SHA-256, key, Ed25519 signature; from a slice or through a reader.
//!
//! What MCUboot's `bootutil_img_validate` (`boot/bootutil/src/image_validate.c`) does for an
//! Ed25519 build, with these deliberate differences, all stricter:
//! - the TLV areas must be well formed to the byte: each area's entries end exactly at its
//!   info's total (MCUboot's `tlv.c` only checks that no entry runs past the end);
//! - the unprotected area may hold only SHA256, KEYHASH, PUBKEY and ED25519 (MCUboot's optional
//!   `MCUBOOT_USE_TLV_ALLOW_LIST`, narrowed to what an Ed25519 image has), each at most once;
//!   those four may not be in the protected area;
//! - KEYHASH must be the full 32 bytes (MCUboot also matches a prefix);
//! - one key, one signature: there is no key list to search, the caller says which key.

use sha2::{Digest, Sha256};

use crate::header::{flags, ImageHeader, Version, IMAGE_HEADER_SIZE};
use crate::tlv::{self, kind};
use crate::{ImageError, VerifyError};

/// Reads the image: `buf.len()` bytes at `offset` from the image's start (the slot's first
/// byte). [`verify_from`] never asks for bytes past the length it was given.
///
/// Implemented for every `FnMut(u32, &mut [u8]) -> Result<(), E>`, so a closure over a flash
/// driver will do: `|offset, buf| flash.read(slot_base + offset, buf)` (that is also the
/// signature of `embedded_storage::nor_flash::ReadNorFlash::read`).
pub trait ImageRead {
    /// The reader's error.
    type Error;
    /// Fills `buf` with the image's bytes at `offset..offset + buf.len()`.
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), Self::Error>;
}

impl<E, F: FnMut(u32, &mut [u8]) -> Result<(), E>> ImageRead for F {
    type Error = E;
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), E> {
        self(offset, buf)
    }
}

/// Bytes hashed per read in [`verify_from`]: a stack buffer of this size is all the RAM the
/// hash pass needs.
pub const READ_CHUNK: usize = 256;

/// An image that passed [`verify`] or [`verify_from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedImage {
    header: ImageHeader,
    hash: [u8; 32],
    image_len: u32,
    security_counter: Option<u32>,
}

impl VerifiedImage {
    /// The header.
    pub fn header(&self) -> &ImageHeader {
        &self.header
    }

    /// The image version (from the header, which the signature covers).
    pub fn version(&self) -> Version {
        self.header.version
    }

    /// Where the payload (the code) is, relative to the image start:
    /// `hdr_size .. hdr_size + img_size`.
    pub fn payload_range(&self) -> core::ops::Range<u32> {
        let start = u32::from(self.header.hdr_size);
        // Cannot overflow: verify checked that the whole image fits in `image_len: u32`.
        start..start.saturating_add(self.header.img_size)
    }

    /// Where the protected TLV area is (empty if there is none).
    pub fn protected_tlv_range(&self) -> core::ops::Range<u32> {
        let start = self.payload_range().end;
        start..start.saturating_add(u32::from(self.header.protect_tlv_size))
    }

    /// Bytes from the image start to the end of its unprotected TLV area. What follows (slot
    /// padding, the swap trailer) is no part of the image and nothing checks it.
    pub fn image_len(&self) -> u32 {
        self.image_len
    }

    /// The SHA-256 of header + payload + protected TLVs (as printed by `imgtool verify`).
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The protected SEC_CNT TLV (imgtool `--security-counter`), if the image has one.
    pub fn security_counter(&self) -> Option<u32> {
        self.security_counter
    }
}

/// The DER SubjectPublicKeyInfo prefix of an Ed25519 public key (OID 1.3.101.112): the form in
/// which imgtool hashes a key for KEYHASH and stores it for PUBKEY
/// (`scripts/imgtool/keys/ed25519.py`, `get_public_bytes`).
const ED25519_SPKI_PREFIX: [u8; 12] =
    [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// The public key as imgtool encodes it: DER SubjectPublicKeyInfo, 44 bytes.
pub fn public_key_der(public_key: &[u8; 32]) -> [u8; 44] {
    let mut der = [0u8; 44];
    der[..12].copy_from_slice(&ED25519_SPKI_PREFIX);
    der[12..].copy_from_slice(public_key);
    der
}

/// The KEYHASH TLV value for a key: SHA-256 of [`public_key_der`] (imgtool `getpubhash`;
/// MCUboot `bootutil_find_key` hashes its embedded key, stored in the same encoding).
pub fn key_hash(public_key: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(public_key_der(public_key)).into()
}

/// Verifies an image held in memory. `image` may be longer than the image (a whole slot with
/// its padding and trailer); bytes past the image's end are not looked at.
///
/// Checks, in this order: header (magic, `hdr_size`, size overflow, flags), that the image and
/// its TLV areas are inside `image`, the protected TLV area's structure, the unprotected TLV
/// area's structure and contents, the KEYHASH/PUBKEY TLV against `public_key` (if present),
/// the SHA256 TLV against the SHA-256 of header + payload + protected TLVs, and the ED25519
/// signature of that digest with `public_key`. Never panics.
pub fn verify(image: &[u8], public_key: &[u8; 32]) -> Result<VerifiedImage, ImageError> {
    let len = u32::try_from(image.len()).unwrap_or(u32::MAX);
    let mut read = |offset: u32, buf: &mut [u8]| -> Result<(), ()> {
        let start = usize::try_from(offset).map_err(|_| ())?;
        let src = start.checked_add(buf.len()).and_then(|end| image.get(start..end)).ok_or(())?;
        buf.copy_from_slice(src);
        Ok(())
    };
    verify_from(&mut read, len, public_key).map_err(|e| match e {
        VerifyError::Image(e) => e,
        // Not reached: verify_from reads only below `len`, which is within the slice.
        VerifyError::Read { offset, .. } => {
            ImageError::Truncated { needed: u64::from(offset) + 1, available: len }
        }
    })
}

/// Verifies an image through `reader`, without holding it in RAM: `len` is the number of bytes
/// the reader can give (the slot size). Same checks as [`verify`]; RAM use is a
/// [`READ_CHUNK`]-byte buffer plus the hash and signature state.
pub fn verify_from<R: ImageRead + ?Sized>(
    reader: &mut R,
    len: u32,
    public_key: &[u8; 32],
) -> Result<VerifiedImage, VerifyError<R::Error>> {
    let mut src = Source { reader, len };

    let mut hdr = [0u8; IMAGE_HEADER_SIZE];
    src.read(0, &mut hdr)?;
    let header = ImageHeader::parse(&hdr)?;
    let unsupported = header.flags & flags::UNSUPPORTED;
    if unsupported != 0 {
        return Err(ImageError::UnsupportedFlags { flags: unsupported }.into());
    }
    // ImageHeader::parse checked that these fit in u32.
    let tlv_off =
        u32::try_from(header.tlv_offset()).map_err(|_| ImageError::TooLarge { size: header.tlv_offset() })?;
    let prot_end = u32::try_from(header.protected_tlv_end())
        .map_err(|_| ImageError::TooLarge { size: header.protected_tlv_end() })?;

    // Protected area: covered by the hash; only its structure and SEC_CNT matter here.
    let mut security_counter = None;
    if header.protect_tlv_size != 0 {
        let (magic, total) = src.read_info(tlv_off)?;
        if magic != tlv::TLV_PROT_INFO_MAGIC {
            return Err(ImageError::BadTlvInfo { offset: tlv_off, magic }.into());
        }
        if total != header.protect_tlv_size {
            return Err(
                ImageError::ProtectedSizeMismatch { header: header.protect_tlv_size, info: total }.into()
            );
        }
        src.walk(tlv_off, prot_end, |src, kind, offset, value_len| match kind {
            kind::SHA256 | kind::KEYHASH | kind::PUBKEY | kind::ED25519 => {
                Err(ImageError::UnexpectedTlv { kind, offset: offset - tlv::TLV_HEADER_SIZE }.into())
            }
            kind::SEC_CNT => {
                let mut v = [0u8; tlv::SEC_CNT_LEN as usize];
                src.read_value(kind, offset, value_len, &mut v)?;
                if security_counter.replace(u32::from_le_bytes(v)).is_some() {
                    return Err(ImageError::DuplicateTlv { kind }.into());
                }
                Ok(())
            }
            _ => Ok(()),
        })?;
    }

    // Unprotected area: not covered by the hash, so everything in it is checked here.
    let (magic, total) = src.read_info(prot_end)?;
    if magic != tlv::TLV_INFO_MAGIC {
        return Err(ImageError::BadTlvInfo { offset: prot_end, magic }.into());
    }
    let end = u64::from(prot_end) + u64::from(total);
    let end = u32::try_from(end).map_err(|_| ImageError::TooLarge { size: end })?;
    let mut sha = None;
    let mut keyhash = None;
    let mut pubkey = None;
    let mut sig = None;
    src.walk(prot_end, end, |src, kind, offset, value_len| {
        fn take<const N: usize, E>(
            src: &mut Source<'_, impl ImageRead<Error = E> + ?Sized>,
            slot: &mut Option<[u8; N]>,
            kind: u16,
            offset: u32,
            value_len: u16,
        ) -> Result<(), VerifyError<E>> {
            if slot.is_some() {
                return Err(ImageError::DuplicateTlv { kind }.into());
            }
            let mut v = [0u8; N];
            src.read_value(kind, offset, value_len, &mut v)?;
            *slot = Some(v);
            Ok(())
        }
        match kind {
            kind::SHA256 => take(src, &mut sha, kind, offset, value_len),
            kind::KEYHASH => take(src, &mut keyhash, kind, offset, value_len),
            kind::PUBKEY => take(src, &mut pubkey, kind, offset, value_len),
            kind::ED25519 => take(src, &mut sig, kind, offset, value_len),
            _ => Err(ImageError::UnexpectedTlv { kind, offset: offset - tlv::TLV_HEADER_SIZE }.into()),
        }
    })?;
    let sha: [u8; 32] = sha.ok_or(ImageError::MissingHash)?;
    let sig: [u8; 64] = sig.ok_or(ImageError::MissingSignature)?;

    // The key checks are cheap and need no flash reads: before the hash pass.
    if keyhash.is_some_and(|h| h != key_hash(public_key)) {
        return Err(ImageError::KeyMismatch.into());
    }
    if pubkey.is_some_and(|k: [u8; 44]| k != public_key_der(public_key)) {
        return Err(ImageError::KeyMismatch.into());
    }

    // SHA-256 over header + payload + protected TLVs (MCUboot bootutil_img_hash).
    let mut hasher = Sha256::new();
    let mut chunk = [0u8; READ_CHUNK];
    let mut off = 0u32;
    while off < prot_end {
        let n = (prot_end - off).min(READ_CHUNK as u32) as usize;
        let buf = &mut chunk[..n];
        src.read(off, buf)?;
        hasher.update(&*buf);
        off += n as u32;
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != sha {
        return Err(ImageError::HashMismatch.into());
    }

    // Ed25519 over the 32-byte digest, not the image (imgtool's default; `--pure` is not
    // supported).
    let pk = ed25519_compact::PublicKey::new(*public_key);
    pk.verify(digest, &ed25519_compact::Signature::new(sig)).map_err(|e| match e {
        ed25519_compact::Error::InvalidPublicKey | ed25519_compact::Error::WeakPublicKey => {
            ImageError::BadPublicKey
        }
        _ => ImageError::BadSignature,
    })?;

    Ok(VerifiedImage { header, hash: digest, image_len: end, security_counter })
}

/// A reader that refuses to read past `len`, so a bogus size in the image becomes
/// [`ImageError::Truncated`] before the reader is asked.
struct Source<'r, R: ImageRead + ?Sized> {
    reader: &'r mut R,
    len: u32,
}

impl<R: ImageRead + ?Sized> Source<'_, R> {
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), VerifyError<R::Error>> {
        let needed = u64::from(offset) + buf.len() as u64;
        if needed > u64::from(self.len) {
            return Err(ImageError::Truncated { needed, available: self.len }.into());
        }
        self.reader.read(offset, buf).map_err(|error| VerifyError::Read { offset, error })
    }

    /// Reads a TLV info (or TLV header): two little-endian `u16`.
    fn read_info(&mut self, offset: u32) -> Result<(u16, u16), VerifyError<R::Error>> {
        let mut b = [0u8; 4];
        self.read(offset, &mut b)?;
        Ok((u16::from_le_bytes([b[0], b[1]]), u16::from_le_bytes([b[2], b[3]])))
    }

    /// Reads a TLV value that must be exactly `out.len()` bytes.
    fn read_value(
        &mut self,
        kind: u16,
        offset: u32,
        len: u16,
        out: &mut [u8],
    ) -> Result<(), VerifyError<R::Error>> {
        if usize::from(len) != out.len() {
            return Err(ImageError::BadTlvLength { kind, len }.into());
        }
        self.read(offset, out)
    }

    /// Walks the TLV area whose info is at `start` (already checked) and which ends at `end`:
    /// calls `each(self, type, value offset, value length)` for every TLV. The TLVs must fill
    /// the area exactly.
    fn walk(
        &mut self,
        start: u32,
        end: u32,
        mut each: impl FnMut(&mut Self, u16, u32, u16) -> Result<(), VerifyError<R::Error>>,
    ) -> Result<(), VerifyError<R::Error>> {
        if end < start || end - start < tlv::TLV_INFO_SIZE {
            return Err(ImageError::BadTlv { offset: start }.into());
        }
        if end > self.len {
            return Err(ImageError::Truncated { needed: u64::from(end), available: self.len }.into());
        }
        let mut off = start + tlv::TLV_INFO_SIZE;
        while off < end {
            if end - off < tlv::TLV_HEADER_SIZE {
                return Err(ImageError::BadTlv { offset: off }.into());
            }
            let (kind, value_len) = self.read_info(off)?;
            let value_off = off + tlv::TLV_HEADER_SIZE;
            if u32::from(value_len) > end - value_off {
                return Err(ImageError::BadTlv { offset: off }.into());
            }
            each(self, kind, value_off, value_len)?;
            off = value_off + u32::from(value_len);
        }
        Ok(())
    }
}
