//! Peripheral models: one file each, named after the datasheet block, each with a header that
//! cites the manual (and QEMU's model where QEMU is the oracle), lists what is not modelled and
//! the quirks reproduced, and gives the model's energy states if it draws current.
//!
//! # The contract every model follows
//! - A model is plain data (`Clone + Send + Serialize + Deserialize`): a machine snapshot is a
//!   clone. No `Rc`, no `RefCell`, no trait objects, no host clock.
//! - Time is the machine's virtual clock in core-clock **cycles** (`Ctx::now`). A model never
//!   reads the wall clock. Counters are computed from `now` lazily (e.g. a timer stores the cycle
//!   at which it was loaded), not ticked cycle by cycle.
//! - `advance(ctx)` brings the model up to `ctx.now` (raise interrupts that came due);
//!   `next_deadline()` says when it next needs `advance` (absolute cycle), so the machine can
//!   skip idle time (WFI) straight to the earliest deadline. The machine calls `advance` before
//!   every access to the model and whenever `now` reaches its deadline.
//! - Registers are declared once, in a [`registers!`](crate::registers) table ([`regs`]):
//!   offset, access (RO/RW/W1C/W1S/WO), reset value, write mask, width rule. The shared code
//!   decodes, stores, masks, clears W1C bits, checks sizes and logs guest errors; the model's
//!   [`regs::Registers`] hooks hold only the side effects. Interrupt outputs change in one
//!   `update_irq()` per model (pending && enabled), which sets the line level through `ctx.irq`.
//! - Guest mistakes (bad offset, bad size, writing a read-only register) are logged with
//!   `tracing` target `"guest"` and answered as the hardware would (usually RAZ/WI); never a
//!   panic. Unimplemented features log with target `"unimp"`.
//! - Whatever else the machine asks of a model goes through [`Device`] methods with defaults
//!   ("not this kind of model"): the parts that draw current and their states
//!   ([`Device::rails`], [`Device::rail_state`]), the memory a flash controller programs, a
//!   UART's serial line, a battery or temperature sensor's input. A model implements the ones
//!   it is; nothing outside its file names it.
//!
//! # How to add a model
//! One file and one line in the registry. The smallest model, the MPS2 SCC
//! ([`mps2_scc`]), as the worked example:
//!
//! 1. `periph/mps2_scc.rs`: the header (manual, QEMU oracle, quirks, what is not modelled), the
//!    register table, the state, the side effects, and how the board file builds it:
//!    ```text
//!    crate::registers! {
//!        /// The SCC's registers, with the AN385 image's reset values.
//!        pub enum Reg for "mps2-scc", Any {
//!            /// CFG_REG1: LEDs.
//!            #[doc(alias = "CFG_REG1")]
//!            Cfg1 = 0x004, RW, reset = 0;
//!            /// CFG_REG4: board revision.
//!            #[doc(alias = "CFG_REG4")]
//!            Cfg4 = 0x010, RO, reset = 0x2;
//!            /// SYS_CFGCTRL: START, WRITE, FUNCTION, DEVICE (START and the reserved bits are
//!            /// not stored).
//!            #[doc(alias = "SYS_CFGCTRL")]
//!            CfgCtrl = 0x0a8, RW, reset = 0x0010_0000, mask = !(CFGCTRL_RES1 | CFGCTRL_RES2 | CFGCTRL_START);
//!            // ... one line per register
//!        }
//!    }
//!
//!    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
//!    pub struct Mps2Scc { regs: RegFile<Reg>, oscclk: [u32; 3] }
//!
//!    impl Registers for Mps2Scc {
//!        type Reg = Reg;
//!        fn regs(&mut self) -> &mut RegFile<Reg> { &mut self.regs }
//!        // Only the side effects: the table already stored the masked value.
//!        fn write_reg(&mut self, reg: Reg, value: u32, _: &mut Ctx<'_>) {
//!            if reg == Reg::CfgCtrl {
//!                self.regs[Reg::CfgStat] = 0;
//!                if value & CFGCTRL_START != 0 { self.cfg_transfer(); }
//!            }
//!        }
//!    }
//!
//!    impl Device for Mps2Scc {
//!        fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
//!            regs::read(self, offset, size, ctx)
//!        }
//!        fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
//!            regs::write(self, offset, size, value, ctx);
//!        }
//!        fn reset(&mut self) { *self = Self::an385(); }
//!    }
//!
//!    impl FromBoard for Mps2Scc {
//!        const IRQ_OUTPUTS: usize = 0;
//!        fn from_board(_: &Peripheral, _: u8, _: IrqOutputs, _: &Board) -> Result<Self, PeriphError> {
//!            Ok(Self::an385())
//!        }
//!    }
//!    ```
//!    Registers whose value the model computes (a counter, a FIFO) have no `reset`: the model
//!    answers them in `read_reg` (see [`ota_feed`]). A model with a time base implements
//!    `advance` and `next_deadline`; one that draws current, `rails` and `rail_state` (see
//!    [`nor_flash`]).
//! 2. The registry line in this file's `models!` (variant, file and type, the name board files
//!    use), which declares the module and makes the model known to board files, snapshots and
//!    the machine:
//!    ```text
//!    Scc(mps2_scc::Mps2Scc) = "mps2-scc";
//!    ```
//! 3. Tests in the file: a one-device `Ctx`, register writes, virtual time, assertions.

