//! Boards: what nixflash knows about one board, read from `boards/*.toml` (compiled into the
//! binary), the user's and the project's own board files, on top of its family's defaults
//! (`boards/families/*.toml`, see [`family`]). [`Database`] loads and resolves them.

mod database;
pub mod family;
pub mod flasher;
mod layers;
pub mod probe;
mod usb_id;
mod warning;

use std::sync::Arc;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

pub use database::{builtin_source, Database, Entry, Source};
pub use family::{Family, Place, TemplateOption};
pub use flasher::FlashMethod;
pub use usb_id::UsbId;
pub use warning::Warning;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct RustSpec {
    pub target: String,
    pub target_cpu: Option<String>,
    pub build_std: bool,
    pub toolchain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HalSpec {
    #[serde(rename = "crate")]
    pub krate: String,
    pub feature: String,
    pub led: String,
    /// A pin the blinky holds low so that `led` lights its LED: the column of an LED matrix
    /// whose row is `led` (the micro:bit's top-left LED: ROW1 high, COL1 low). Optional.
    #[serde(default, rename(deserialize = "led-sink"))]
    pub led_sink: Option<String>,
    /// The second-stage bootloader for the board's flash chip, as rp2040-boot2 names it
    /// (`BOOT_LOADER_W25Q080`); RP2040 boards only.
    pub boot2: Option<String>,
    /// A UART the blinky also greets on (the micro:bit's `{ tx = "p0_24", baud = 115200 }`, which
    /// its USB interface chip passes on); optional: the cortex-m template's nRF5 UART0.
    #[serde(default)]
    pub uart: Option<HalUart>,
}

/// A UART's TX pin (as the HAL names it) and speed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HalUart {
    pub tx: String,
    pub baud: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    pub flash: u64,
    pub ram: u64,
    /// Where the board keeps its settings region in flash, on a family whose firmware has one
    /// at a fixed place (AVR: below the bootloader; RP2: the last sector). ESP32 projects name
    /// theirs in partitions.csv instead.
    pub settings: Option<SettingsRegion>,
}

/// A settings region at a fixed place in flash: `memory.settings = { at = 0x7600, size = 512 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsRegion {
    /// Its address, as the firmware's ELF and the flasher name it.
    pub at: u64,
    /// Its size in bytes: the region's header and payload, the rest erased (0xFF).
    pub size: u64,
}

/// What the family's flasher needs to know about the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct FlashSpec {
    /// ravedude's board name.
    pub board: Option<String>,
    /// espflash's `--chip`.
    pub chip: Option<String>,
    /// Upload speed, for flashers that take one.
    pub baud: Option<u32>,
    /// The UF2 family of the board's firmware, as picotool names it (`rp2040`, `rp2350-arm-s`).
    pub uf2_family: Option<String>,
    /// The `Board-ID` in the INFO_UF2.TXT of the drive the chip's boot ROM shows (`RPI-RP2`).
    pub boot_drive: Option<String>,
    /// The chip as probe-rs' target database names it, for a board its family also flashes
    /// through a debug probe (`flash --probe`, the family's `[probe]`): `RP2040`.
    pub probe_chip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct MonitorSpec {
    pub baud: u32,
    /// Whether the firmware's console reaches the computer over the board's USB port (false for
    /// boards whose USB is the chip itself, like the Leonardo, without a USB console).
    #[serde(default = "yes")]
    pub usb_console: bool,
    /// Where the console is when it is not on USB, for messages: `"UART0 (GP0 TX, GP1 RX)"`.
    #[serde(default)]
    pub console: Option<String>,
}

fn yes() -> bool {
    true
}

/// What the family's simulator needs to know about the board (AVR: simavr; the micro:bit v1:
/// QEMU).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct SimSpec {
    /// The MCU as the simulator names it (`atmega328p`).
    pub mcu: String,
    /// The machine QEMU emulates the board as (`-M microbit`): what its `list-args` must list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// The on-board LED's pin as the chip names it: port and bit (`PB5`), or port and line
    /// (`P0.13`, an nRF5's); `hal.led` is the HAL's name for the same pin.
    pub led: String,
    /// The USART the firmware's console uses (`USART0`).
    pub uart: String,
    /// The data-space address of that USART's data register (UDR0 is 0xC6 on the ATmega328P):
    /// what the firmware writes each byte it sends to (simavr traces it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uart_data: Option<u16>,
    /// QEMU's trace event of a GPIO output's changes (`nrf51_gpio_update_output_irq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpio_trace: Option<String>,
    /// The chip has a USB port of its own (the Leonardo's ATmega32U4), to which the simulator
    /// attaches no USB host: what firmware sends there (a USB serial console) cannot be shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub native_usb: bool,
}

