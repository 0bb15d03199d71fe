//! Families of boards (`boards/families/*.toml`): what nixflash knows about a kind of chip, as
//! data. A board file names its family and starts from the family's `[board]` defaults; the
//! family says how firmware is checked (ELF machine), measured (memory map), flashed (flasher and
//! its arguments), reset, and which templates and lock data a project gets.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::UsbId;
use crate::version::Version;

/// One family, as its file describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct Family {
    /// The file's name: what boards say in `family = "..."`, and the template folder.
    #[serde(skip_deserializing)]
    pub id: String,
    pub name: String,
    /// The `e_machine` of the family's firmware ELFs.
    pub elf_machine: u16,
    /// What its messages call that machine ("AVR", "RISC-V").
    pub machine_name: String,
    /// The USB vendor of the chip's own USB devices (its boot ROM), which the flasher talks to
    /// directly: `nixflash doctor` checks that a udev rule lets the user reach them.
    #[serde(default)]
    pub usb_vendor: Option<UsbVendor>,
    /// Address ranges by kind, for the size report; the first that holds an address decides.
    pub memory_map: Vec<Region>,
    /// Whether the bytes of sections in `other` ranges are part of the flash image.
    #[serde(default)]
    pub image_includes_other: bool,
    /// What `build` (and `flash`, `sim`, `image`) hash as the bytes that go to the board,
    /// besides the ELF: see [`FirmwareImage`].
    pub firmware_image: FirmwareImage,
    /// USB-serial bridge chips common on this family's boards, by USB id.
    #[serde(default)]
    pub usb_serial: BTreeMap<UsbId, String>,
    /// The debug probes that flash the family's boards, by USB id (`nixflash ports` names them,
    /// `nixflash doctor` checks their udev rules).
    #[serde(default)]
    pub probes: Vec<super::probe::Probe>,
    pub files: Files,
    pub reset: Resets,
    pub flasher: super::flasher::FlashMethod,
    /// A second way to flash the family's boards, chosen with `flash --probe`: probe-rs through
    /// a debug probe on the SWD pins (a Raspberry Pi Debug Probe on a Pico).
    #[serde(default)]
    pub probe: Option<super::flasher::ProbeRs>,
    /// The simulator `nixflash sim` and the flake's `checks.sim` run the family's firmware in, if
    /// the family has one.
    #[serde(default)]
    pub simulator: Option<Simulator>,
    /// Options `nixflash new` and `init` offer for the family's projects, by option name (`log`,
    /// given as `-o log=<choice>`); see [`crate::options`].
    #[serde(default)]
    pub options: BTreeMap<String, TemplateOption>,
    /// Defaults for every board of the family (`{id}` and `{chip}` are the board's).
    #[serde(default)]
    pub board: toml::Table,
    /// Values a board of the family may not change.
    #[serde(default)]
    pub fixed: toml::Table,
}

/// A USB vendor: its id (four hex digits, `"2e8a"`) and whose it is (`"Raspberry Pi"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsbVendor {
    pub id: String,
    pub name: String,
}

/// The bytes that go to the board, settings excluded, whose SHA-256 every build prints beside the
/// ELF's (`firmware-image` of a family file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirmwareImage {
    /// The ELF's loadable segments at flash addresses (the memory map's `flash` ranges, by
    /// physical address), laid out from the lowest, gaps 0xFF: what `objcopy -O binary
    /// --gap-fill 0xff` writes, without the segments outside flash (AVR's EEPROM and fuses).
    FlashSegments,
    /// The app image the flasher writes (`flasher.app-image-args`: espflash's `save-image`
    /// without `--merge`, what it writes at the app partition).
    Flasher,
}

/// What a range of addresses is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Place {
    /// Program memory: flash, or a window the caches map onto it.
    Flash,
    /// Main RAM.
    Ram,
    /// Something else (EEPROM, fuses, RTC memory).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub kind: Place,
    pub start: u64,
    pub end: u64,
}

