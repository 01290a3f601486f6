//! Board descriptions: what an emulated board is made of, as data.
//!
//! A board file (TOML, see `platforms/boards/`) names the CPU and core clock, the memory regions,
//! the on-chip peripherals by model name and base address, and the devices on its buses (sensors).
//! Engines wire models to these names: QEMU maps a board to `-M <machine>` plus `-device` options,
//! the embedded engine (`twinbed-engine`) instantiates its own peripheral models from the same file.
//!
//! Built-in boards are compiled in ([`Board::builtin`]); any other file can be loaded with
//! [`Board::from_file`]. Loading validates the file and says what is wrong and where.
//!
//! # Power and battery
//! An optional `[power]` table lists what each part of the board draws, per state, in µA
//! ([`Power`]); an optional `[battery]` table describes the cell that feeds it ([`Battery`]).
//! Engines that account energy integrate these currents over virtual time; a board without
//! `[power]` is simply not accounted. Figures are decimal numbers kept exactly in thousandths
//! ([`Milli`]: 1 nA resolution for currents), so accounting stays in integers.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Boards that ship with twinbed: (name, TOML text).
const BUILTIN: &[(&str, &str)] = &[("mps2-an385", include_str!("../../boards/mps2-an385.toml"))];

/// Why a board could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// No built-in board of that name and no such file.
    #[error("unknown board `{name}`: built-in boards are {known}; or give the path of a board file (.toml)")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The built-in names, comma-separated.
        known: String,
    },
    /// The file could not be read.
    #[error("cannot read board file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a board.
    #[error("board file {origin} is malformed: {source}")]
    Parse {
        /// File path or built-in name.
        origin: String,
        /// The parser's message (with line and column).
        source: toml::de::Error,
    },
    /// The file parses but describes an impossible board.
    #[error("board file {origin} is inconsistent: {problem}")]
    Invalid {
        /// File path or built-in name.
        origin: String,
        /// What is wrong.
        problem: String,
    },
}

/// A board: CPU, clock, memory, peripherals and bus devices.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Board name, e.g. `mps2-an385`.
    pub name: String,
    /// CPU model, e.g. `cortex-m3`.
    pub cpu: String,
    /// Core clock in Hz (SysTick's processor clock).
    pub clock_hz: u32,
    /// How QEMU runs this board, if it can.
    #[serde(default)]
    pub qemu: Option<QemuBoard>,
    /// Memory regions.
    #[serde(default)]
    pub memory: Vec<Memory>,
    /// Memory-mapped peripherals.
    #[serde(default, rename = "peripheral")]
    pub peripherals: Vec<Peripheral>,
    /// Devices on the board's buses (e.g. I2C sensors).
    #[serde(default, rename = "device")]
    pub devices: Vec<Device>,
    /// Currents per state, for energy accounting; `None`: not accounted.
    #[serde(default)]
    pub power: Option<Power>,
    /// The battery feeding the board (needs `power`).
    #[serde(default)]
    pub battery: Option<Battery>,
}

/// A non-negative decimal figure of a board file, kept exactly as a whole number of thousandths:
/// `cpu_run_ua = 1.5` is 1500 thousandths of a µA, i.e. 1500 nA. Written as an integer or a
/// float with at most three decimals; negative, non-finite or finer values are refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Milli(u64);

impl Milli {
    /// Largest value accepted: 10^12 units (a million amperes, when the unit is the µA).
    pub const MAX_UNITS: u64 = 1_000_000_000_000;

    /// A value of `thousandths` thousandths of the unit.
    pub const fn from_thousandths(thousandths: u64) -> Self {
        Self(thousandths)
    }

    /// A value of `units` whole units.
    pub const fn from_units(units: u64) -> Self {
        Self(units * 1000)
    }

    /// The value in thousandths of the unit (for µA: nA; for mAh: µAh; for %: 1/1000 %).
    pub const fn thousandths(self) -> u64 {
        self.0
    }

    /// The value as a float, in units.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl std::fmt::Display for Milli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 % 1000 {
            0 => write!(f, "{}", self.0 / 1000),
            frac => write!(f, "{}.{}", self.0 / 1000, format!("{frac:03}").trim_end_matches('0')),
        }
    }
}

