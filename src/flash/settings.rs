//! `nixflash flash` with the settings `--set` (and the environment and settings.toml) give, on a
//! family that makes images ([`super::image`]): the image, as `nixflash image` makes it, written
//! from offset 0; without settings, the app with the project's partition table.

use std::path::Path;

use anyhow::{Context as _, Result};

use super::Outcome;
use crate::board::Board;
use crate::flash::image::{self, Layout};
use crate::flash::ImageKind;
use crate::report::{Event, Reporter};
use crate::settings::{self, Device, DeviceSettings, Settings, Warning};
use crate::tool::Flake;

/// What `flash` does about settings, decided (and refused) before anything is built.
#[derive(Debug)]
pub struct Plan {
    layout: Layout,
    prepared: Option<(Settings, Vec<u8>)>,
}

impl Plan {
    /// Whether settings are to be written (from `--set`, the environment or settings.toml).
    pub fn writes_settings(&self) -> bool {
        self.prepared.is_some()
    }

    /// The settings to write and their encoded region, if any.
    pub fn settings(&self) -> Option<(&Settings, &[u8])> {
        self.prepared.as_ref().map(|(s, r)| (s, r.as_slice()))
    }

    /// Where the firmware's partitions and settings region are.
    pub fn layout(&self) -> &Layout {
        &self.layout
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
    let layout = image::layout(board, root)?;
    let gathered = image::gather(board, root, &layout, set)?;
    let prepared = image::prepare(board, &layout, &gathered)?;
    notes(board, &layout, &gathered, true, reporter);
    Ok(Plan { layout, prepared })
}

/// For a flash of several boards at once (`devices`: in port order, numbered from 1, with their
/// USB serial numbers): each board's plan, in the order of `devices`, to pass to
/// [`super::flash`] for that board, and the warnings to show (a section of settings.toml for a
/// board not connected). Refused (one line, before anything is built or flashed) as [`plan`]
/// and [`settings::per_device`] refuse.
pub fn plan_each(
    board: &Board,
    root: Option<&Path>,
    set: &[String],
    devices: &[Device],
    reporter: &dyn Reporter,
) -> Result<(Vec<Plan>, Vec<Warning>)> {
    let layout = image::layout(board, root)?;
    let plan = |prepared: Option<DeviceSettings>| Plan {
        layout: layout.clone(),
        prepared: prepared
            .filter(|d| !d.settings.is_empty())
            .map(|d| (d.settings, d.region)),
    };
    let gathered = image::gather(board, root, &layout, set)?;
    if !image::writes(board, &layout, &gathered) {
        notes(board, &layout, &gathered, false, reporter);
        return Ok((devices.iter().map(|_| plan(None)).collect(), Vec::new()));
    }
    let size = image::region_size(&layout);
    let (each, warnings) = settings::per_device(&gathered, devices, size)?;
    Ok((each.into_iter().map(|d| plan(Some(d))).collect(), warnings))
}

/// Says what of the `gathered` settings is not written: all of them when the firmware has no
/// settings region; the settings file's device sections when `single` (a single-board flash, an
/// image: one board's settings are the file's top-level lines).
pub fn notes(
    board: &Board,
    layout: &Layout,
    gathered: &settings::Gathered,
    single: bool,
    reporter: &dyn Reporter,
) {
    if !image::supported(board) {
        return;
    }
    let s = gathered.merged();
    if layout.region.is_none() && !s.is_empty() {
        reporter.report(Event::step(
            "Note",
            format!(
                "not writing the settings {}: this firmware has no settings region",
                s.describe()
            ),
        ));
    }
    let serials: Vec<&str> = gathered
        .sections()
        .iter()
        .map(|s| s.serial.as_str())
        .collect();
    if single && !serials.is_empty() {
        reporter.report(Event::step(
            "Note",
            format!(
                "not writing {}'s sections for the boards {}: one board's settings are its \
                 top-level lines (a flash of several boards at once gives each its section)",
                settings::FILE,
                serials.join(", ")
            ),
        ));
    }
}

/// `flash` with what the family's image holds: on the ESP32, with settings, the image (as
/// `nixflash image` makes it) written from offset 0, and without, the app with the project's
/// partition table; on AVR boards, with settings, ravedude given an ELF that carries them. None
/// when none of these applies (the family's usual flashing; RP2 boards are flashed by
/// [`super::boot_drive`]).
pub fn flash(
    plan: Plan,
    board: &Board,
    dir: &Path,
    elf: &Path,
    port: &str,
    flake: &Flake,
    reporter: &dyn Reporter,
) -> Result<Option<Outcome>> {
    let layout = plan.layout();
    let kind = image::kind(board);
    let espflash_table = kind == Some(ImageKind::Espflash) && layout.partition_table.is_some();
    if !plan.writes_settings() && !espflash_table {
        return Ok(None);
    }
    let flasher = super::prepare(board, elf, port, flake, reporter)?;
    let table = layout.partition_table.as_deref();
    if !plan.writes_settings() {
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
    let file = tmp.path().join(upload_name(board, "image"));
    if kind == Some(ImageKind::Espflash) {
        let cmd = image::save_command(&flasher, board, elf, table, &file)?;
        reporter.report(Event::step("Running", cmd.display()));
    }
    make_image(&flasher, board, elf, &plan, &file, None, reporter)?;
    let config = board.family().flasher.config_dir(board, dir)?;
    let config = config.as_ref().map(|d| d.path());
    let cmd = upload_command(&flasher, board, &file, port, config)?;
    super::run(flasher, cmd.dir(dir), reporter).map(Some)
}

/// The name of the file named `stem` that a board is given with its settings.
pub(super) fn upload_name(board: &Board, stem: &str) -> String {
    match image::kind(board) {
        Some(ImageKind::IntelHex) => format!("{stem}.elf"),
        _ => format!("{stem}.bin"),
    }
}

/// The flasher's command that gives the board at `port` the `file` [`make_image`] made:
/// espflash's `write-bin` from offset 0, or ravedude uploading it as it uploads firmware (with
/// its configuration in `config`).
pub(super) fn upload_command(
    flasher: &super::Flasher,
    board: &Board,
    file: &Path,
    port: &str,
    config: Option<&Path>,
) -> Result<crate::process::Cmd> {
    match image::kind(board) {
        Some(ImageKind::Espflash) => image::write_command(flasher, board, file, port),
        _ => super::command(flasher, board, file, Some(port), None, config),
    }
}

/// Makes what the board receives with the settings `plan` writes into `file` (the ESP32's image,
/// made with the flasher; the ELF ravedude uploads), and reports where they went; `port` names
/// the board when there are several.
pub(super) fn make_image(
    flasher: &super::Flasher,
    board: &Board,
    elf: &Path,
    plan: &Plan,
    file: &Path,
    port: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<()> {
    let Some((s, region)) = plan.settings() else {
        return Ok(());
    };
    let port = port.map(|p| format!("{p}: ")).unwrap_or_default();
    let (made, how) = match image::kind(board) {
        Some(ImageKind::Espflash) => (
            image::make(Some(flasher), board, elf, plan.layout(), Some(region), file)?,
            "image written from offset 0",
        ),
        _ => (
            image::make_upload_elf(board, elf, plan.layout(), region, file)?,
            "ELF with the firmware",
        ),
    };
    reporter.report(Event::step(
        "Settings",
        format!(
            "{port}{} at {:#x}, in a {}-byte {how}",
            s.describe(),
            made.region.map_or(0, |r| r.offset),
            made.size
        ),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Database;
    use crate::report::Recorder;

    fn device(index: usize, serial: &str) -> Device {
        Device {
            index,
            port: format!("/dev/ttyACM{index}"),
            serial: Some(serial.to_string()),
        }
    }

    #[test]
    fn each_board_of_a_run_of_several_gets_its_own_region() {
        let db = Database::builtin().unwrap();
        let c3 = db.get("esp32c3").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = Some(dir.path());
        let devices = [device(1, "A1"), device(2, "B2")];
        let set = ["name=desk-{index}".to_string()];
        // No partition table: no settings region, refused as for one board.
        let e = plan_each(c3, root, &set, &devices, &Recorder::default()).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("--set: this firmware has no settings region"));
        std::fs::write(
            dir.path().join("partitions.csv"),
            "settings, data, 0x99, 0xe000, 0x1000,\nfactory, app, factory, 0x10000, 0x1f0000,\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("settings.toml"),
            "[device.C3]\nname = \"x\"\n",
        )
        .unwrap();
        let (plans, warnings) = plan_each(c3, root, &set, &devices, &Recorder::default()).unwrap();
        let names: Vec<_> = plans
            .iter()
            .map(|p| {
                let (s, region) = p.prepared.as_ref().unwrap();
                assert_eq!(
                    settings::decode(region).unwrap()[0].1,
                    s.get("name").unwrap()
                );
                s.get("name").unwrap().to_string()
            })
            .collect();
        assert_eq!(names, ["desk-1", "desk-2"]);
        assert_eq!(plans[0].layout.region.map(|r| r.offset), Some(0xe000));
        assert_eq!(warnings.len(), 1);
        // Nothing to write: every board keeps its settings.
        std::fs::remove_file(dir.path().join("settings.toml")).unwrap();
        let (plans, _) = plan_each(c3, root, &[], &devices, &Recorder::default()).unwrap();
        assert!(plans.iter().all(|p| p.prepared.is_none()));
        // An AVR board keeps its region at a fixed place: 512 bytes each.
        let uno = db.get("uno").unwrap();
        let (plans, _) = plan_each(uno, root, &set, &devices, &Recorder::default()).unwrap();
        let regions: Vec<_> = plans
            .iter()
            .map(|p| p.settings().unwrap().1.len())
            .collect();
        assert_eq!(regions, [512, 512]);
        assert_eq!(plans[1].layout.region.map(|r| r.offset), Some(0x7600));
    }
}