impl SimSpec {
    /// The LED's port letter and bit (`PB5` is `('B', 5)`), if `led` names a pin that way.
    pub fn led_pin(&self) -> Option<(char, u8)> {
        parse_pin(&self.led)
    }

    /// The LED's GPIO line (`P0.13` is 13), if `led` names a pin that way.
    pub fn led_line(&self) -> Option<u32> {
        self.led
            .strip_prefix("P0.")?
            .parse()
            .ok()
            .filter(|n| *n < 32)
    }

    /// What the simulator lists when it can run the board: its machine, else its MCU.
    pub fn listed(&self) -> &str {
        self.machine.as_deref().unwrap_or(&self.mcu)
    }
}

/// `PB5` as `('B', 5)`: `P`, a port letter, a bit 0-7.
pub fn parse_pin(pin: &str) -> Option<(char, u8)> {
    let mut c = pin.chars();
    match (c.next(), c.next(), c.next(), c.next()) {
        (Some('P'), Some(port), Some(bit), None) if port.is_ascii_uppercase() => {
            let bit = bit.to_digit(10).filter(|b| *b < 8)?;
            Some((port, bit as u8))
        }
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsbSpec {
    pub ids: Vec<UsbId>,
}

/// One board: its file over its family's defaults (and those of the board it inherits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub name: String,
    /// The family's id (`avr`): [`Board::family`] is the family itself.
    #[serde(rename = "family")]
    pub family_id: String,
    pub chip: String,
    /// The CPU clock in Hz (simulators need it; AVR boards have one).
    pub clock: Option<u64>,
    pub docs: String,
    pub notes: Option<String>,
    pub rust: RustSpec,
    pub hal: HalSpec,
    pub memory: Memory,
    pub flash: FlashSpec,
    pub monitor: MonitorSpec,
    pub usb: UsbSpec,
    /// For the family's simulator (boards of a family without one have none).
    pub sim: Option<SimSpec>,
    #[serde(skip)]
    family: Option<Arc<Family>>,
    /// The boards it inherits, nearest first.
    #[serde(skip)]
    ancestors: Vec<Ancestor>,
}

/// A board that a board inherits, as far as the board needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ancestor {
    pub id: String,
    pub chip: String,
    /// Its own `flash.board`, resolved.
    pub flash_board: Option<String>,
}

/// How the family's flasher knows a board, as Ravedude.toml says it: by a name it has
/// (`[general] board = "uno"`), or defined there as a board it has (`[board] inherit = "uno"`,
/// for a board it has no name for). One of the two is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlasherBoard {
    pub named: Option<String>,
    pub like: Option<String>,
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

impl Board {
    /// The family's simulator, if it can run this board (a board of a `per-board` simulator's
    /// family without a `sim` table cannot be simulated).
    pub fn simulator(&self) -> Option<&family::Simulator> {
        self.family()
            .simulator
            .as_ref()
            .filter(|_| self.sim.is_some())
    }

    /// The ids of the boards it inherits, nearest first.
    pub fn inherits(&self) -> impl Iterator<Item = &str> {
        self.ancestors.iter().map(|a| a.id.as_str())
    }

    /// How the family's flasher knows the board, for a flasher that knows boards by name
    /// (`flash.board`): by its own name when the flasher has it (the family's `flasher.boards`),
    /// else as the nearest board it inherits with the same chip whose name the flasher has; None
    /// when neither. (ravedude's inline board cannot change the chip alone: its `[board.avrdude]`
    /// table must then be whole, and nixflash does not know the bootloader's speed.)
    pub fn flasher_board(&self) -> Option<FlasherBoard> {
        let known = self.family().flasher.boards();
        let own = self.flash.board.as_ref()?;
        if known.is_empty() || known.contains(own) {
            return Some(FlasherBoard {
                named: Some(own.clone()),
                like: None,
            });
        }
        self.ancestors
            .iter()
            .filter(|a| a.chip == self.chip)
            .filter_map(|a| a.flash_board.as_ref())
            .find(|b| known.contains(b))
            .map(|b| FlasherBoard {
                named: None,
                like: Some(b.clone()),
            })
    }

    /// The board's family.
    pub fn family(&self) -> &Family {
        self.family
            .as_deref()
            .expect("boards come from a Database, which gives each its family")
    }

