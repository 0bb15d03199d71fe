//! The firmware's hashes as every command that builds or takes one prints them
//! ([`crate::firmware::hash::Hashes`]): the ELF's, and that of the bytes that go to the board as
//! the family's `firmware-image` says, which for the ESP32 is the app image the flasher saves
//! ([`super::image::app_image`]), made by the flasher `flash` would use.

use std::path::Path;

use anyhow::{Context as _, Result};

use super::Flasher;
use crate::board::family::FirmwareImage;
use crate::board::Board;
use crate::firmware::hash::{self, Hashes, ImageHash};
use crate::report::{Event, Reporter};
use crate::tool::Flake;

/// The hashes of the firmware `elf` of the project at `root` (its partitions.csv, if any, goes
/// to the flasher) for `board`: the flasher, when the family's image is the flasher's, found as
/// `flash` finds it (PATH, else `flake`'s). An image that cannot be made is a warning, and the
/// ELF's hash alone is returned.
pub fn hashes(
    board: &Board,
    elf: &Path,
    root: &Path,
    flake: &Flake,
    reporter: &dyn Reporter,
) -> Result<Hashes> {
    let flasher = match board.family().firmware_image {
        FirmwareImage::Flasher => match super::find(board, flake, reporter) {
            Ok(f) => Some(f),
            Err(e) => {
                reporter.report(Event::warning(format!(
                    "no SHA-256 of the firmware's image: {e:#}"
                )));
                return Ok(of(board, elf, None, None)?.0);
            }
        },
        FirmwareImage::FlashSegments => None,
    };
    let table = super::image::layout(board, Some(root))?.partition_table;
    let (hashes, why_not) = of(board, elf, flasher.as_ref(), table.as_deref())?;
    if let Some(e) = why_not {
        reporter.report(Event::warning(format!(
            "no SHA-256 of the firmware's image: {e:#}"
        )));
    }
    Ok(hashes)
}

/// The hashes of the firmware `elf` for `board`, the app image made by `flasher` (with the
/// project's partition table `table`) when the family's image is the flasher's. When the image
/// cannot be made (no flasher, a firmware it refuses), the ELF's hash alone, and why.
pub fn of(
    board: &Board,
    elf: &Path,
    flasher: Option<&Flasher>,
    table: Option<&Path>,
) -> Result<(Hashes, Option<anyhow::Error>)> {
    let data = std::fs::read(elf)
        .with_context(|| format!("cannot read the firmware {}", elf.display()))?;
    let image = match board.family().firmware_image {
        FirmwareImage::FlashSegments => hash::flash_image(&data, board.family())
            .with_context(|| format!("no flash image of {}", elf.display())),
        FirmwareImage::Flasher => flasher
            .context("no flasher to make the app image with")
            .and_then(|f| super::image::app_image(f, board, elf, table))
            .map(|(bytes, command)| {
                ImageHash::of(&bytes, format!("the app image, as `{command}` saves it"))
            }),
    };
    let (image, why_not) = match image {
        Ok(i) => (Some(i), None),
        Err(e) => (None, Some(e)),
    };
    let hashes = Hashes {
        elf: hash::sha256_hex(&data),
        image,
    };
    Ok((hashes, why_not))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::hash::{sha256_hex, tests::avr_elf};

    #[test]
    fn hashes_name_the_elf_and_the_image_and_what_it_is() {
        let db = crate::board::Database::builtin().unwrap();
        let uno = db.get("uno").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fw.elf");
        std::fs::write(&p, avr_elf()).unwrap();
        let (h, why_not) = of(uno, &p, None, None).unwrap();
        assert!(why_not.is_none());
        assert_eq!(h.elf, sha256_hex(&avr_elf()));
        let image = h.image.clone().unwrap();
        assert_eq!(
            image.sha256,
            sha256_hex(&[1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF, 5, 6])
        );
        assert_eq!(image.size, 10);
        assert_eq!(
            image.is,
            "the ELF's flash bytes from 0x0, gaps 0xff, 3 bytes outside flash left out \
             (`objcopy -O binary --gap-fill 0xff`)"
        );
        let j = serde_json::to_value(&h).unwrap();
        assert_eq!(j["elf"], h.elf.as_str());
        assert_eq!(j["image"], image.sha256.as_str());
        assert_eq!(j["image_size"], 10);
        // An ESP32's image is the flasher's: without one, the ELF's hash alone, and why.
        let c3 = db.get("esp32c3").unwrap();
        let (h, why_not) = of(c3, &p, None, None).unwrap();
        assert_eq!(h.image, None);
        assert!(why_not.unwrap().to_string().contains("no flasher"));
        assert_eq!(
            serde_json::to_value(&h).unwrap().as_object().unwrap().len(),
            1
        );
    }
}
