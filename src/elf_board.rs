//! Which board an ELF is for, when neither a project nor `--board` says: its chip read from the
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
    match crate::flash::elf_machine(data)? {
        83 => {
            let file = object::File::parse(data).ok()?;
            let note = file.section_by_name(".note.gnu.avr.deviceinfo")?;
            let name = avr_device(note.data().ok()?)?;
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

/// The MCU named by avr-gcc's device note: the last name in its string table (`atmega328p`).
fn avr_device(note: &[u8]) -> Option<String> {
    note.split(|b| *b == 0)
        .rev()
        .filter(|s| s.len() >= 4 && s.iter().all(|b| b.is_ascii_alphanumeric()))
        .filter_map(|s| std::str::from_utf8(s).ok())
        .find(|s| s.starts_with("at") || s.starts_with("avr"))
        .map(str::to_ascii_lowercase)
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
        let what = crate::flash::elf_machine(&data)
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
    fn avr_device_is_the_last_name_of_the_note() {
        let mut note = b"\x04\0\0\0\x2d\0\0\0\x01\0\0\0AVR\0".to_vec();
        note.extend_from_slice(&[0u8; 28]);
        note.extend_from_slice(b"\0atmega328p\0\0");
        assert_eq!(avr_device(&note).as_deref(), Some("atmega328p"));
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
