//! Compiling rendered projects to firmware with the real compiler: Debian's rustc under
//! `../shared/tools/firmware-env.sh` (`-Z build-std` through RUSTC_BOOTSTRAP), arduino-hal taken
//! from the avr-hal bundle in ../shared/fixtures. What this machine adds to `cargo build` is
//! given on the command line, never written into the templates: they are right for rustup and
//! Nix users.
//!
//! One place knows how each family is compiled here ([`recipe`]); a family it does not know
//! makes the caller fail, naming the match arm to add.
//!
//! Projects compile into target folders kept between runs under `target/tmp/firmware-target/`,
//! one per family ([`target_dir_for`]). Cargo keeps apart what differs between the projects of
//! a family (the target, the CPU and other flags of `.cargo/config.toml`, the HAL's features)
//! and shares the rest: every project of a compile set (the same target, CPU and flags) shares
//! its `core` and HAL, so boards that differ only in data (LED, USB ids, name) compile only
//! their own crate, and every set of a family shares the crates built for the host (proc
//! macros, build scripts: lalrpop for the RP2 family's PIO assembler, esp-hal's macros), which
//! a target folder per set would compile once per set. Families compile at the same time, each
//! in its own process; within a family one compile at a time (a lock shared by every test
//! process of the run), as each copies its ELF out of the folder before the next can overwrite
//! it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nixflash::board::Board;

use super::process::{children_cpu, run_bounded, text};
use super::{offline, shared, tmp};

/// How a family's projects are compiled here.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// Added to `cargo build --release --locked`.
    pub args: Vec<String>,
    /// Whether the project fetches arduino-hal from GitHub (then from the avr-hal bundle).
    pub avr_hal: bool,
    /// Whether the project links with flip-link, which runs `rust-lld` (here the host's ld.lld,
    /// put on PATH under that name).
    pub flip_link: bool,
    /// The ELF in the target folder, for a binary named `bin`.
    pub elf: fn(target: &str, bin: &str) -> PathBuf,
}

/// How to compile a project of `board`'s family here, or why this test binary does not know.
pub fn recipe(board: &Board) -> Result<Recipe, String> {
    let target = &board.rust.target;
    match board.family().id.as_str() {
        // .cargo/config.toml already asks for -Z build-std=core and the target CPU; avr-gcc links.
        "avr" => Ok(Recipe {
            args: Vec::new(),
            avr_hal: true,
            flip_link: false,
            elf: |target, bin| PathBuf::from(format!("{target}/release/{bin}.elf")),
        }),
        // Debian's rustc has no prebuilt core for the RISC-V targets, and no rust-lld.
        "esp-riscv" => Ok(Recipe {
            args: vec![
                "-Z".into(),
                "build-std=core,alloc".into(),
                "--config".into(),
                format!("target.{target}.linker=\"ld.lld\""),
            ],
            avr_hal: false,
            flip_link: false,
            elf: |target, bin| PathBuf::from(format!("{target}/release/{bin}")),
        }),
        // No prebuilt core for the thumb targets in Debian's rustc; .cargo/config.toml links
        // with flip-link (RP2 and Cortex-M boards alike).
        "rp2" | "cortex-m" => Ok(Recipe {
            args: vec!["-Z".into(), "build-std=core".into()],
            avr_hal: false,
            flip_link: true,
            elf: |target, bin| PathBuf::from(format!("{target}/release/{bin}")),
        }),
        other => Err(format!(
            "board `{}` is of family `{other}`, which tests/it/common/compile.rs does not know how \
             to compile: add an arm for `{other}` to `recipe` (the cargo arguments this machine \
             needs for {target}, and where the ELF lands)",
            board.id
        )),
    }
}

/// What is missing on this machine to compile firmware, if anything (for [`super::skip`]).
pub fn missing(recipe: &Recipe) -> Option<String> {
    if let Err(why) = offline::firmware_env() {
        return Some(why);
    }
    if recipe.avr_hal {
        if let Err(why) = offline::avr_hal_git() {
            return Some(why);
        }
    }
    if recipe.flip_link {
        for (tool, install) in [
            ("flip-link", "cargo install flip-link --locked"),
            ("ld.lld", "apt install lld"),
        ] {
            if which::which(tool).is_err() {
                return Some(format!("{tool} is not installed ({install})"));
            }
        }
    }
    None
}

/// The folder that holds every compile set's target folder.
pub fn target_root() -> PathBuf {
    tmp().join("firmware-target")
}

/// The target folder of `board`'s family.
pub fn target_dir_for(board: &Board) -> PathBuf {
    target_root().join(&board.family().id)
}

/// A compiled project.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Compiled {
    /// The ELF, copied next to the project (`<project>.elf`), out of the family's target folder.
    pub elf: PathBuf,
    /// How long cargo took, and the CPU time it used.
    pub took: Duration,
    pub cpu: Duration,
}

