//! Flashing through a boot drive: an RP2 chip held in BOOTSEL mode shows its boot ROM as a small
//! USB drive whose `INFO_UF2.TXT` names the chip (`Board-ID: RPI-RP2` for the RP2040, `RP2350`);
//! a UF2 file copied onto it is written to flash, and the chip then restarts into it.
//!
//! The drive is found among the folders where desktops mount removable drives (`/media/$USER`,
//! `/run/media/$USER`, `/media`, `/Volumes`), or named: `--port <folder>` or
//! `NIXFLASH_BOOT_DRIVE=<folder>`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::settings::Plan;
use super::Flasher;
use crate::board::Board;
use crate::error::{Failure, Kind};
use crate::report::{Event, Reporter};

/// The environment variable that names the boot drive's folder.
pub const ENV: &str = "NIXFLASH_BOOT_DRIVE";

/// The file every UF2 boot drive has.
pub const INFO: &str = "INFO_UF2.TXT";

/// A mounted boot drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drive {
    pub path: PathBuf,
    /// `Board-ID` of its INFO_UF2.TXT.
    pub board_id: String,
    /// `Model`, if it says.
    pub model: Option<String>,
}

/// Reads a folder as a boot drive: None when it has no INFO_UF2.TXT.
pub fn read(path: &Path) -> Option<Drive> {
    let text = std::fs::read_to_string(path.join(INFO)).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    };
    Some(Drive {
        path: path.to_path_buf(),
        board_id: field("Board-ID").unwrap_or_default(),
        model: field("Model"),
    })
}

/// The folders searched for mounted drives, for this user.
pub fn mount_roots() -> Vec<PathBuf> {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty());
    let mut roots = Vec::new();
    if let Some(u) = &user {
        roots.push(PathBuf::from("/media").join(u));
        roots.push(PathBuf::from("/run/media").join(u));
    }
    roots.push(PathBuf::from("/media"));
    roots.push(PathBuf::from("/Volumes"));
    roots
}

/// The boot drives mounted directly under `roots`, in order.
pub fn find(roots: &[PathBuf]) -> Vec<Drive> {
    let mut out: Vec<Drive> = Vec::new();
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        dirs.sort();
        for d in dirs {
            if let Some(drive) = read(&d) {
                if !out.iter().any(|o| o.path == drive.path) {
                    out.push(drive);
                }
            }
        }
    }
    out
}

fn describe(d: &Drive) -> String {
    match &d.model {
        Some(m) => format!("{} (Board-ID {}, {m})", d.path.display(), d.board_id),
        None => format!("{} (Board-ID {})", d.path.display(), d.board_id),
    }
}

/// The drive `board`'s firmware goes to: `requested` (`--port`, or the environment variable),
/// else the one mounted drive of the board's chip. Its Board-ID must be the board's.
pub fn choose(board: &Board, requested: Option<&Path>, roots: &[PathBuf]) -> Result<Drive> {
    let want = board.flash.boot_drive.as_deref().unwrap_or_default();
    if let Some(path) = requested {
        let drive = read(path).ok_or_else(|| {
            Failure::new(
                Kind::PortNotFound,
                format!(
                    "{} is not a UF2 boot drive: it has no {INFO}",
                    path.display()
                ),
            )
            .hint(format!(
                "for the {} pass the folder where its {want} drive is mounted",
                board.name
            ))
        })?;
        return check_id(board, drive);
    }
    let drives = find(roots);
    let (mine, others): (Vec<Drive>, Vec<Drive>) =
        drives.into_iter().partition(|d| d.board_id == want);
    match mine.len() {
        1 => return Ok(mine.into_iter().next().expect("one")),
        0 => {}
        _ => {
            let list: String = mine
                .iter()
                .map(|d| format!("\n    {}", describe(d)))
                .collect();
            return Err(Failure::new(
                Kind::PortAmbiguous,
                format!("several {want} boot drives are mounted:{list}"),
            )
            .hint(format!(
                "say which with `--port`, e.g. `--port {}`",
                mine[0].path.display()
            ))
            .into());
        }
    }
    if let Some(other) = others.first() {
        return check_id(board, other.clone());
    }
    let searched: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    Err(Failure::new(
        Kind::PortNotFound,
        format!(
            "no {want} boot drive of the {} is mounted (searched {} for a folder with an {INFO} \
         saying Board-ID: {want})",
            board.name,
            searched.join(", ")
        ),
    )
    .hint(format!(
        "hold the BOOTSEL button while you plug the {} in (or while you press RUN, if it has \
         one): it then shows up as a drive named {want}; if your desktop does not mount it by \
         itself, mount it and pass `--port <folder>` (or set {ENV})",
        board.name
    ))
    .hint("with picotool on PATH, nixflash flashes through it instead when no drive is mounted")
    .into())
}

