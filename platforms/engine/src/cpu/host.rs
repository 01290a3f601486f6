//! What instruction execution needs from outside the core: the [`Host`] trait, the access
//! [`Size`] and the synchronous exceptions ([`Exc`]) an instruction can raise.
//!
//! The core knows no board: memory, the System Control Block's configuration, sleep, the
//! semihosting host and the run loop's scheduling all sit behind [`Host`]. The machine
//! implements it; [`super::execute`] is generic over it, so every call is monomorphised and
//! inlined (no dynamic dispatch on the hot path).

use super::CpuState;
use crate::system::{cfsr, exc};

/// Width of a bus access (the core's loads and stores, and the peripheral models' accesses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Size {
    /// 8 bits.
    Byte = 1,
    /// 16 bits.
    Half = 2,
    /// 32 bits.
    Word = 4,
}

/// A synchronous exception raised while executing an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exc {
    /// A fault: exception number, CFSR bits, and for BusFaults the faulting address.
    Fault {
        /// Exception number ([`crate::system::exc`]).
        n: u32,
        /// CFSR bits to set ([`crate::system::cfsr`]).
        cfsr: u32,
        /// BFAR, for a precise BusFault.
        addr: Option<u32>,
    },
    /// SVC.
    Svc,
    /// BKPT (other than semihosting) with no debugger: a debug event.
    Debug,
    /// Semihosting exit.
    Exit(i32),
}

impl Exc {
    /// A UsageFault with these CFSR bits.
    pub fn usage(bits: u32) -> Self {
        Exc::Fault { n: exc::USAGEFAULT, cfsr: bits, addr: None }
    }

    /// A precise BusFault at `addr` (CFSR.PRECISERR, BFAR valid).
    pub fn bus_error(addr: u32) -> Self {
        Exc::Fault { n: exc::BUSFAULT, cfsr: cfsr::PRECISERR, addr: Some(addr) }
    }
}

/// The world around the core, as instruction execution sees it.
///
/// During an instruction `cpu().r[15]` holds the instruction's address + 4 (what reads of the
/// PC see) and [`Host::next_pc`] the address of the next instruction; branches change the
/// latter, and the host moves it into the PC once the instruction completes.
pub trait Host {
    /// The core's registers.
    fn cpu(&self) -> &CpuState;
    /// The core's registers, to change.
    fn cpu_mut(&mut self) -> &mut CpuState;

    /// Loads a value of `size` from `addr` (little-endian), with the current privilege.
    /// Faults as the memory system answers (precise BusFault).
    fn load(&mut self, addr: u32, size: Size) -> Result<u32, Exc>;
    /// Stores the low `size` bytes of `value` at `addr`, with the current privilege.
    fn store(&mut self, addr: u32, value: u32, size: Size) -> Result<(), Exc>;

    /// The address the core goes on from after this instruction.
    fn next_pc(&self) -> u32;
    /// Sets the address the core goes on from (a branch; bit 0 already cleared).
    fn set_next_pc(&mut self, pc: u32);
    /// An EXC_RETURN value was written to the PC in Handler mode: return from the exception
    /// once the instruction completes (B1.5.8).
    fn exception_return(&mut self, exc_return: u32);

    /// SCB CCR (B3.2.8): UNALIGN_TRP and DIV_0_TRP decide whether some instructions fault.
    fn ccr(&self) -> u32;
    /// Whether HardFault or NMI is active (FAULTMASK can be set only below their priority).
    fn hardfault_or_nmi_active(&self) -> bool;

    /// WFI (`wfe` false) or WFE with no event pending: the core sleeps until woken.
    fn sleep(&mut self, wfe: bool);
    /// Makes the run loop look at interrupts and deadlines again before the next instruction
    /// (after a change of masks, CONTROL, or an interworking branch to ARM state).
    fn reschedule(&mut self);
    /// `BKPT 0xAB`: semihosting operation `op` with parameter `arg`; the result goes to r0.
    fn semihosting(&mut self, op: u32, arg: u32) -> Result<u32, Exc>;
}
