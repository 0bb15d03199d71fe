//! `nixflash flash` with the settings `--set` (and the environment and settings.toml) give, on a
//! family that makes images ([`super::image`]): the image, as `nixflash image` makes it, written
//! from offset 0; without settings, the app with the project's partition table.

use std::path::Path;

use anyhow::{Context as _, Result};

use super::Outcome;
use crate::board::Board;
use crate::flash::image::{self, Layout};
use crate::report::{Event, Reporter};
use crate::settings::{self, Settings};
use crate::tool::Flake;

/// What `flash` does about settings, decided (and refused) before anything is built.
pub struct Plan {
    layout: Layout,
    prepared: Option<(Settings, Vec<u8>)>,
}

impl Plan {
    /// Whether settings are to be written (from `--set`, the environment or settings.toml).
    pub fn writes_settings(&self) -> bool {
        self.prepared.is_some()
    }

    /// The project's partition table, if it has one.
    pub fn partition_table(&self) -> Option<&Path> {
        self.layout.partition_table.as_deref()
    }
}

/// The settings `flash` writes with `--set` (and the environment's and settings.toml's): one
/// line and nothing flashed for a setting that cannot be written.
pub fn plan(
    board: &Board,
    root: Option<&Path>,
    set: &[String],
    reporter: &dyn Reporter,
) -> Result<Plan> {
    let layout = image::layout(root)?;
    let prepared = image::prepare(board, root, &layout, set)?;
    if prepared.is_none() && layout.region.is_none() && image::supported(board) {
        note_unwritten(root, reporter)?;
    }
    Ok(Plan { layout, prepared })
}

/// Says that the settings of the environment and of settings.toml, if any, are not written
/// (the firmware has no settings region).
pub fn note_unwritten(root: Option<&Path>, reporter: &dyn Reporter) -> Result<()> {
    let s = settings::gather(&[], std::env::vars_os(), root)?;
    if !s.is_empty() {
        reporter.report(Event::step(
            "Note",
            format!(
                "not writing the settings {}: this firmware has no settings region",
                s.describe()
            ),
        ));
    }
    Ok(())
}

/// `flash` on a board whose family makes images: with settings, the image (as `nixflash image`
/// makes it) written from offset 0; without, the app with the project's partition table. None
/// when neither applies (the family's usual flashing).
pub fn flash(
    plan: Plan,
    board: &Board,
    dir: &Path,
    elf: &Path,
    port: &str,
    flake: &Flake,
    reporter: &dyn Reporter,
) -> Result<Option<Outcome>> {
    let Plan { layout, prepared } = plan;
    if prepared.is_none() && layout.partition_table.is_none() {
        return Ok(None);
    }
    let flasher = super::prepare(board, elf, port, flake, reporter)?;
    let table = layout.partition_table.as_deref();
    let Some((s, region)) = &prepared else {
        if layout.region.is_some() {
            reporter.report(Event::step(
                "Settings",
                "none given: the board keeps the settings it has (`--set key=value` writes them)",
            ));
        }
        let cmd = super::command(&flasher, board, elf, Some(port), table, None)?;
        return super::run(flasher, cmd.dir(dir), reporter).map(Some);
    };
    let tmp = tempfile::Builder::new()
        .prefix("nixflash-image-")
        .tempdir()
        .context("cannot create a temporary folder for the image")?;
    let file = tmp.path().join("image.bin");
    let cmd = image::save_command(&flasher, board, elf, table, &file)?;
    reporter.report(Event::step("Running", cmd.display()));
    let made = image::make(&flasher, board, elf, &layout, Some(region), &file)?;
    reporter.report(Event::step(
        "Settings",
        format!(
            "{} at {:#x}, in a {}-byte image written from offset 0",
            s.describe(),
            made.region.map_or(0, |r| r.offset),
            made.size
        ),
    ));
    let cmd = image::write_command(&flasher, board, &file, port)?;
    super::run(flasher, cmd.dir(dir), reporter).map(Some)
}
