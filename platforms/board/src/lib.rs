//! Board descriptions: what an emulated board is made of, as data.
//!
//! A board file (TOML, see `platforms/boards/`) names the CPU and core clock, the memory regions,
//! the on-chip peripherals by model name and base address, and the devices on its buses (sensors).
//! Engines wire models to these names: QEMU maps a board to `-M <machine>` plus `-device` options,
//! the embedded engine (coming) instantiates its own peripheral models from the same file.
//!
//! Built-in boards are compiled in ([`Board::builtin`]); any other file can be loaded with
//! [`Board::from_file`]. Loading validates the file and says what is wrong and where.

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

    /// The peripheral named `name`.
    pub fn peripheral(&self, name: &str) -> Option<&Peripheral> {
        self.peripherals.iter().find(|p| p.name == name)
    }

    /// The first device of model `model`.
    pub fn device_of_model(&self, model: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.model == model)
    }
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