use serde::{Deserialize, Serialize};

/// Width of a bus access: the core's own type, so an access reaches a model as the core made it.
pub use crate::cpu::Size;

/// Interrupt request lines from peripherals to the NVIC: one level per external IRQ number.
///
/// Several models may drive the same line (on mps2-an385 the overrun interrupts of UART0-2 share
/// IRQ 12): each model's output is kept apart (the machine selects the driving model with
/// [`IrqLines::select_source`] before it calls the model) and the line is their OR.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqLines {
    level: u128,
    /// Lines that rose since the NVIC last looked (a rising edge pends even if it falls again).
    rose: u128,
    /// The lines each source drives high, by source index.
    drivers: Vec<u128>,
    source: usize,
}

impl IrqLines {
    /// Makes the following [`IrqLines::set`] calls come from source `index` (the machine's
    /// peripheral index).
    pub fn select_source(&mut self, index: usize) {
        self.source = index;
    }

    /// Sets the level the current source drives on external interrupt `irq` (0..128).
    pub fn set(&mut self, irq: u32, high: bool) {
        if irq >= 128 {
            return;
        }
        let bit = 1u128 << irq;
        if self.drivers.len() <= self.source {
            self.drivers.resize(self.source + 1, 0);
        }
        if high {
            self.drivers[self.source] |= bit;
        } else {
            self.drivers[self.source] &= !bit;
        }
        let now_high = self.drivers.iter().any(|d| d & bit != 0);
        if now_high && self.level & bit == 0 {
            self.rose |= bit;
        }
        if now_high {
            self.level |= bit;
        } else {
            self.level &= !bit;
        }
    }

    /// Current levels, one bit per IRQ.
    pub fn levels(&self) -> u128 {
        self.level
    }

    /// Lines that rose since the last call (and clears that record).
    pub fn take_rising(&mut self) -> u128 {
        std::mem::take(&mut self.rose)
    }
}

#[cfg(test)]
mod irq_tests {
    use super::IrqLines;

    #[test]
    fn a_shared_line_is_the_or_of_its_drivers() {
        let mut l = IrqLines::default();
        l.select_source(0);
        l.set(12, true);
        l.select_source(2);
        l.set(12, true);
        l.select_source(0);
        l.set(12, false);
        assert_eq!(l.levels(), 1 << 12, "source 2 still drives it");
        l.select_source(2);
        l.set(12, false);
        assert_eq!(l.levels(), 0);
        assert_eq!(l.take_rising(), 1 << 12);
    }
}

/// Bytes that left the machine (console output), in the order they were sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Everything transmitted, tagged with its source (e.g. `uart0`, `semihosting`), in order.
    pub bytes: Vec<(OutputSource, u8)>,
}

/// Where output bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputSource {
    /// UART number n of the board.
    Uart(u8),
    /// Semihosting console calls (SYS_WRITEC, SYS_WRITE0, SYS_WRITE to stdout/stderr).
    Semihosting,
}