/// Files a family adds to a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    /// Written by `nixflash init` besides the ones every family has.
    #[serde(default)]
    pub init: Vec<String>,
    /// The name of a board's lock data in templates/locks/, with `{hal.feature}` and the like.
    pub lock: String,
}

/// An option `nixflash new` offers for the family's projects (`-o <name>=<choice>`): the
/// templates see the chosen value as `options.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateOption {
    /// What the option decides, for help and errors.
    pub about: String,
    /// The choice made when none is given.
    pub default: String,
    /// The chips whose boards offer the option (absent: every chip of the family).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chips: Option<Vec<String>>,
    pub choices: BTreeMap<String, Choice>,
}

impl TemplateOption {
    /// Whether the choices are exactly `on` and `off` (`-o wifi` then means `wifi=on`).
    pub fn is_on_off(&self) -> bool {
        self.choices.len() == 2
            && self.choices.contains_key("on")
            && self.choices.contains_key("off")
    }

    /// Whether a board with this chip offers the option.
    pub fn offered_on(&self, chip: &str) -> bool {
        self.chips
            .as_ref()
            .is_none_or(|chips| chips.iter().any(|c| c == chip))
    }
}

/// One value of a [`TemplateOption`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub about: String,
    /// A suffix of the lock data's name, for a choice with dependencies of its own: the lock is
    /// the family's `files.lock`, then `-<lock>` of each chosen choice that has one, by option
    /// name (`esp32c3-alloc-embassy-defmt-wifi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// Choices of other options this one needs (`async = "embassy"`): turned on with it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requires: BTreeMap<String, String>,
    /// Template files (relative to templates/<family>/, without `.jinja`) rendered only when this
    /// choice is chosen: a file listed by any choice is left out otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// One step of a reset through a port's modem lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetStep {
    Dtr(bool),
    Rts(bool),
    /// Milliseconds.
    Wait(u64),
}

impl std::str::FromStr for ResetStep {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("`{s}` is not a reset step: write dtr=0, dtr=1, rts=0, rts=1 or wait=<ms>");
        let (k, v) = s.split_once('=').ok_or_else(bad)?;
        match (k, v) {
            ("dtr", "0") => Ok(ResetStep::Dtr(false)),
            ("dtr", "1") => Ok(ResetStep::Dtr(true)),
            ("rts", "0") => Ok(ResetStep::Rts(false)),
            ("rts", "1") => Ok(ResetStep::Rts(true)),
            ("wait", ms) => ms.parse().map(ResetStep::Wait).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for ResetStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResetStep::Dtr(l) => write!(f, "dtr={}", u8::from(*l)),
            ResetStep::Rts(l) => write!(f, "rts={}", u8::from(*l)),
            ResetStep::Wait(ms) => write!(f, "wait={ms}"),
        }
    }
}

impl Serialize for ResetStep {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ResetStep {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How a family's boards are reset: a sequence by default, others for some USB ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resets {
    pub default: Vec<ResetStep>,
    #[serde(flatten)]
    pub by_usb_id: BTreeMap<UsbId, Vec<ResetStep>>,
}

impl Resets {
    /// The sequence for a port with this USB id (or an unknown one).
    pub fn for_usb_id(&self, id: Option<UsbId>) -> &[ResetStep] {
        id.and_then(|id| self.by_usb_id.get(&id))
            .unwrap_or(&self.default)
    }
}

/// A program the flasher runs, checked before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct Need {
    pub program: String,
    /// How to ask its version, and the word after which the version stands in the answer.
    #[serde(default)]
    pub version_args: Vec<String>,
    pub version_after: Option<String>,
    pub min_version: Option<Version>,
    /// Why the flasher needs it, for the error.
    pub why: Option<String>,
}

/// The simulators nixflash can drive. How nixflash watches one run (the firmware's serial output,
/// its LED) is the simulator's own ([`crate::sim`]); what it is called with is the family's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimTool {
    Simavr,
    /// QEMU's `qemu-system-arm`, for a board it emulates as a machine (`sim.machine`).
    #[serde(rename = "qemu-system-arm")]
    QemuSystemArm,
}

