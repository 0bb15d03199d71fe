//! `nixflash flash` on a board flashed through a debug probe (the `cortex-m` family, probe-rs):
//! no serial port is looked for, `--port` is refused, and without probe-rs the tool resolver's
//! error names how to install it; `monitor` needs the firmware's ELF (probe-rs finds the RTT
//! channel with it) and refuses a serial port's options. With the real probe-rs (.ci/run builds
//! it) and no probe attached, the command lines nixflash runs (download, reset, attach) are ones
//! probe-rs's own `--help` knows, and `flash` and `monitor` fail in one line with the next step. The firmware is
//! the micro:bit v2 blinky, rendered and compiled with the real compiler once per run
//! (`common::firmware`, shared with the RTT decoding test).

use std::time::Duration;

use nixflash::board::Database;

use crate::common::firmware::{self, Kind};
use crate::common::process::{run_bounded, text};
use crate::common::{nixflash, skip};

const TEST: &str = "a_probe_board_is_flashed_by_probe_rs_without_a_serial_port";

#[test]
fn a_probe_board_is_flashed_by_probe_rs_without_a_serial_port() {
    let db = Database::builtin().unwrap();
    let board = db.get("microbit-v2").unwrap();
    let elf = match firmware::build(Kind::MicrobitV2) {
        Ok(built) => built.elf,
        Err(why) => return skip(TEST, &why),
    };
    let tmp = tempfile::tempdir().unwrap();
    // A PATH with neither probe-rs nor Nix, outside any project: no flasher can be found.
    let empty = tmp.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let run = |args: &[&str]| {
        let o = run_bounded(
            nixflash()
                .args(["flash", "--board", "microbit-v2", "--elf"])
                .arg(&elf)
                .args(args)
                .current_dir(tmp.path())
                .env("PATH", &empty)
                .env("XDG_CONFIG_HOME", tmp.path().join(".no-user-config")),
            Duration::from_secs(60),
        );
        let (_, stderr) = text(&o);
        (o.status.code(), stderr)
    };
    let (code, e) = run(&[]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("no usable probe-rs: probe-rs is not on PATH")
            && e.contains("install it with `cargo install probe-rs-tools --locked`"),
        "{e}"
    );
    // No serial port was looked for (this machine has none with the DAPLink's USB id).
    assert!(
        !e.contains("serial port") && !e.contains("0d28:0204"),
        "a serial port was looked for:\n{e}"
    );
    let (code, e) = run(&["--port", "/dev/ttyACM0"]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains("--port /dev/ttyACM0: the BBC micro:bit v2 is flashed through a debug probe"),
        "{e}"
    );
    with_real_probe_rs(board, &elf, tmp.path());
    // The monitor reads RTT through probe-rs, which finds the channel with the firmware's ELF:
    // without one it says what to do, and never looks for a serial port.
    let o = run_bounded(
        nixflash()
            .args(["monitor", "--board", "microbit-v2"])
            .current_dir(tmp.path())
            .env("XDG_CONFIG_HOME", tmp.path().join(".no-user-config")),
        Duration::from_secs(60),
    );
    let (_, e) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("log comes over RTT, which probe-rs finds with the firmware's ELF")
            && e.contains("run `nixflash build`"),
        "{e}"
    );
    let o = run_bounded(
        nixflash()
            .args(["monitor", "--board", "microbit-v2", "--baud", "9600"])
            .current_dir(tmp.path())
            .env("XDG_CONFIG_HOME", tmp.path().join(".no-user-config")),
        Duration::from_secs(60),
    );
    let (_, e) = text(&o);
    assert!(e.contains("--baud is an option of a serial port"), "{e}");
}

/// The real probe-rs, with no probe attached (none is, here or in CI): every option of the
/// family's command line is in `probe-rs download --help`, and `flash` fails in one line that
/// says what to do, without probe-rs's log warnings or a backtrace.
fn with_real_probe_rs(
    board: &nixflash::board::Board,
    elf: &std::path::Path,
    dir: &std::path::Path,
) {
    let Ok(probe_rs) = which::which("probe-rs") else {
        return skip(
            TEST,
            "probe-rs is not on PATH (cargo install probe-rs-tools --locked)",
        );
    };
    let help = knows(&probe_rs, &board.family().flasher.tool().args, "download");
    assert!(help.contains("<PATH>"), "{help}");
    let o = run_bounded(
        nixflash()
            .args(["flash", "--board", "microbit-v2", "--elf"])
            .arg(elf)
            .current_dir(dir)
            .env("RUST_BACKTRACE", "1")
            .env("XDG_CONFIG_HOME", dir.join(".no-user-config")),
        Duration::from_secs(120),
    );
    let (_, e) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("Running RUST_LOG=error RUST_BACKTRACE=0 ")
            && e.contains(" download --chip nRF52833_xxAA "),
        "{e}"
    );
    let errors: Vec<&str> = e.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        ["error: no debug probe is connected (probe-rs found none for the BBC micro:bit v2)"],
        "{e}"
    );
    assert!(
        e.contains(
            "your user may not reach it: `nixflash doctor --probes` checks the udev rules and the \
             plugdev group and says what to do"
        ),
        "{e}"
    );
    assert!(
        !e.contains("WARN") && !e.contains("backtrace") && !e.contains("Error:"),
        "{e}"
    );
    attach_with_real_probe_rs(&probe_rs, board, elf, dir);
}

