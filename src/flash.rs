//! Flashing: finding the flasher (ravedude for AVR, espflash for ESP32) and running it on a
//! firmware ELF, its output live and its exit code returned.
//!
//! The flasher is the one on PATH when it is new enough, otherwise the one the project's flake pins
//! (`packages.<system>.flasher`), realised with `nix build .#flasher`, so that a machine with only
//! Nix can flash.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::board::{Board, FlashTool};

/// A version number: major, minor, patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// The first `X.Y[.Z]` in `text` (a leading `v` allowed), e.g. in `ravedude v0.2.2 (no git)`.
    pub fn find_in(text: &str) -> Option<Version> {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.')) {
            let w = word.strip_prefix('v').unwrap_or(word);
            let mut parts = w.split('.');
            let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
                continue;
            };
            let num = |s: &str| -> Option<u32> {
                let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
                digits.parse().ok()
            };
            let (Some(major), Some(minor)) = (a.parse().ok(), num(b)) else {
                continue;
            };
            let patch = parts.next().and_then(num).unwrap_or(0);
            return Some(Version(major, minor, patch));
        }
        None
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// ravedude 0.2 reads Ravedude.toml (0.1 took the board on the command line).
pub const MIN_RAVEDUDE: Version = Version(0, 2, 0);
/// ravedude refuses older avrdudes.
pub const MIN_AVRDUDE: Version = Version(6, 3, 0);
/// esp-hal 1.x images carry an ESP-IDF app descriptor and need espflash 4's bootloader handling.
pub const MIN_ESPFLASH: Version = Version(4, 0, 0);

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

/// How to get the flasher without Nix, for error messages.
fn install_hint(tool: FlashTool) -> &'static str {
    match tool {
        FlashTool::Ravedude => {
            "hint: install it with `cargo install ravedude --locked` (it also needs avrdude >= 6.3 \
             and avr-gcc on PATH: `sudo apt install avrdude gcc-avr` on Debian and Ubuntu)"
        }
        FlashTool::Espflash => "hint: install it with `cargo install espflash --locked`",
    }
}

const NIX_HINT: &str = "hint: or install Nix (https://nixos.org/download): nixflash then uses the \
                        flasher pinned by the project's flake.nix";

/// Runs `program args` with `path` as PATH and returns its stdout and stderr together.
fn output_of(program: &Path, args: &[&str], path: &OsString) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Some(text)
}

/// The avrdude version as ravedude reads it: from `avrdude -?`, after the word "version".
fn avrdude_version(avrdude: &Path, path: &OsString) -> Option<Version> {
    let text = output_of(avrdude, &["-?"], path)?;
    Version::find_in(text.rsplit("version").next()?)
}

/// Checks the flasher found in `path`: its version and what it needs next to it.
/// The error says why it cannot be used.
pub fn check(tool: FlashTool, path: &OsString, source: Source) -> Result<Flasher> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let find = |name: &str| which::which_in(name, Some(path), &cwd).ok();
    let name = tool.as_str();
    let program = find(name).with_context(|| format!("{name} is not on PATH"))?;
    let text = output_of(&program, &["--version"], path)
        .with_context(|| format!("cannot run {}", program.display()))?;
    let version = Version::find_in(&text).with_context(|| {
        format!(
            "cannot read the version of {} from `{name} --version`: {}",
            program.display(),
            text.trim()
        )
    })?;
    let min = match tool {
        FlashTool::Ravedude => MIN_RAVEDUDE,
        FlashTool::Espflash => MIN_ESPFLASH,
    };
    if version < min {
        bail!(
            "{} is {name} {version}; nixflash needs {name} >= {min}",
            program.display()
        );
    }
    if tool == FlashTool::Ravedude {
        let avrdude = find("avrdude").with_context(|| {
            format!(
                "{name} {version} is at {}, but avrdude, which it runs, is not on PATH",
                program.display()
            )
        })?;
        let av = avrdude_version(&avrdude, path).with_context(|| {
            format!(
                "cannot read the version of {} from `avrdude -?`",
                avrdude.display()
            )
        })?;
        if av < MIN_AVRDUDE {
            bail!(
                "{} is avrdude {av}; ravedude needs avrdude >= {MIN_AVRDUDE}",
                avrdude.display()
            );
        }
        // ravedude 0.2 refuses to flash unless `avr-gcc -v` runs.
        if find("avr-gcc").is_none() {
            bail!(
                "{name} {version} is at {}, but avr-gcc is not on PATH (ravedude >= 0.2 checks \
                 for it before flashing)",
                program.display()
            );
        }
    }
    Ok(Flasher {
        tool,
        program,
        version,
        source,
        path: path.clone(),
    })
}

