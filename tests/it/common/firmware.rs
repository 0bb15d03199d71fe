//! Real firmware for the tests: projects rendered by the nixflash binary and compiled by the
//! machine's cargo with Debian's rustc (`../shared/tools/firmware-env.sh`), each built once per
//! test binary and kept under `CARGO_TARGET_TMPDIR`.
//!
//! The `-Z build-std` and linker overrides are given on the command line, not written into the
//! templates: the templates are right for rustup and Nix users. The Uno's arduino-hal comes from
//! the avr-hal bundle in ../shared/fixtures (git's `insteadOf`), since GitHub is unreachable.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::offline::{avr_hal_git, firmware_env};
use super::process::{run_bounded, text};
use super::{fixtures, nixflash, skip, tmp};

/// Which project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `nixflash new fw --board esp32c3` as it is.
    Esp32c3,
    /// `nixflash new fw --board esp32c3 --log defmt` as it is.
    Esp32c3Defmt,
    /// The ESP32-C3 project with tests/fixtures/firmware/esp32c3-addresses.rs as src/main.rs.
    Esp32c3Addresses,
    /// `nixflash new fw --board uno` as it is.
    Uno,
    /// The Uno project with tests/fixtures/firmware/uno-addresses.rs as src/main.rs.
    UnoAddresses,
    /// `nixflash new fw --board pico` as it is.
    Pico,
    /// `nixflash new fw --board pico2` as it is.
    Pico2,
}

/// A built project: its folder (package `fw`) and a copy of its ELF.
#[derive(Debug, Clone)]
pub struct Built {
    pub project: PathBuf,
    pub elf: PathBuf,
}

impl Kind {
    fn board(self) -> &'static str {
        match self {
            Kind::Esp32c3 | Kind::Esp32c3Defmt | Kind::Esp32c3Addresses => "esp32c3",
            Kind::Uno | Kind::UnoAddresses => "uno",
            Kind::Pico => "pico",
            Kind::Pico2 => "pico2",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Esp32c3 => "esp32c3",
            Kind::Esp32c3Defmt => "esp32c3-defmt",
            Kind::Esp32c3Addresses => "esp32c3-addresses",
            Kind::Uno => "uno",
            Kind::UnoAddresses => "uno-addresses",
            Kind::Pico => "pico",
            Kind::Pico2 => "pico2",
        }
    }
}

/// One firmware build at a time: they share target folders (and two cores).
static ONE_BUILD: Mutex<()> = Mutex::new(());

pub const ELFCLASS32: u8 = 1;
pub const EM_AVR: u16 = 83;
pub const EM_RISCV: u16 = 243;
pub const EM_ARM: u16 = 40;

/// What each build gave.
type Builds = Mutex<Vec<(Kind, Result<Built, String>)>>;

/// Builds `kind` once per test binary; `Err(why)` when this machine cannot (for `skip`).
pub fn build(kind: Kind) -> Result<Built, String> {
    static BUILT: OnceLock<Builds> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    if let Some((_, r)) = built.lock().unwrap().iter().find(|(k, _)| *k == kind) {
        return r.clone();
    }
    let _one = ONE_BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, r)) = built.lock().unwrap().iter().find(|(k, _)| *k == kind) {
        return r.clone();
    }
    let r = build_now(kind);
    built.lock().unwrap().push((kind, r.clone()));
    r
}

fn build_now(kind: Kind) -> Result<Built, String> {
    // Said before anything is written: this machine may lack the tools.
    firmware_env()?;
    match kind {
        Kind::Uno | Kind::UnoAddresses => {
            avr_hal_git()?;
        }
        Kind::Pico | Kind::Pico2 => {
            which::which("flip-link")
                .map_err(|_| "flip-link is not installed (cargo install flip-link --locked)")?;
        }
        _ => {}
    }
    let dir = tmp().join("firmware").join(kind.name());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = vec!["new", "fw", "--board", kind.board(), "--no-git"];
    if kind == Kind::Esp32c3Defmt {
        args.extend(["--log", "defmt"]);
    }
    let o = run_bounded(
        nixflash()
            .args(&args)
            .current_dir(&dir)
            .env("XDG_CONFIG_HOME", dir.join(".cfg")),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "nixflash new: {:?}", text(&o));
    let project = dir.join("fw");
    let fixture = match kind {
        Kind::Esp32c3Addresses => Some("esp32c3-addresses.rs"),
        Kind::UnoAddresses => Some("uno-addresses.rs"),
        _ => None,
    };
    if let Some(f) = fixture {
        std::fs::copy(
            fixtures().join("firmware").join(f),
            project.join("src/main.rs"),
        )
        .unwrap();
    }
    // The template's own flags decide whether dependencies can be shared: the defmt project's
    // rustflags differ, so it has a target folder of its own.
    let out = match kind {
        Kind::Esp32c3 | Kind::Esp32c3Addresses => compile_esp(&project, "firmware-esp32c3", "fw"),
        Kind::Esp32c3Defmt => compile_esp(&project, "firmware-esp32c3-defmt", "fw"),
        Kind::Uno | Kind::UnoAddresses => compile_uno(&project, "fw"),
        Kind::Pico => compile_rp2(&project, "thumbv6m-none-eabi", "fw"),
        Kind::Pico2 => compile_rp2(&project, "thumbv8m.main-none-eabihf", "fw"),
    }?;
    let elf = dir.join("fw.elf");
    std::fs::copy(&out, &elf).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    Ok(Built { project, elf })
}

