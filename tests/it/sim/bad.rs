//! Bad input: a crash of the simulated CPU, firmware for another MCU or another family, an unknown
//! board, a board whose family has no simulator.

use std::time::{Duration, Instant};

use super::{avr_gcc, json, ready, sim};
use crate::common::firmware::Kind;
use crate::common::process::text;
use crate::common::{fixtures, nixflash};

/// A firmware that crashes the simulated CPU: it jumps past the end of its program, into
/// erased flash, which is no instruction.
const CRASH_C: &str = "#include <avr/io.h>\n\
    int main(void) {\n\
    \tUCSR0B = _BV(TXEN0);\n\
    \tUDR0 = 'A';\n\
    \t((void (*)(void))0x7f00)();\n\
    \tfor (;;) ;\n\
    }\n";

#[test]
fn bad_firmware_gets_one_line_and_what_to_do() {
    let test = "bad_firmware_gets_one_line_and_what_to_do";
    let Some(uno) = ready(test, Kind::Uno) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(crash) = avr_gcc(test, tmp.path(), "crash", "atmega328p", CRASH_C) else {
        return;
    };

    // A crash: simavr would wait for a debugger; nixflash stops it and says so.
    let started = Instant::now();
    let o = sim(
        &uno.project,
        &[
            "--elf",
            crash.to_str().unwrap(),
            "--duration",
            "5",
            "--json",
        ],
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(json(&o)["kind"], "sim-crashed");
    assert!(started.elapsed() < Duration::from_secs(20), "{err}");
    assert!(
        err.contains("error: the simulated atmega328p crashed,")
            && err.contains("(simavr: avr_sadly_crashed)"),
        "{err}"
    );
    assert!(err.contains("hint: to see where, run `"), "{err}");

    // Firmware for another MCU.
    let Some(mega) = ready(test, Kind::Mega2560) else {
        return;
    };
    let o = sim(
        &uno.project,
        &[
            "--elf",
            mega.elf.to_str().unwrap(),
            "--duration",
            "1",
            "--json",
        ],
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(json(&o)["kind"], "not-firmware");
    assert!(
        err.contains(&format!(
            "error: {} is firmware for the atmega2560, but the Arduino Uno has an atmega328p",
            mega.elf.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: is it built for the right board?"),
        "{err}"
    );
    // Not AVR firmware at all.
    let riscv = fixtures().join("elf/esp32c3-blinky.elf");
    let o = sim(
        &uno.project,
        &["--elf", riscv.to_str().unwrap(), "--duration", "1"],
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is not AVR firmware (ELF machine 243)"),
        "{err}"
    );
}

#[test]
fn unknown_boards_and_boards_without_a_simulator_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let elf = fixtures().join("project/firmware.elf");
    let typo = tmp.path().join("typo");
    std::fs::create_dir_all(&typo).unwrap();
    std::fs::write(
        typo.join("Cargo.toml"),
        "[package]\nname = \"typo\"\nversion = \"0.1.0\"\n\n[package.metadata.nixflash]\n\
         board = \"unoo\"\n",
    )
    .unwrap();
    let o = sim(&typo, &["--elf", elf.to_str().unwrap(), "--json"]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(json(&o)["kind"], "board-unknown");
    assert!(err.contains("unknown board `unoo`"), "{err}");
    assert!(err.contains("hint: did you mean `uno`"), "{err}");

    // An ESP32 project: said at once, before anything is built.
    let made = nixflash()
        .args(["new", "c3", "--board", "esp32c3", "--no-git"])
        .current_dir(tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path().join(".cfg"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let c3 = tmp.path().join("c3");
    let o = sim(&c3, &[]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "error: nixflash has no simulator for the ESP32-C3-DevKitM-1 (Espressif RISC-V \
             (ESP32-C2, ESP32-C3, ESP32-C6, ESP32-H2) family) yet"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: run this firmware on the board itself"),
        "{err}"
    );
    // The boards it could run come from the board data: those of a family with a simulator.
    assert!(
        err.contains("hint: `nixflash sim` runs the firmware of these boards: Arduino")
            && err.contains("Arduino Uno")
            && !err.contains("Raspberry Pi Pico"),
        "{err}"
    );
    assert!(!err.contains("nix build"), "{err}");
}
