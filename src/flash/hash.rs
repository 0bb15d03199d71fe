//! The firmware's hashes as every command that builds or takes one prints them
//! ([`crate::firmware::hash::Hashes`]): the ELF's, and that of the bytes that go to the board as
//! the family's `firmware-image` says, which for the ESP32 is the app image the flasher saves
//! ([`super::image::app_image`]), made by the flasher `flash` would use; its hash is kept between
//! runs ([`cache_dir`]), so that a build with nothing to do does not wait for espflash.

use std::path::{Path, PathBuf};

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
    let elf_hash = hash::sha256_hex(&data);
    let image = match board.family().firmware_image {
        FirmwareImage::FlashSegments => hash::flash_image(&data, board.family())
            .with_context(|| format!("no flash image of {}", elf.display())),
        FirmwareImage::Flasher => flasher
            .context("no flasher to make the app image with")
            .and_then(|f| app_image(f, board, elf, &elf_hash, table)),
    };
    let (image, why_not) = match image {
        Ok(i) => (Some(i), None),
        Err(e) => (None, Some(e)),
    };
    let hashes = Hashes {
        elf: elf_hash,
        image,
    };
    Ok((hashes, why_not))
}

/// The hash of the app image `flasher` saves of `elf` (whose hash is `elf_hash`): kept between
/// runs ([`cache_dir`]), under the ELF's hash, the flasher's name and version, its command line
/// and the partition table's hash, since espflash makes the same bytes of them every time (it
/// takes a few hundred milliseconds, more than the rest of a build that has nothing to do).
fn app_image(
    flasher: &Flasher,
    board: &Board,
    elf: &Path,
    elf_hash: &str,
    table: Option<&Path>,
) -> Result<ImageHash> {
    let line = super::image::app_image_line(flasher, board, elf)?;
    let is = format!("the app image, as `{line}` saves it");
    let table_hash = table
        .map(hash::sha256_file)
        .transpose()?
        .unwrap_or_default();
    let key = format!(
        "{elf_hash}\n{} {}\n{line}\n{table_hash}\n",
        flasher.name, flasher.version
    );
    let file = cache_dir().map(|d| d.join(hash::sha256_hex(key.as_bytes())));
    if let Some((sha256, size)) = file.as_deref().and_then(read_cached) {
        return Ok(ImageHash { sha256, size, is });
    }
    let image = ImageHash::of(&super::image::app_image(flasher, board, elf, table)?, is);
    if let Some(file) = file {
        // A cache that cannot be written only makes the next run slower.
        let _ = write_cached(&file, &image);
    }
    Ok(image)
}

/// Where app images' hashes are kept: `$XDG_CACHE_HOME/nixflash/app-images`, else
/// `~/.cache/nixflash/app-images`.
fn cache_dir() -> Option<PathBuf> {
    Some(crate::xdg::cache_home()?.join("nixflash/app-images"))
}

/// A kept hash: one line, `<sha256> <size>`.
fn read_cached(file: &Path) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(file).ok()?;
    let (sha256, size) = text.trim().split_once(' ')?;
    let hex = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    Some((sha256.to_string(), size.parse().ok()?)).filter(|_| hex)
}

/// Keeps a hash, written beside its place and renamed, so that a reader sees all of it or none.
fn write_cached(file: &Path, image: &ImageHash) -> Result<()> {
    let dir = file.parent().context("a cache file has a folder")?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(
        &mut tmp,
        format!("{} {}\n", image.sha256, image.size).as_bytes(),
    )?;
    tmp.persist(file)?;
    Ok(())
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

    #[test]
    fn a_kept_hash_is_read_back_and_junk_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k/key");
        let image = ImageHash::of(b"abc", "x".into());
        write_cached(&file, &image).unwrap();
        assert_eq!(read_cached(&file), Some((image.sha256.clone(), 3)));
        for junk in ["", "abc 3", "zz 3\n", &format!("{} three", image.sha256)] {
            std::fs::write(&file, junk).unwrap();
            assert_eq!(read_cached(&file), None, "{junk:?}");
        }
    }
}