/// What a model may touch besides itself during an access or `advance`.
pub struct Ctx<'a> {
    /// Virtual time now, in core-clock cycles since power-on.
    pub now: u64,
    /// Core clock in Hz (the board's `clock_hz`).
    pub clock_hz: u32,
    /// Interrupt lines into the NVIC.
    pub irq: &'a mut IrqLines,
    /// Console output.
    pub out: &'a mut Output,
}

/// The interface of every memory-mapped model. Offsets are relative to the model's base.
pub trait Device {
    /// A read of `size` at `offset` (aligned to `size` by the bus; unaligned accesses to devices
    /// fault before they get here). Returns the value in the low bits.
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32;
    /// A write of `size` at `offset`; `value` holds the data in its low bits.
    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>);
    /// Brings the model's state up to `ctx.now`.
    fn advance(&mut self, ctx: &mut Ctx<'_>) {
        let _ = ctx;
    }
    /// The earliest cycle at which the model needs `advance`, if any.
    fn next_deadline(&self) -> Option<u64> {
        None
    }
    /// Back to the power-on state (system reset). Models that keep contents across reset
    /// (flash) keep them.
    fn reset(&mut self);

    // ---- What the machine, the energy accounts and the host may ask of any model. The
    // ---- defaults say "not this kind of model"; a model implements only what it is.

    /// Energy: the parts of this model that draw current, with their states' currents from
    /// the board's `[power]` table (`name` is the model's board name). Default: none.
    fn rails(&self, name: &str, power: &twinbed_board::Power) -> Vec<RailSpec> {
        let _ = (name, power);
        Vec::new()
    }

    /// Energy: the state of this model's rail `k` (in the order of [`Device::rails`]) after an
    /// access or a reset at `rail.now`. Default: unchanged.
    fn rail_state(&self, k: usize, rail: &RailView) -> RailState {
        let _ = k;
        rail.unchanged()
    }

    /// Flash: the memory this model programs, as (base, size), if it is a flash controller:
    /// that memory keeps its contents across power cycles.
    fn flash_region(&self) -> Option<(u32, u32)> {
        None
    }

    /// Flash: operations started since the machine was built (0 for other models).
    fn flash_ops(&self) -> u32 {
        0
    }

    /// Flash: the controller side the machine drives (applying completed operations to memory,
    /// tearing one at a power cut), if this model is a flash controller.
    fn flash_controller(&mut self) -> Option<&mut dyn FlashController> {
        None
    }

    /// Serial: the number of the serial port this model is (a UART), if it is one.
    fn serial_port(&self) -> Option<u8> {
        None
    }

    /// Serial: a byte arriving on the line from outside the machine (a modem, a console).
    fn serial_rx(&mut self, byte: u8, ctx: &mut Ctx<'_>) {
        let _ = (byte, ctx);
    }

    /// Sensors: whether the model shows the battery (the machine then calls
    /// [`Device::observe_battery`] right before every access).
    fn senses_battery(&self) -> bool {
        false
    }

    /// Sensors: the battery and the board's consumption at the time of the coming access.
    fn observe_battery(&mut self, reading: GaugeReading) {
        let _ = reading;
    }

    /// Sensors: sets the temperature (milli-°C) of the sensor named `device` (a board
    /// `[[device]]`) if this model holds it; false if not, or if the value is out of the
    /// sensor's range (it is then unchanged).
    fn set_temperature(&mut self, device: &str, milli_c: i32) -> bool {
        let _ = (device, milli_c);
        false
    }
}

/// What the machine does with a flash controller besides its registers: the memory the
/// controller programs is the machine's, so the machine applies (or tears) its operations.
pub trait FlashController {
    /// Completed operations, for the machine to apply to memory (in order).
    fn take_done(&mut self) -> Vec<nor_flash::FlashOp>;
    /// Reports a program that tried to set bits (the machine knows the old contents).
    fn flag_program_error(&mut self);
    /// Power cut: the operation in flight (if any) stops half way; returned so the machine can
    /// tear the memory it touched. The controller forgets it.
    fn cut(&mut self) -> Option<nor_flash::FlashOp>;
}

/// How the registry builds a model from its board-file entry.
pub trait FromBoard: Device + Sized {
    /// Interrupt outputs the model has (a board file may wire up to this many).
    const IRQ_OUTPUTS: usize;