fn check_id(board: &Board, drive: Drive) -> Result<Drive> {
    let want = board.flash.boot_drive.as_deref().unwrap_or_default();
    if drive.board_id == want {
        return Ok(drive);
    }
    Err(Failure::new(
        Kind::PortNotFound,
        format!(
        "{} is the boot drive of another chip: its Board-ID is {}, and the {} ({}) shows {want}",
        drive.path.display(),
        drive.board_id,
        board.name,
        board.chip
    ),
    )
    .hint(format!(
        "is it the right board? This project is for `{}`; `nixflash boards {}` lists the boards \
         of that chip",
        board.id,
        if drive.board_id == "RPI-RP2" {
            "rp2040"
        } else {
            "rp2350"
        }
    ))
    .into())
}

/// Copies `uf2` onto `drive` as `<name>.uf2`, its progress reported, and syncs it.
/// The chip restarts once it has the whole file, so the drive may vanish during the sync: that is
/// said, not taken for a failure.
pub fn copy(uf2: &[u8], drive: &Drive, name: &str, reporter: &dyn Reporter) -> Result<PathBuf> {
    let path = drive.path.join(format!("{name}.uf2"));
    let mut file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {} on the boot drive", path.display()))?;
    let mut done = 0;
    for chunk in uf2.chunks(16 * 1024) {
        file.write_all(chunk)
            .with_context(|| format!("cannot write {}", path.display()))?;
        done += chunk.len();
        reporter.report(Event::Progress {
            title: "Copying".to_string(),
            message: format!("{done}/{} bytes to {}", uf2.len(), path.display()),
        });
    }
    reporter.report(Event::ProgressEnd);
    if let Err(e) = file.sync_all() {
        if drive.path.join(INFO).exists() {
            return Err(e).with_context(|| format!("cannot sync {}", path.display()));
        }
        reporter.report(Event::step(
            "Note",
            format!(
                "the drive went away while syncing ({e}): the board restarts as soon as it has \
                 the whole file"
            ),
        ));
    }
    Ok(path)
}

/// What [`flash`] wrote.
#[derive(Debug, Clone)]
pub struct Flashed {
    /// The UF2 file on the drive.
    pub path: PathBuf,
    pub uf2: super::uf2::Uf2,
}

/// Converts the firmware `elf` for `board` into a UF2 file, with the settings `plan` writes, and
/// copies it onto `drive`, named after the ELF.
pub fn flash(
    board: &Board,
    elf: &Path,
    plan: &Plan,
    drive: &Drive,
    reporter: &dyn Reporter,
) -> Result<Flashed> {
    let region = plan.settings().map(|(_, r)| r).zip(plan.layout().region);
    let uf2 = super::image::uf2(board, elf, region)?;
    if let (Some((s, _)), Some(r)) = (plan.settings(), region) {
        reporter.report(Event::step(
            "Settings",
            format!(
                "{} at {:#x}, {} UF2 blocks after the firmware's",
                s.describe(),
                r.1.offset,
                r.1.size.div_ceil(super::uf2::PAGE)
            ),
        ));
    }
    let name = elf
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("firmware");
    let path = copy(&uf2.bytes, drive, name, reporter)?;
    Ok(Flashed { path, uf2 })
}

/// Where an RP2 board's firmware goes.
#[derive(Debug)]
pub enum Target {
    /// Its mounted boot drive.
    Drive(Drive),
    /// The family's tool (picotool) from PATH, as no boot drive is mounted.
    Tool(Flasher),
}

