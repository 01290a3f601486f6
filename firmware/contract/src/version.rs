//! Image versions and A/B slots, as the bootloader, the image format, the app's telemetry and
//! the twin all name them.
//!
//! No serde here (the contract has no dependencies): a crate that puts these on a wire formats
//! them with its own code (the telemetry JSON writes `"a"` and `"1.2.3"` without `+0`; the twin
//! parses the same).

use core::cmp::Ordering;
use core::fmt;
use core::str::FromStr;

/// An image version, as MCUboot's image header carries it (`struct image_version`: major u8,
/// minor u8, revision u16, build number u32; imgtool's `--version 1.2.3+4`).
///
/// # Ordering and the build number
///
/// The derived [`Ord`] compares `major`, then `minor`, then `revision`, then `build`: the build
/// number is the last tie-breaker, as in MCUboot built with
/// `MCUBOOT_VERSION_CMP_USE_BUILD_NUMBER`, so `1.2.3+5` is newer than `1.2.3+4`. This order
/// decides both abboot's "the highest version boots" and its downgrade rule. MCUboot's default
/// `boot_compare_version` (`boot/bootutil/src/bootutil_loader.c`) ignores the build number; use
/// [`Version::cmp_without_build`] for that behaviour.
#[doc(alias = "image_version")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version (`iv_major`).
    #[doc(alias = "iv_major")]
    pub major: u8,
    /// Minor version (`iv_minor`).
    #[doc(alias = "iv_minor")]
    pub minor: u8,
    /// Revision (`iv_revision`).
    #[doc(alias = "iv_revision")]
    pub revision: u16,
    /// Build number (`iv_build_num`).
    #[doc(alias = "iv_build_num", alias = "build_num")]
    pub build: u32,
}

impl Version {
    /// `major.minor.revision+build`.
    pub const fn new(major: u8, minor: u8, revision: u16, build: u32) -> Version {
        Version { major, minor, revision, build }
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

    /// The 8 bytes of `struct image_version` (little endian).
    pub const fn to_bytes(&self) -> [u8; 8] {
        let r = self.revision.to_le_bytes();
        let b = self.build.to_le_bytes();
        [self.major, self.minor, r[0], r[1], b[0], b[1], b[2], b[3]]
    }

    /// Reads `struct image_version` (little endian).
    pub const fn from_bytes(b: &[u8; 8]) -> Version {
        Version {
            major: b[0],
            minor: b[1],
            revision: u16::from_le_bytes([b[2], b[3]]),
            build: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

impl fmt::Display for Version {
    /// `1.2.3+4` (the build number always shown), the form imgtool prints and parses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}+{}", self.major, self.minor, self.revision, self.build)
    }
}

/// A version string that is not `maj[.min[.rev[+build]]]` (decimal, no leading zeros) or whose
/// parts do not fit the header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseVersionError;

impl fmt::Display for ParseVersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "invalid version number: expected maj.min.rev+build with later parts optional, each fitting its header field",
        )
    }
}

impl core::error::Error for ParseVersionError {}

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
        let build = match build {
            Some(b) => number(b)?,
            None => 0,
        };
        Ok(Version {
            major: u8::try_from(parts[0]).map_err(|_| ParseVersionError)?,
            minor: u8::try_from(parts[1]).map_err(|_| ParseVersionError)?,
            revision: u16::try_from(parts[2]).map_err(|_| ParseVersionError)?,
            build: u32::try_from(build).map_err(|_| ParseVersionError)?,
        })
    }
}

/// One of the two image slots. Each image is linked for its own slot (direct-XIP): the
/// bootloader never copies or swaps images, it only chooses which slot to jump to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// The first slot (MCUboot's "primary"; `"a"` in telemetry).
    A,
    /// The second slot (MCUboot's "secondary"; `"b"` in telemetry).
    B,
}

impl Slot {
    /// Both slots, A first.
    pub const ALL: [Slot; 2] = [Slot::A, Slot::B];

    /// The other slot: where the OTA agent writes when this one runs.
    pub const fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// 0 for A, 1 for B.
    pub const fn index(self) -> usize {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }

    /// `"A"` or `"B"`, as consoles and logs name it.
    pub const fn name(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }
}

impl fmt::Display for Slot {
    /// `A` or `B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[rustfmt::skip]
    const VERSIONS: &[(&str, Option<Version>)] = &[
        ("1.2.3+4",          Some(Version::new(1, 2, 3, 4))),
        ("0",                Some(Version::new(0, 0, 0, 0))),
        ("7",                Some(Version::new(7, 0, 0, 0))),
        ("1.2",              Some(Version::new(1, 2, 0, 0))),
        ("1.2.3",            Some(Version::new(1, 2, 3, 0))),
        ("255.255.65535+4294967295", Some(Version::new(255, 255, 65535, u32::MAX))),
        ("256",              None), // major is a u8
        ("256.0.0",          None),
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
        ("1.-2",             None),
        ("1.2.3+4+5",        None),
    ];

    #[test]
    fn versions_parse_as_imgtool_does_and_print_back() {
        for &(text, want) in VERSIONS {
            assert_eq!(text.parse::<Version>().ok(), want, "{text:?}");
        }
        assert_eq!(format!("{}", Version::new(1, 2, 3, 4)), "1.2.3+4");
        assert_eq!(format!("{}", Version::new(1, 0, 0, 0)), "1.0.0+0");
    }

    #[test]
    fn the_build_number_orders_last() {
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert!(v("1.2.3+4") < v("1.2.4"));
        assert!(v("1.2.65535+9") < v("1.3.0"));
        assert!(v("1.255.0") < v("2.0.0"));
        assert!(Version::new(1, 3, 0, 0) > Version::new(1, 2, 9, 9));
        // The build number breaks ties in Ord, and only there...
        assert!(v("1.2.3+4") < v("1.2.3+5"));
        // ...and MCUboot's default comparison ignores it.
        assert_eq!(v("1.2.3+4").cmp_without_build(&v("1.2.3+5")), Ordering::Equal);
        assert_eq!(v("1.2.3+9").cmp_without_build(&v("1.2.4")), Ordering::Less);
        assert_eq!(v("1.2.3").auto_security_counter(), 0x0102_0003);
    }

    #[test]
    fn image_version_bytes_round_trip() {
        let v = Version::new(1, 2, 0x0304, 0x0506_0708);
        assert_eq!(v.to_bytes(), [1, 2, 4, 3, 8, 7, 6, 5]);
        assert_eq!(Version::from_bytes(&v.to_bytes()), v);
        assert_eq!(v.auto_security_counter(), 0x0102_0304);
    }

    #[test]
    fn slots() {
        assert_eq!(Slot::A.other(), Slot::B);
        assert_eq!(Slot::ALL.map(Slot::index), [0, 1]);
        assert_eq!(format!("{} {}", Slot::A, Slot::B), "A B");
    }
}
