//! The 32-byte image header and the image version (MCUboot `boot/bootutil/include/bootutil/image.h`:
//! `struct image_header`, `struct image_version`; all fields little endian).

use core::cmp::Ordering;
use core::fmt;
use core::str::FromStr;

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

/// An image version, `major.minor.revision+build_num` (imgtool `--version 1.2.3+4`).
///
/// # Ordering and `build_num`
///
/// The derived [`Ord`] compares `major`, then `minor`, then `revision`, then `build_num`: the
/// build number is the last tie-breaker, as in MCUboot built with
/// `MCUBOOT_VERSION_CMP_USE_BUILD_NUMBER`. MCUboot's default `boot_compare_version`
/// (`boot/bootutil/src/bootutil_loader.c`) ignores the build number; use
/// [`Version::cmp_without_build`] for that behaviour. A downgrade check is
/// `new < current` with either.
#[doc(alias = "image_version")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// `iv_major`.
    #[doc(alias = "iv_major")]
    pub major: u8,
    /// `iv_minor`.
    #[doc(alias = "iv_minor")]
    pub minor: u8,
    /// `iv_revision`.
    #[doc(alias = "iv_revision")]
    pub revision: u16,
    /// `iv_build_num`.
    #[doc(alias = "iv_build_num")]
    pub build_num: u32,
}

impl Version {
    /// `major.minor.revision+build_num`.
    pub const fn new(major: u8, minor: u8, revision: u16, build_num: u32) -> Self {
        Version { major, minor, revision, build_num }
    }

    /// Compares like MCUboot's default `boot_compare_version`: major, minor, revision; the build
    /// number does not count.
    pub fn cmp_without_build(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.revision).cmp(&(other.major, other.minor, other.revision))
    }

    /// The security counter imgtool derives from the version for `--security-counter auto`:
    /// `(major << 24) + (minor << 16) + revision` (`scripts/imgtool/image.py`).
    pub const fn auto_security_counter(&self) -> u32 {
        ((self.major as u32) << 24) + ((self.minor as u32) << 16) + self.revision as u32
    }

    /// The 8 bytes of `struct image_version`.
    pub const fn to_bytes(&self) -> [u8; 8] {
        let r = self.revision.to_le_bytes();
        let b = self.build_num.to_le_bytes();
        [self.major, self.minor, r[0], r[1], b[0], b[1], b[2], b[3]]
    }

    /// Reads `struct image_version`.
    pub const fn from_bytes(b: &[u8; 8]) -> Self {
        Version {
            major: b[0],
            minor: b[1],
            revision: u16::from_le_bytes([b[2], b[3]]),
            build_num: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

impl fmt::Display for Version {
    /// `1.2.3+4`, the form imgtool prints and parses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}+{}", self.major, self.minor, self.revision, self.build_num)
    }
}

/// A version string that is not `maj[.min[.rev[+build]]]` (decimal, no leading zeros) or
/// whose parts do not fit the header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid version number: expected maj.min.rev+build with later parts optional, each fitting its header field")]
pub struct ParseVersionError;

impl FromStr for Version {
    type Err = ParseVersionError;

    /// Parses imgtool's grammar (`scripts/imgtool/version.py`): `maj`, `maj.min`, `maj.min.rev`
    /// or `maj.min.rev+build`, decimal without leading zeros; missing parts are 0.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        fn number(s: &str) -> Result<u64, ParseVersionError> {
            let ok = !s.is_empty()
                && s.len() <= 10
                && s.bytes().all(|c| c.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'));
            if !ok {
                return Err(ParseVersionError);
            }
            s.parse().map_err(|_| ParseVersionError)
        }
        let (dotted, build) = match s.split_once('+') {
            Some((d, b)) => (d, Some(b)),
            None => (s, None),
        };
        let mut parts = [0u64; 3];
        let mut count = 0;
        for part in dotted.split('.') {
            let slot = parts.get_mut(count).ok_or(ParseVersionError)?;
            *slot = number(part)?;
            count += 1;
        }
        // imgtool accepts "+build" only after all three dotted parts.
        if build.is_some() && count != 3 {
            return Err(ParseVersionError);
        }
        let build = build.map(number).transpose()?.unwrap_or(0);
        Ok(Version {
            major: u8::try_from(parts[0]).map_err(|_| ParseVersionError)?,
            minor: u8::try_from(parts[1]).map_err(|_| ParseVersionError)?,
            revision: u16::try_from(parts[2]).map_err(|_| ParseVersionError)?,
            build_num: u32::try_from(build).map_err(|_| ParseVersionError)?,
        })
    }
}

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
    use std::string::ToString;

    #[rustfmt::skip]
    const VERSIONS: &[(&str, Option<Version>)] = &[
        ("1.2.3+4",          Some(Version::new(1, 2, 3, 4))),
        ("0",                Some(Version::new(0, 0, 0, 0))),
        ("7",                Some(Version::new(7, 0, 0, 0))),
        ("1.2",              Some(Version::new(1, 2, 0, 0))),
        ("1.2.3",            Some(Version::new(1, 2, 3, 0))),
        ("255.255.65535+4294967295", Some(Version::new(255, 255, 65535, u32::MAX))),
        ("256.0.0",          None), // major is a u8
        ("0.0.65536",        None), // revision is a u16
        ("1.2.3+4294967296", None), // build is a u32
        ("01.2.3",           None), // imgtool: no leading zeros
        ("1.2+3",            None), // imgtool: +build only after maj.min.rev
        ("1.2.3.4",          None),
        ("1.2.3+",           None),
        ("",                 None),
        ("1..3",             None),
        ("v1.2.3",           None),
        ("-1.2.3",           None),
        ("1.2.3+4+5",        None),
    ];

    #[test]
    fn version_parses_imgtools_grammar() {
        for &(text, want) in VERSIONS {
            assert_eq!(text.parse::<Version>().ok(), want, "{text:?}");
        }
        assert_eq!(Version::new(1, 2, 3, 4).to_string(), "1.2.3+4");
    }

    #[test]
    fn version_order_counts_build_last() {
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert!(v("1.2.3+4") < v("1.2.4"));
        assert!(v("1.2.65535+9") < v("1.3.0"));
        assert!(v("1.255.0") < v("2.0.0"));
        // The build number breaks ties in Ord, and only there...
        assert!(v("1.2.3+4") < v("1.2.3+5"));
        // ...and MCUboot's default comparison ignores it.
        assert_eq!(v("1.2.3+4").cmp_without_build(&v("1.2.3+5")), Ordering::Equal);
        assert_eq!(v("1.2.3+9").cmp_without_build(&v("1.2.4")), Ordering::Less);
        assert_eq!(v("1.2.3").auto_security_counter(), 0x0102_0003);
    }

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