/// The git config that sends avr-hal's GitHub URL to the bundle's clone, written once per run.
fn git_config() -> Result<PathBuf, String> {
    let mirror = offline::avr_hal_git()?;
    shared::once("gitconfig-avr-hal", || {
        let path = shared::run_dir().join("gitconfig-avr-hal");
        let mut text = String::new();
        for spelling in ["rahix", "Rahix"] {
            text.push_str(&format!(
                "[url \"{}\"]\n\tinsteadOf = https://github.com/{spelling}/avr-hal\n",
                mirror.display()
            ));
        }
        std::fs::write(&path, text).unwrap();
        Ok(path)
    })
}

/// A folder holding `rust-lld`, a link to the host's ld.lld (Debian's rustc has no rust-lld), for
/// flip-link to run; made once per run.
fn rust_lld_dir() -> Result<PathBuf, String> {
    shared::once("rust-lld-is-ld.lld", || {
        let lld =
            which::which("ld.lld").map_err(|_| "ld.lld is not installed (apt install lld)")?;
        let dir = shared::run_dir().join("rust-lld-is-ld.lld");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(lld, dir.join("rust-lld")).unwrap();
        Ok(dir)
    })
}

/// Compiles the project in `project` (package and binary `bin`, rendered for `board`) with
/// `cargo build --release --locked` and the family's [`Recipe`]. `Err` says what went wrong (the
/// machine lacking a tool is the caller's business: see [`missing`]).
pub fn compile(board: &Board, project: &Path, bin: &str) -> Result<Compiled, String> {
    let recipe = recipe(board)?;
    let target_dir = target_dir_for(board);
    let env = offline::firmware_env()?;
    let mut script = format!(
        ". '{}' && exec cargo build --release --locked",
        env.display()
    );
    for a in &recipe.args {
        script.push_str(&format!(" '{a}'"));
    }
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script])
        .current_dir(project)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if recipe.flip_link {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(rust_lld_dir()?).chain(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    if recipe.avr_hal {
        cmd.env("GIT_CONFIG_GLOBAL", git_config()?)
            .env("CARGO_NET_GIT_FETCH_WITH_CLI", "true");
    }
    let name = target_dir.file_name().unwrap().to_string_lossy();
    let _family = shared::lock(&format!("firmware-target-{name}"));
    // Several test projects share a package name (`fw`), and cargo tells a package's own units
    // apart by name and version, not by folder: it takes them for fresh when their files are
    // older than its last build of that name. A project rendered while another compiled would
    // then get the other's build script output (its link arguments). Its files are made newer
    // than anything built so far.
    touch_tree(project);
    let start = Instant::now();
    let cpu_before = children_cpu();
    let out = run_bounded(&mut cmd, Duration::from_secs(1800));
    let took = start.elapsed();
    let cpu = children_cpu() - cpu_before;
    if !out.status.success() {
        let (_, err) = text(&out);
        return Err(format!(
            "cargo build failed in {} for board {}:\n{err}",
            project.display(),
            board.id
        ));
    }
    let built = target_dir.join((recipe.elf)(&board.rust.target, bin));
    let elf = project.with_extension("elf");
    std::fs::copy(&built, &elf).map_err(|e| format!("{}: {e}", built.display()))?;
    Ok(Compiled { elf, took, cpu })
}

/// Sets the modification time of every file under `dir` (but `target/`) to now.
fn touch_tree(dir: &Path) {
    let now = std::time::SystemTime::now();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "target" {
                touch_tree(&path);
            }
        } else if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&path) {
            f.set_modified(now).unwrap();
        }
    }
}

/// The ELF machine (`e_machine`) of a 32-bit ELF file.
pub fn elf_machine(path: &Path) -> Result<u16, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" || bytes[4] != 1 {
        return Err(format!("{} is not a 32-bit ELF file", path.display()));
    }
    Ok(u16::from_le_bytes([bytes[18], bytes[19]]))
}

/// Renders `nixflash new <name> --board <board> --no-git` in `dir` with the real binary (and no
/// user boards) and returns the project's folder.
pub fn render(dir: &Path, name: &str, board: &str) -> Result<PathBuf, String> {
    let out = run_bounded(
        super::nixflash()
            .args(["new", name, "--board", board, "--no-git"])
            .current_dir(dir)
            .env("XDG_CONFIG_HOME", dir.join(".no-user-config")),
        Duration::from_secs(120),
    );
    if !out.status.success() {
        let (_, err) = text(&out);
        return Err(format!("nixflash new --board {board} failed:\n{err}"));
    }
    Ok(dir.join(name))
}

/// A board's blinky, as `nixflash new fw-<id> --board <id>` renders it, compiled.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BoardBlinky {
    pub project: PathBuf,
    pub compiled: Compiled,
}

/// `board`'s blinky, rendered and compiled once per test run (by the first test that asks: the
/// all-boards test in tests/it/boards.rs, or a test that runs that firmware, as tests/it/sim/qemu.rs
/// does), kept under `CARGO_TARGET_TMPDIR`.
pub fn board_blinky(board: &Board) -> Result<BoardBlinky, String> {
    shared::once(&format!("board-blinky-{}", board.id), || {
        let dir = tmp().join("board-blinky").join(&board.id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = format!("fw-{}", board.id);
        let project = render(&dir, &name, &board.id)?;
        let compiled = compile(board, &project, &name)?;
        Ok(BoardBlinky { project, compiled })
    })
}