/// The flasher for `board`: the one on PATH if it is new enough, else the flake's, built with
/// `nix_args` added to the nix command.
pub fn find(board: &Board, project_root: &Path, nix_args: &[String]) -> Result<Flasher> {
    let tool = board.flash.tool;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = match check(tool, &path, Source::Path) {
        Ok(f) => return Ok(f),
        Err(e) => e,
    };
    let flake = project_root.join("flake.nix");
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let nix = which::which_in("nix", Some(&path), cwd).ok();
    let (Some(nix), true) = (nix.as_ref(), flake.is_file()) else {
        let why_not_nix = if nix.is_none() {
            "Nix is not installed".to_string()
        } else {
            format!("{} does not exist", flake.display())
        };
        bail!(
            "no usable {name}: {on_path:#}, and {why_not_nix}, so the flasher the project's \
             flake pins cannot be used either\n{}\n{NIX_HINT}",
            install_hint(tool),
            name = tool.as_str(),
        );
    };
    eprintln!(
        "{} on PATH cannot be used ({on_path:#}): building the one {} pins \
         (nix build .#flasher) ...",
        tool.as_str(),
        flake.display()
    );
    let nix = crate::nix::Nix {
        path: nix.clone(),
        verbose: false,
        extra_args: nix_args.to_vec(),
    };
    let out = realise_flake_flasher(&nix, project_root)?;
    let mut flake_path = OsString::from(out.join("bin"));
    if !path.is_empty() {
        flake_path.push(":");
        flake_path.push(&path);
    }
    check(tool, &flake_path, Source::Flake(out.clone())).with_context(|| {
        format!(
            "the flasher the project's flake pins ({}) cannot be used\n{}",
            out.display(),
            install_hint(tool)
        )
    })
}