    /// Checks what the TOML types cannot: ids, values above zero, an exact toolchain pin, and
    /// every board field the family's flasher names.
    fn validate(&self) -> Result<()> {
        if !valid_id(&self.id) {
            bail!("id `{}` must be lowercase letters, digits and `-`", self.id);
        }
        for a in &self.aliases {
            if !valid_id(a) {
                bail!("alias `{a}` must be lowercase letters, digits and `-`");
            }
        }
        if self.name.trim().is_empty() {
            bail!("`name` is empty");
        }
        if !(self.docs.starts_with("https://") || self.docs.starts_with("http://")) {
            bail!("`docs` must be a URL, found `{}`", self.docs);
        }
        if self.monitor.usb_console && self.monitor.console.is_some() {
            bail!("`monitor.console` says where the console is when it is not on USB: set `usb-console = false`");
        }
        if self.memory.flash == 0 || self.memory.ram == 0 {
            bail!("`memory.flash` and `memory.ram` must be above zero");
        }
        if let Some(r) = self.memory.settings {
            // The application's flash: `memory.flash` bytes from where the family's flash starts.
            let start = self
                .family()
                .memory_map
                .iter()
                .find(|m| m.kind == Place::Flash);
            let end = start.map_or(0, |m| m.start) + self.memory.flash;
            if !(64..=4096).contains(&r.size)
                || start.is_none_or(|m| r.at < m.start)
                || r.at + r.size > end
            {
                bail!(
                    "`memory.settings = {{ at = {:#x}, size = {} }}` must be 64 to 4096 bytes \
                     inside the board's flash (`memory.flash` bytes from {:#x}, up to {end:#x})",
                    r.at,
                    r.size,
                    start.map_or(0, |m| m.start)
                );
            }
        }
        if self.monitor.baud == 0 || self.flash.baud == Some(0) {
            bail!("`monitor.baud` and `flash.baud` must be above zero");
        }
        if !exact_channel(&self.rust.toolchain) {
            bail!(
                "`rust.toolchain = \"{}\"` is not an exact toolchain: pin a version (\"1.96.0\") \
                 or a dated nightly (\"nightly-2025-04-27\"), since `stable` or `nightly` alone \
                 would build with whatever is newest the day rust-overlay is updated",
                self.rust.toolchain
            );
        }
        if self.rust.build_std && !self.rust.toolchain.starts_with("nightly-") {
            bail!("`rust.build-std = true` needs a nightly `rust.toolchain` (-Z build-std is unstable)");
        }
        if self.usb.ids.is_empty() {
            bail!("`usb.ids` is empty: list the board's USB ids so its port can be found");
        }
        if self.hal.led.trim().is_empty() {
            bail!("`hal.led` is empty");
        }
        if self.hal.krate == "rp2040-hal" && self.hal.boot2.is_none() {
            bail!(
                "`hal.boot2` is not set: an RP2040 board needs the second-stage bootloader for \
                 its flash chip, as rp2040-boot2 names it (`BOOT_LOADER_W25Q080`)"
            );
        }
        self.validate_tools()
    }

    /// Checks the board against its family's tools: every field the flasher's and simulator's
    /// command lines name, and what ravedude and the boot drive need.
    fn validate_tools(&self) -> Result<()> {
        if self.clock == Some(0) {
            bail!("`clock` must be above zero (it is the CPU clock in Hz, e.g. 16000000)");
        }
        if let Some(sim) = self.family().simulator.as_ref() {
            let Some(spec) = &self.sim else {
                if sim.per_board {
                    return self.family().flasher.check_board(self);
                }
                bail!(
                    "`sim` is not set, and {} needs it: the MCU as it names it (`sim.mcu`), the \
                     LED's pin (`sim.led = \"PB5\"`), the console's USART (`sim.uart`) and the \
                     address of its data register (`sim.uart-data`)",
                    sim.tool.as_str()
                );
            };
            sim.tool.check_board(spec)?;
            for arg in sim.args.iter().chain(&sim.stop_args) {
                for field in placeholders(arg) {
                    if !["elf", "stop"].contains(&field) && self.field(field).is_none() {
                        bail!(
                            "`{field}` is not set, and {} needs it (its command line is `{}`)",
                            sim.tool.as_str(),
                            sim.args.join(" ")
                        );
                    }
                }
            }
        }
        self.family().flasher.check_board(self)?;
        match &self.family().probe {
            Some(p) => p.check_board(self, "[probe]"),
            None => Ok(()),
        }
    }

    /// Does this board answer to `name` (its id or an alias, any case)?
    pub fn answers_to(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.id == name || self.aliases.contains(&name)
    }

