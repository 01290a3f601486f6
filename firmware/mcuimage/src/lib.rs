//! MCUboot's image format: parse and verify images (`no_std`, no alloc), and, with feature
//! `std`, sign them the way `imgtool sign` does, byte for byte.
//!
//! The bootloader verifies a slot in flash with [`verify_from`] (a closure reads the flash; RAM
//! use is a 256-byte buffer plus hash and signature state); host tools use [`verify`] on a
//! slice and [`sign`] to build images. `imgtool verify` accepts what [`sign`] writes, and
//! [`verify`] accepts what `imgtool sign` writes (tests/imgtool.rs checks both against
//! imgtool 2.5.0).
//!
//! # Example
//!
//! ```
//! # use mcuimage::{sign, SignOptions, SigningKey, Version, DEV_PUBLIC_KEY, DEV_SECRET_KEY_PEM};
//! # let key = SigningKey::from_pem(DEV_SECRET_KEY_PEM).unwrap();
//! # let opts = SignOptions { version: "1.2.3".parse().unwrap(), ..SignOptions::default() };
//! # let signed = sign(&[0x00, 0x10, 0x00, 0x20, 0x09, 0x01, 0x00, 0x00], &opts, &key).unwrap();
//! # let mut flash = vec![0xff; 128 * 1024];
//! # flash[..signed.len()].copy_from_slice(&signed);
//! // A bootloader reads its slot through the flash driver, a chunk at a time.
//! let mut read = |offset: u32, buf: &mut [u8]| -> Result<(), ()> {
//!     buf.copy_from_slice(&flash[offset as usize..][..buf.len()]);
//!     Ok(())
//! };
//! let image = mcuimage::verify_from(&mut read, 128 * 1024, &DEV_PUBLIC_KEY).expect("a good image");
//! assert_eq!(image.version(), Version::new(1, 2, 3, 0));
//! assert_eq!(image.payload_range(), 0x200..0x208); // where the vector table is
//! ```
//!
//! # Layout
//!
//! ```text
//! 0                                   header (32 B, see ImageHeader), then padding up to hdr_size
//!                                     (imgtool --pad-header fills it with 0xff, the erased value)
//! hdr_size                            payload, img_size bytes
//! hdr_size + img_size                 protected TLV area, protect_tlv_size bytes (0: none):
//!                                     info {0x6908, total} + TLVs (e.g. SEC_CNT)
//! ... + protect_tlv_size              unprotected TLV area: info {0x6907, total incl. the info}
//!                                     + SHA256 (32 B) + KEYHASH (32 B) + ED25519 (64 B)
//! (then, in a slot: erased padding and MCUboot's swap trailer; no part of the image)
//! ```
//!
//! All integers are little endian. A TLV is `type u16, len u16, value`.
//!
//! # What is hashed, signed and checked
//!
//! - SHA256 TLV = SHA-256 of bytes `0 .. hdr_size + img_size + protect_tlv_size`: the header
//!   with its padding, the payload, the protected TLV area.
//! - ED25519 TLV = Ed25519 signature of that 32-byte digest (not of the image: imgtool 2.x
//!   signs the digest unless `--pure`, which adds a SIG_PURE TLV; not supported here).
//! - KEYHASH TLV = SHA-256 of the public key in DER SubjectPublicKeyInfo form (44 bytes,
//!   [`public_key_der`]); [`verify`] requires it to match the given key when present.
//!
//! So every byte of an image is covered: the header and payload by the hash, the unprotected
//! TLVs by structural checks and by comparing each value (hash, key hash, signature). Bytes
//! after the image (slot padding, trailer) are not.
//!
//! # Facts from MCUboot (sources read for this crate)
//!
//! From `mcu-tools/mcuboot` (main at v2.4.0-114) and the imgtool 2.5.0 package from PyPI:
//! - `boot/bootutil/include/bootutil/image.h`: `IMAGE_MAGIC` 0x96f3b83d, `struct image_header`
//!   (32 bytes), `struct image_version`, `IMAGE_F_*`, `IMAGE_TLV_INFO_MAGIC` 0x6907,
//!   `IMAGE_TLV_PROT_INFO_MAGIC` 0x6908, `struct image_tlv_info` (`it_tlv_tot` includes the
//!   info), `struct image_tlv`, `IMAGE_TLV_*` (KEYHASH 0x01, PUBKEY 0x02, SHA256 0x10,
//!   ED25519 0x24, SIG_PURE 0x25, SEC_CNT 0x50, ...).
//! - `boot/bootutil/src/bootutil_img_hash.c`: the hash covers header + image + protected TLVs.
//! - `boot/bootutil/src/tlv.c`: the protected info's total must equal `ih_protect_tlv_size`;
//!   the unprotected info follows the protected area; TLVs must not run past the area.
//! - `boot/bootutil/src/image_validate.c`: the SHA256 TLV is required; KEYHASH selects the
//!   key; the signature TLV is verified over the hash; `MCUBOOT_USE_TLV_ALLOW_LIST`.
//! - `boot/bootutil/src/image_ed25519.c`: Ed25519 verifies the 32-byte hash (`mlen` must be
//!   `IMAGE_HASH_SIZE`), signature 64 bytes.
//! - `boot/bootutil/src/bootutil_find_key.c`: KEYHASH = SHA-256 of the embedded key bytes.
//! - `boot/bootutil/src/bootutil_loader.c`: `boot_check_header_valid` (u32 overflow checks,
//!   encrypted/compressed flags), `boot_compare_version` (build number ignored by default).
//! - `scripts/imgtool/image.py`: header and TLV packing, `--pad-header` fills with the erased
//!   value, TLV order SHA256, KEYHASH, signature; the digest is what gets signed; the trailer.
//! - `scripts/imgtool/keys/ed25519.py`: `get_public_bytes` is DER SubjectPublicKeyInfo,
//!   `sign_digest` signs the digest; keys are PKCS#8 PEM.
//! - `scripts/imgtool/version.py`: the `maj.min.rev+build` grammar.
//!
//! # The development key: NEVER FOR PRODUCTION
//!
//! `keys/dev-ed25519.pem` (made with `imgtool keygen -t ed25519`) and [`DEV_PUBLIC_KEY`] are a
//! **development key pair, committed to the repository: anyone can sign with it. Never put it
//! in a product or trust an image because it verifies with it.** It exists so that tests, the
//! emulator and CI can sign and boot images.
#![no_std]