impl<'de> Deserialize<'de> for Milli {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Milli;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative number with at most three decimals")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Milli, E> {
                if v > Milli::MAX_UNITS {
                    return Err(E::custom(format!("{v} is too large (at most {})", Milli::MAX_UNITS)));
                }
                Ok(Milli(v * 1000))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Milli, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => {
                        Err(E::custom(format!("{v} is negative; currents, capacities and rates cannot be")))
                    }
                }
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Milli, E> {
                if !v.is_finite() {
                    return Err(E::custom(format!("{v} is not a number")));
                }
                if v < 0.0 {
                    return Err(E::custom(format!(
                        "{v} is negative; currents, capacities and rates cannot be"
                    )));
                }
                if v > Milli::MAX_UNITS as f64 {
                    return Err(E::custom(format!("{v} is too large (at most {})", Milli::MAX_UNITS)));
                }
                let t = (v * 1000.0).round();
                if (v * 1000.0 - t).abs() > 1e-6 * t.max(1.0) {
                    return Err(E::custom(format!("{v} has more than three decimals (resolution 0.001)")));
                }
                Ok(Milli(t as u64))
            }
        }
        d.deserialize_any(V)
    }
}

/// What the board draws from its supply in each state, in µA (decimals allowed down to 1 nA).
/// The states are those an engine can tell apart: the core running, sleeping (WFI/WFE) or in
/// deep sleep (WFI/WFE with SCR.SLEEPDEEP); the flash controller programming or erasing (on top of
/// the core); the temperature sensor converting or shut down; the cellular modem's power states
/// (reported by the modem model, which lives outside the engine).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Power {
    /// Nominal supply voltage in mV, for energy figures (µWh = µAh × V).
    pub supply_mv: u32,
    /// Core running (the MCU's whole active current at the board's clock).
    pub cpu_run_ua: Milli,
    /// Core asleep in WFI/WFE (clocks running).
    pub cpu_sleep_ua: Milli,
    /// Core in deep sleep (WFI/WFE with SCR.SLEEPDEEP set).
    pub cpu_deep_sleep_ua: Milli,
    /// Flash controller programming (a word or a row), on top of the core.
    pub flash_program_ua: Milli,
    /// Flash controller erasing a page, on top of the core.
    pub flash_erase_ua: Milli,
    /// Temperature sensor (TMP105) converting.
    pub sensor_ua: Milli,
    /// Temperature sensor shut down (configuration SD = 1, no conversion). Default 0.
    #[serde(default)]
    pub sensor_shutdown_ua: Milli,
    /// Modem with its radio off (AT+CFUN=0).
    pub modem_off_ua: Milli,
    /// Modem registered, nothing moving.
    pub modem_idle_ua: Milli,
    /// Modem receiving (waiting for a network answer, or delivering a message).
    pub modem_rx_ua: Milli,
    /// Modem transmitting.
    pub modem_tx_ua: Milli,
}

/// The battery: capacity, open-circuit voltage against state of charge, self-discharge.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Battery {
    /// Capacity in mAh (decimals allowed down to 1 µAh).
    pub capacity_mah: Milli,
    /// Self-discharge in % of the capacity per month (30 days), e.g. 2 or 0.25.
    pub self_discharge_pct_per_month: Milli,
    /// Voltage against state of charge: `[permille, mV]` points from empty (0 ‰) to full
    /// (1000 ‰), state of charge strictly rising and voltage never falling; linear in between.
    pub curve: Vec<CurvePoint>,
}

/// One point of a battery's voltage curve, written `[permille, mV]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurvePoint {
    /// State of charge, ‰ (0 empty, 1000 full).
    pub permille: u32,
    /// Cell voltage there, mV.
    pub mv: u32,
}

impl<'de> Deserialize<'de> for CurvePoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<u32>::deserialize(d)?;
        match v[..] {
            [permille, mv] => Ok(CurvePoint { permille, mv }),
            _ => Err(serde::de::Error::custom(format!(
                "a curve point is [permille, mV], two numbers; this one has {}",
                v.len()
            ))),
        }
    }
}

