//! Flashing: finding the board family's flasher (ravedude for AVR, espflash for ESP32) and running
//! it on a firmware ELF, its output live and its exit code returned. What the flasher is, how new
//! it must be, what it needs beside it and its command line are the family's data
//! ([`crate::board::family::Flasher`]).
//!
//! The flasher is the one on PATH when it is new enough, otherwise the one the project's flake pins
//! (`packages.<system>.flasher`), realised with `nix build .#flasher` ([`crate::tool`]), so that a
//! machine with only Nix can flash.

pub mod boot_drive;
pub mod uf2;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::board::{Board, FlashTool};
use crate::error::Failure;
use crate::process::Cmd;
use crate::report::{Event, Reporter};
use crate::tool::{Flake, Wanted};
use crate::version::Version;

pub use crate::tool::Source;

/// A flasher ready to run.
#[derive(Debug, Clone)]
pub struct Flasher {
    pub tool: FlashTool,
    /// The ravedude or espflash executable.
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
            self.tool.as_str(),
            self.version,
            self.program.display(),
            self.source.describe()
        )
    }
}

/// Checks the board's flasher found in `path`: its version and what it needs next to it.
/// The error says why it cannot be used.
pub fn check(board: &Board, path: &OsString, source: Source) -> Result<Flasher> {
    let spec = &board.family().flasher;
    let (program, version) =
        crate::tool::check_version(spec.tool.as_str(), spec.min_version, &spec.needs, path)?;
    Ok(Flasher {
        tool: spec.tool,
        program,
        version,
        source,
        path: path.clone(),
    })
}

/// The flasher for `board`: the one on PATH if it is new enough, else the one `flake` pins.
pub fn find(board: &Board, flake: &Flake, reporter: &dyn Reporter) -> Result<Flasher> {
    let spec = &board.family().flasher;
    let check = |path: &OsString, source: Source| check(board, path, source);
    let wanted = Wanted {
        name: spec.tool.as_str(),
        role: "flasher",
        install: format!("install it with {}", spec.how_to_install()),
        build_hint: None,
        check: &check,
    };
    crate::tool::find(&wanted, flake, reporter)
}

/// The command that flashes `elf` through `port`: the family's flasher arguments filled in. For
/// ravedude, `ravedude_dir` is the folder whose Ravedude.toml it reads (see [`ravedude_config`]).
pub fn command(
    flasher: &Flasher,
    board: &Board,
    elf: &Path,
    port: &str,
    ravedude_dir: Option<&Path>,
) -> Result<Cmd> {
    let elf = elf.display().to_string();
    let fill = [("port", port), ("elf", elf.as_str())];
    let args = board
        .family()
        .flasher
        .args
        .iter()
        .map(|a| board.fill(a, &fill))
        .collect::<Result<Vec<String>>>()?;
    let mut cmd = Cmd::new(&flasher.program);
    // ravedude reads Ravedude.toml from CARGO_MANIFEST_DIR before the working directory.
    if let (FlashTool::Ravedude, Some(dir)) = (flasher.tool, ravedude_dir) {
        cmd = cmd.env("CARGO_MANIFEST_DIR", dir);
    }
    Ok(cmd.env("PATH", &flasher.path).args(args))
}

