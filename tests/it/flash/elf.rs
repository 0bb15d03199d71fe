//! `nixflash flash --elf` outside a project, as espflash and probe-rs flash any ELF: the board
//! is the one the ELF's chip tells, and `--board` is asked for only when the chip's boards are
//! flashed in different ways.

use std::path::Path;
use std::time::Duration;

use crate::common::process::{run_bounded, text};
use crate::common::{fixtures, nixflash};

/// `nixflash flash <args>` in `dir`: its exit code and stderr.
fn flash(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let o = run_bounded(
        nixflash().arg("flash").args(args).current_dir(dir),
        Duration::from_secs(60),
    );
    (o.status.code(), text(&o).1)
}

#[test]
fn an_elf_outside_a_project_is_flashed_as_its_chip_tells() {
    let dir = tempfile::tempdir().unwrap();
    let port = "/dev/nixflash-no-such-port";
    // Every ESP32-C3 board is flashed the same way (espflash, the chip): no --board needed.
    let esp = fixtures().join("elf/esp32c3-blinky.elf");
    let (code, e) = flash(
        dir.path(),
        &["--elf", esp.to_str().unwrap(), "--port", port],
    );
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("Board ESP32-C3 board (esp32c3: its sources include the esp32c3 crate"),
        "{e}"
    );
    assert!(
        e.contains(&format!("serial port {port} does not exist")),
        "{e}"
    );
    assert!(!e.contains("no Cargo project"), "{e}");

    // The same in a Cargo package that names no board (not a nixflash project).
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(pkg.join("src")).unwrap();
    std::fs::write(
        pkg.join("Cargo.toml"),
        "[package]\nname = \"pkg\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    let (code, e) = flash(&pkg, &["--elf", esp.to_str().unwrap(), "--port", port]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("Board ESP32-C3 board") && e.contains(&format!("{port} does not exist")),
        "{e}"
    );

    // An ATmega328P: the Uno, the Nano and the Pro Minis each have their own bootloader.
    let uno = fixtures().join("project/firmware.elf");
    let uno = uno.to_str().unwrap();
    let (code, e) = flash(dir.path(), &["--elf", uno, "--port", port]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("It is for the atmega328p (its device note names the atmega328p)")
            && e.contains("uno")
            && e.contains("nano")
            && e.contains("hint: pass --board <id>"),
        "{e}"
    );
    // ...so --board says which.
    let (code, e) = flash(dir.path(), &["--elf", uno, "-b", "uno", "--port", port]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains(&format!("serial port {port} does not exist")),
        "{e}"
    );

    // An ELF that names no chip (x86-64, EM 62, which no family has: this test binary's own nixflash).
    let exe = env!("CARGO_BIN_EXE_nixflash");
    let (code, e) = flash(dir.path(), &["--elf", exe, "--port", port]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("It is ELF machine 62 firmware, and does not say its chip")
            && e.contains("hint: pass --board <id>"),
        "{e}"
    );
    // --board is for an ELF given with --elf.
    let (code, e) = flash(dir.path(), &["--board", "uno"]);
    assert_eq!(code, Some(2), "{e}");
    assert!(e.contains("--elf <PATH>"), "{e}");
}