    /// The model for board peripheral `p`, instance `index` of its model on the board (UART n
    /// tags its output with `OutputSource::Uart(n)`), its outputs wired as `irqs`.
    fn from_board(
        p: &twinbed_board::Peripheral,
        index: u8,
        irqs: IrqOutputs,
        board: &twinbed_board::Board,
    ) -> Result<Self, PeriphError>;
}

/// A model type of the registry: how to find it inside a [`Model`].
pub trait Listed: Sized {
    /// The model, if `m` is one of these.
    fn of(m: &Model) -> Option<&Self>;
    /// The model, if `m` is one of these.
    fn of_mut(m: &mut Model) -> Option<&mut Self>;
}

// ---------------------------------------------------------------------------------------------
// Models, shared helpers, and the board-file constructor.
// ---------------------------------------------------------------------------------------------

mod ptimer;
pub mod rails;
pub mod regs;
pub mod tmp105;
#[macro_use]
mod registry;

pub use fuel_gauge::GaugeReading;
pub use rails::{RailKind, RailSpec, RailState, RailView};
pub use sbcon_i2c::I2cDevice;
pub use tmp105::Tmp105;

/// A model's interrupt outputs and the NVIC lines they drive.
///
/// Outputs that share a line are ORed (QEMU wires e.g. a UART's TX and RX overrun outputs to
/// one line through an OR gate). A line is only written when the OR of this model's outputs on
/// it changes; a line shared with *another* model (the UART 0-2 overrun line of mps2-an385) is
/// the OR of both, because [`IrqLines`] keeps each model's level apart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqOutputs {
    /// NVIC line of output i, `None` when not connected.
    lines: Vec<Option<u32>>,
    /// Lines this model currently drives high, one bit per IRQ number (0..128).
    driven: u128,
}

impl IrqOutputs {
    /// Outputs connected to `irqs` in order; outputs beyond `irqs.len()` are not connected.
    pub fn new(irqs: &[u32]) -> Self {
        Self { lines: irqs.iter().map(|&n| Some(n)).collect(), driven: 0 }
    }

    /// Sets every output's level (`levels[i]` for output i) and updates the lines that changed.
    pub fn update(&mut self, levels: &[bool], irq: &mut IrqLines) {
        let mut want = 0u128;
        for (line, &high) in self.lines.iter().zip(levels) {
            if let Some(n) = *line {
                if high && n < 128 {
                    want |= 1u128 << n;
                }
            }
        }
        let mut changed = want ^ self.driven;
        while changed != 0 {
            let n = changed.trailing_zeros();
            irq.set(n, want & (1u128 << n) != 0);
            changed &= changed - 1;
        }
        self.driven = want;
    }

    /// Forgets the driven levels (device reset; the machine clears its lines on reset).
    pub fn reset(&mut self) {
        self.driven = 0;
    }
}

/// `value` cut to the width of an access.
pub(crate) fn truncate(value: u32, size: Size) -> u32 {
    match size {
        Size::Byte => value & 0xff,
        Size::Half => value & 0xffff,
        Size::Word => value,
    }
}

/// Logs a guest read of an offset the model does not decode (answered as 0 by the caller).
pub(crate) fn bad_read(model: &str, offset: u32, size: Size) {
    tracing::warn!(target: "guest", "{model}: read of bad offset 0x{offset:03x} ({size:?})");
}

/// Logs a guest write to an offset the model does not decode, or to a read-only register.
pub(crate) fn bad_write(model: &str, offset: u32, size: Size, value: u32) {
    tracing::warn!(
        target: "guest",
        "{model}: write of 0x{value:x} to bad or read-only offset 0x{offset:03x} ({size:?})"
    );
}