#[cfg(feature = "std")]
extern crate std;

mod error;
mod header;
#[cfg(feature = "std")]
mod sign;
pub mod tlv;
mod verify;

pub use error::{ImageError, VerifyError};
pub use header::{
    flags, ImageHeader, ParseVersionError, Version, IMAGE_HEADER_SIZE, IMAGE_MAGIC, IMAGE_MAGIC_ERASED,
    IMAGE_MAGIC_V1,
};
#[cfg(feature = "std")]
pub use sign::{public_key_from_pem, sign, KeyError, PublicKeyFormat, SignError, SignOptions, SigningKey};
pub use verify::{key_hash, public_key_der, verify, verify_from, ImageRead, VerifiedImage, READ_CHUNK};

/// The public half of the **development** key `keys/dev-ed25519.pem` (raw 32 bytes, as
/// [`verify`] takes it). **Never for production**: the private key is in the repository.
pub const DEV_PUBLIC_KEY: [u8; 32] = [
    0xc1, 0xf3, 0x01, 0x1a, 0xc5, 0xdf, 0xef, 0x92, 0x38, 0x36, 0xb9, 0x5f, 0x79, 0xcc, 0x5a, 0xba, 0x3c,
    0x8b, 0x75, 0xb6, 0x06, 0x48, 0x9e, 0x1a, 0x48, 0xa7, 0x1a, 0xcc, 0xb6, 0xc2, 0x4e, 0x9f,
];

/// The **development** private key (`keys/dev-ed25519.pem`, imgtool's PKCS#8 PEM), for host
/// tools that sign images for tests and the emulator. **Never for production**: it is public.
#[cfg(feature = "std")]
pub const DEV_SECRET_KEY_PEM: &str = include_str!("../keys/dev-ed25519.pem");