/// The Ravedude.toml ravedude gets: the project's own, or one made from the board, always with
/// `open-console = false` (nixflash has its own monitor, and ravedude has no flag to turn its
/// console off).
pub fn ravedude_config(board: &Board, project_root: &Path) -> Result<String> {
    let path = project_root.join("Ravedude.toml");
    let mut doc = match std::fs::read_to_string(&path) {
        Ok(text) => text.parse::<toml_edit::DocumentMut>().map_err(|e| {
            Failure::new(format!("{}: invalid TOML: {}", path.display(), e.message())).hint(
                format!(
                    "fix it, or delete it: nixflash makes one from the board (`nixflash init \
                     --board {} --force` writes it again)",
                    board.id
                ),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ravedude_board(board),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let general = doc
        .entry("general")
        .or_insert(toml_edit::table())
        .as_table_mut()
        .with_context(|| format!("{}: `general` is not a table", path.display()))?;
    general["open-console"] = toml_edit::value(false);
    Ok(doc.to_string())
}

/// A Ravedude.toml for the board: ravedude's name for it, or, for a board ravedude has no name
/// for (a user's board), the board defined inline as the one it inherits that ravedude has.
fn ravedude_board(board: &Board) -> toml_edit::DocumentMut {
    let mut doc = toml_edit::DocumentMut::new();
    let mut general = toml_edit::Table::new();
    let fb = board.flasher_board();
    if let Some(name) = fb.as_ref().and_then(|f| f.named.as_deref()) {
        general["board"] = toml_edit::value(name);
    }
    general["serial-baudrate"] = toml_edit::value(i64::from(board.monitor.baud));
    doc["general"] = toml_edit::Item::Table(general);
    if let Some(like) = fb.as_ref().and_then(|f| f.like.as_deref()) {
        let mut inline = toml_edit::Table::new();
        inline["name"] = toml_edit::value(board.name.as_str());
        inline["inherit"] = toml_edit::value(like);
        doc["board"] = toml_edit::Item::Table(inline);
    }
    doc
}

/// Checks that `elf` is an ELF for the board's processor (the family's ELF machine).
pub fn check_elf(board: &Board, elf: &Path) -> Result<()> {
    let data = std::fs::read(elf)
        .with_context(|| format!("cannot read the firmware {}", elf.display()))?;
    let machine = elf_machine(&data).ok_or_else(|| {
        Failure::new(format!("{} is not an ELF file", elf.display())).hint(
            "flash the .elf the build makes (result/bin/<name>.elf, or \
             target/<target>/release/<name> with cargo)",
        )
    })?;
    let family = board.family();
    if machine != family.elf_machine {
        let what = family.machine_name();
        return Err(Failure::new(format!(
            "{} is not {what} firmware (ELF machine {machine}), but the {} needs {what} firmware",
            elf.display(),
            board.name
        ))
        .hint(format!(
            "is it built for the right board? This project is for `{}`",
            board.id
        ))
        .into());
    }
    Ok(())
}

/// The `e_machine` of an ELF file's header, read with `object`.
pub fn elf_machine(data: &[u8]) -> Option<u16> {
    use object::read::elf::FileHeader;
    match object::FileKind::parse(data).ok()? {
        object::FileKind::Elf32 => {
            let h = object::elf::FileHeader32::<object::Endianness>::parse(data).ok()?;
            Some(h.e_machine(h.endian().ok()?))
        }
        object::FileKind::Elf64 => {
            let h = object::elf::FileHeader64::<object::Endianness>::parse(data).ok()?;
            Some(h.e_machine(h.endian().ok()?))
        }
        _ => None,
    }
}

/// What [`flash`] did.
#[derive(Debug)]
pub struct Outcome {
    pub flasher: Flasher,
    /// The flasher's exit code (128 + the signal if a signal ended it).
    pub code: i32,
}

/// Flashes `elf` to `board` through `port` with the board's flasher, reporting which flasher and
/// command are used, the flasher's output live. `project_root` holds Ravedude.toml; `flake` builds
/// the flasher it pins, if that is needed.
pub fn flash(
    board: &Board,
    project_root: &Path,
    elf: &Path,
    port: &str,
    flake: &Flake,
    reporter: &dyn Reporter,
) -> Result<Outcome> {
    let flasher = prepare(board, elf, port, flake, reporter)?;
    let config_dir = match flasher.tool {
        FlashTool::Ravedude => {
            let text = ravedude_config(board, project_root)?;
            let dir = tempfile::Builder::new()
                .prefix("nixflash-ravedude-")
                .tempdir()
                .context("cannot create a temporary folder for Ravedude.toml")?;
            std::fs::write(dir.path().join("Ravedude.toml"), text)
                .context("cannot write a temporary Ravedude.toml")?;
            Some(dir)
        }
        FlashTool::Espflash | FlashTool::Picotool => None,
    };
    let cmd = command(
        &flasher,
        board,
        elf,
        port,
        config_dir.as_ref().map(|d| d.path()),
    )?
    .dir(project_root);
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
    check_elf(board, elf)?;
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

    fn flasher(tool: FlashTool, program: &str) -> Flasher {
        Flasher {
            tool,
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
        let f = flasher(FlashTool::Espflash, "/opt/bin/espflash");
        let cmd = command(
            &f,
            board,
            Path::new("/p/result/bin/c3.elf"),
            "/dev/ttyUSB0",
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
        let cmd = command(&f, c6, Path::new("fw.elf"), "/dev/ttyACM1", None).unwrap();
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
    fn ravedude_command_line_reads_the_given_config_folder() {
        let db = Database::builtin().unwrap();
        let board = db.get("uno").unwrap();
        let f = flasher(FlashTool::Ravedude, "/usr/bin/ravedude");
        let cmd = command(
            &f,
            board,
            Path::new("/p/fw.elf"),
            "/dev/ttyACM0",
            Some(Path::new("/tmp/cfg")),
        )
        .unwrap();
        assert_eq!(args(&cmd), ["-P", "/dev/ttyACM0", "/p/fw.elf"]);
        assert_eq!(
            cmd.display(),
            "CARGO_MANIFEST_DIR=/tmp/cfg /usr/bin/ravedude -P /dev/ttyACM0 /p/fw.elf"
        );
    }

    #[test]
    fn ravedude_config_turns_the_console_off() {
        let db = Database::builtin().unwrap();
        let board = db.get("uno").unwrap();
        let dir = tempfile::tempdir().unwrap();
        // No Ravedude.toml: one is made from the board.
        let made: toml::Table =
            toml::from_str(&ravedude_config(board, dir.path()).unwrap()).unwrap();
        assert_eq!(made["general"]["board"].as_str(), Some("uno"));
        assert_eq!(made["general"]["serial-baudrate"].as_integer(), Some(57600));
        assert_eq!(made["general"]["open-console"].as_bool(), Some(false));
        // The project's own keeps everything else, comments included.
        std::fs::write(
            dir.path().join("Ravedude.toml"),
            "# mine\n[general]\nboard = \"nano\"\nopen-console = true\nreset-delay = 10\n",
        )
        .unwrap();
        let text = ravedude_config(board, dir.path()).unwrap();
        assert!(text.starts_with("# mine\n"), "{text}");
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(t["general"]["board"].as_str(), Some("nano"));
        assert_eq!(t["general"]["reset-delay"].as_integer(), Some(10));
        assert_eq!(t["general"]["open-console"].as_bool(), Some(false));
        // A malformed one says what to do.
        std::fs::write(dir.path().join("Ravedude.toml"), "[general\nboard = 1\n").unwrap();
        let e = crate::error::Report::of(&ravedude_config(board, dir.path()).unwrap_err());
        assert!(e.error.contains("Ravedude.toml: invalid TOML"), "{e:?}");
        assert!(
            e.hints[0].contains("nixflash init --board uno --force"),
            "{e:?}"
        );
    }

    #[test]
    fn ravedude_config_defines_a_user_board_inline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("myuno.toml"),
            "inherit = \"uno\"\nid = \"myuno\"\nname = \"My Uno\"\n",
        )
        .unwrap();
        let db = Database::load_from(Some(dir.path()), None).unwrap();
        let board = db.get("myuno").unwrap();
        // No Ravedude.toml: ravedude's own format for a board it has no name for.
        let made: toml::Table =
            toml::from_str(&ravedude_config(board, dir.path()).unwrap()).unwrap();
        assert_eq!(made["general"].get("board"), None, "{made}");
        assert_eq!(made["general"]["open-console"].as_bool(), Some(false));
        assert_eq!(made["board"]["inherit"].as_str(), Some("uno"), "{made}");
        assert_eq!(made["board"]["name"].as_str(), Some("My Uno"));
        // Its chip is the one of ravedude's `uno` (a partial [board.avrdude] is an error).
        assert_eq!(made["board"].get("avrdude"), None, "{made}");
    }

    #[test]
    fn elf_machine_must_match_the_board() {
        let db = Database::builtin().unwrap();
        let uno = db.get("uno").unwrap();
        let c3 = db.get("esp32c3").unwrap();
        let dir = tempfile::tempdir().unwrap();
        // A minimal ELF32 header for AVR (e_machine 83).
        let mut avr = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0];
        avr.extend([0; 8]);
        avr.extend([2, 0, 83, 0, 1, 0, 0, 0]);
        avr.extend([0; 12]); // entry, program and section header offsets
        avr.extend([0, 0, 0, 0, 52, 0, 32, 0, 0, 0, 40, 0, 0, 0, 0, 0]);
        let p = dir.path().join("fw.elf");
        std::fs::write(&p, &avr).unwrap();
        assert_eq!(elf_machine(&avr), Some(83));
        check_elf(uno, &p).unwrap();
        let e = format!("{:#}", check_elf(c3, &p).unwrap_err());
        assert!(e.contains("not RISC-V firmware (ELF machine 83)"), "{e}");
        std::fs::write(&p, b"#!/bin/sh\necho not an elf\n").unwrap();
        let e = format!("{:#}", check_elf(uno, &p).unwrap_err());
        assert!(e.contains("is not an ELF file"), "{e}");
    }
}
