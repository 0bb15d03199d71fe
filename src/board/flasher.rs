//! How a family's boards are flashed (`[flasher]` of its file), as data: a [`FlashMethod`] with
//! what that method needs, checked when the database loads. What nixflash does with it is
//! [`crate::flash`]'s (its methods on [`FlashMethod`]).

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::family::Need;
use super::Board;
use crate::version::Version;

/// How a family's boards are flashed: `method = "ravedude" | "espflash" | "boot-drive" |
/// "probe-rs"`, with that method's own fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum FlashMethod {
    /// ravedude through the board's serial port: it knows boards by name (`flash.board`), told
    /// in a Ravedude.toml nixflash gives it.
    Ravedude(Ravedude),
    /// espflash through the board's serial port, told the chip and baud rate (`flash.chip`,
    /// `flash.baud`); it also makes and writes images (`nixflash image`).
    Espflash(Espflash),
    /// nixflash copies a UF2 file (`flash.uf2-family`) onto the boot drive the chip shows
    /// (`flash.boot-drive`); without a mounted drive, its `tool` (picotool) on PATH flashes.
    BootDrive(BootDrive),
    /// probe-rs through a debug probe on the board's SWD pins (an on-board ST-LINK, J-Link or
    /// DAPLink, or a separate one), told the chip as probe-rs' target database names it
    /// (`flash.chip`); it finds the probe itself, so no serial port is involved.
    ProbeRs(ProbeRs),
}

/// A program that flashes: ravedude, espflash, picotool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct FlashProgram {
    pub name: String,
    /// The oldest version nixflash takes from PATH (an older one: the flake's).
    pub min_version: Version,
    /// Its command line: `{port}`, `{elf}` and board fields (`{flash.chip}`) filled in.
    pub args: Vec<String>,
    /// How to install it without Nix (a command).
    pub install: String,
    /// What else that needs, if anything.
    pub install_note: Option<String>,
    /// Programs it runs, checked before it starts.
    #[serde(default)]
    pub needs: Vec<Need>,
}

