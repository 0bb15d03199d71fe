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
use crate::common::firmware::{avr_hal_git_config, cargo_build, render};

use std::path::Path;

/// ELF class and machine of a file.
fn elf_machine(path: &Path) -> (u8, u16) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not an ELF", path.display());
    (bytes[4], u16::from_le_bytes([bytes[18], bytes[19]]))
}

const ELFCLASS32: u8 = 1;
const EM_AVR: u16 = 83;
const EM_RISCV: u16 = 243;

#[test]
fn esp32c3_project_compiles_to_a_riscv_elf() {
    let env = match common::offline::firmware_env() {
        Ok(e) => e,
        Err(why) => return common::skip("esp32c3_project_compiles_to_a_riscv_elf", &why),
    };
    let tmp = tempfile::tempdir().unwrap();
    let project = render(tmp.path(), "esp32c3");
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("firmware-esp32c3");
    cargo_build(
        &env,
        &project,
        &target_dir,
        &[
            "-Z",
            "build-std=core,alloc",
            "--config",
            "target.riscv32imc-unknown-none-elf.linker=\"ld.lld\"",
        ],
        None,
    );
    let elf = target_dir.join("riscv32imc-unknown-none-elf/release/fw");
    assert_eq!(elf_machine(&elf), (ELFCLASS32, EM_RISCV));
}

#[test]
fn uno_project_compiles_to_an_avr_elf() {
    let (mirror, env) = match common::offline::avr_hal_git()
        .and_then(|m| Ok((m, common::offline::firmware_env()?)))
    {
        Ok(found) => found,
        Err(why) => return common::skip("uno_project_compiles_to_an_avr_elf", &why),
    };
    let tmp = tempfile::tempdir().unwrap();
    let git_config = avr_hal_git_config(tmp.path(), mirror);
    let project = render(tmp.path(), "uno");
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("firmware-uno");
    cargo_build(&env, &project, &target_dir, &[], Some(&git_config));
    let elf = target_dir.join("avr-none/release/fw.elf");
    assert_eq!(elf_machine(&elf), (ELFCLASS32, EM_AVR));
}
