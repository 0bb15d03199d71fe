//! Flashing: finding the board family's flasher (ravedude for AVR, espflash for ESP32) and running
//! it on a firmware ELF, its output live and its exit code returned. What the flasher is, how new
//! it must be, what it needs beside it and its command line are the family's data
//! ([`crate::board::family::Flasher`]).
//!
//! The flasher is the one on PATH when it is new enough, otherwise the one the project's flake pins
//! (`packages.<system>.flasher`), realised with `nix build .#flasher`, so that a machine with only
//! Nix can flash.

pub mod boot_drive;
pub mod uf2;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::board::family::Need;
use crate::board::{Board, FlashTool};
use crate::error::Failure;
use crate::nix::Nix;
use crate::process::Cmd;
use crate::report::{Event, Reporter};
use crate::version::Version;

/// Where the flasher comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Found on PATH.
    Path,
    /// `packages.<system>.flasher` of the project's flake, realised at this store path.
    Flake(PathBuf),
}

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
            "{} {} ({}",
            self.tool.as_str(),
            self.version,
            self.program.display()
        )?;
        match &self.source {
            Source::Path => f.write_str(", from PATH)"),
            Source::Flake(_) => f.write_str(", pinned by the project's flake.nix)"),
        }
    }
}

const NIX_HINT: &str = "or install Nix (https://nixos.org/download): nixflash then uses the \
                        flasher pinned by the project's flake.nix";

/// Runs `program args` with `path` as PATH and returns its stdout and stderr together.
fn output_of(program: &Path, args: &[String], path: &OsString) -> Option<String> {
    let out = Cmd::new(program)
        .args(args)
        .env("PATH", path)
        .output()
        .ok()?;
    Some(format!("{}\n{}", out.stdout_text(), out.stderr))
}

/// Checks a program the flasher needs: there, and new enough.
fn check_need(
    need: &Need,
    tool: &str,
    find: &dyn Fn(&str) -> Option<PathBuf>,
    path: &OsString,
) -> Result<()> {
    let why = need
        .why
        .as_deref()
        .map(|w| format!(" ({w})"))
        .unwrap_or_default();
    let program = find(&need.program)
        .with_context(|| format!("{} is not on PATH, and {tool} needs it{why}", need.program))?;
    let Some(min) = need.min_version else {
        return Ok(());
    };
    let text = output_of(&program, &need.version_args, path)
        .with_context(|| format!("cannot run {}", program.display()))?;
    let after = match &need.version_after {
        Some(word) => text.rsplit(word.as_str()).next().unwrap_or(&text),
        None => &text,
    };
    let version = Version::find_in(after).with_context(|| {
        format!(
            "cannot read the version of {} from `{} {}`",
            program.display(),
            need.program,
            need.version_args.join(" ")
        )
    })?;
    if version < min {
        anyhow::bail!(
            "{} is {} {version}; {tool} needs {} >= {min}",
            program.display(),
            need.program,
            need.program
        );
    }
    Ok(())
}

/// Checks the board's flasher found in `path`: its version and what it needs next to it.
/// The error says why it cannot be used.
pub fn check(board: &Board, path: &OsString, source: Source) -> Result<Flasher> {
    let spec = &board.family().flasher;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let find = |name: &str| which::which_in(name, Some(path), &cwd).ok();
    let name = spec.tool.as_str();
    let program = find(name).with_context(|| format!("{name} is not on PATH"))?;
    let text = output_of(&program, &["--version".to_string()], path)
        .with_context(|| format!("cannot run {}", program.display()))?;
    let version = Version::find_in(&text).with_context(|| {
        format!(
            "cannot read the version of {} from `{name} --version`: {}",
            program.display(),
            text.trim()
        )
    })?;
    if version < spec.min_version {
        anyhow::bail!(
            "{} is {name} {version}; nixflash needs {name} >= {}",
            program.display(),
            spec.min_version
        );
    }
    for need in &spec.needs {
        check_need(need, &format!("{name} {version}"), &find, path)?;
    }
    Ok(Flasher {
        tool: spec.tool,
        program,
        version,
        source,
        path: path.clone(),
    })
}