impl FlashProgram {
    /// How to install it without Nix, as a sentence part: "`cargo install ...` (it also needs ...)".
    pub fn how_to_install(&self) -> String {
        match &self.install_note {
            Some(note) => format!("`{}` ({note})", self.install),
            None => format!("`{}`", self.install),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct Ravedude {
    pub tool: FlashProgram,
    /// The boards ravedude has by name (`flash.board`): see [`Board::flasher_board`].
    pub boards: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct Espflash {
    pub tool: FlashProgram,
    /// Arguments that give it a project's own partition table (`{partition_table}`), put before
    /// the argument that names the firmware.
    #[serde(default)]
    pub partition_table_args: Vec<String>,
    /// The command line that saves what the board receives as one file from flash offset 0
    /// (`{elf}`, `{image}`): `nixflash image`. Empty: no images yet.
    #[serde(default)]
    pub image_args: Vec<String>,
    /// The command line that writes such a file to the board from offset 0 (`{port}`,
    /// `{image}`): `nixflash flash` with settings.
    #[serde(default)]
    pub write_image_args: Vec<String>,
    /// The command line that saves the app image alone (`{elf}`, `{image}`, `{flash_size}`), the
    /// bytes it writes at the app partition: hashed by every build (`firmware-image =
    /// "flasher"`). Empty: none.
    #[serde(default)]
    pub app_image_args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct BootDrive {
    /// What flashes when no boot drive is mounted (picotool, talking to the boot ROM over USB).
    pub tool: FlashProgram,
    /// The UF2 family ids the chips' boot ROMs take, by the names picotool gives them
    /// (`flash.uf2-family`).
    pub uf2_families: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct ProbeRs {
    pub tool: FlashProgram,
    /// What starts the firmware after `tool.args` wrote it (probe-rs' `download` leaves the core
    /// halted): `["reset", "--chip", "{flash.chip}"]`.
    pub start_args: Vec<String>,
    /// What reads the running firmware's RTT channel for the monitor, given the ELF (`{elf}`)
    /// to find the channel in: `["attach", "--chip", "{flash.chip}", "{elf}"]`; none for firmware
    /// that logs elsewhere.
    #[serde(default)]
    pub attach_args: Vec<String>,
    /// USB ids of probes whose own serial port is wired to the board's console pins (the
    /// Raspberry Pi Debug Probe's UART, to a Pico's GP0/GP1): `flash --probe --monitor` opens it.
    #[serde(default)]
    pub uart_ids: Vec<crate::board::UsbId>,
}

impl FlashMethod {
    /// The program that flashes (for the boot drive: the one used without a drive).
    pub fn tool(&self) -> &FlashProgram {
        match self {
            FlashMethod::Ravedude(r) => &r.tool,
            FlashMethod::Espflash(e) => &e.tool,
            FlashMethod::BootDrive(b) => &b.tool,
            FlashMethod::ProbeRs(p) => &p.tool,
        }
    }

    /// The flasher's command line that saves the app image alone (`flasher.app-image-args`), if
    /// it has one.
    pub fn app_image_args(&self) -> Option<&[String]> {
        match self {
            FlashMethod::Espflash(e) if !e.app_image_args.is_empty() => Some(&e.app_image_args),
            _ => None,
        }
    }

    /// The boards the flasher has by name (ravedude's list; empty for the others).
    pub fn boards(&self) -> &[String] {
        match self {
            FlashMethod::Ravedude(r) => &r.boards,
            _ => &[],
        }
    }

    /// Checks what the TOML types cannot.
    pub fn check(&self) -> Result<()> {
        let names = |args: &[String], what: &str| args.iter().any(|a| a.contains(what));
        if !names(&self.tool().args, "{elf}") {
            bail!("`flasher.tool.args` never names the firmware (`{{elf}}`)");
        }
        if let FlashMethod::Espflash(f) = self {
            let image_names_both = names(&f.image_args, "{elf}") && names(&f.image_args, "{image}");
            if !f.image_args.is_empty() && !image_names_both {
                bail!("`flasher.image-args` must name the firmware (`{{elf}}`) and the image (`{{image}}`)");
            }
            let app_names_both =
                names(&f.app_image_args, "{elf}") && names(&f.app_image_args, "{image}");
            if !f.app_image_args.is_empty() && !app_names_both {
                bail!("`flasher.app-image-args` must name the firmware (`{{elf}}`) and the image (`{{image}}`)");
            }
            if f.image_args.is_empty() != f.write_image_args.is_empty()
                || !(f.write_image_args.is_empty() || names(&f.write_image_args, "{image}"))
            {
                bail!(
                    "`flasher.write-image-args` must come with `image-args` and name `{{image}}`"
                );
            }
        }
        Ok(())
    }

    /// Checks a board against the method: every board field its command line names, and what
    /// the method needs of the board.
    pub fn check_board(&self, board: &Board) -> Result<()> {
        let tool = self.tool();
        for arg in &tool.args {
            for field in super::placeholders(arg) {
                if !["port", "elf"].contains(&field) && board.field(field).is_none() {
                    bail!(
                        "`{field}` is not set, and {} needs it (its command line is `{}`)",
                        tool.name,
                        tool.args.join(" ")
                    );
                }
            }
        }
        match self {
            FlashMethod::Ravedude(r) => check_ravedude(r, board),
            FlashMethod::Espflash(_) => Ok(()),
            FlashMethod::BootDrive(b) => check_boot_drive(b, board),
            FlashMethod::ProbeRs(p) => p.check_board(board, "[flasher]"),
        }
    }
}

fn check_ravedude(r: &Ravedude, board: &Board) -> Result<()> {
    let Some(name) = &board.flash.board else {
        bail!("`flash.board` (ravedude's name for the board) is not set");
    };
    if board.flasher_board().is_none() {
        bail!(
            "{tool} has no board `{name}`, and the board inherits none it has with its chip \
             ({chip}): `inherit` one of nixflash's {family} boards with that chip \
             (`inherit = \"uno\"`), or set `flash.board` to the {tool} board it flashes \
             like: {}",
            r.boards.join(", "),
            chip = board.chip,
            tool = r.tool.name,
            family = board.family_id,
        );
    }
    Ok(())
}

fn check_boot_drive(b: &BootDrive, board: &Board) -> Result<()> {
    let Some(family) = &board.flash.uf2_family else {
        bail!("`flash.uf2-family` (the UF2 family of its firmware) is not set");
    };
    if !b.uf2_families.contains_key(family) {
        let known: Vec<&str> = b.uf2_families.keys().map(String::as_str).collect();
        bail!(
            "`flash.uf2-family = \"{family}\"` is no UF2 family nixflash knows: {}",
            known.join(", ")
        );
    }
    if board.flash.boot_drive.is_none() {
        bail!("`flash.boot-drive` (the Board-ID of its boot drive) is not set");
    }
    Ok(())
}

impl ProbeRs {
    /// Checks a board against probe-rs' command lines (of the family's `section`): every board
    /// field they name is set, and the monitor's names the firmware.
    pub fn check_board(&self, board: &Board, section: &str) -> Result<()> {
        let names_elf = |args: &[String]| args.iter().any(|a| a.contains("{elf}"));
        if !names_elf(&self.tool.args)
            || !(self.attach_args.is_empty() || names_elf(&self.attach_args))
        {
            bail!("`{section}`'s `tool.args` and `attach-args` must name the firmware (`{{elf}}`)");
        }
        let all = self.tool.args.iter().chain(&self.start_args);
        for arg in all.chain(&self.attach_args) {
            for field in super::placeholders(arg) {
                if field != "elf" && board.field(field).is_none() {
                    bail!(
                        "`{field}` is not set, and probe-rs' `{arg}` ({section}) needs it (the \
                         chip as probe-rs' target database names it, `STM32F411CEUx`)"
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_picks_its_fields_and_refuses_others() {
        let text = "method = \"boot-drive\"\nuf2-families = { rp2040 = 0xe48bff56 }\n\
                    [tool]\nname = \"picotool\"\nmin-version = \"2.0.0\"\nargs = [\"{elf}\"]\n\
                    install = \"x\"\n";
        let m: FlashMethod = toml::from_str(text).unwrap();
        assert_eq!(m.tool().name, "picotool");
        let FlashMethod::BootDrive(b) = &m else {
            panic!("{m:?}")
        };
        assert_eq!(b.uf2_families["rp2040"], 0xe48b_ff56);
        m.check().unwrap();
        let e = toml::from_str::<FlashMethod>(&text.replace("uf2-families", "boards = []\nx"))
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `boards`"), "{e}");
        let e = toml::from_str::<FlashMethod>(&text.replace("boot-drive", "jtag")).unwrap_err();
        assert!(e.to_string().contains("unknown variant `jtag`"), "{e}");
    }
}