/// Why the board's peripherals could not be built, or a model could not be driven as asked.
#[derive(Debug, thiserror::Error)]
pub enum PeriphError {
    /// The board file names a model the engine does not know.
    #[error("peripheral `{name}`: unknown model `{model}`; the engine knows {known}")]
    UnknownModel {
        /// Peripheral instance name.
        name: String,
        /// The model name asked for.
        model: String,
        /// The known model names, comma-separated.
        known: String,
    },
    /// A bus device names a model the engine does not know.
    #[error("device `{name}`: unknown I2C device model `{model}`; the engine knows tmp105")]
    UnknownDevice {
        /// Device instance name.
        name: String,
        /// The model name asked for.
        model: String,
    },
    /// A bus device sits on a peripheral that is not an I2C controller.
    #[error("device `{name}` sits on `{bus}`, which is a `{model}`, not an I2C controller")]
    NotABus {
        /// Device instance name.
        name: String,
        /// The bus named.
        bus: String,
        /// The model of that peripheral.
        model: String,
    },
    /// Two devices share an address on one bus.
    #[error("devices `{first}` and `{second}` both answer at address 0x{address:02x} on `{bus}`")]
    AddressClash {
        /// The bus.
        bus: String,
        /// I2C address.
        address: u8,
        /// The first device.
        first: String,
        /// The second device.
        second: String,
    },
    /// More interrupt numbers than the model has outputs.
    #[error(
        "peripheral `{name}`: model `{model}` has {outputs} interrupt output(s), the board gives {given}"
    )]
    TooManyIrqs {
        /// Peripheral instance name.
        name: String,
        /// Its model.
        model: String,
        /// How many outputs the model has.
        outputs: usize,
        /// How many IRQ numbers the board file lists.
        given: usize,
    },
    /// A flash controller without a memory region to program.
    #[error("peripheral `{name}`: a twinbed-nor-flash needs `memory = \"<region>\"`, naming one of the board's memory regions")]
    NoFlashMemory {
        /// Peripheral instance name.
        name: String,
    },
    /// A fuel gauge on a board without a battery to gauge.
    #[error(
        "peripheral `{name}`: a twinbed-fuel-gauge needs a [battery] table (and [power]) in the board file"
    )]
    NoBattery {
        /// Peripheral instance name.
        name: String,
    },
    /// No device of that name (or not of the asked kind).
    #[error("no {kind} named `{name}`")]
    NoSuchDevice {
        /// What was looked for (e.g. "TMP105").
        kind: &'static str,
        /// The name asked for.
        name: String,
    },
    /// A sensor value outside what the device can represent.
    #[error("{value} is out of range for `{name}` (allowed: {min}..={max})")]
    OutOfRange {
        /// Device name.
        name: String,
        /// The value asked for.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
}

// The registry: one line per model (variant, its file and type, the name board files use), then
// the names that get a RAZ/WI stand-in. `Model::KNOWN` lists them in this order.
models! {
    /// CMSDK APB UART.
    Uart(cmsdk_uart::CmsdkUart) = "cmsdk-apb-uart";
    /// CMSDK APB timer.
    Timer(cmsdk_timer::CmsdkTimer) = "cmsdk-apb-timer";
    /// CMSDK APB dual timer.
    DualTimer(cmsdk_dualtimer::CmsdkDualTimer) = "cmsdk-apb-dualtimer";
    /// CMSDK AHB GPIO.
    Gpio(cmsdk_gpio::CmsdkGpio) = "cmsdk-ahb-gpio";
    /// MPS2 FPGA system control and I/O.
    FpgaIo(mps2_fpgaio::Mps2FpgaIo) = "mps2-fpgaio";
    /// MPS2 serial configuration controller.
    Scc(mps2_scc::Mps2Scc) = "mps2-scc";
    /// SBCon bit-banged I2C controller with its bus devices.
    I2c(sbcon_i2c::SbConI2c) = "sbcon-i2c";
    /// RAZ/WI region (QEMU's unimplemented-device), also standing in for unmodelled devices.
    Unimplemented(unimplemented::Unimplemented) = "unimplemented";
    /// twinbed's NOR flash controller.
    NorFlash(nor_flash::NorFlash) = "twinbed-nor-flash";
    /// twinbed's OTA feed (the host-side update channel).
    OtaFeed(ota_feed::OtaFeed) = "twinbed-ota-feed";
    /// twinbed's fuel gauge (the battery, as the machine's energy accounting sees it).
    FuelGauge(fuel_gauge::FuelGauge) = "twinbed-fuel-gauge";

    // Devices QEMU models that the engine does not (yet): RAZ/WI stand-ins that log once.
    _ = "cmsdk-apb-watchdog", irqs = 1;
    _ = "pl022", irqs = 1;
    _ = "lan9118", irqs = 1;
}