/// Where `board`'s firmware goes, found before a long build as a serial port is: the boot drive
/// `requested` (`--port`, the project's `port`; else the environment variable) or the one
/// mounted; else, when no drive was named, the family's tool if it is on PATH.
pub fn target(board: &Board, requested: Option<&Path>) -> Result<Target> {
    let requested = requested.map(Path::to_path_buf).or_else(|| {
        std::env::var_os(ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let no_drive = match choose(board, requested.as_deref(), &mount_roots()) {
        Ok(drive) => return Ok(Target::Drive(drive)),
        Err(e) => e,
    };
    match super::on_path(board) {
        Ok(tool) if requested.is_none() => Ok(Target::Tool(tool)),
        _ => Err(no_drive),
    }
}

/// What [`flash_to`] did.
#[derive(Debug)]
pub enum Done {
    /// The UF2 file it wrote onto the boot drive.
    Copied(Flashed),
    /// The tool's run.
    Ran(super::Outcome),
}

/// Flashes `elf` to `board` at `target` (reported first): the UF2 file onto the boot drive, or
/// the ELF with the tool, its output live.
pub fn flash_to(
    board: &Board,
    elf: &Path,
    target: Target,
    plan: &Plan,
    reporter: &dyn Reporter,
) -> Result<Done> {
    crate::firmware::check(board, elf)?;
    let shown = crate::process::shell_word(&elf.to_string_lossy());
    match target {
        Target::Tool(tool) if plan.writes_settings() => Err(Failure::new(
            Kind::Unsupported,
            format!(
                "settings go to the {} with its boot drive, and none is mounted ({} flashes \
                 firmware only)",
                board.name, tool.name
            ),
        )
        .hint(format!(
            "nothing was flashed; hold BOOTSEL while you plug the board in, so that its {} \
             drive is mounted, or write the UF2 with `nixflash image --set ...` and load it \
             with `{} load <file>.uf2`",
            board.flash.boot_drive.as_deref().unwrap_or("boot"),
            tool.name
        ))
        .into()),
        Target::Tool(tool) => {
            reporter.report(Event::step(
                "Flashing",
                format!("with {tool}: no boot drive is mounted"),
            ));
            let cmd = super::command(&tool, board, elf, None, None, None)?;
            super::run(tool, cmd, reporter).map(Done::Ran)
        }
        Target::Drive(drive) => {
            reporter.report(Event::step(
                "Flashing",
                format!(
                    "{shown} onto the {}'s boot drive {} ({})",
                    board.name,
                    crate::process::shell_word(&drive.path.to_string_lossy()),
                    drive.board_id
                ),
            ));
            flash(board, elf, plan, &drive, reporter).map(Done::Copied)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Database;

    fn drive(root: &Path, name: &str, id: &str) -> PathBuf {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(INFO),
            format!("UF2 Bootloader v3.0\r\nModel: Raspberry Pi RP2\r\nBoard-ID: {id}\r\n"),
        )
        .unwrap();
        d
    }

    #[test]
    fn the_boards_drive_is_found_and_another_chips_refused() {
        let db = Database::builtin().unwrap();
        let pico = db.get("pico").unwrap();
        let pico2 = db.get("pico2").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let roots = vec![tmp.path().join("media"), tmp.path().join("nowhere")];
        std::fs::create_dir_all(&roots[0]).unwrap();
        std::fs::create_dir_all(roots[0].join("USB STICK")).unwrap();

        let e = crate::error::Report::of(&choose(pico, None, &roots).unwrap_err());
        assert!(e.error.contains("no RPI-RP2 boot drive"), "{e:?}");
        assert!(e.error.contains("nowhere"), "{e:?}");
        assert!(e.hints[0].contains("hold the BOOTSEL button"), "{e:?}");

        let rp2 = drive(&roots[0], "RPI-RP2", "RPI-RP2");
        let found = choose(pico, None, &roots).unwrap();
        assert_eq!(
            (found.path, found.board_id.as_str()),
            (rp2.clone(), "RPI-RP2")
        );
        assert_eq!(found.model.as_deref(), Some("Raspberry Pi RP2"));

        let e = crate::error::Report::of(&choose(pico2, None, &roots).unwrap_err());
        assert!(e.error.contains("Board-ID is RPI-RP2"), "{e:?}");
        let e = crate::error::Report::of(&choose(pico2, Some(&rp2), &roots).unwrap_err());
        assert!(e.error.contains("shows RP2350"), "{e:?}");
        let e = crate::error::Report::of(
            &choose(pico, Some(&roots[0].join("USB STICK")), &roots).unwrap_err(),
        );
        assert!(e.error.contains("is not a UF2 boot drive"), "{e:?}");

        drive(&roots[0], "RPI-RP2 1", "RPI-RP2");
        let e = crate::error::Report::of(&choose(pico, None, &roots).unwrap_err());
        assert!(e.error.contains("several RPI-RP2 boot drives"), "{e:?}");
        assert_eq!(choose(pico, Some(&rp2), &roots).unwrap().path, rp2);
    }
}
