//! The TLV areas after the payload (MCUboot `image.h`: `struct image_tlv_info`,
//! `struct image_tlv`, `IMAGE_TLV_*`; `boot/bootutil/src/tlv.c` walks them).
//!
//! ```text
//! hdr_size + img_size:  [protected area, only if ih_protect_tlv_size != 0]
//!                         info  { magic 0x6908 u16, total u16 = ih_protect_tlv_size }
//!                         TLVs  { type u16, len u16, len bytes }...
//! ... + protect_tlv_size: unprotected area
//!                         info  { magic 0x6907 u16, total u16 (this info's 4 bytes included) }
//!                         TLVs  SHA256 (32), KEYHASH (32), ED25519 (64), as imgtool writes them
//! ```
//!
//! imgtool writes a TLV's type as a byte and a zero byte (`struct.pack('BBH', ...)` in
//! `scripts/imgtool/image.py`); MCUboot reads the same two bytes as a little-endian `u16`, and
//! so does this crate.

/// `IMAGE_TLV_INFO_MAGIC`: starts the unprotected TLV area.
pub const TLV_INFO_MAGIC: u16 = 0x6907;
/// `IMAGE_TLV_PROT_INFO_MAGIC`: starts the protected TLV area.
pub const TLV_PROT_INFO_MAGIC: u16 = 0x6908;
/// Size of `struct image_tlv_info` (magic u16, total u16).
pub const TLV_INFO_SIZE: u32 = 4;
/// Size of `struct image_tlv` (type u16, len u16) before each TLV's value.
pub const TLV_HEADER_SIZE: u32 = 4;

/// TLV types (`IMAGE_TLV_*` in `image.h`). Only [`KEYHASH`](kind::KEYHASH),
/// [`PUBKEY`](kind::PUBKEY), [`SHA256`](kind::SHA256), [`ED25519`](kind::ED25519) (unprotected
/// area) and [`SEC_CNT`](kind::SEC_CNT) (protected area) mean something to this crate.
pub mod kind {
    /// `IMAGE_TLV_KEYHASH`: SHA-256 of the signing public key as imgtool encodes it
    /// (DER SubjectPublicKeyInfo, see [`public_key_der`](crate::public_key_der)).
    pub const KEYHASH: u16 = 0x01;
    /// `IMAGE_TLV_PUBKEY`: the public key itself, DER SubjectPublicKeyInfo
    /// (imgtool `--public-key-format full`).
    pub const PUBKEY: u16 = 0x02;
    /// `IMAGE_TLV_SHA256`: SHA-256 of header + payload + protected TLV area.
    pub const SHA256: u16 = 0x10;
    /// `IMAGE_TLV_SHA384`.
    pub const SHA384: u16 = 0x11;
    /// `IMAGE_TLV_SHA512`.
    pub const SHA512: u16 = 0x12;
    /// `IMAGE_TLV_RSA2048_PSS`.
    pub const RSA2048_PSS: u16 = 0x20;
    /// `IMAGE_TLV_ECDSA224` (no longer supported by MCUboot).
    pub const ECDSA224: u16 = 0x21;
    /// `IMAGE_TLV_ECDSA_SIG`.
    pub const ECDSA_SIG: u16 = 0x22;
    /// `IMAGE_TLV_RSA3072_PSS`.
    pub const RSA3072_PSS: u16 = 0x23;
    /// `IMAGE_TLV_ED25519`: Ed25519 signature (64 bytes) of the SHA-256 digest.
    pub const ED25519: u16 = 0x24;
    /// `IMAGE_TLV_SIG_PURE`: the signature is over the image itself, not its digest
    /// (imgtool `--pure`; not supported by this crate).
    pub const SIG_PURE: u16 = 0x25;
    /// `IMAGE_TLV_ENC_RSA2048`.
    pub const ENC_RSA2048: u16 = 0x30;
    /// `IMAGE_TLV_ENC_KW`.
    pub const ENC_KW: u16 = 0x31;
    /// `IMAGE_TLV_ENC_EC256`.
    pub const ENC_EC256: u16 = 0x32;
    /// `IMAGE_TLV_ENC_X25519`.
    pub const ENC_X25519: u16 = 0x33;
    /// `IMAGE_TLV_ENC_X25519_SHA512`.
    pub const ENC_X25519_SHA512: u16 = 0x34;
    /// `IMAGE_TLV_DEPENDENCY`: the image needs another image at a minimum version.
    pub const DEPENDENCY: u16 = 0x40;
    /// `IMAGE_TLV_SEC_CNT`: security counter, `u32` little endian (imgtool `--security-counter`).
    pub const SEC_CNT: u16 = 0x50;
    /// `IMAGE_TLV_BOOT_RECORD`: CBOR measured-boot record.
    pub const BOOT_RECORD: u16 = 0x60;
    /// `IMAGE_TLV_DECOMP_SIZE`.
    pub const DECOMP_SIZE: u16 = 0x70;
    /// `IMAGE_TLV_DECOMP_SHA`.
    pub const DECOMP_SHA: u16 = 0x71;
    /// `IMAGE_TLV_DECOMP_SIGNATURE`.
    pub const DECOMP_SIGNATURE: u16 = 0x72;
    /// `IMAGE_TLV_COMP_DEC_SIZE`.
    pub const COMP_DEC_SIZE: u16 = 0x73;
    /// `IMAGE_TLV_UUID_VID`.
    pub const UUID_VID: u16 = 0x74;
    /// `IMAGE_TLV_UUID_CID`.
    pub const UUID_CID: u16 = 0x75;
}

/// Length of a [`kind::SHA256`] value.
pub const SHA256_LEN: u16 = 32;
/// Length of a [`kind::KEYHASH`] value (SHA-256; MCUboot also takes a prefix, imgtool never
/// writes one and this crate does not accept one).
pub const KEYHASH_LEN: u16 = 32;
/// Length of a [`kind::PUBKEY`] value for an Ed25519 key (DER SubjectPublicKeyInfo).
pub const PUBKEY_LEN: u16 = 44;
/// Length of a [`kind::ED25519`] value.
pub const ED25519_LEN: u16 = 64;
/// Length of a [`kind::SEC_CNT`] value.
pub const SEC_CNT_LEN: u16 = 4;
