//! Image versions and slots.

use core::fmt;

/// An image version, as MCUboot's image header carries it (`struct image_version`: major u8,
/// minor u8, revision u16, build number u32).
///
/// Ordered field by field, major first and build number last (the derived `Ord`): unlike
/// MCUboot's default comparison, the build number counts, so `1.2.3+5` is newer than `1.2.3+4`.
/// This order decides both "the highest version boots" and the downgrade rule
/// (see [`select`](crate::select)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Revision.
    pub revision: u16,
    /// Build number.
    pub build: u32,
}

impl Version {
    /// `major.minor.revision+build`.
    pub const fn new(major: u8, minor: u8, revision: u16, build: u32) -> Version {
        Version { major, minor, revision, build }
    }
}

impl fmt::Display for Version {
    /// `1.2.3+4`, the form `imgtool sign --version` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}+{}", self.major, self.minor, self.revision, self.build)
    }
}

/// One of the two image slots. Each image is linked for its own slot (direct-XIP): the
/// bootloader never copies or swaps images, it only chooses which slot to jump to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// The first slot (MCUboot's "primary").
    A,
    /// The second slot (MCUboot's "secondary").
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
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::A => "A",
            Slot::B => "B",
        })
    }
}