impl Model {
    /// The model inside, if it is a `T` (e.g. `model.get::<CmsdkUart>()`).
    pub fn get<T: Listed>(&self) -> Option<&T> {
        T::of(self)
    }

    /// The model inside, if it is a `T` (e.g. `model.get_mut::<OtaFeed>()`).
    pub fn get_mut<T: Listed>(&mut self) -> Option<&mut T> {
        T::of_mut(self)
    }

    /// The I2C controller, if this is one.
    pub fn as_i2c_mut(&mut self) -> Option<&mut SbConI2c> {
        self.get_mut()
    }

    /// The UART, if this is one.
    pub fn as_uart_mut(&mut self) -> Option<&mut CmsdkUart> {
        self.get_mut()
    }

    /// The flash controller, if this is one.
    pub fn as_flash_mut(&mut self) -> Option<&mut dyn FlashController> {
        self.flash_controller()
    }
}

/// A model placed in the address map.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mapped {
    /// Instance name from the board file (e.g. `uart0`).
    pub name: String,
    /// Base address.
    pub base: u32,
    /// Size of the register window in bytes.
    pub size: u32,
    /// The model.
    pub model: Model,
}

/// Builds every peripheral of a board file, with its bus devices attached, in board order.
///
/// Errors on a model or device model the engine does not know, on more IRQ numbers than a model
/// has outputs, and on a bus device whose bus is not an I2C controller.
pub fn build_peripherals(board: &twinbed_board::Board) -> Result<Vec<Mapped>, PeriphError> {
    let mut out: Vec<Mapped> = Vec::with_capacity(board.peripherals.len());
    for p in &board.peripherals {
        let index =
            board.peripherals.iter().take_while(|o| o.name != p.name).filter(|o| o.model == p.model).count();
        let model = Model::from_board(p, u8::try_from(index).unwrap_or(u8::MAX), board)?;
        out.push(Mapped { name: p.name.clone(), base: p.base, size: p.window(), model });
    }
    for d in &board.devices {
        let Some(bus) = out.iter_mut().find(|m| m.name == d.bus) else {
            // The board crate validates this; keep the message if a caller built a Board by hand.
            return Err(PeriphError::NoSuchDevice { kind: "bus", name: d.bus.clone() });
        };
        let bus_model = board.peripheral(&d.bus).map(|p| p.model.clone()).unwrap_or_default();
        let Some(i2c) = bus.model.as_i2c_mut() else {
            return Err(PeriphError::NotABus { name: d.name.clone(), bus: d.bus.clone(), model: bus_model });
        };
        let dev = match d.model.as_str() {
            "tmp105" => I2cDevice::Tmp105(Tmp105::new()),
            other => {
                return Err(PeriphError::UnknownDevice { name: d.name.clone(), model: other.to_owned() })
            }
        };
        if let Some(first) = i2c.device_at(d.address) {
            return Err(PeriphError::AddressClash {
                bus: d.bus.clone(),
                address: d.address,
                first: first.to_owned(),
                second: d.name.clone(),
            });
        }
        i2c.attach(&d.name, d.address, dev);
    }
    Ok(out)
}

