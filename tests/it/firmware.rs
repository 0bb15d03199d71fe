//! The rendered projects compile to firmware with the real compiler.
//!
//! Needs the firmware tools from `../shared/tools/install-firmware-tools.sh` (Debian's rustc with
//! the std source, ld.lld, avr-gcc); the environment of `../shared/tools/firmware-env.sh` is applied
//! to the cargo command here. The `-Z build-std` and linker overrides are given on the command
//! line, not written into the templates: the templates are right for rustup and Nix users.
//!
//! The Uno project depends on arduino-hal from GitHub: git takes it from the avr-hal bundle in
//! ../shared/fixtures instead.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Renders a project for `board` with the real binary.
pub(crate) fn render(dir: &Path, board: &str) -> PathBuf {
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
/// arguments, and `path` (if any) first on PATH.
fn cargo_build(
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
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "cargo build failed in {}:\n{}",
        project.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ELF class and machine of a file.
fn elf_machine(path: &Path) -> (u8, u16) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not an ELF", path.display());
    (bytes[4], u16::from_le_bytes([bytes[18], bytes[19]]))
}

const ELFCLASS32: u8 = 1;
const EM_AVR: u16 = 83;
const EM_RISCV: u16 = 243;
const EM_ARM: u16 = 40;

/// Compiles the AVR project at `project` (arduino-hal from the avr-hal bundle) with the real
/// compiler for `test`: its ELF `bin`, or None after [`common::skip`].
pub(crate) fn compile_avr(test: &str, project: &Path, bin: &str) -> Option<PathBuf> {
    let (mirror, env) = match common::offline::avr_hal_git()
        .and_then(|m| Ok((m, common::offline::firmware_env()?)))
    {
        Ok(found) => found,
        Err(why) => {
            common::skip(test, &why);
            return None;
        }
    };
    let git_config = project.join("../gitconfig-for-avr-hal");
    std::fs::write(
        &git_config,
        format!(
            "[url \"{}\"]\n\tinsteadOf = https://github.com/rahix/avr-hal\n",
            mirror.display()
        ),
    )
    .unwrap();
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("firmware-uno");
    cargo_build(&env, project, &target_dir, &[], Some(&git_config), None);
    let elf = target_dir.join(format!("avr-none/release/{bin}.elf"));
    assert_eq!(elf_machine(&elf), (ELFCLASS32, EM_AVR));
    Some(elf)
}

/// Compiles the ESP32-C3 project at `project` with the real compiler for `test`: its ELF `bin`,
/// or None after [`common::skip`].
pub(crate) fn compile_esp32c3(test: &str, project: &Path, bin: &str) -> Option<PathBuf> {
    let env = match common::offline::firmware_env() {
        Ok(e) => e,
        Err(why) => {
            common::skip(test, &why);
            return None;
        }
    };
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("firmware-esp32c3");
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
        None,
    );
    let elf = target_dir.join(format!("riscv32imc-unknown-none-elf/release/{bin}"));
    assert_eq!(elf_machine(&elf), (ELFCLASS32, EM_RISCV));
    Some(elf)
}

/// Compiles the RP2 project at `project` for `target` (thumbv6m-none-eabi, thumbv8m.main-none-eabihf)
/// with the real compiler, linked by flip-link as the project says, for `test`: its ELF `bin`, or
/// None after [`common::skip`]. Debian's rustc has no `core` for these targets, so it is built
/// (`-Z build-std=core`); flip-link runs `rust-lld`, which is the host's ld.lld here.
pub(crate) fn compile_rp2(test: &str, project: &Path, target: &str, bin: &str) -> Option<PathBuf> {
    let env = match common::offline::firmware_env().and_then(|e| {
        which::which("flip-link")
            .map(|_| e)
            .map_err(|_| "flip-link is not installed (cargo install flip-link --locked)".into())
    }) {
        Ok(e) => e,
        Err(why) => {
            common::skip(test, &why);
            return None;
        }
    };
    let tools = project.join("../rust-lld-is-ld.lld");
    std::fs::create_dir_all(&tools).unwrap();
    let lld = which::which("ld.lld").unwrap();
    let _ = std::fs::remove_file(tools.join("rust-lld"));
    std::os::unix::fs::symlink(lld, tools.join("rust-lld")).unwrap();
    let chip = target.split('-').next().unwrap();
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("firmware-{chip}"));
    cargo_build(
        &env,
        project,
        &target_dir,
        &["-Z", "build-std=core"],
        None,
        Some(&tools),
    );
    let elf = target_dir.join(format!("{target}/release/{bin}"));
    assert_eq!(elf_machine(&elf), (ELFCLASS32, EM_ARM));
    Some(elf)
}

#[test]
fn esp32c3_project_compiles_to_a_riscv_elf() {
    let tmp = tempfile::tempdir().unwrap();
    let project = render(tmp.path(), "esp32c3");
    compile_esp32c3("esp32c3_project_compiles_to_a_riscv_elf", &project, "fw");
}

#[test]
fn uno_project_compiles_to_an_avr_elf() {
    let tmp = tempfile::tempdir().unwrap();
    let project = render(tmp.path(), "uno");
    compile_avr("uno_project_compiles_to_an_avr_elf", &project, "fw");
}
