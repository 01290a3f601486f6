//! The architectural state of an ARMv7-M core (ARMv7-M ARM B1.4): registers, flags, masks.

use serde::{Deserialize, Serialize};

/// Architectural state of the core (ARMv7-M ARM B1.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuState {
    /// r0..r15; r13 is the *current* stack pointer (MSP or PSP), r15 the PC.
    pub r: [u32; 16],
    /// The stack pointer that is not current.
    pub other_sp: u32,
    /// APSR.N
    pub n: bool,
    /// APSR.Z
    pub z: bool,
    /// APSR.C
    pub c: bool,
    /// APSR.V
    pub v: bool,
    /// APSR.Q
    pub q: bool,
    /// EPSR.T: false makes the next instruction fault (INVSTATE).
    pub thumb: bool,
    /// ITSTATE (EPSR.IT).
    pub it: u8,
    /// IPSR: the exception number being handled, 0 in Thread mode.
    pub ipsr: u32,
    /// PRIMASK.
    pub primask: bool,
    /// FAULTMASK.
    pub faultmask: bool,
    /// BASEPRI.
    pub basepri: u8,
    /// CONTROL.nPRIV.
    pub npriv: bool,
    /// CONTROL.SPSEL: Thread mode uses PSP.
    pub spsel: bool,
    /// Local exclusive monitor: the address of the open LDREX, if any.
    pub exclusive: Option<u32>,
    /// Event register (WFE/SEV).
    pub event: bool,
}

impl CpuState {
    /// Whether the core runs privileged (Handler mode, or Thread mode with CONTROL.nPRIV 0).
    pub fn privileged(&self) -> bool {
        self.ipsr != 0 || !self.npriv
    }

    /// Whether the current stack pointer is the PSP.
    pub fn on_psp(&self) -> bool {
        self.ipsr == 0 && self.spsel
    }

    /// MSP.
    pub fn msp(&self) -> u32 {
        if self.on_psp() {
            self.other_sp
        } else {
            self.r[13]
        }
    }

    /// PSP.
    pub fn psp(&self) -> u32 {
        if self.on_psp() {
            self.r[13]
        } else {
            self.other_sp
        }
    }

    /// Sets MSP.
    pub fn set_msp(&mut self, v: u32) {
        if self.on_psp() {
            self.other_sp = v & !3;
        } else {
            self.r[13] = v & !3;
        }
    }

    /// Sets PSP.
    pub fn set_psp(&mut self, v: u32) {
        if self.on_psp() {
            self.r[13] = v & !3;
        } else {
            self.other_sp = v & !3;
        }
    }

    /// Changes mode and/or SPSEL, swapping the banked stack pointer if the current one changes.
    pub fn set_mode(&mut self, ipsr: u32, spsel: bool) {
        let before = self.on_psp();
        self.ipsr = ipsr;
        self.spsel = spsel;
        if before != self.on_psp() {
            std::mem::swap(&mut self.r[13], &mut self.other_sp);
        }
    }

    /// xPSR as stacked on exception entry (B1.4.2): NZCVQ, IT/ICI, T, IPSR.
    pub fn xpsr(&self) -> u32 {
        let it = u32::from(self.it);
        (u32::from(self.n) << 31)
            | (u32::from(self.z) << 30)
            | (u32::from(self.c) << 29)
            | (u32::from(self.v) << 28)
            | (u32::from(self.q) << 27)
            | ((it & 3) << 25)
            | (u32::from(self.thumb) << 24)
            | ((it >> 2) << 10)
            | (self.ipsr & 0x1ff)
    }

    /// APSR flags from a value in xPSR layout.
    pub fn set_apsr(&mut self, v: u32) {
        self.n = v & (1 << 31) != 0;
        self.z = v & (1 << 30) != 0;
        self.c = v & (1 << 29) != 0;
        self.v = v & (1 << 28) != 0;
        self.q = v & (1 << 27) != 0;
    }

    /// Whether condition `cond` (A7.3) holds.
    #[inline(always)]
    pub fn cond(&self, cond: u8) -> bool {
        let r = match cond >> 1 {
            0 => self.z,
            1 => self.c,
            2 => self.n,
            3 => self.v,
            4 => self.c && !self.z,
            5 => self.n == self.v,
            6 => !self.z && self.n == self.v,
            _ => return true,
        };
        if cond & 1 != 0 {
            !r
        } else {
            r
        }
    }

    /// ITAdvance (A7.3.3).
    #[inline]
    pub fn it_advance(&mut self) {
        if self.it & 7 == 0 {
            self.it = 0;
        } else {
            self.it = (self.it & 0xe0) | ((self.it << 1) & 0x1f);
        }
    }
}
