//! The 32-byte image header and the image version (MCUboot `boot/bootutil/include/bootutil/image.h`:
//! `struct image_header`, `struct image_version`; all fields little endian).

use crate::ImageError;

/// `IMAGE_MAGIC`: the first word of every image (little endian on flash: `3d b8 f3 96`).
pub const IMAGE_MAGIC: u32 = 0x96f3_b83d;

/// `IMAGE_MAGIC_V1`: the magic of MCUboot's first image format, which this crate does not accept.
pub const IMAGE_MAGIC_V1: u32 = 0x96f3_b83c;

/// The magic word as it reads from erased NOR flash: the slot holds no image.
pub const IMAGE_MAGIC_ERASED: u32 = 0xffff_ffff;

/// `IMAGE_HEADER_SIZE`: bytes of the header proper. `hdr_size` may be larger (imgtool
/// `--header-size 0x200`), the rest being padding that is hashed like the rest of the header.
pub const IMAGE_HEADER_SIZE: usize = 32;

/// Header flags (`IMAGE_F_*` in `image.h`).
pub mod flags {
    /// `IMAGE_F_PIC`: position-independent image (MCUboot: "not supported").
    pub const PIC: u32 = 0x0000_0001;
    /// `IMAGE_F_ENCRYPTED_AES128`: payload encrypted with AES-128 (rejected by [`verify`](crate::verify)).
    pub const ENCRYPTED_AES128: u32 = 0x0000_0004;
    /// `IMAGE_F_ENCRYPTED_AES256`: payload encrypted with AES-256 (rejected by [`verify`](crate::verify)).
    pub const ENCRYPTED_AES256: u32 = 0x0000_0008;
    /// `IMAGE_F_NON_BOOTABLE`: a split image's app part.
    pub const NON_BOOTABLE: u32 = 0x0000_0010;
    /// `IMAGE_F_RAM_LOAD`: copy to RAM at `load_addr` and run it there (imgtool sets it when
    /// `--load-addr` is not 0).
    pub const RAM_LOAD: u32 = 0x0000_0020;
    /// `IMAGE_F_ROM_FIXED`: `load_addr` is the flash address the image was linked for.
    pub const ROM_FIXED: u32 = 0x0000_0100;
    /// `IMAGE_F_COMPRESSED_LZMA1` (rejected by [`verify`](crate::verify)).
    pub const COMPRESSED_LZMA1: u32 = 0x0000_0200;
    /// `IMAGE_F_COMPRESSED_LZMA2` (rejected by [`verify`](crate::verify)).
    pub const COMPRESSED_LZMA2: u32 = 0x0000_0400;
    /// `IMAGE_F_COMPRESSED_ARM_THUMB_FLT` (rejected by [`verify`](crate::verify)).
    pub const COMPRESSED_ARM_THUMB_FLT: u32 = 0x0000_0800;

    /// Flags whose payload is not the code to run as it is in the slot (encrypted or
    /// compressed): MCUboot's `boot_check_header_valid` refuses them unless built with
    /// `MCUBOOT_ENC_IMAGES` / `MCUBOOT_DECOMPRESS_IMAGES`; so does this crate.
    pub const UNSUPPORTED: u32 =
        ENCRYPTED_AES128 | ENCRYPTED_AES256 | COMPRESSED_LZMA1 | COMPRESSED_LZMA2 | COMPRESSED_ARM_THUMB_FLT;
}

/// The image version (`struct image_version`, imgtool's `--version 1.2.3+4`) and its parse
/// error: the contract's, shared with the bootloader library, the app's telemetry and the twin.
/// Its order counts the build number last; [`Version::cmp_without_build`] is MCUboot's default
/// comparison.
pub use twinbed_contract::version::{ParseVersionError, Version};

/// The image header (`struct image_header`), minus the magic, which [`ImageHeader::parse`]
/// checks.
///
/// ```text
/// off size field
///  0   4   ih_magic             0x96f3b83d
///  4   4   ih_load_addr
///  8   2   ih_hdr_size          header incl. padding; the payload starts here
/// 10   2   ih_protect_tlv_size  protected TLV area incl. its 4-byte info; 0 if none
/// 12   4   ih_img_size          payload bytes (header not included)
/// 16   4   ih_flags             IMAGE_F_*
/// 20   8   ih_ver               major u8, minor u8, revision u16, build_num u32
/// 28   4   _pad1
/// ```
#[doc(alias = "image_header")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageHeader {
    /// `ih_load_addr`: RAM address for [`flags::RAM_LOAD`], flash address for
    /// [`flags::ROM_FIXED`], else 0.
    #[doc(alias = "ih_load_addr")]
    pub load_addr: u32,
    /// `ih_hdr_size`: offset of the payload (at least [`IMAGE_HEADER_SIZE`]).
    #[doc(alias = "ih_hdr_size")]
    pub hdr_size: u16,
    /// `ih_protect_tlv_size`: size of the protected TLV area, its info header included.
    #[doc(alias = "ih_protect_tlv_size")]
    pub protect_tlv_size: u16,
    /// `ih_img_size`: payload size.
    #[doc(alias = "ih_img_size")]
    pub img_size: u32,
    /// `ih_flags`: see [`flags`].
    #[doc(alias = "ih_flags")]
    pub flags: u32,
    /// `ih_ver`.
    #[doc(alias = "ih_ver")]
    pub version: Version,
    /// `_pad1`: imgtool writes 0; kept so that [`ImageHeader::to_bytes`] gives back what was parsed.
    pub pad1: u32,
}

