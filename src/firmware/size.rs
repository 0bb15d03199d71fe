//! The size report: how much of the board's flash and RAM a firmware ELF uses, read from its
//! section headers with the `object` crate (no avr-size needed), placed by the family's memory
//! map.
//!
//! Flash is what the image writes to the chip: code, read-only data and the initial values of
//! `.data` (text + data). RAM is what the program occupies at run time: `.data`, `.bss` and
//! `.noinit` (data + bss), plus, on Espressif chips, code that runs from internal RAM (`.rwtext`).
//! Sections that only reserve address space are not counted: the ESP linker scripts' NOLOAD
//! `.stack` (all RAM left over) and `*_dummy` sections (the RAM alias of IRAM code, the flash MMU
//! window); nor are addresses the family calls `other` (AVR's EEPROM, fuses, lock bits,
//! signature), unless its image includes them (ESP's RTC memory).

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use object::{Object, ObjectSection, SectionFlags, SectionKind};
use serde::Serialize;

use crate::board::{Board, Family, Memory, Place};

/// Flash and RAM use of one firmware.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeReport {
    pub flash: Usage,
    pub ram: Usage,
    /// The sections counted, in file order.
    pub sections: Vec<Section>,
}

/// Bytes used out of the bytes the board has.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Usage {
    pub used: u64,
    pub total: u64,
    /// `used / total` in percent, rounded to one decimal.
    pub percent: f64,
}

impl Usage {
    fn new(used: u64, total: u64) -> Usage {
        let percent = if total == 0 {
            0.0
        } else {
            (used as f64 * 1000.0 / total as f64).round() / 10.0
        };
        Usage {
            used,
            total,
            percent,
        }
    }
}

/// One counted section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub name: String,
    pub address: u64,
    pub size: u64,
    /// Counted as flash (its bytes are in the image).
    pub flash: bool,
    /// Counted as RAM (it occupies RAM at run time).
    pub ram: bool,
}

impl fmt::Display for SizeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "flash {} B / {} B ({:.1} %), RAM {} B / {} B ({:.1} %)",
            self.flash.used,
            self.flash.total,
            self.flash.percent,
            self.ram.used,
            self.ram.total,
            self.ram.percent
        )
    }
}

impl SizeReport {
    /// Whether the firmware fits the board.
    pub fn fits(&self) -> bool {
        self.flash.used <= self.flash.total && self.ram.used <= self.ram.total
    }
}

/// A NOLOAD section that only reserves address space.
fn is_reservation(name: &str, writable: bool) -> bool {
    !writable || name.contains("dummy") || name.starts_with(".stack")
}

/// Reads an ELF's sizes against a board's memory.
pub fn analyze(elf: &[u8], family: &Family, memory: &Memory) -> Result<SizeReport> {
    let file = object::File::parse(elf).context("not an ELF file this tool can read")?;
    if file.format() != object::BinaryFormat::Elf {
        anyhow::bail!("not an ELF file");
    }
    let mut sections = Vec::new();
    let (mut flash, mut ram) = (0u64, 0u64);
    for s in file.sections() {
        let SectionFlags::Elf { sh_flags } = s.flags() else {
            continue;
        };
        let alloc = sh_flags & u64::from(object::elf::SHF_ALLOC) != 0;
        let writable = sh_flags & u64::from(object::elf::SHF_WRITE) != 0;
        if !alloc || s.size() == 0 {
            continue;
        }
        let name = s.name().unwrap_or("").to_string();
        let nobits = matches!(
            s.kind(),
            SectionKind::UninitializedData | SectionKind::UninitializedTls
        );
        let place = family.place(s.address());
        let (in_flash, in_ram) = if nobits {
            (
                false,
                place == Place::Ram && !is_reservation(&name, writable),
            )
        } else {
            // Bytes in the image: flash, plus RTC memory on Espressif chips (loaded from flash);
            // not AVR's EEPROM or fuses, which are programmed separately.
            let in_flash = place != Place::Other || family.image_includes_other;
            (in_flash, place == Place::Ram)
        };
        if !in_flash && !in_ram {
            continue;
        }
        if in_flash {
            flash += s.size();
        }
        if in_ram {
            ram += s.size();
        }
        sections.push(Section {
            name,
            address: s.address(),
            size: s.size(),
            flash: in_flash,
            ram: in_ram,
        });
    }
    Ok(SizeReport {
        flash: Usage::new(flash, memory.flash),
        ram: Usage::new(ram, memory.ram),
        sections,
    })
}

/// The end of the firmware's flash bytes when they reach into the board's settings region
/// (`memory.settings`), which `flash --set` and `image --set` then refuse to write.
pub fn reaches_settings(elf: &[u8], memory: &Memory) -> Option<u64> {
    let region = memory.settings?;
    let end = super::loadable(elf)
        .ok()?
        .iter()
        .filter(|(at, bytes)| u64::from(*at) < region.at + region.size && !bytes.is_empty())
        .map(|(at, bytes)| u64::from(*at) + bytes.len() as u64)
        .max()?;
    (end > region.at).then_some(end)
}

/// Reads the ELF at `path` against `board`.
pub fn analyze_file(path: &Path, board: &Board) -> Result<SizeReport> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    analyze(&bytes, board.family(), &board.memory)
        .with_context(|| format!("cannot read the sizes of {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_rounded_to_one_decimal() {
        let u = Usage::new(372, 32256);
        assert_eq!(u.percent, 1.2);
        assert_eq!(Usage::new(0, 0).percent, 0.0);
        assert_eq!(Usage::new(2048, 2048).percent, 100.0);
    }

    #[test]
    fn places_follow_the_families_memory_maps() {
        let db = crate::board::Database::builtin().unwrap();
        let avr = db.get("uno").unwrap().family();
        let esp = db.get("esp32c3").unwrap().family();
        assert_eq!(avr.place(0), Place::Flash);
        assert_eq!(avr.place(0x80_0100), Place::Ram);
        assert_eq!(avr.place(0x81_0000), Place::Other);
        assert_eq!(esp.place(0x4201_0020), Place::Flash);
        assert_eq!(esp.place(0x3C00_0020), Place::Flash);
        assert_eq!(esp.place(0x4038_0000), Place::Ram);
        assert_eq!(esp.place(0x3FC8_0AF4), Place::Ram);
        assert_eq!(esp.place(0x5000_0000), Place::Other);
    }

    #[test]
    fn not_an_elf_is_an_error() {
        let db = crate::board::Database::builtin().unwrap();
        let m = Memory {
            flash: 1,
            ram: 1,
            settings: None,
        };
        assert!(analyze(b"hello", db.get("uno").unwrap().family(), &m).is_err());
    }
}