/// `args` is a command line of probe-rs' `verb`, each of whose options its `--help` knows; the
/// help.
fn knows(probe_rs: &std::path::Path, args: &[String], verb: &str) -> String {
    assert_eq!(args.first().map(String::as_str), Some(verb), "{args:?}");
    let help = run_bounded(
        std::process::Command::new(probe_rs).args([verb, "--help"]),
        Duration::from_secs(30),
    );
    let (help, _) = text(&help);
    for option in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(&format!("{option} ")),
            "probe-rs {verb} has no {option}:\n{help}"
        );
    }
    help
}

/// The monitor's probe-rs command line (`attach-args`) is one probe-rs's own `attach --help`
/// knows, and `monitor` and `flash --monitor` with no probe attached fail in the same one line.
fn attach_with_real_probe_rs(
    probe_rs: &std::path::Path,
    board: &nixflash::board::Board,
    elf: &std::path::Path,
    dir: &std::path::Path,
) {
    let nixflash::board::FlashMethod::ProbeRs(method) = &board.family().flasher else {
        panic!("the micro:bit v2 is not flashed with probe-rs");
    };
    knows(probe_rs, &method.attach_args, "attach");
    knows(probe_rs, &method.start_args, "reset");
    let o = run_bounded(
        nixflash()
            .args([
                "monitor",
                "--board",
                "microbit-v2",
                "--duration",
                "20",
                "--elf",
            ])
            .arg(elf)
            .current_dir(dir)
            .env("XDG_CONFIG_HOME", dir.join(".no-user-config")),
        Duration::from_secs(60),
    );
    let (_, e) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("--- Reading the BBC micro:bit v2's RTT channel through its debug probe"),
        "{e}"
    );
    let errors: Vec<&str> = e.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        ["error: no debug probe is connected (probe-rs found none for the BBC micro:bit v2)"],
        "{e}"
    );
}

/// A Pico flashed through a Raspberry Pi Debug Probe (`flash --probe`, the rp2 family's second
/// way of flashing): the real probe-rs is told the chip by probe-rs' name (`RP2040`), with no
/// probe attached the failure is one line that says how the Debug Probe is wired; a board whose
/// family has no debug-probe way refuses --probe.
#[test]
fn a_pico_is_flashed_through_a_debug_probe_with_flash_probe() {
    let test = "a_pico_is_flashed_through_a_debug_probe_with_flash_probe";
    let elf = match firmware::build(Kind::Pico) {
        Ok(built) => built.elf,
        Err(why) => return skip(test, &why),
    };
    if which::which("probe-rs").is_err() {
        return skip(
            test,
            "probe-rs is not on PATH (cargo install probe-rs-tools --locked)",
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = run_bounded(
            nixflash()
                .args(["flash", "--elf"])
                .arg(&elf)
                .args(args)
                .current_dir(tmp.path())
                .env("XDG_CONFIG_HOME", tmp.path().join(".no-user-config")),
            Duration::from_secs(120),
        );
        let (_, e) = text(&o);
        (o.status.code(), e)
    };
    let (code, e) = run(&["--board", "pico", "--probe"]);
    assert_eq!(code, Some(1), "{e}");
    assert!(
        e.contains(" download --chip RP2040 ") && !e.contains(" reset --chip"),
        "{e}"
    );
    let errors: Vec<&str> = e.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors,
        ["error: no debug probe is connected (probe-rs found none for the Raspberry Pi Pico)"],
        "{e}"
    );
    assert!(
        e.contains("the debug probe wired to the Raspberry Pi Pico's SWD pins"),
        "{e}"
    );
    // No boot drive was looked for.
    assert!(!e.contains("RPI-RP2") && !e.contains("BOOTSEL"), "{e}");
    let (code, e) = run(&["--board", "pico", "--probe", "--set", "name=x"]);
    assert_eq!(code, Some(2), "{e}");
    assert!(e.contains("'--probe' cannot be used with '--set"), "{e}");
    let uno = match firmware::build(Kind::Uno) {
        Ok(built) => built.elf,
        Err(why) => return skip(test, &why),
    };
    let o = run_bounded(
        nixflash()
            .args(["flash", "--probe", "--board", "uno", "--elf"])
            .arg(&uno)
            .current_dir(tmp.path()),
        Duration::from_secs(60),
    );
    let (_, e) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("error: the Arduino Uno is not flashed through a debug probe"),
        "{e}"
    );
}