impl ImageHeader {
    /// Parses the first [`IMAGE_HEADER_SIZE`] bytes of `bytes` (more may follow: the rest is not
    /// read).
    ///
    /// Checks what the header alone can tell: enough bytes, the magic ([`ImageError::Empty`] for
    /// erased flash), `hdr_size >= 32`, and `hdr_size + img_size + protect_tlv_size` within
    /// `u32` (MCUboot `boot_check_header_valid` does the same overflow check). Whether the image
    /// fits its slot, its TLVs and its signature are [`verify`](crate::verify)'s business.
    pub fn parse(bytes: &[u8]) -> Result<ImageHeader, ImageError> {
        let Some(b) = bytes.first_chunk::<IMAGE_HEADER_SIZE>() else {
            return Err(ImageError::Truncated {
                needed: IMAGE_HEADER_SIZE as u64,
                available: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            });
        };
        let le32 = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let le16 = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        match le32(0) {
            IMAGE_MAGIC => {}
            IMAGE_MAGIC_ERASED => return Err(ImageError::Empty),
            found => return Err(ImageError::BadMagic { found }),
        }
        let header = ImageHeader {
            load_addr: le32(4),
            hdr_size: le16(8),
            protect_tlv_size: le16(10),
            img_size: le32(12),
            flags: le32(16),
            version: Version::from_bytes(&[b[20], b[21], b[22], b[23], b[24], b[25], b[26], b[27]]),
            pad1: le32(28),
        };
        if usize::from(header.hdr_size) < IMAGE_HEADER_SIZE {
            return Err(ImageError::BadHeaderSize { hdr_size: header.hdr_size });
        }
        if header.protected_tlv_end() > u64::from(u32::MAX) {
            return Err(ImageError::TooLarge { size: header.protected_tlv_end() });
        }
        Ok(header)
    }

    /// The 32 bytes of the header, magic included.
    pub fn to_bytes(&self) -> [u8; IMAGE_HEADER_SIZE] {
        let mut b = [0u8; IMAGE_HEADER_SIZE];
        b[0..4].copy_from_slice(&IMAGE_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.load_addr.to_le_bytes());
        b[8..10].copy_from_slice(&self.hdr_size.to_le_bytes());
        b[10..12].copy_from_slice(&self.protect_tlv_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.img_size.to_le_bytes());
        b[16..20].copy_from_slice(&self.flags.to_le_bytes());
        b[20..28].copy_from_slice(&self.version.to_bytes());
        b[28..32].copy_from_slice(&self.pad1.to_le_bytes());
        b
    }

    /// Offset of the first TLV area (protected if any, else unprotected): `hdr_size + img_size`
    /// (MCUboot `BOOT_TLV_OFF`).
    pub fn tlv_offset(&self) -> u64 {
        u64::from(self.hdr_size) + u64::from(self.img_size)
    }

    /// End of the protected TLV area, which is also the end of what the SHA-256 covers and the
    /// start of the unprotected TLV area: `hdr_size + img_size + protect_tlv_size`.
    pub fn protected_tlv_end(&self) -> u64 {
        self.tlv_offset() + u64::from(self.protect_tlv_size)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn header_round_trips_and_checks() {
        let h = ImageHeader {
            load_addr: 0x2000_0000,
            hdr_size: 0x200,
            protect_tlv_size: 12,
            img_size: 0x1234,
            flags: flags::RAM_LOAD,
            version: Version::new(1, 2, 3, 4),
            pad1: 0,
        };
        let b = h.to_bytes();
        assert_eq!(&b[..4], &[0x3d, 0xb8, 0xf3, 0x96]);
        assert_eq!(ImageHeader::parse(&b), Ok(h));
        assert_eq!(h.tlv_offset(), 0x200 + 0x1234);
        assert_eq!(h.protected_tlv_end(), 0x200 + 0x1234 + 12);

        for n in 0..IMAGE_HEADER_SIZE {
            assert_eq!(
                ImageHeader::parse(&b[..n]),
                Err(ImageError::Truncated { needed: 32, available: n as u32 })
            );
        }
        assert_eq!(ImageHeader::parse(&[0xff; 32]), Err(ImageError::Empty));
        let mut v1 = b;
        v1[0] = 0x3c;
        assert_eq!(ImageHeader::parse(&v1), Err(ImageError::BadMagic { found: IMAGE_MAGIC_V1 }));
        let small = ImageHeader { hdr_size: 31, ..h };
        assert_eq!(ImageHeader::parse(&small.to_bytes()), Err(ImageError::BadHeaderSize { hdr_size: 31 }));
        let huge = ImageHeader { img_size: u32::MAX, ..h };
        assert_eq!(
            ImageHeader::parse(&huge.to_bytes()),
            Err(ImageError::TooLarge { size: 0x200 + u64::from(u32::MAX) + 12 })
        );
        let edge = ImageHeader { img_size: u32::MAX - 0x200 - 12, ..h };
        assert_eq!(ImageHeader::parse(&edge.to_bytes()), Ok(edge));
    }
}
