//! The testbed's sample hook: a function the firmware calls right before it reads its sensors,
//! which does nothing on hardware but gives an emulator a deterministic place to stop the guest
//! (a breakpoint on the symbol) and set the sensor models for that instant of virtual time.
//!
//! The firmware side is the BSP's `testbed::twinbed_sample_hook` (an `extern "C"` function,
//! exported under [`SYMBOL`]); the emulator side is the `twinbed` library's runner, which finds
//! the symbol in the ELF and reads the arguments from the registers below when the guest stops
//! there. Both take these facts from here.
//!
//! The call follows the AAPCS (Procedure Call Standard for the Arm Architecture, 6.5): the
//! first two 32-bit arguments travel in r0 and r1, so at the hook's first instruction they are
//! still there.

/// The hook's symbol name in the firmware ELF (`#[no_mangle]`).
pub const SYMBOL: &str = "twinbed_sample_hook";

/// The core register (r0) holding the first argument: the guest's uptime in ms.
pub const UPTIME_MS_REG: usize = 0;

/// The core register (r1) holding the second argument: the sample's index, from 0 at boot.
pub const INDEX_REG: usize = 1;

/// The hook's arguments, as the firmware passes them and the emulator reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplePoint {
    /// The guest's uptime in ms.
    pub uptime_ms: u32,
    /// The sample's index, from 0.
    pub index: u32,
}

impl SamplePoint {
    /// The arguments as they are in the core registers r0..r15 at the hook's first instruction.
    pub fn from_registers(r: &[u32; 16]) -> Self {
        SamplePoint { uptime_ms: r[UPTIME_MS_REG], index: r[INDEX_REG] }
    }
}

#[cfg(test)]
mod tests {
    use super::SamplePoint;

    #[test]
    fn the_arguments_are_read_from_r0_and_r1() {
        let mut r = [0u32; 16];
        (r[0], r[1], r[2]) = (4000, 3, 99);
        assert_eq!(SamplePoint::from_registers(&r), SamplePoint { uptime_ms: 4000, index: 3 });
    }
}