/// QEMU's name for the board.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QemuBoard {
    /// The `-M` machine type.
    pub machine: String,
}

/// A memory region.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// Region name.
    pub name: String,
    /// First address.
    pub base: u32,
    /// Size in bytes.
    pub size: u32,
}

/// A memory-mapped peripheral.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Peripheral {
    /// Instance name, unique on the board (e.g. `uart0`).
    pub name: String,
    /// Model name, after the datasheet block (e.g. `cmsdk-apb-uart`).
    pub model: String,
    /// Base address.
    pub base: u32,
    /// Size of the register window in bytes; [`Peripheral::DEFAULT_SIZE`] when not given.
    #[serde(default)]
    pub size: Option<u32>,
    /// External interrupt numbers (NVIC IRQn) of the model's interrupt outputs, in the model's
    /// output order (for QEMU's models: the order of their sysbus IRQs). Shorter than the
    /// model's list of outputs: the rest are not connected.
    #[serde(default)]
    pub irqs: Vec<u32>,
    /// For a flash controller: the name of the memory region it programs.
    #[serde(default)]
    pub memory: Option<String>,
}

impl Peripheral {
    /// The window of an APB/AHB peripheral slot when the board file gives no `size`: 4 KiB.
    pub const DEFAULT_SIZE: u32 = 0x1000;

    /// Size of the register window (`size`, or [`Peripheral::DEFAULT_SIZE`]).
    pub fn window(&self) -> u32 {
        self.size.unwrap_or(Self::DEFAULT_SIZE)
    }
}

/// Interrupt numbers above this cannot exist on ARMv7-M (496 external interrupts at most).
const MAX_IRQ: u32 = 495;

/// A device on one of the board's buses.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Instance name, unique on the board; QEMU uses it as the device `id`.
    pub name: String,
    /// Model name (e.g. `tmp105`).
    pub model: String,
    /// The peripheral (bus controller) it sits on.
    pub bus: String,
    /// Bus address (7-bit for I2C).
    pub address: u8,
}