/// `nix build .#flasher --no-link --json` in `project_root`, its progress live; the out path.
pub fn realise_flake_flasher(nix: &crate::nix::Nix, project_root: &Path) -> Result<PathBuf> {
    let output = nix
        .command(project_root, &["build", ".#flasher", "--no-link", "--json"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", nix.path.display()))?;
    if !output.status.success() {
        bail!(
            "`nix build .#flasher` failed in {} ({})\nhint: Nix's messages above say why",
            project_root.display(),
            output.status
        );
    }
    crate::nix::out_path(&String::from_utf8_lossy(&output.stdout))
}

/// The command that flashes `elf` through `port`. For ravedude, `ravedude_dir` is the folder whose
/// Ravedude.toml it reads (see [`ravedude_config`]).
pub fn command(
    flasher: &Flasher,
    board: &Board,
    elf: &Path,
    port: &str,
    ravedude_dir: Option<&Path>,
) -> Command {
    let mut cmd = Command::new(&flasher.program);
    cmd.env("PATH", &flasher.path);
    match flasher.tool {
        FlashTool::Ravedude => {
            // ravedude reads Ravedude.toml from CARGO_MANIFEST_DIR before the working directory.
            if let Some(dir) = ravedude_dir {
                cmd.env("CARGO_MANIFEST_DIR", dir);
            }
            cmd.arg("-P").arg(port).arg(elf);
        }
        FlashTool::Espflash => {
            cmd.args(["flash", "--chip", board.flasher_target(), "--port", port])
                .arg("--baud")
                .arg(board.flash.baud.to_string())
                .arg(elf);
        }
    }
    cmd
}

/// The command as a shell would show it (environment first).
pub fn display_command(cmd: &Command) -> String {
    let quote = |s: &std::ffi::OsStr| {
        let s = s.to_string_lossy();
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-:=+,@".contains(c))
        {
            s.into_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    let mut parts = Vec::new();
    for (k, v) in cmd.get_envs() {
        if k == "PATH" {
            continue;
        }
        if let Some(v) = v {
            parts.push(format!("{}={}", k.to_string_lossy(), quote(v)));
        }
    }
    parts.push(quote(cmd.get_program()));
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

/// The Ravedude.toml ravedude gets: the project's own, or one made from the board, always with
/// `open-console = false` (nixflash has its own monitor, and ravedude has no flag to turn its
/// console off).
pub fn ravedude_config(board: &Board, project_root: &Path) -> Result<String> {
    let path = project_root.join("Ravedude.toml");
    let mut doc = match std::fs::read_to_string(&path) {
        Ok(text) => text
            .parse::<toml_edit::DocumentMut>()
            .map_err(|e| anyhow::anyhow!("{}: invalid TOML: {}", path.display(), e.message()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut general = toml_edit::Table::new();
            general["board"] = toml_edit::value(board.flasher_target());
            general["serial-baudrate"] = toml_edit::value(i64::from(board.monitor.baud));
            let mut doc = toml_edit::DocumentMut::new();
            doc["general"] = toml_edit::Item::Table(general);
            doc
        }
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

/// ELF machine numbers nixflash flashes.
const EM_AVR: u16 = 83;
const EM_RISCV: u16 = 243;

/// Checks that `elf` is an ELF for the board's processor.
pub fn check_elf(board: &Board, elf: &Path) -> Result<()> {
    let mut head = [0u8; 20];
    let mut file = std::fs::File::open(elf)
        .with_context(|| format!("cannot open the firmware {}", elf.display()))?;
    let n = std::io::Read::read(&mut file, &mut head)
        .with_context(|| format!("cannot read the firmware {}", elf.display()))?;
    if n < head.len() || &head[..4] != b"\x7fELF" {
        bail!(
            "{} is not an ELF file\nhint: flash the .elf the build makes (result/bin/<name>.elf, \
             or target/<target>/release/<name> with cargo)",
            elf.display()
        );
    }
    let machine = if head[5] == 2 {
        u16::from_be_bytes([head[18], head[19]])
    } else {
        u16::from_le_bytes([head[18], head[19]])
    };
    let (want, what) = match board.family {
        crate::board::Family::Avr => (EM_AVR, "AVR"),
        crate::board::Family::EspRiscv => (EM_RISCV, "RISC-V"),
    };
    if machine != want {
        bail!(
            "{} is not {what} firmware (ELF machine {machine}), but the {} needs {what} firmware\n\
             hint: is it built for the right board? This project is for `{}`",
            elf.display(),
            board.name,
            board.id
        );
    }
    Ok(())
}

/// Checks that `port` exists and that this user may open it.
pub fn check_port(port: &str) -> Result<()> {
    let path = Path::new(port);
    match std::fs::metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "the serial port {port} does not exist\nhint: is the board plugged in? Its port is \
             usually /dev/ttyACM0 or /dev/ttyUSB0 on Linux, /dev/cu.usbmodem* on macOS"
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read the serial port {port}")),
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::MetadataExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .with_context(|| format!("invalid port name {port}"))?;
        // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
        let r = unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) };
        if r != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::PermissionDenied {
                let gid = std::fs::metadata(path).map(|m| m.gid()).ok();
                // A port owned by root's group is no group to join: then name the usual ones.
                match gid.filter(|g| *g != 0).and_then(crate::serial::group_name) {
                    Some(group) => bail!(
                        "permission denied opening the serial port {port} (it belongs to the \
                         group `{group}`)\n\
                         hint: add yourself to that group: `sudo usermod -aG {group} $USER` \
                         (serial ports belong to `dialout` on Debian, Ubuntu and Fedora, `uucp` \
                         on Arch), then log out and in again"
                    ),
                    None => bail!(
                        "permission denied opening the serial port {port}\n\
                         hint: add yourself to the group that may use serial ports: \
                         `sudo usermod -aG dialout $USER` (`uucp` on Arch), then log out and in \
                         again"
                    ),
                }
            }
            return Err(err).with_context(|| format!("cannot open the serial port {port}"));
        }
    }
    Ok(())
}

/// What [`flash`] did.
#[derive(Debug)]
pub struct Outcome {
    pub flasher: Flasher,
    /// The command line run, as a shell would show it.
    pub command: String,
    /// The flasher's exit code (128 + the signal if a signal ended it).
    pub code: i32,
}

/// Flashes `elf` to `board` through `port` with the board's flasher, printing which flasher and
/// command are used, the flasher's output live. `project_root` holds Ravedude.toml and flake.nix;
/// `nix_args` go to the nix command that builds the flake's flasher, if that is needed.
pub fn flash(
    board: &Board,
    project_root: &Path,
    elf: &Path,
    port: &str,
    nix_args: &[String],
) -> Result<Outcome> {
    check_port(port)?;
    check_elf(board, elf)?;
    let flasher = find(board, project_root, nix_args)?;
    eprintln!("Flasher: {flasher}");
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
        FlashTool::Espflash => None,
    };
    let mut cmd = command(
        &flasher,
        board,
        elf,
        port,
        config_dir.as_ref().map(|d| d.path()),
    );
    let shown = display_command(&cmd);
    eprintln!("Running: {shown}");
    let status = cmd
        .current_dir(project_root)
        .status()
        .with_context(|| format!("cannot run {}", flasher.program.display()))?;
    let code = status.code().unwrap_or_else(|| {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        }
        #[cfg(not(unix))]
        1
    });
    Ok(Outcome {
        flasher,
        command: shown,
        code,
    })
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

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn versions_are_found_in_tool_output() {
        assert_eq!(
            Version::find_in("ravedude v0.2.2 (no git)"),
            Some(Version(0, 2, 2))
        );
        assert_eq!(Version::find_in("espflash 4.0.1"), Some(Version(4, 0, 1)));
        assert_eq!(
            Version::find_in("avrdude version 7.1, URL: <https://github.com/avrdudes/avrdude>"),
            Some(Version(7, 1, 0))
        );
        assert_eq!(Version::find_in(" 6.3-20171130"), Some(Version(6, 3, 0)));
        assert_eq!(Version::find_in("no digits here"), None);
        assert!(Version(0, 1, 8) < MIN_RAVEDUDE && Version(0, 2, 0) >= MIN_RAVEDUDE);
    }

    #[test]
    fn espflash_command_line_for_the_esp32c3() {
        let db = Database::builtin().unwrap();
        let board = db.get("esp32c3").unwrap();
        let f = flasher(FlashTool::Espflash, "/opt/bin/espflash");
        let cmd = command(
            &f,
            board,
            Path::new("/p/result/bin/c3.elf"),
            "/dev/ttyUSB0",
            None,
        );
        assert_eq!(cmd.get_program(), "/opt/bin/espflash");
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
            display_command(&cmd),
            "/opt/bin/espflash flash --chip esp32c3 --port /dev/ttyUSB0 --baud 921600 \
             /p/result/bin/c3.elf"
        );
    }

    #[test]
    fn espflash_command_line_for_the_esp32c6() {
        let db = Database::builtin().unwrap();
        let board = db.get("esp32c6").unwrap();
        let f = flasher(FlashTool::Espflash, "espflash");
        let cmd = command(&f, board, Path::new("fw.elf"), "/dev/ttyACM1", None);
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
        );
        assert_eq!(args(&cmd), ["-P", "/dev/ttyACM0", "/p/fw.elf"]);
        assert_eq!(
            display_command(&cmd),
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
    }

    #[test]
    fn shell_display_quotes_what_needs_it() {
        let mut cmd = Command::new("espflash");
        cmd.arg("a b").arg("it's");
        assert_eq!(display_command(&cmd), r"espflash 'a b' 'it'\''s'");
    }

    #[test]
    fn elf_machine_must_match_the_board() {
        let db = Database::builtin().unwrap();
        let uno = db.get("uno").unwrap();
        let c3 = db.get("esp32c3").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut avr = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0];
        avr.extend([0; 8]);
        avr.extend([2, 0, 83, 0]);
        let p = dir.path().join("fw.elf");
        std::fs::write(&p, &avr).unwrap();
        check_elf(uno, &p).unwrap();
        let e = format!("{:#}", check_elf(c3, &p).unwrap_err());
        assert!(e.contains("not RISC-V firmware (ELF machine 83)"), "{e}");
        std::fs::write(&p, b"#!/bin/sh\necho not an elf\n").unwrap();
        let e = format!("{:#}", check_elf(uno, &p).unwrap_err());
        assert!(e.contains("is not an ELF file"), "{e}");
    }

    #[test]
    fn a_missing_port_is_named() {
        let e = format!(
            "{:#}",
            check_port("/dev/nixflash-no-such-port").unwrap_err()
        );
        assert!(
            e.contains("the serial port /dev/nixflash-no-such-port does not exist"),
            "{e}"
        );
    }
}