/// Compiles the AVR project at `project` (arduino-hal from the avr-hal bundle) with the real
/// compiler for `test`: its ELF `bin`, or None after [`skip`].
pub fn compile_avr(test: &str, project: &Path, bin: &str) -> Option<PathBuf> {
    let _one = ONE_BUILD.lock().unwrap_or_else(|e| e.into_inner());
    compile_uno(project, bin)
        .map_err(|why| skip(test, &why))
        .ok()
}

/// Compiles the ESP32-C3 project at `project` with the real compiler for `test`: its ELF `bin`,
/// or None after [`skip`].
pub fn compile_esp32c3(test: &str, project: &Path, bin: &str) -> Option<PathBuf> {
    let _one = ONE_BUILD.lock().unwrap_or_else(|e| e.into_inner());
    compile_esp(project, "firmware-esp32c3", bin)
        .map_err(|why| skip(test, &why))
        .ok()
}

/// `cargo build` of an AVR project, arduino-hal taken from the avr-hal bundle: its ELF `bin`.
fn compile_uno(project: &Path, bin: &str) -> Result<PathBuf, String> {
    let env = firmware_env()?;
    let mirror = avr_hal_git()?;
    let git_config = project.join("../gitconfig-for-avr-hal");
    std::fs::write(
        &git_config,
        format!(
            "[url \"{}\"]\n\tinsteadOf = https://github.com/rahix/avr-hal\n",
            mirror.display()
        ),
    )
    .unwrap();
    let target_dir = tmp().join("firmware-uno");
    cargo_build(&env, project, &target_dir, &[], Some(&git_config));
    let elf = target_dir.join(format!("avr-none/release/{bin}.elf"));
    assert_eq!(elf_machine(&elf), (ELFCLASS32, EM_AVR));
    Ok(elf)
}

/// `cargo build` of an ESP32-C3 project in the target folder `target` (under the tests' own):
/// its ELF `bin`.
fn compile_esp(project: &Path, target: &str, bin: &str) -> Result<PathBuf, String> {
    let env = firmware_env()?;
    let target_dir = tmp().join(target);
    cargo_build(
        &env,
        project,
        &target_dir,
        &[
            "-Z",
            "build-std=core,alloc",
            "--config",
            "target.riscv32imc-unknown-none-elf.linker=\"ld.lld\"",
        ],
        None,
    );
    let elf = target_dir.join(format!("riscv32imc-unknown-none-elf/release/{bin}"));
    assert_eq!(elf_machine(&elf), (ELFCLASS32, EM_RISCV));
    Ok(elf)
}

/// `cargo build` of an RP2 project for `target` (thumbv6m-none-eabi, thumbv8m.main-none-eabihf),
/// linked by flip-link as the project says: its ELF `bin`. Debian's rustc has no `core` for these
/// targets, so it is built (`-Z build-std=core`); flip-link runs `rust-lld`, which is the host's
/// ld.lld here.
fn compile_rp2(project: &Path, target: &str, bin: &str) -> Result<PathBuf, String> {
    let env = firmware_env()?;
    let tools = project.join("../rust-lld-is-ld.lld");
    std::fs::create_dir_all(&tools).unwrap();
    let lld = which::which("ld.lld").map_err(|_| "ld.lld is not installed")?;
    let _ = std::fs::remove_file(tools.join("rust-lld"));
    std::os::unix::fs::symlink(lld, tools.join("rust-lld")).unwrap();
    let chip = target.split('-').next().unwrap();
    let target_dir = tmp().join(format!("firmware-{chip}"));
    cargo_build_in(
        &env,
        project,
        &target_dir,
        &["-Z", "build-std=core"],
        None,
        Some(&tools),
    );
    let elf = target_dir.join(format!("{target}/release/{bin}"));
    assert_eq!(elf_machine(&elf), (ELFCLASS32, EM_ARM));
    Ok(elf)
}

/// `cargo build --release --locked` in `project` under firmware-env.sh (`env`), with extra
/// arguments; git reads `git_config` (for the avr-hal mirror) if given.
pub fn cargo_build(
    env: &Path,
    project: &Path,
    target_dir: &Path,
    args: &[&str],
    git_config: Option<&Path>,
) {
    cargo_build_in(env, project, target_dir, args, git_config, None)
}

/// [`cargo_build`] with `path` (if any) first on PATH.
fn cargo_build_in(
    env: &Path,
    project: &Path,
    target_dir: &Path,
    args: &[&str],
    git_config: Option<&Path>,
    path: Option<&Path>,
) {
    let mut script = format!(
        ". '{}' && exec cargo build --release --locked",
        env.display()
    );
    if let Some(dir) = path {
        script = format!("PATH='{}':\"$PATH\" && {script}", dir.display());
    }
    for a in args {
        script.push_str(&format!(" '{a}'"));
    }
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script])
        .current_dir(project)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    if let Some(cfg) = git_config {
        cmd.env("GIT_CONFIG_GLOBAL", cfg)
            .env("CARGO_NET_GIT_FETCH_WITH_CLI", "true");
    }
    let out = run_bounded(&mut cmd, Duration::from_secs(3600));
    assert!(
        out.status.success(),
        "cargo build failed in {}:\n{}",
        project.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ELF class and machine of a file.
pub fn elf_machine(path: &Path) -> (u8, u16) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not an ELF", path.display());
    (bytes[4], u16::from_le_bytes([bytes[18], bytes[19]]))
}

/// The line number (from 1) of the only line of `file` that contains `marker`.
pub fn line_of(file: &Path, marker: &str) -> u32 {
    let text = std::fs::read_to_string(file).unwrap();
    let found: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(marker))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(found.len(), 1, "{marker} in {}: {found:?}", file.display());
    found[0] as u32
}