impl SimTool {
    pub fn as_str(self) -> &'static str {
        match self {
            SimTool::Simavr => "simavr",
            SimTool::QemuSystemArm => "qemu-system-arm",
        }
    }

    /// The board's `sim` says what this simulator needs.
    pub fn check_board(self, spec: &crate::board::SimSpec) -> Result<()> {
        match self {
            SimTool::Simavr => {
                if spec.led_pin().is_none() {
                    bail!(
                        "`sim.led = \"{}\"` is not a pin: write the port and bit, as in \"PB5\"",
                        spec.led
                    );
                }
                if spec.uart_data.is_none() {
                    bail!("`sim.uart-data` is not set, and simavr needs it: the address of the console USART's data register");
                }
            }
            SimTool::QemuSystemArm => {
                if spec.led_line().is_none() {
                    bail!(
                        "`sim.led = \"{}\"` is not a pin: write the port and line, as in \"P0.13\"",
                        spec.led
                    );
                }
                if spec.machine.is_none() || spec.gpio_trace.is_none() {
                    bail!("QEMU needs `sim.machine` (as `qemu-system-arm -M help` names it) and `sim.gpio-trace` (the trace event of GPIO outputs, `qemu-system-arm -trace help`)");
                }
            }
        }
        Ok(())
    }
}

/// The family's simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct Simulator {
    pub tool: SimTool,
    /// What makes it list the chips it simulates: one on PATH is used when the board's
    /// `sim.mcu` is in the answer, otherwise the one the project's flake pins.
    pub list_args: Vec<String>,
    /// Its command line: `{elf}` and board fields (`{sim.mcu}`, `{clock}`) filled in.
    pub args: Vec<String>,
    /// Added to the command line for a run of bounded length: `{stop}` is a file that ends the
    /// simulation at that time.
    #[serde(default)]
    pub stop_args: Vec<String>,
    /// How to install it without Nix (a sentence).
    pub install: String,
    /// Only the family's boards that have a `sim` table can be simulated (QEMU emulates a few
    /// boards, not chips); otherwise every board must have one.
    #[serde(default)]
    pub per_board: bool,
    /// What the simulator cannot show of the firmware's output (a sentence for the run's
    /// header: QEMU has no debug probe to read RTT through).
    #[serde(default)]
    pub unseen: Option<String>,
    /// The nixpkgs package of the simulator, for the generated flake (`simavr`, `qemu`).
    #[serde(default)]
    pub nixpkgs: Option<String>,
}

