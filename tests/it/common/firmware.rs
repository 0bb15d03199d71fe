//! Rendered projects compiled to real firmware with the real compiler: `nixflash new`, then
//! `cargo build --release` under ../shared/tools/firmware-env.sh (Debian's rustc, `-Z build-std`).
//! AVR projects take arduino-hal from the avr-hal bundle in ../shared/fixtures.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::offline::{avr_hal_git, firmware_env};
use super::tmp;

/// Renders a project named `fw` for `board` in `dir` with the real binary.
pub fn render(dir: &Path, board: &str) -> PathBuf {
    let out = assert_cmd::Command::cargo_bin("nixflash")
        .unwrap()
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join(".cfg"))
        .args(["new", "fw", "--board", board, "--no-git"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("fw")
}

/// `cargo build --release --locked` in `project` under firmware-env.sh (`env`), with extra
/// arguments.
pub fn cargo_build(
    env: &Path,
    project: &Path,
    target_dir: &Path,
    args: &[&str],
    git_config: Option<&Path>,
) {
    let mut script = format!(
        ". '{}' && exec cargo build --release --locked",
        env.display()
    );
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
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "cargo build failed in {}:\n{}",
        project.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A git config that sends avr-hal's GitHub URL to the bundle's clone.
pub fn avr_hal_git_config(dir: &Path, mirror: &Path) -> PathBuf {
    let git_config = dir.join("gitconfig");
    std::fs::write(
        &git_config,
        format!(
            "[url \"{}\"]\n\tinsteadOf = https://github.com/rahix/avr-hal\n",
            mirror.display()
        ),
    )
    .unwrap();
    git_config
}

/// A rendered AVR blinky and its compiled ELF.
#[derive(Debug)]
pub struct Blinky {
    /// The project (package `fw`), for nixflash to run in.
    pub project: PathBuf,
    pub elf: PathBuf,
}

/// The blinky `nixflash new fw --board <board>` makes, compiled once per test binary (in
/// `target/tmp/blinky-<board>`, the build kept in `target/tmp/firmware-<board>` across runs), or
/// why this machine cannot.
pub fn avr_blinky(board: &str) -> Result<&'static Blinky, String> {
    static BUILT: OnceLock<Mutex<HashMap<String, &'static Blinky>>> = OnceLock::new();
    // One compile at a time: each uses every core.
    static COMPILING: Mutex<()> = Mutex::new(());
    let mirror = avr_hal_git()?;
    let env = firmware_env()?;
    let built = BUILT.get_or_init(Default::default);
    if let Some(b) = built.lock().unwrap().get(board) {
        return Ok(b);
    }
    let _one = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = built.lock().unwrap().get(board) {
        return Ok(b);
    }
    let dir = tmp().join(format!("blinky-{board}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let project = render(&dir, board);
    let git_config = avr_hal_git_config(&dir, mirror);
    let target_dir = tmp().join(format!("firmware-{board}"));
    cargo_build(&env, &project, &target_dir, &[], Some(&git_config));
    // A copy: tests/it/firmware.rs builds into the same target folder.
    let built_elf = target_dir.join("avr-none/release/fw.elf");
    let elf = dir.join("fw.elf");
    std::fs::copy(&built_elf, &elf).unwrap_or_else(|e| panic!("no {}: {e}", built_elf.display()));
    let b: &'static Blinky = Box::leak(Box::new(Blinky { project, elf }));
    built.lock().unwrap().insert(board.to_string(), b);
    Ok(b)
}