/// Sets the temperature of the TMP105 named `name` (a board `[[device]]`) on any I2C
/// controller among `periphs`, in milli-degrees Celsius (QEMU's `temperature` property).
pub fn set_tmp105_temperature(periphs: &mut [Mapped], name: &str, milli_c: i32) -> Result<(), PeriphError> {
    for m in periphs.iter_mut() {
        if let Some(i2c) = m.model.as_i2c_mut() {
            if let Some(t) = i2c.tmp105_mut(name) {
                return t.set_temperature(milli_c).map_err(|(min, max)| PeriphError::OutOfRange {
                    name: name.to_owned(),
                    value: i64::from(milli_c),
                    min: i64::from(min),
                    max: i64::from(max),
                });
            }
        }
    }
    Err(PeriphError::NoSuchDevice { kind: "TMP105", name: name.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn an385() -> Vec<Mapped> {
        let board = twinbed_board::Board::builtin("mps2-an385").expect("built-in board");
        build_peripherals(&board).expect("every model of the board is known")
    }

    #[test]
    fn builds_every_an385_peripheral_with_the_sensor() {
        let mut p = an385();
        let names: Vec<&str> = p.iter().map(|m| m.name.as_str()).collect();
        for n in
            ["uart0", "uart1", "uart4", "timer0", "dualtimer", "fpgaio", "scc", "i2c-sensors", "gpio0", "vga"]
        {
            assert!(names.contains(&n), "{n} missing");
        }
        let uart1 = p.iter_mut().find(|m| m.name == "uart1").expect("uart1");
        assert_eq!((uart1.base, uart1.size), (0x4000_5000, 0x1000));
        assert!(
            matches!(uart1.model, Model::Uart(ref u) if u == &CmsdkUart::new(1, IrqOutputs::new(&[3, 2, 12, 12])))
        );
        assert!(set_tmp105_temperature(&mut p, "temp", 21_500).is_ok());
        assert!(matches!(
            set_tmp105_temperature(&mut p, "temp", 200_000),
            Err(PeriphError::OutOfRange { .. })
        ));
        assert!(matches!(set_tmp105_temperature(&mut p, "nope", 0), Err(PeriphError::NoSuchDevice { .. })));
        let i2c = p.iter_mut().find(|m| m.name == "i2c-sensors").expect("bus");
        assert!(i2c.model.set_temperature("temp", -4_250));
        assert_eq!(
            i2c.model.as_i2c_mut().and_then(|b| b.tmp105_mut("temp")).map(|t| t.temperature()),
            Some(-4_250)
        );
    }

    #[test]
    fn unknown_models_are_refused_with_the_list() {
        let text = "name = \"x\"\ncpu = \"cortex-m3\"\nclock_hz = 1\n[[peripheral]]\nname = \"u\"\nmodel = \"stm32-usart\"\nbase = 0x40000000\n";
        let board = twinbed_board::Board::parse(text, "t.toml").expect("valid board file");
        let e = build_peripherals(&board).unwrap_err().to_string();
        assert!(e.contains("unknown model `stm32-usart`") && e.contains("cmsdk-apb-uart"), "{e}");

        let text = "name = \"x\"\ncpu = \"cortex-m3\"\nclock_hz = 1\n[[peripheral]]\nname = \"t\"\nmodel = \"cmsdk-apb-timer\"\nbase = 0x40000000\nirqs = [1, 2]\n";
        let board = twinbed_board::Board::parse(text, "t.toml").expect("valid board file");
        assert!(matches!(
            build_peripherals(&board),
            Err(PeriphError::TooManyIrqs { outputs: 1, given: 2, .. })
        ));

        let text = "name = \"x\"\ncpu = \"cortex-m3\"\nclock_hz = 1\n[[peripheral]]\nname = \"t\"\nmodel = \"cmsdk-apb-timer\"\nbase = 0x40000000\n[[device]]\nname = \"s\"\nmodel = \"tmp105\"\nbus = \"t\"\naddress = 0x48\n";
        let board = twinbed_board::Board::parse(text, "t.toml").expect("valid board file");
        assert!(matches!(build_peripherals(&board), Err(PeriphError::NotABus { .. })));
    }

    #[test]
    fn models_round_trip_through_serde_mid_run() {
        let mut p = an385();
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut ctx = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        let timer = p.iter_mut().find(|m| m.name == "timer0").expect("timer0");
        timer.model.write(0x8, Size::Word, 1000, &mut ctx);
        timer.model.write(0x0, Size::Word, 0b1001, &mut ctx);
        let uart = p.iter_mut().find(|m| m.name == "uart1").expect("uart1");
        uart.model.as_uart_mut().expect("a UART").push_rx(b'x', &mut ctx);

        let json = serde_json::to_string(&p).expect("serialises");
        let mut back: Vec<Mapped> = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(serde_json::to_string(&back).expect("serialises"), json);
        let t = back.iter_mut().find(|m| m.name == "timer0").expect("timer0");
        assert_eq!(t.model.next_deadline(), Some(1000));
        ctx.now = 500;
        assert_eq!(t.model.read(0x4, Size::Word, &mut ctx), 501);
    }
}