impl Family {
    /// Parses a family file; `id` is its name.
    pub fn parse(id: &str, text: &str, origin: &str) -> Result<Family> {
        let mut f: Family = toml::from_str(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|s| super::line_col(text, s.start))
                .unwrap_or((1, 1));
            anyhow::anyhow!(
                "{origin}:{line}:{col}: invalid family file: {}",
                e.message().trim_end()
            )
        })?;
        f.id = id.to_string();
        f.check()
            .with_context(|| format!("{origin}: invalid family `{id}`"))?;
        Ok(f)
    }

    fn check(&self) -> Result<()> {
        if let Some(v) = &self.usb_vendor {
            let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
            if v.id.len() != 4 || !v.id.chars().all(hex) {
                bail!(
                    "`usb-vendor.id` `{}` is not four lowercase hex digits",
                    v.id
                );
            }
        }
        if self.memory_map.is_empty() {
            bail!("`memory-map` is empty");
        }
        for r in &self.memory_map {
            if r.start >= r.end {
                bail!(
                    "a memory-map range ends before it starts: {:#x}..{:#x}",
                    r.start,
                    r.end
                );
            }
        }
        self.flasher.check()?;
        if self.firmware_image == FirmwareImage::Flasher && self.flasher.app_image_args().is_none()
        {
            bail!(
                "`firmware-image = \"flasher\"` needs `flasher.app-image-args` (the flasher's \
                 command that saves the app image: espflash's `save-image`)"
            );
        }
        if self.firmware_image == FirmwareImage::FlashSegments
            && !self.memory_map.iter().any(|r| r.kind == Place::Flash)
        {
            bail!("`firmware-image = \"flash-segments\"` needs a `flash` range in `memory-map`");
        }
        super::probe::check(&self.probes)?;
        if self.reset.default.is_empty() {
            bail!("`reset.default` is empty");
        }
        if let Some(sim) = &self.simulator {
            if !sim.args.iter().any(|a| a.contains("{elf}")) {
                bail!("`simulator.args` never names the firmware (`{{elf}}`)");
            }
            if sim.tool == SimTool::Simavr && !sim.stop_args.iter().any(|a| a.contains("{stop}")) {
                bail!("`simulator.stop-args` never names the file that ends a run (`{{stop}}`)");
            }
        }
        self.check_options()?;
        Ok(())
    }

    /// The options' choices name real choices, and their lock suffixes and files are plain.
    fn check_options(&self) -> Result<()> {
        let list = |o: &TemplateOption| o.choices.keys().cloned().collect::<Vec<_>>().join(", ");
        for (name, o) in &self.options {
            if !o.choices.contains_key(&o.default) {
                bail!(
                    "`options.{name}.default = \"{}\"` is not one of its choices ({})",
                    o.default,
                    list(o)
                );
            }
            if o.chips.as_ref().is_some_and(Vec::is_empty) {
                bail!("`options.{name}.chips` is empty: no board would offer it");
            }
            for (c, choice) in &o.choices {
                let at = format!("options.{name}.choices.{c}");
                if *c == o.default && !choice.requires.is_empty() {
                    bail!("`{at}` is the default and requires other choices: a default needs none");
                }
                for (req, want) in &choice.requires {
                    let Some(other) = self.options.get(req).filter(|_| req != name) else {
                        bail!(
                            "`{at}.requires` names `{req}`, which is no other option of the family"
                        );
                    };
                    if !other.choices.contains_key(want) {
                        bail!(
                            "`{at}.requires` asks for `{req} = \"{want}\"`, which is not one of \
                             its choices ({})",
                            list(other)
                        );
                    }
                }
                let plain = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
                };
                if let Some(lock) = choice.lock.as_deref().filter(|l| !plain(l)) {
                    bail!(
                        "`{at}.lock = \"{lock}\"` is not a suffix of lowercase letters, digits and _ \
                         (the lock's name is the family's `files.lock` and `-<lock>` of each choice)"
                    );
                }
                for f in &choice.files {
                    if f.is_empty() || f.starts_with('/') || f.split('/').any(|p| p == "..") {
                        bail!(
                            "`{at}.files` names `{f}`, which is no path inside templates/{}/",
                            self.id
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// What the address holds.
    pub fn place(&self, address: u64) -> Place {
        self.memory_map
            .iter()
            .find(|r| (r.start..r.end).contains(&address))
            .map_or(Place::Other, |r| r.kind)
    }

    /// A name for the family's firmware in messages ("AVR", "RISC-V"): its ELF machine's.
    pub fn machine_name(&self) -> String {
        self.machine_name.clone()
    }
}

/// A name for an ELF machine in messages: the `machine-name` of the family (in `families`) whose
/// firmware it is ("AVR", "RISC-V"), else its number.
pub fn elf_machine_name<'a>(
    families: impl IntoIterator<Item = &'a Family>,
    machine: u16,
) -> String {
    families
        .into_iter()
        .find(|f| f.elf_machine == machine)
        .map_or_else(
            || format!("ELF machine {machine}"),
            |f| f.machine_name.clone(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_steps_parse_and_print() {
        let steps: Vec<ResetStep> = ["dtr=0", "rts=1", "wait=100"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            steps,
            [
                ResetStep::Dtr(false),
                ResetStep::Rts(true),
                ResetStep::Wait(100)
            ]
        );
        assert_eq!(steps[2].to_string(), "wait=100");
        assert!("dtr=2".parse::<ResetStep>().is_err());
        assert!("sleep=1".parse::<ResetStep>().is_err());
    }
}
