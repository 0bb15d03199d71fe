//! What each way of flashing ([`FlashMethod`], the family's data) means to nixflash: the one
//! place that tells the methods apart, so that the commands, `boards`, `doctor` and the project
//! checks ask the method instead of matching on it.

use std::path::Path;

use anyhow::{Context, Result};

use crate::board::flasher::Espflash;
use crate::board::{Board, FlashMethod};

/// What `nixflash image` writes, with the settings region in it (named so in `image --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageKind {
    /// The flasher's merged binary from flash offset 0 (espflash `save-image --merge`).
    #[serde(rename = "esp-merged")]
    Espflash,
    /// An Intel HEX file of the firmware and the region, which avrdude and programmers take;
    /// ravedude (ELF only) is given an ELF with the same bytes.
    IntelHex,
    /// A UF2 file for the boot drive: the firmware's blocks, then the region's.
    Uf2,
}

impl ImageKind {
    /// The file name extension of such an image.
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Espflash => "bin",
            ImageKind::IntelHex => "hex",
            ImageKind::Uf2 => "uf2",
        }
    }
}

impl FlashMethod {
    /// How the boards table names the way the family flashes: its tool, or `boot drive`.
    pub fn short_name(&self) -> &str {
        match self {
            FlashMethod::BootDrive(_) => "boot drive",
            _ => &self.tool().name,
        }
    }

    /// How `board` is flashed, for the `flasher` line of `nixflash boards show`.
    pub fn describe(&self, board: &Board) -> String {
        match (self, &board.flash.boot_drive) {
            (FlashMethod::BootDrive(_), Some(drive)) => format!(
                "a UF2 file onto its {drive} boot drive (UF2 family {}), or {}",
                board.flash.uf2_family.as_deref().unwrap_or_default(),
                self.tool().name
            ),
            (FlashMethod::ProbeRs(_), _) => format!("{} through a debug probe", self.tool().name),
            _ => self.tool().name.clone(),
        }
    }

    /// Whether it flashes through the board's serial port (else through the chip's boot drive,
    /// or a debug probe).
    pub fn uses_serial_port(&self) -> bool {
        !matches!(self, FlashMethod::BootDrive(_) | FlashMethod::ProbeRs(_))
    }

    /// Whether it flashes through a debug probe that the flasher finds itself (probe-rs): no
    /// serial port and no boot drive is looked for.
    pub fn through_probe(&self) -> bool {
        matches!(self, FlashMethod::ProbeRs(_))
    }

    /// What flashes `board` when its tool cannot be used (`why`), if anything does: the boot
    /// drive, which needs no flasher.
    pub fn without_tool(&self, board: &Board, why: &anyhow::Error) -> Option<String> {
        match self {
            FlashMethod::BootDrive(_) => Some(format!(
                "flashing: nixflash copies the UF2 file onto the {}'s boot drive itself ({} on \
                 PATH, for a board without a mounted drive, cannot be used: {why:#})",
                board.name,
                self.tool().name
            )),
            _ => None,
        }
    }

    /// The UF2 family id of `board`'s firmware, for a boot drive.
    pub fn uf2_family_id(&self, board: &Board) -> Option<u32> {
        match self {
            FlashMethod::BootDrive(b) => b
                .uf2_families
                .get(board.flash.uf2_family.as_deref()?)
                .copied(),
            _ => None,
        }
    }

    /// The flasher's image commands (`nixflash image`, settings), for a family whose flasher
    /// makes images.
    pub fn images(&self) -> Option<&Espflash> {
        match self {
            FlashMethod::Espflash(e) if !e.image_args.is_empty() => Some(e),
            _ => None,
        }
    }

    /// What `nixflash image` writes for the family's boards, if anything.
    pub fn image_kind(&self) -> Option<ImageKind> {
        match self {
            FlashMethod::Espflash(_) => self.images().map(|_| ImageKind::Espflash),
            FlashMethod::Ravedude(_) => Some(ImageKind::IntelHex),
            FlashMethod::BootDrive(_) => Some(ImageKind::Uf2),
            // probe-rs writes the ELF's segments itself; nixflash makes no image for it yet.
            FlashMethod::ProbeRs(_) => None,
        }
    }

