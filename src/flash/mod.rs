//! Flashing: the way the board's family flashes ([`crate::board::FlashMethod`], the family's data;
//! what each way means is in flash/method.rs): through the serial port with the family's flasher
//! (ravedude for AVR, with its Ravedude.toml: [`ravedude`]; espflash for ESP32, with the settings
//! image: [`settings`]), its output live and its exit code returned, onto the chip's boot drive
//! as a UF2 file ([`boot_drive`], [`uf2`]), or through a debug probe with probe-rs ([`probe`]).
//! What the flasher is, how new it must be, what it needs beside it and its command line are the
//! family's data too.
//!
//! The flasher is the one on PATH when it is new enough, otherwise the one the project's flake pins
//! (`packages.<system>.flasher`), realised with `nix build .#flasher` ([`crate::tool`]), so that a
//! machine with only Nix can flash.

pub mod boot_drive;
pub mod hash;
pub mod image;
pub mod many;
mod method;
pub use method::ImageKind;
pub mod probe;
pub mod ravedude;
pub mod segments;
pub mod settings;
pub mod uf2;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::board::Board;
use crate::process::Cmd;
use crate::report::{Event, Reporter};
use crate::tool::{Flake, Wanted};
use crate::version::Version;

pub use crate::tool::Source;

/// A flasher ready to run.
#[derive(Debug, Clone)]
pub struct Flasher {
    /// Its name (`ravedude`, `espflash`, `picotool`).
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    pub version: Version,
    pub source: Source,
    /// The PATH the flasher runs with (with the flake's `bin/` first, so ravedude finds its avrdude).
    pub path: OsString,
}

impl fmt::Display for Flasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}, {})",
            self.name,
            self.version,
            self.program.display(),
            self.source.describe()
        )
    }
}

/// Checks the board's flasher found in `path`: its version and what it needs next to it.
/// The error says why it cannot be used.
pub fn check(board: &Board, path: &OsString, source: Source) -> Result<Flasher> {
    check_program(board.family().flasher.tool(), path, source)
}

/// Checks the flashing program `spec` found in `path`: its version and what it needs next to it.
pub fn check_program(
    spec: &crate::board::flasher::FlashProgram,
    path: &OsString,
    source: Source,
) -> Result<Flasher> {
    let (program, version) =
        crate::tool::check_version(&spec.name, spec.min_version, &spec.needs, path)?;
    Ok(Flasher {
        name: spec.name.clone(),
        program,
        version,
        source,
        path: path.clone(),
    })
}

/// The flasher for `board`: the one on PATH if it is new enough, else the one `flake` pins.
pub fn find(board: &Board, flake: &Flake, reporter: &dyn Reporter) -> Result<Flasher> {
    crate::tool::find(&wanted(board, &|p, s| check(board, p, s)), flake, reporter)
}

/// The flasher for `board` from PATH, if it is new enough: the error says why not.
pub fn on_path(board: &Board) -> Result<Flasher> {
    crate::tool::on_path(&wanted(board, &|p, s| check(board, p, s)))
}

/// The board's flasher, as [`crate::tool`] looks for it.
fn wanted<'a>(
    board: &'a Board,
    check: &'a dyn Fn(&OsString, Source) -> Result<Flasher>,
) -> Wanted<'a, Flasher> {
    let spec = board.family().flasher.tool();
    Wanted {
        name: &spec.name,
        role: "flasher",
        install: format!("install it with {}", spec.how_to_install()),
        build_hint: None,
        check,
    }
}

impl Flasher {
    /// The flasher with `args`, run with its PATH.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Cmd {
        Cmd::new(&self.program).env("PATH", &self.path).args(args)
    }
}

/// `template` (a command line of the family's flasher) with `fill` and the board's fields filled
/// in, and the flasher's partition-table arguments put before the argument that names the
/// firmware when there is a `table`.
pub fn fill_args(
    board: &Board,
    template: &[String],
    table: Option<&Path>,
    fill: &[(&str, &str)],
) -> Result<Vec<String>> {
    let table = table.map(|t| t.display().to_string());
    let mut fill = fill.to_vec();
    if let Some(t) = &table {
        fill.push(("partition_table", t.as_str()));
    }
    let mut out = Vec::new();
    for a in template {
        if a.contains("{elf}") && table.is_some() {
            for p in board.family().flasher.partition_table_args() {
                out.push(board.fill(p, &fill)?);
            }
        }
        out.push(board.fill(a, &fill)?);
    }
    Ok(out)
}

/// The command that flashes `elf` through `port` (none for a flasher that finds the board itself,
/// as picotool does): the family's flasher arguments filled in, with the project's partition
/// table `table` if it has one. `config_dir` is the folder whose
/// Ravedude.toml ravedude reads (see [`crate::board::FlashMethod::config_dir`]).
pub fn command(
    flasher: &Flasher,
    board: &Board,
    elf: &Path,
    port: Option<&str>,
    table: Option<&Path>,
    config_dir: Option<&Path>,
) -> Result<Cmd> {
    let elf = elf.display().to_string();
    let mut fill = vec![("elf", elf.as_str())];
    fill.extend(port.map(|p| ("port", p)));
    let args = fill_args(board, &board.family().flasher.tool().args, table, &fill)?;
    let mut cmd = flasher.command(&args);
    // ravedude reads Ravedude.toml from CARGO_MANIFEST_DIR before the working directory.
    if let Some(dir) = config_dir {
        cmd = cmd.env("CARGO_MANIFEST_DIR", dir);
    }
    Ok(cmd)
}

