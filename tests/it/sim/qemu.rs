//! The micro:bit v1's blinky in the real QEMU (`qemu-system-arm -M microbit`), the very build
//! the all-boards test compiles (common::compile::board_blinky): its greeting on the nRF51's
//! UART, its LED (P0.13, the top-left LED's row) toggling every 500 ms. QEMU runs the machine in
//! real time and the times are the host's clock: the LED's interval is checked as the median of
//! its intervals, within 2 %. And a Cortex-M board QEMU does not emulate: one line says so.

use std::path::Path;

use super::{json, sim};
use crate::common::compile::{board_blinky, BoardBlinky};
use crate::common::process::text;
use crate::common::{nixflash, on_path, skip};

const GREETING: &str = "Hello from fw-microbit-v1 on the BBC micro:bit v1!";

/// The micro:bit v1's blinky and a qemu-system-arm on PATH, or None after [`skip`].
fn ready(test: &str) -> Option<BoardBlinky> {
    if !on_path("qemu-system-arm") {
        skip(
            test,
            "qemu-system-arm is not on PATH (apt install qemu-system-arm)",
        );
        return None;
    }
    let db = nixflash::board::Database::builtin().unwrap();
    match board_blinky(db.get("microbit-v1").unwrap()) {
        Ok(b) => Some(b),
        Err(why) => {
            skip(test, &why);
            None
        }
    }
}

fn run(b: &BoardBlinky, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--elf", b.compiled.elf.to_str().unwrap()];
    all.extend(args);
    sim(&b.project, &all)
}

#[test]
fn microbit_v1_greets_on_its_uart_and_blinks_every_500_ms_in_qemu() {
    let test = "microbit_v1_greets_on_its_uart_and_blinks_every_500_ms_in_qemu";
    let Some(b) = ready(test) else {
        return;
    };
    let o = run(&b, &["--duration", "3.3", "--expect", GREETING, "--json"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let r = json(&o);
    assert_eq!(r["board"], "microbit-v1");
    assert_eq!(r["end"], "duration", "{r}");
    assert_eq!(r["clock"], "wall", "{r}");
    assert_eq!(r["uart"]["name"], "UART0");
    assert_eq!(r["uart"]["text"], format!("{GREETING}\r\n"), "{r}");
    assert!(r["expect"][0]["seen_at_seconds"].as_f64().is_some(), "{r}");
    assert_eq!(r["led"]["pin"], "P0.13");
    // The first change is the pin becoming an output (low); then a toggle every 500 ms.
    let changes = r["led"]["changes"].as_u64().unwrap();
    assert!(changes >= 6, "{r}");
    let median = r["led"]["median_interval_seconds"].as_f64().unwrap();
    assert!(
        (median - 0.5).abs() <= 0.01,
        "the LED toggles every {median} s (median), not every 500 ms ± 2 %: {}",
        r["led"]
    );
    // The header says what runs, and what cannot be seen: the defmt logs over RTT.
    assert!(
        err.contains("on the BBC micro:bit v1 (QEMU's `microbit` machine: its nrf51822 at 16 MHz)")
            && err.contains("not shown: the defmt logs over RTT"),
        "{err}"
    );
    // The LED's changes are said as simavr's are.
    assert!(err.contains("--- LED on at "), "{err}");
    crate::common::measured(&format!(
        "microbit-v1 in QEMU: the greeting at {:.1} ms, P0.13 changed {changes} times, median \
         interval {:.2} ms (host's clock), run of {:.2} s",
        r["expect"][0]["seen_at_seconds"].as_f64().unwrap() * 1e3,
        median * 1e3,
        r["wall_seconds"].as_f64().unwrap()
    ));

    // With --expect and no --duration, it stops once the greeting came.
    let o = run(&b, &["--expect", GREETING, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let r = json(&o);
    assert_eq!(r["end"], "expected", "{r}");
    assert!(r["wall_seconds"].as_f64().unwrap() < 10.0, "{r}");

    // A text it never sends fails, naming it.
    let o = run(&b, &["--duration", "0.5", "--expect", "Goodbye"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the firmware never sent \"Goodbye\" on UART0"),
        "{err}"
    );
}

#[test]
fn a_cortex_m_board_qemu_does_not_emulate_says_so_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let made = nixflash()
        .args(["new", "nucleo", "--board", "nucleo-f401re", "--no-git"])
        .current_dir(tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path().join(".cfg"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let o = sim(&tmp.path().join("nucleo"), &[]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        "error: no simulator runs the ST Nucleo-F401RE's firmware (qemu-system-arm emulates no \
         such board): run it on the board itself, `nixflash flash --monitor`",
        "{err}"
    );
    // Said at once, before anything is built.
    assert!(!err.contains("nix build"), "{err}");
    assert!(!Path::new(&tmp.path().join("nucleo/result")).exists());
}