/// The flasher for `board`: the one on PATH if it is new enough, else the flake's, built with
/// `nix_args` added to the nix command.
pub fn find(board: &Board, project_root: &Path, nix_args: &[String]) -> Result<Flasher> {
    let spec = &board.family().flasher;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = match check(board, &path, Source::Path) {
        Ok(f) => return Ok(f),
        Err(e) => e,
    };
    let flake = project_root.join("flake.nix");
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let nix = which::which_in("nix", Some(&path), cwd).ok();
    let (Some(nix), true) = (nix.clone(), flake.is_file()) else {
        let why_not_nix = if nix.is_none() {
            "Nix is not installed".to_string()
        } else {
            format!("{} does not exist", flake.display())
        };
        return Err(Failure::new(format!(
            "no usable {name}: {on_path:#}, and {why_not_nix}, so the flasher the project's flake \
             pins cannot be used either",
            name = spec.tool.as_str(),
        ))
        .hint(format!("install it with {}", spec.how_to_install()))
        .hint(NIX_HINT)
        .into());
    };
    eprintln!(
        "{} on PATH cannot be used ({on_path:#}): building the one {} pins \
         (nix build .#flasher) ...",
        spec.tool.as_str(),
        flake.display()
    );
    let nix = Nix {
        path: nix,
        verbose: false,
        extra_args: nix_args.to_vec(),
    };
    let out = realise_flake_flasher(&nix, project_root)?;
    let mut flake_path = OsString::from(out.join("bin"));
    if !path.is_empty() {
        flake_path.push(":");
        flake_path.push(&path);
    }
    check(board, &flake_path, Source::Flake(out.clone())).map_err(|e| {
        Failure::new(format!(
            "the flasher the project's flake pins ({}) cannot be used",
            out.display()
        ))
        .hint(format!("install one with {}", spec.how_to_install()))
        .because(e)
        .into()
    })
}

/// `nix build .#flasher --no-link --json` in `project_root`, its progress live; the out path.
pub fn realise_flake_flasher(nix: &Nix, project_root: &Path) -> Result<PathBuf> {
    let run = nix.run(
        project_root,
        &["build", ".#flasher", "--no-link", "--json"],
        "building the flasher",
    )?;
    if !run.success() {
        let shown = !std::io::IsTerminal::is_terminal(&std::io::stderr());
        let vars = [("nix_args", crate::process::shell_line(&nix.extra_args))];
        return Err(crate::nix::BuildFailed::new("nix build .#flasher", run, shown, &vars).into());
    }
    crate::nix::out_path(&run.stdout_text())
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

/// What [`flash`] did.
#[derive(Debug)]
pub struct Outcome {
    pub flasher: Flasher,
    /// The flasher's exit code (128 + the signal if a signal ended it).
    pub code: i32,
}

/// Flashes `elf` to `board` through `port` with the board's flasher, reporting which flasher and
/// command are used, the flasher's output live. `project_root` holds Ravedude.toml and flake.nix;
/// `nix_args` go to the nix command that builds the flake's flasher, if that is needed.
pub fn flash(
    board: &Board,
    project_root: &Path,
    elf: &Path,
    port: &str,
    nix_args: &[String],
    reporter: &dyn Reporter,
) -> Result<Outcome> {
    let flasher = prepare(board, project_root, elf, port, nix_args, reporter)?;
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
    project_root: &Path,
    elf: &Path,
    port: &str,
    nix_args: &[String],
    reporter: &dyn Reporter,
) -> Result<Flasher> {
    crate::serial::access::check(port)?;
    crate::serial::access::check_free(port)?;
    crate::firmware::check(board, elf)?;
    let flasher = find(board, project_root, nix_args)?;
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
}
