//! `nixflash flash` on a board flashed through a debug probe (the `cortex-m` family, probe-rs):
//! no serial port is looked for, `--port` is refused, and without probe-rs the tool resolver's
//! error names how to install it; `monitor` says that it does not read RTT yet. With the real
//! probe-rs (.ci/run builds it) and no probe attached, the command line nixflash runs is one
//! probe-rs's own `--help` knows, and the failure is one line with the next step. The firmware is
//! the micro:bit v2 blinky, rendered and compiled with the real compiler (into the family's
//! target folder the all-boards test shares).

use std::time::Duration;

use nixflash::board::Database;

use crate::common::process::{run_bounded, text};
use crate::common::{compile, nixflash, skip};

const TEST: &str = "a_probe_board_is_flashed_by_probe_rs_without_a_serial_port";

#[test]
fn a_probe_board_is_flashed_by_probe_rs_without_a_serial_port() {
    let db = Database::builtin().unwrap();
    let board = db.get("microbit-v2").unwrap();
    let recipe = compile::recipe(board).unwrap();
    if let Some(why) = compile::missing(&recipe) {
        return skip(TEST, &why);
    }
    let tmp = tempfile::tempdir().unwrap();
    let project = compile::render(tmp.path(), "fw-probe", "microbit-v2").unwrap();
    let elf = compile::compile(board, &project, "fw-probe").unwrap().elf;
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
    // The monitor does not read RTT yet: it says so instead of opening the probe's serial port.
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
        e.contains("log goes out as defmt over RTT through its debug probe")
            && e.contains("probe-rs attach --chip nRF52833_xxAA"),
        "{e}"
    );
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
    let args = board.family().flasher.tool().args.clone();
    assert_eq!(
        args.first().map(String::as_str),
        Some("download"),
        "{args:?}"
    );
    let help = run_bounded(
        std::process::Command::new(&probe_rs).args(["download", "--help"]),
        Duration::from_secs(30),
    );
    let (help, _) = text(&help);
    for option in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(&format!("{option} ")),
            "probe-rs download has no {option}:\n{help}"
        );
    }
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
}