/// What [`flash`] did.
#[derive(Debug)]
pub struct Outcome {
    pub flasher: Flasher,
    /// The flasher's exit code (128 + the signal if a signal ended it).
    pub code: i32,
}

/// Flashes `elf` to `board` through `port` with the board's flasher, with the settings `plan`
/// says (the image from offset 0, or the app with the project's partition table, on a family that
/// makes images), reporting which flasher and command are used, the flasher's output live.
/// `project_root` holds Ravedude.toml; `flake` builds the flasher it pins, if that is needed.
pub fn flash(
    board: &Board,
    project_root: &Path,
    elf: &Path,
    port: &str,
    plan: settings::Plan,
    flake: &Flake,
    reporter: &dyn Reporter,
) -> Result<Outcome> {
    let dir = project_root;
    if let Some(done) = settings::flash(plan, board, dir, elf, port, flake, reporter)? {
        return Ok(done);
    }
    let flasher = prepare(board, elf, port, flake, reporter)?;
    let config_dir = board.family().flasher.config_dir(board, project_root)?;
    let config_dir = config_dir.as_ref().map(|d| d.path());
    let cmd = command(&flasher, board, elf, Some(port), None, config_dir)?.dir(project_root);
    run(flasher, cmd, reporter)
}

/// What every way of flashing checks and finds first: the port can be opened and nothing holds
/// it, `elf` is firmware for `board`, and the board's flasher (reported).
pub fn prepare(
    board: &Board,
    elf: &Path,
    port: &str,
    flake: &Flake,
    reporter: &dyn Reporter,
) -> Result<Flasher> {
    crate::serial::access::check(port)?;
    crate::serial::access::check_free(port)?;
    crate::firmware::check(board, elf)?;
    let flasher = find(board, flake, reporter)?;
    reporter.report(Event::step("Flasher", flasher.to_string()));
    Ok(flasher)
}

/// Runs the flasher's command `cmd`, reported first, with its output live.
pub fn run(flasher: Flasher, cmd: Cmd, reporter: &dyn Reporter) -> Result<Outcome> {
    reporter.report(Event::step("Running", cmd.display()));
    let code = cmd
        .attached()
        .with_context(|| format!("cannot run {}", flasher.program.display()))?;
    Ok(Outcome { flasher, code })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Database;

    fn flasher(name: &str, program: &str) -> Flasher {
        Flasher {
            name: name.into(),
            program: PathBuf::from(program),
            version: Version(9, 9, 9),
            source: Source::Path,
            path: OsString::from("/usr/bin"),
        }
    }

    fn args(cmd: &Cmd) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn espflash_command_lines_for_the_esp32c3_and_c6() {
        let db = Database::builtin().unwrap();
        let board = db.get("esp32c3").unwrap();
        let f = flasher("espflash", "/opt/bin/espflash");
        let cmd = command(
            &f,
            board,
            Path::new("/p/result/bin/c3.elf"),
            Some("/dev/ttyUSB0"),
            None,
            None,
        )
        .unwrap();
        assert_eq!(cmd.program(), "/opt/bin/espflash");
        assert_eq!(
            args(&cmd),
            [
                "flash",
                "--chip",
                "esp32c3",
                "--port",
                "/dev/ttyUSB0",
                "--baud",
                "921600",
                "/p/result/bin/c3.elf"
            ]
        );
        assert_eq!(
            cmd.display(),
            "/opt/bin/espflash flash --chip esp32c3 --port /dev/ttyUSB0 --baud 921600 \
             /p/result/bin/c3.elf"
        );
        let c6 = db.get("esp32c6").unwrap();
        let cmd = command(
            &f,
            c6,
            Path::new("fw.elf"),
            Some("/dev/ttyACM1"),
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            args(&cmd),
            [
                "flash",
                "--chip",
                "esp32c6",
                "--port",
                "/dev/ttyACM1",
                "--baud",
                "921600",
                "fw.elf"
            ]
        );
    }

    #[test]
    fn probe_rs_command_line_names_the_chip_and_no_port() {
        let db = Database::builtin().unwrap();
        let f = flasher("probe-rs", "/usr/bin/probe-rs");
        for (id, chip) in [
            ("nucleo-f411re", "STM32F411RETx"),
            ("microbit-v2", "nRF52833_xxAA"),
        ] {
            let board = db.get(id).unwrap();
            let cmd = command(&f, board, Path::new("/p/fw.elf"), None, None, None).unwrap();
            assert_eq!(args(&cmd), ["download", "--chip", chip, "/p/fw.elf"]);
        }
    }

    #[test]
    fn ravedude_command_line_reads_the_given_config_folder() {
        let db = Database::builtin().unwrap();
        let board = db.get("uno").unwrap();
        let f = flasher("ravedude", "/usr/bin/ravedude");
        let cmd = command(
            &f,
            board,
            Path::new("/p/fw.elf"),
            Some("/dev/ttyACM0"),
            None,
            Some(Path::new("/tmp/cfg")),
        )
        .unwrap();
        assert_eq!(args(&cmd), ["-P", "/dev/ttyACM0", "/p/fw.elf"]);
        assert_eq!(
            cmd.display(),
            "CARGO_MANIFEST_DIR=/tmp/cfg /usr/bin/ravedude -P /dev/ttyACM0 /p/fw.elf"
        );
    }
}