    /// A field by its dotted name (`flash.chip`, `hal.feature`) as text, if it is set.
    pub fn field(&self, path: &str) -> Option<String> {
        let mut v = toml::Value::try_from(self).ok()?;
        for key in path.split('.') {
            // Board files write `gpio-trace`, the fields are `gpio_trace`.
            v = v.get(key).or_else(|| v.get(key.replace('-', "_")))?.clone();
        }
        match v {
            toml::Value::String(s) => Some(s),
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// `text` with each `{field}` replaced by the board's field, and `extra` names by theirs.
    pub fn fill(&self, text: &str, extra: &[(&str, &str)]) -> Result<String> {
        let mut out = text.to_string();
        for field in placeholders(text) {
            let value = match extra.iter().find(|(k, _)| *k == field) {
                Some((_, v)) => v.to_string(),
                None => self.field(field).ok_or_else(|| {
                    anyhow::anyhow!("board `{}` has no `{field}` (in `{text}`)", self.id)
                })?,
            };
            out = out.replace(&format!("{{{field}}}"), &value);
        }
        Ok(out)
    }
}

/// A board file as `nixflash boards show --toml` gives it: `text`, the file of `board`, with
/// the flasher's name for the board written in when the file leaves it to the family's default
/// (`flash.board = "{id}"`), so that a copy saved with an id of its own still flashes as this
/// board.
pub fn exported(board: &Board, text: &str) -> String {
    let (Some(named), Ok(mut doc)) = (
        board.flasher_board().and_then(|f| f.named),
        text.parse::<toml_edit::DocumentMut>(),
    ) else {
        return text.to_string();
    };
    if board.family().flasher.boards().is_empty()
        || doc.get("flash").and_then(|f| f.get("board")).is_some()
    {
        return text.to_string();
    }
    let mut value = toml_edit::value(named.as_str());
    if let Some(v) = value.as_value_mut() {
        v.decor_mut().set_suffix(format!(
            "  # {}'s name for it: a copy with another id still flashes as `{named}`",
            board.family().flasher.tool().name
        ));
    }
    let mut table = toml_edit::Table::new();
    table.insert("board", value);
    doc.insert("flash", toml_edit::Item::Table(table));
    doc.to_string()
}

/// The `{names}` in a text.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start + 1..].find('}') else {
            break;
        };
        out.push(&rest[start + 1..start + 1 + len]);
        rest = &rest[start + 1 + len + 1..];
    }
    out
}

/// Whether `channel` names one toolchain for good: `1.96.0`, or `nightly-2025-04-27`.
pub fn exact_channel(channel: &str) -> bool {
    let numbers = |s: &str, n: usize, sep: char| {
        let parts: Vec<&str> = s.split(sep).collect();
        parts.len() == n
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    match channel.strip_prefix("nightly-") {
        Some(date) => date.len() == 10 && numbers(date, 3, '-'),
        None => numbers(channel, 3, '.'),
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usb_ids_parse_and_print() {
        let id: UsbId = "2341:0043".parse().unwrap();
        assert_eq!((id.vid, id.pid), (0x2341, 0x0043));
        assert_eq!(id.to_string(), "2341:0043");
        assert!("2341-0043".parse::<UsbId>().is_err());
        assert!("23410:043".parse::<UsbId>().is_err());
        assert!("zz41:0043".parse::<UsbId>().is_err());
    }

    #[test]
    fn only_exact_toolchains_are_pins() {
        for yes in ["1.96.0", "1.100.12", "nightly-2025-04-27"] {
            assert!(exact_channel(yes), "{yes}");
        }
        for no in [
            "stable",
            "nightly",
            "1.96",
            "beta",
            "nightly-2025-04",
            "1.96.0-x",
            "",
        ] {
            assert!(!exact_channel(no), "{no}");
        }
    }

    #[test]
    fn pins_are_a_port_and_a_bit() {
        assert_eq!(parse_pin("PB5"), Some(('B', 5)));
        assert_eq!(parse_pin("PC7"), Some(('C', 7)));
        for bad in ["B5", "PB8", "Pb5", "PB", "PB55", "d13", ""] {
            assert_eq!(parse_pin(bad), None, "{bad}");
        }
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn fields_and_placeholders() {
        let db = Database::builtin().unwrap();
        let c3 = db.get("esp32c3").unwrap();
        assert_eq!(c3.field("flash.chip").as_deref(), Some("esp32c3"));
        assert_eq!(c3.field("flash.baud").as_deref(), Some("921600"));
        assert_eq!(c3.field("flash.board"), None);
        assert_eq!(
            c3.fill("--chip {flash.chip} {elf}", &[("elf", "fw.elf")])
                .unwrap(),
            "--chip esp32c3 fw.elf"
        );
        assert_eq!(placeholders("a {b} c {d.e}"), ["b", "d.e"]);
    }
}