    /// The arguments that give the flasher a project's own partition table.
    pub fn partition_table_args(&self) -> &[String] {
        match self {
            FlashMethod::Espflash(e) => &e.partition_table_args,
            _ => &[],
        }
    }

    /// What the project's flasher configuration at `root` says that disagrees with `board`
    /// (ravedude's Ravedude.toml), if anything.
    pub fn config_mismatch(&self, root: &Path, board: &Board) -> Option<String> {
        match self {
            FlashMethod::Ravedude(_) => super::ravedude::mismatch(root, board),
            _ => None,
        }
    }

    /// The folder of the configuration the flasher reads for `board` in the project at `root`
    /// (ravedude's Ravedude.toml, with its console off), made for this run, if it reads one.
    pub fn config_dir(&self, board: &Board, root: &Path) -> Result<Option<tempfile::TempDir>> {
        let FlashMethod::Ravedude(_) = self else {
            return Ok(None);
        };
        let text = super::ravedude::ravedude_config(board, root)?;
        let dir = tempfile::Builder::new()
            .prefix("nixflash-ravedude-")
            .tempdir()
            .context("cannot create a temporary folder for Ravedude.toml")?;
        std::fs::write(dir.path().join("Ravedude.toml"), text)
            .context("cannot write a temporary Ravedude.toml")?;
        Ok(Some(dir))
    }
}

#[cfg(test)]
mod tests {
    use crate::board::Database;

    /// `image --json` names the kinds as its help says.
    #[test]
    fn image_kinds_are_named_as_image_help_says() {
        use super::ImageKind::*;
        let names = [Espflash, IntelHex, Uf2].map(|k| serde_json::to_value(k).unwrap());
        assert_eq!(names, ["esp-merged", "intel-hex", "uf2"]);
    }

    #[test]
    fn each_family_s_method_answers_for_itself() {
        let db = Database::builtin().unwrap();
        let (uno, c3, pico) = (
            db.get("uno").unwrap(),
            db.get("esp32c3").unwrap(),
            db.get("pico").unwrap(),
        );
        let m = |b: &crate::board::Board| b.family().flasher.clone();
        assert_eq!(
            [uno, c3, pico].map(|b| m(b).short_name().to_string()),
            ["ravedude", "espflash", "boot drive"]
        );
        assert_eq!(
            m(pico).describe(pico),
            "a UF2 file onto its RPI-RP2 boot drive (UF2 family rp2040), or picotool"
        );
        assert!(m(uno).uses_serial_port() && !m(pico).uses_serial_port());
        assert_eq!(m(pico).uf2_family_id(pico), Some(0xe48b_ff56));
        let pico2 = db.get("pico2").unwrap();
        assert_eq!(m(pico2).uf2_family_id(pico2), Some(0xe48b_ff59));
        assert_eq!(m(uno).uf2_family_id(uno), None);
        assert!(m(c3).images().is_some() && m(uno).images().is_none());
        let e = anyhow::anyhow!("picotool is not on PATH");
        assert!(m(pico).without_tool(pico, &e).is_some());
        assert!(m(uno).without_tool(uno, &e).is_none());
        let nucleo = db.get("nucleo-f411re").unwrap();
        assert_eq!(m(nucleo).short_name(), "probe-rs");
        assert_eq!(m(nucleo).describe(nucleo), "probe-rs through a debug probe");
        assert!(!m(nucleo).uses_serial_port() && m(nucleo).through_probe());
        assert!(!m(pico).through_probe() && !m(uno).through_probe());
        assert!(m(nucleo).without_tool(nucleo, &e).is_none());
        assert_eq!(m(nucleo).image_kind(), None);
        assert_eq!(m(nucleo).uf2_family_id(nucleo), None);
    }
}
