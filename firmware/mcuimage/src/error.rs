//! Why an image was refused.

use core::fmt;

/// Why an image was refused. Offsets are from the start of the image (its header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The image (as its header and TLV infos describe it) ends past the end of the bytes given
    /// (the slice, or the slot length passed to [`verify_from`](crate::verify_from)): the image
    /// is truncated, or its sizes are too large for the slot.
    #[error(
        "image needs {needed} bytes, only {available} available (truncated, or its sizes are too large)"
    )]
    Truncated {
        /// Bytes the image needs, from its start.
        needed: u64,
        /// Bytes available.
        available: u32,
    },
    /// `hdr_size + img_size + protect_tlv_size` does not fit in 32 bits.
    #[error("header sizes add up to {size} bytes, beyond 32 bits")]
    TooLarge {
        /// The sum.
        size: u64,
    },
    /// The magic word reads as erased flash (`0xffffffff`): the slot holds no image.
    #[error("no image (the magic reads as erased flash)")]
    Empty,
    /// The first word is not `IMAGE_MAGIC` (`0x96f3b83d`).
    #[error("bad image magic {found:#010x} (expected 0x96f3b83d)")]
    BadMagic {
        /// The word found.
        found: u32,
    },
    /// `hdr_size` is smaller than the 32-byte header itself.
    #[error("header size {hdr_size} is smaller than the 32-byte header")]
    BadHeaderSize {
        /// `ih_hdr_size`.
        hdr_size: u16,
    },
    /// The header has flags this crate cannot verify (encrypted or compressed payload).
    #[error("unsupported header flags {flags:#x} (encrypted or compressed image)")]
    UnsupportedFlags {
        /// The offending bits of `ih_flags`.
        flags: u32,
    },
    /// A TLV area does not start with the expected info magic (`0x6908` protected, `0x6907`
    /// unprotected).
    #[error("bad TLV info magic {magic:#06x} at offset {offset:#x}")]
    BadTlvInfo {
        /// Where the info was read.
        offset: u32,
        /// The magic found.
        magic: u16,
    },
    /// `ih_protect_tlv_size` and the protected area's info total disagree.
    #[error("protected TLV size mismatch: header says {header}, TLV info says {info}")]
    ProtectedSizeMismatch {
        /// `ih_protect_tlv_size`.
        header: u16,
        /// The protected info's `it_tlv_tot`.
        info: u16,
    },
    /// A TLV area is malformed: its total is smaller than its info, or a TLV runs past the end
    /// of its area.
    #[error("malformed TLV area at offset {offset:#x}")]
    BadTlv {
        /// Where the bad TLV (or info) starts.
        offset: u32,
    },
    /// A TLV type that is not allowed where it is: the unprotected area may only hold SHA256,
    /// KEYHASH, PUBKEY and ED25519 (it is not covered by the hash, so anything else there could
    /// be changed freely); those four may not be in the protected area.
    #[error("TLV type {kind:#06x} not allowed at offset {offset:#x}")]
    UnexpectedTlv {
        /// The TLV type.
        kind: u16,
        /// Where the TLV starts.
        offset: u32,
    },
    /// A TLV type that may appear once appears again.
    #[error("TLV type {kind:#06x} appears twice")]
    DuplicateTlv {
        /// The TLV type.
        kind: u16,
    },
    /// A known TLV has the wrong length.
    #[error("TLV type {kind:#06x} has length {len}")]
    BadTlvLength {
        /// The TLV type.
        kind: u16,
        /// Its length.
        len: u16,
    },
    /// No SHA256 TLV.
    #[error("no SHA256 TLV")]
    MissingHash,
    /// The SHA-256 of header, payload and protected TLVs does not match the SHA256 TLV.
    #[error("image hash mismatch")]
    HashMismatch,
    /// The KEYHASH (or PUBKEY) TLV names another key than the one given.
    #[error("the image was signed with another key (KEYHASH/PUBKEY TLV mismatch)")]
    KeyMismatch,
    /// No ED25519 TLV (e.g. `imgtool sign` without `-k`).
    #[error("no ED25519 signature TLV")]
    MissingSignature,
    /// The public key given is not a valid Ed25519 key.
    #[error("invalid Ed25519 public key")]
    BadPublicKey,
    /// The Ed25519 signature does not verify.
    #[error("bad Ed25519 signature")]
    BadSignature,
}

/// The error of [`verify_from`](crate::verify_from): the image was refused, or reading it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError<E> {
    /// The image was read and refused.
    Image(ImageError),
    /// The reader failed.
    Read {
        /// Offset of the failed read, from the start of the image.
        offset: u32,
        /// The reader's error.
        error: E,
    },
}

impl<E> From<ImageError> for VerifyError<E> {
    fn from(e: ImageError) -> Self {
        VerifyError::Image(e)
    }
}

impl<E: fmt::Debug> fmt::Display for VerifyError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Image(e) => e.fmt(f),
            VerifyError::Read { offset, error } => {
                write!(f, "reading the image at offset {offset:#x} failed: {error:?}")
            }
        }
    }
}

impl<E: fmt::Debug> core::error::Error for VerifyError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            VerifyError::Image(e) => Some(e),
            VerifyError::Read { .. } => None,
        }
    }
}