impl Board {
    /// Names of the built-in boards.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n)
    }

    /// A built-in board by name.
    pub fn builtin(name: &str) -> Result<Board, BoardError> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| BoardError::Unknown {
            name: name.to_owned(),
            known: Self::builtin_names().collect::<Vec<_>>().join(", "),
        })?;
        Self::parse(text, name)
    }

    /// A board from a TOML file.
    pub fn from_file(path: &Path) -> Result<Board, BoardError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| BoardError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// A built-in board by name, or else a board file if `name_or_path` ends in `.toml`.
    pub fn load(name_or_path: &str) -> Result<Board, BoardError> {
        if name_or_path.ends_with(".toml") {
            Self::from_file(Path::new(name_or_path))
        } else {
            Self::builtin(name_or_path)
        }
    }

    /// Parses and validates board TOML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Board, BoardError> {
        let board: Board =
            toml::from_str(text).map_err(|source| BoardError::Parse { origin: origin.to_owned(), source })?;
        board.validate().map_err(|problem| BoardError::Invalid { origin: origin.to_owned(), problem })?;
        Ok(board)
    }

    fn validate(&self) -> Result<(), String> {
        if self.clock_hz == 0 {
            return Err("clock_hz must be above 0".into());
        }
        for (i, m) in self.memory.iter().enumerate() {
            if m.size == 0 || m.base.checked_add(m.size - 1).is_none() {
                return Err(format!("memory `{}` does not fit in the 32-bit address space", m.name));
            }
            if let Some(o) = self.memory[..i]
                .iter()
                .find(|o| m.base < o.base.wrapping_add(o.size) && o.base < m.base.wrapping_add(m.size))
            {
                return Err(format!("memory `{}` overlaps memory `{}`", m.name, o.name));
            }
        }
        for (i, p) in self.peripherals.iter().enumerate() {
            let size = p.window();
            if size == 0 || p.base.checked_add(size - 1).is_none() {
                return Err(format!("peripheral `{}` does not fit in the 32-bit address space", p.name));
            }
            if let Some(o) = self.peripherals[..i]
                .iter()
                .find(|o| p.base < o.base.wrapping_add(o.window()) && o.base < p.base.wrapping_add(size))
            {
                return Err(format!("peripheral `{}` overlaps peripheral `{}`", p.name, o.name));
            }
            if let Some(m) = self
                .memory
                .iter()
                .find(|m| p.base < m.base.wrapping_add(m.size) && m.base < p.base.wrapping_add(size))
            {
                return Err(format!("peripheral `{}` overlaps memory `{}`", p.name, m.name));
            }
            if let Some(name) = &p.memory {
                if !self.memory.iter().any(|m| &m.name == name) {
                    return Err(format!(
                        "peripheral `{}` names memory `{name}`, which the board does not have",
                        p.name
                    ));
                }
            }
            if let Some(irq) = p.irqs.iter().find(|&&n| n > MAX_IRQ) {
                return Err(format!(
                    "peripheral `{}` uses IRQ {irq}; ARMv7-M has external interrupts 0..={MAX_IRQ}",
                    p.name
                ));
            }
        }
        let mut names: Vec<&str> = self.peripherals.iter().map(|p| p.name.as_str()).collect();
        names.extend(self.devices.iter().map(|d| d.name.as_str()));
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("two peripherals or devices are named `{}`", w[0]));
        }
        if let Some(p) = &self.power {
            if p.supply_mv == 0 {
                return Err("power.supply_mv must be above 0".into());
            }
        }
        if let Some(b) = &self.battery {
            if self.power.is_none() {
                return Err(
                    "[battery] needs a [power] table: the battery is drained by the currents it lists".into(),
                );
            }
            validate_battery(b)?;
        }
        for d in &self.devices {
            if !self.peripherals.iter().any(|p| p.name == d.bus) {
                return Err(format!(
                    "device `{}` sits on bus `{}`, which is not a peripheral of this board",
                    d.name, d.bus
                ));
            }
            if d.address > 0x7f {
                return Err(format!(
                    "device `{}` has address 0x{:x}; I2C addresses are 7-bit",
                    d.name, d.address
                ));
            }
        }
        Ok(())
    }

    /// The first peripheral of model `model`.
    pub fn peripheral_of_model(&self, model: &str) -> Option<&Peripheral> {
        self.peripherals.iter().find(|p| p.model == model)
    }

    /// The peripheral named `name`.
    pub fn peripheral(&self, name: &str) -> Option<&Peripheral> {
        self.peripherals.iter().find(|p| p.name == name)
    }

    /// The first device of model `model`.
    pub fn device_of_model(&self, model: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.model == model)
    }
}

