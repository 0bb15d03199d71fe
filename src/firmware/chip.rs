//! Which chip and board an ELF is for, when neither a project nor `--board` says: its chip read from the
//! ELF (an AVR MCU from avr-gcc's `.note.gnu.avr.deviceinfo`, an ESP32 RISC-V chip from its
//! peripheral-access crate named in its source paths, `esp32c3-0.33.0/src/...`), then the boards
//! with that chip. Several boards with one chip are one answer when they agree on everything a
//! command needs (an ESP32-C3's flashing is the chip's); otherwise `--board` is asked for, with
//! the candidates named.

use std::path::Path;

use anyhow::{Context as _, Result};
use object::{Object, ObjectSection};

use crate::board::{Board, Database};
use crate::error::{Failure, Kind};

/// The chip of an ELF, and how it was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chip {
    /// As the board database names chips: `atmega328p`, `esp32c3`.
    pub name: String,
    pub how: String,
}

/// The ESP32 RISC-V chips, as their peripheral-access crates are named.
const ESP_CHIPS: [&str; 4] = ["esp32c2", "esp32c3", "esp32c6", "esp32h2"];

/// The chip `data` (an ELF file) is for, if it says.
pub fn chip(data: &[u8]) -> Option<Chip> {
    match super::machine(data)? {
        83 => {
            let name = avr_device(data)?;
            Some(Chip {
                how: format!("its device note names the {name}"),
                name,
            })
        }
        243 => {
            let found: Vec<&str> = ESP_CHIPS
                .into_iter()
                .filter(|c| names_crate(data, c))
                .collect();
            match found[..] {
                [one] => Some(Chip {
                    name: one.to_string(),
                    how: format!("its sources include the {one} crate"),
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The MCU an AVR ELF was linked for, from the device note avr-libc's start-up code carries
/// (`atmega328p`); `None` when the ELF has none.
pub fn avr_device(data: &[u8]) -> Option<String> {
    let file = object::File::parse(data).ok()?;
    let note = file.section_by_name(".note.gnu.avr.deviceinfo")?;
    device_note_name(note.data().ok()?)
}

/// The device name in the contents of avr-libc's `.note.gnu.avr.deviceinfo`.
fn device_note_name(note: &[u8]) -> Option<String> {
    // namesz, descsz, type, then the name ("AVR\0") padded to 4 bytes, then the descriptor.
    let word = |b: &[u8], at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let namesz = word(note, 0)?;
    let descsz = word(note, 4)?;
    let start = 12 + namesz.div_ceil(4) * 4;
    let desc = note.get(start..start + descsz)?;
    // Flash, RAM and EEPROM start and size (6 words), the offset table's length in bytes (its
    // own word included) and the table (the device name's offset), then the string table.
    let table_len = word(desc, 24)?;
    let strings = desc.get(24 + table_len..)?;
    let name_at = word(desc, 28)?;
    let name = strings.get(name_at..)?;
    let end = name.iter().position(|b| *b == 0)?;
    let name = std::str::from_utf8(&name[..end]).ok()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// Whether `data` holds a source path of crate `name` at some version: `name-1.2.3/` (the
/// folder cargo unpacks it to). Panic messages' paths follow the text before them directly (no
/// separator, any letter), so nothing is asked of what comes first.
fn names_crate(data: &[u8], name: &str) -> bool {
    let needle = format!("{name}-");
    let n = needle.as_bytes();
    let version = |rest: &[u8]| -> bool {
        // 1.2.3, then any pre-release or build letters, then the folder's end.
        let mut parts = 0;
        let mut i = 0;
        while parts < 3 {
            let start = i;
            while rest.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return false;
            }
            parts += 1;
            if parts < 3 {
                if rest.get(i) != Some(&b'.') {
                    return false;
                }
                i += 1;
            }
        }
        while rest
            .get(i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
        {
            i += 1;
        }
        matches!(rest.get(i), Some(b'/' | b'\\' | 0))
    };
    data.windows(n.len())
        .enumerate()
        .any(|(i, w)| w == n && version(&data[i + n.len()..]))
}

/// The board `elf` is for: the one board of its chip, or, when several boards have it and agree
/// on what `same` compares (what the command needs of a board), the first of them named for the
/// chip and answering to every one's USB ids. Errors ask for `--board`.
pub fn board_for(
    db: &Database,
    elf: &Path,
    same: impl Fn(&Board, &Board) -> bool,
) -> Result<(Board, Chip)> {
    let data = std::fs::read(elf)
        .with_context(|| format!("cannot read the firmware {}", elf.display()))?;
    let ask = "pass --board <id> (`nixflash boards` lists them), or run this in the firmware's \
               project";
    let Some(chip) = chip(&data) else {
        let what = super::machine(&data)
            .map(|m| {
                format!(
                    "{} firmware",
                    crate::board::family::elf_machine_name(db.families(), m)
                )
            })
            .unwrap_or_else(|| "not an ELF file".into());
        return Err(Failure::new(
            Kind::BoardNeeded,
            format!(
                "which board is {} for? It is {what}, and does not say its chip",
                elf.display()
            ),
        )
        .hint(ask)
        .into());
    };
    let boards: Vec<&Board> = db.boards().filter(|b| b.chip == chip.name).collect();
    match boards[..] {
        [] => Err(Failure::new(
            Kind::BoardNeeded,
            format!(
                "{} is for the {} ({}), and no board nixflash knows has that chip",
                elf.display(),
                chip.name,
                chip.how
            ),
        )
        .hint(ask)
        .into()),
        [one] => Ok((one.clone(), chip)),
        [first, ..] if boards.iter().all(|b| same(first, b)) => {
            let mut board = first.clone();
            // `esp32c3` as Espressif writes it: ESP32-C3.
            let chip_name = chip.name.to_ascii_uppercase();
            let shown = match chip_name.strip_prefix("ESP32") {
                Some(rest) => format!("ESP32-{rest}"),
                None => chip_name,
            };
            board.name = format!("{shown} board");
            for b in &boards {
                for id in &b.usb.ids {
                    if !board.usb.ids.contains(id) {
                        board.usb.ids.push(*id);
                    }
                }
            }
            Ok((board, chip))
        }
        _ => {
            let ids: Vec<&str> = boards.iter().map(|b| b.id.as_str()).collect();
            Err(Failure::new(
                Kind::BoardNeeded,
                format!(
                    "which board is {} for? It is for the {} ({}), which these boards have, each \
                 flashed or run its own way: {}",
                    elf.display(),
                    chip.name,
                    chip.how,
                    ids.join(", ")
                ),
            )
            .hint(format!("pass --board <id>, e.g. --board {}", ids[0]))
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_note_names_the_mcu() {
        // namesz 4, descsz 44, type 1, "AVR\0"; six words of memory sizes, the offset table
        // (its length, 8, and the name's offset, 1), then the strings.
        let mut note = b"\x04\0\0\0\x2c\0\0\0\x01\0\0\0AVR\0".to_vec();
        note.extend_from_slice(&[0u8; 24]);
        note.extend_from_slice(&[8, 0, 0, 0, 1, 0, 0, 0]);
        note.extend_from_slice(b"\0atmega328p\0");
        assert_eq!(device_note_name(&note).as_deref(), Some("atmega328p"));
        assert_eq!(device_note_name(&note[..40]), None, "cut short");
        // A real AVR ELF (avr-gcc for the ATmega328P) and a RISC-V one.
        let fixture = |name: &str| {
            std::fs::read(format!(
                "{}/tests/fixtures/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        let avr = fixture("project/firmware.elf");
        assert_eq!(avr_device(&avr).as_deref(), Some("atmega328p"));
        assert_eq!(avr_device(&fixture("elf/esp32c3-blinky.elf")), None);
    }

    #[test]
    fn a_crate_is_named_by_its_versioned_folder() {
        assert!(names_crate(b"x\0esp32c3-0.33.0/src/gpio.rs\0", "esp32c3"));
        assert!(names_crate(b"/r/esp32c6-0.22.0/src/lib.rs", "esp32c6"));
        // Remapped paths in panic messages follow other text directly.
        assert!(names_crate(
            b"DevKitM-1!lowesp32c3-0.33.0/src/gpio.rs",
            "esp32c3"
        ));
        assert!(names_crate(b"\0esp32h2-0.18.0-beta.1/src", "esp32h2"));
        assert!(!names_crate(b"/r/esp32c3-hal/src/lib.rs", "esp32c3"));
        assert!(!names_crate(b"Hello from esp32c3-1 board", "esp32c3"));
        assert!(!names_crate(b"Hello from esp32c3-0.1 board/", "esp32c3"));
    }
}