/// Checks a `[battery]` table: capacity above 0, self-discharge at most 100 %, and a curve from
/// 0 ‰ to 1000 ‰ with the state of charge strictly rising and the voltage never falling.
fn validate_battery(b: &Battery) -> Result<(), String> {
    if b.capacity_mah.thousandths() == 0 {
        return Err("battery.capacity_mah must be above 0".into());
    }
    if b.self_discharge_pct_per_month > Milli::from_units(100) {
        return Err(format!(
            "battery.self_discharge_pct_per_month is {}; it is a percentage of the capacity, at most 100",
            b.self_discharge_pct_per_month
        ));
    }
    const HOW: &str = "list [permille, mV] points from empty [0, ...] up to full [1000, ...]";
    let (Some(first), Some(last)) = (b.curve.first(), b.curve.last()) else {
        return Err(format!("battery.curve is empty; {HOW}"));
    };
    if b.curve.len() < 2 || first.permille != 0 || last.permille != 1000 {
        return Err(format!(
            "battery.curve must start at 0 \u{2030} and end at 1000 \u{2030} (it runs from {} to {}); {HOW}",
            first.permille, last.permille
        ));
    }
    for (i, w) in b.curve.windows(2).enumerate() {
        let (CurvePoint { permille: s0, mv: v0 }, CurvePoint { permille: s1, mv: v1 }) = (w[0], w[1]);
        if s1 <= s0 {
            return Err(format!(
                "battery.curve point {} ({s1} \u{2030}) does not come after point {} ({s0} \u{2030}): \
                 the state of charge must rise strictly; {HOW}",
                i + 2,
                i + 1
            ));
        }
        if v1 < v0 {
            return Err(format!(
                "battery.curve point {} ({s1} \u{2030}, {v1} mV) is below point {} ({s0} \u{2030}, {v0} mV): \
                 the voltage must not fall as the charge rises",
                i + 2,
                i + 1
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_mps2_an385_loads() {
        let b = Board::builtin("mps2-an385").expect("built-in board is valid");
        assert_eq!(b.clock_hz, 25_000_000);
        assert_eq!(b.qemu.as_ref().map(|q| q.machine.as_str()), Some("mps2-an385"));
        assert_eq!(b.peripheral("i2c-sensors").map(|p| p.base), Some(0x4002_A000));
        let t = b.device_of_model("tmp105").expect("has a TMP105");
        assert_eq!((t.name.as_str(), t.address), ("temp", 0x48));
        assert_eq!(t.bus, "i2c-sensors");
    }

    /// The facts taken from QEMU 7.2's `hw/arm/mps2.c` (and `info mtree` of `-M mps2-an385`).
    #[test]
    fn builtin_mps2_an385_matches_qemu_map() {
        let b = Board::builtin("mps2-an385").expect("built-in board is valid");
        let p = |n: &str| {
            let p = b.peripheral(n).unwrap_or_else(|| panic!("no peripheral `{n}`"));
            (p.model.as_str(), p.base, p.window(), p.irqs.clone())
        };
        assert_eq!(p("uart0"), ("cmsdk-apb-uart", 0x4000_4000, 0x1000, vec![1, 0, 12, 12]));
        assert_eq!(p("uart1"), ("cmsdk-apb-uart", 0x4000_5000, 0x1000, vec![3, 2, 12, 12]));
        assert_eq!(p("uart2"), ("cmsdk-apb-uart", 0x4000_6000, 0x1000, vec![5, 4, 12, 12]));
        assert_eq!(p("uart3"), ("cmsdk-apb-uart", 0x4000_7000, 0x1000, vec![19, 18]));
        assert_eq!(p("uart4"), ("cmsdk-apb-uart", 0x4000_9000, 0x1000, vec![21, 20]));
        assert_eq!(p("timer0"), ("cmsdk-apb-timer", 0x4000_0000, 0x1000, vec![8]));
        assert_eq!(p("timer1"), ("cmsdk-apb-timer", 0x4000_1000, 0x1000, vec![9]));
        assert_eq!(p("dualtimer"), ("cmsdk-apb-dualtimer", 0x4000_2000, 0x1000, vec![10]));
        assert_eq!(p("fpgaio"), ("mps2-fpgaio", 0x4002_8000, 0x1000, vec![]));
        assert_eq!(p("scc"), ("mps2-scc", 0x4002_F000, 0x1000, vec![]));
        assert_eq!(p("i2c-sensors"), ("sbcon-i2c", 0x4002_A000, 0x1000, vec![]));
        assert_eq!(p("ethernet"), ("lan9118", 0x4020_0000, 0x100, vec![13]));
        assert_eq!(p("i2s").2, 0x400);
        assert_eq!(p("gpio0"), ("unimplemented", 0x4001_0000, 0x1000, vec![]));
        assert!(b.peripherals.len() >= 30, "{}", b.peripherals.len());
    }

    #[test]
    fn builtin_mps2_an385_has_power_figures_and_a_battery() {
        let b = Board::builtin("mps2-an385").expect("built-in board is valid");
        let p = b.power.as_ref().expect("[power]");
        assert_eq!(p.cpu_run_ua, Milli::from_units(5500));
        assert_eq!(p.cpu_deep_sleep_ua.thousandths(), 1100, "1.1 µA is 1100 nA");
        assert_eq!(p.sensor_shutdown_ua.thousandths(), 100);
        assert!(p.cpu_sleep_ua < p.cpu_run_ua && p.cpu_deep_sleep_ua < p.cpu_sleep_ua);
        assert!(p.modem_off_ua < p.modem_idle_ua && p.modem_rx_ua < p.modem_tx_ua);
        let bat = b.battery.as_ref().expect("[battery]");
        assert_eq!(bat.capacity_mah, Milli::from_units(3350));
        let ends = (bat.curve[0], *bat.curve.last().unwrap());
        assert_eq!(ends, (CurvePoint { permille: 0, mv: 3000 }, CurvePoint { permille: 1000, mv: 4190 }));
        let g = b.peripheral_of_model("twinbed-fuel-gauge").expect("a fuel gauge");
        assert_eq!((g.base, g.window()), (0x4003_2000, 0x1000));
        let r = b.peripheral("reserved-4").expect("the rest of RESERVED 4");
        assert_eq!((r.base, r.base + r.window()), (0x4003_3000, 0x4020_0000));
    }

    #[test]
    fn decimal_figures_are_kept_exactly_in_thousandths() {
        let m = |v: &str| toml::from_str::<std::collections::BTreeMap<String, Milli>>(&format!("x = {v}"));
        assert_eq!(m("2").unwrap()["x"].thousandths(), 2000);
        assert_eq!(m("0.1").unwrap()["x"].thousandths(), 100);
        assert_eq!(m("1.125").unwrap()["x"].thousandths(), 1125);
        assert_eq!(m("0").unwrap()["x"].to_string(), "0");
        assert_eq!(Milli::from_thousandths(1100).to_string(), "1.1");
        for (v, want) in [
            ("-1", "negative"),
            ("-0.5", "negative"),
            ("1.0005", "three decimals"),
            ("nan", "not a number"),
            ("\"a\"", "non-negative number"),
        ] {
            let e = m(v).unwrap_err().to_string();
            assert!(e.contains(want), "{v}: expected `{want}` in: {e}");
        }
    }

    #[test]
    fn broken_power_and_battery_tables_say_what_is_wrong() {
        const HEAD: &str = "name = \"x\"\ncpu = \"m3\"\nclock_hz = 1\n";
        const POWER: &str = "[power]\nsupply_mv = 3600\ncpu_run_ua = 5000\ncpu_sleep_ua = 2000\n\
            cpu_deep_sleep_ua = 1.5\nflash_program_ua = 20000\nflash_erase_ua = 20000\nsensor_ua = 50\n\
            modem_off_ua = 600\nmodem_idle_ua = 1200\nmodem_rx_ua = 40000\nmodem_tx_ua = 220000\n";
        const BATTERY: &str = "[battery]\ncapacity_mah = 2000\nself_discharge_pct_per_month = 2\n";
        let good = format!("{HEAD}{POWER}{BATTERY}curve = [[0, 3000], [500, 3700], [1000, 4200]]\n");
        let b = Board::parse(&good, "good.toml").expect("valid");
        assert_eq!(b.power.as_ref().map(|p| p.sensor_shutdown_ua), Some(Milli::default()), "optional, 0");
        assert!(Board::parse(HEAD, "none.toml").expect("valid").power.is_none(), "no [power]: not accounted");

        let cases = [
            (POWER.replace("cpu_run_ua = 5000", "cpu_run_ua = -5"), "negative".to_owned()),
            (POWER.replace("cpu_sleep_ua = 2000\n", ""), "missing field `cpu_sleep_ua`".to_owned()),
            (
                POWER.replace("supply_mv = 3600", "supply_mv = 0"),
                "power.supply_mv must be above 0".to_owned(),
            ),
            (format!("{POWER}bogus_ua = 3\n"), "unknown field `bogus_ua`".to_owned()),
            (format!("{BATTERY}curve = [[0, 3000], [1000, 4200]]\n"), "needs a [power] table".to_owned()),
            (
                format!("{POWER}{BATTERY}curve = [[0, 3000], [600, 3700], [500, 3800], [1000, 4200]]\n"),
                "point 3 (500 \u{2030}) does not come after point 2 (600 \u{2030})".to_owned(),
            ),
            (
                format!("{POWER}{BATTERY}curve = [[0, 3000], [500, 3900], [800, 3800], [1000, 4200]]\n"),
                "the voltage must not fall".to_owned(),
            ),
            (
                format!("{POWER}{BATTERY}curve = [[100, 3000], [1000, 4200]]\n"),
                "must start at 0 \u{2030} and end at 1000 \u{2030}".to_owned(),
            ),
            (format!("{POWER}{BATTERY}curve = []\n"), "battery.curve is empty".to_owned()),
            (format!("{POWER}{BATTERY}curve = [[0, -3000], [1000, 4200]]\n"), "invalid value".to_owned()),
            (format!("{POWER}{BATTERY}curve = [[0, 3000, 1], [1000, 4200]]\n"), "this one has 3".to_owned()),
            (format!("{POWER}{BATTERY}"), "missing field `curve`".to_owned()),
            (
                format!("{POWER}{}curve = [[0, 3000], [1000, 4200]]\n", BATTERY.replace("= 2000", "= 0")),
                "battery.capacity_mah must be above 0".to_owned(),
            ),
            (
                format!("{POWER}{}curve = [[0, 3000], [1000, 4200]]\n", BATTERY.replace("= 2\n", "= 120\n")),
                "at most 100".to_owned(),
            ),
        ];
        for (tail, want) in cases {
            let e = match Board::parse(&format!("{HEAD}{tail}"), "test.toml") {
                Ok(_) => panic!("accepted: {tail}"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(&want), "expected `{want}` in: {e}");
        }
    }

    #[test]
    fn unknown_board_lists_the_known_ones() {
        let e = Board::load("stm32-nope").unwrap_err().to_string();
        assert!(e.contains("unknown board `stm32-nope`") && e.contains("mps2-an385"), "{e}");
    }

    #[test]
    fn broken_board_files_say_what_is_wrong() {
        let cases = [
            ("name = \"x\"\ncpu = \"m3\"\n", "missing field `clock_hz`"),
            ("name = \"x\"\ncpu = \"m3\"\nclock_hz = 1\nbogus = 2\n", "unknown field `bogus`"),
            ("name = \"x\"\ncpu = \"m3\"\nclock_hz = 0\n", "clock_hz must be above 0"),
            (
                "name = \"x\"\ncpu = \"m3\"\nclock_hz = 1\n[[memory]]\nname=\"a\"\nbase=0\nsize=16\n[[memory]]\nname=\"b\"\nbase=8\nsize=16\n",
                "memory `b` overlaps memory `a`",
            ),
            (
                "name = \"x\"\ncpu = \"m3\"\nclock_hz = 1\n[[device]]\nname=\"t\"\nmodel=\"tmp105\"\nbus=\"i2c9\"\naddress=0x48\n",
                "sits on bus `i2c9`",
            ),
            ("name = \"x\"\ncpu = \"m3\"\nclock_hz = [\n", "malformed"),
            (
                "name = \"x\"\ncpu = \"m3\"\nclock_hz = 1\n[[peripheral]]\nname=\"a\"\nmodel=\"m\"\nbase=0\n[[peripheral]]\nname=\"b\"\nmodel=\"m\"\nbase=0x800\n",
                "peripheral `b` overlaps peripheral `a`",
            ),
            (
                "name = \"x\"\ncpu = \"m3\"\nclock_hz = 1\n[[memory]]\nname=\"r\"\nbase=0\nsize=16\n[[peripheral]]\nname=\"a\"\nmodel=\"m\"\nbase=0\nsize=4\n",
                "peripheral `a` overlaps memory `r`",
            ),
            (
                "name = \"x\"\ncpu = \"m3\"\nclock_hz = 1\n[[peripheral]]\nname=\"a\"\nmodel=\"m\"\nbase=0\nsize=0\n",
                "does not fit",
            ),
            (
                "name = \"x\"\ncpu = \"m3\"\nclock_hz = 1\n[[peripheral]]\nname=\"a\"\nmodel=\"m\"\nbase=0\nirqs=[500]\n",
                "uses IRQ 500",
            ),
            (
                "name = \"x\"\ncpu = \"m3\"\nclock_hz = 1\n[[peripheral]]\nname=\"a\"\nmodel=\"m\"\nbase=0\nirq=3\n",
                "unknown field `irq`",
            ),
        ];
        for (text, want) in cases {
            let e = Board::parse(text, "test.toml").unwrap_err().to_string();
            assert!(e.contains(want), "expected `{want}` in: {e}");
        }
    }
}
