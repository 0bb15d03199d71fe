//! `nixflash sim`: the blinkies `nixflash new` makes, compiled with the real compiler
//! (common::firmware), run in the real simavr (Debian's on PATH, or the one the project's flake
//! pins, built by real Nix through ../shared/tools/nix-offline with the test overlay's link to
//! the host's simavr). What the tests check comes from the firmware's own serial output and LED
//! pin as simavr simulates them, and from the `--vcd` trace, read here with a parser of its own.
//!
//! `uno`: the Uno blinky's output, LED, expectations, trace and Ctrl-C; `boards`: the Mega 2560's
//! and the Leonardo's; `qemu`: the micro:bit v1's in the real QEMU, and a Cortex-M board without a
//! simulator; `bad`: bad input; `source`: where the simulator comes from; `flake`: the generated
//! flake's simulator outputs, for tests/it/flake_eval.rs.

mod bad;
mod boards;
mod elf;
pub mod flake;
mod qemu;
mod source;
mod uno;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::firmware::{build, Built, Kind};
use crate::common::process::{run_bounded, text};
use crate::common::{on_path, skip};

/// One simulation at a time, in every test process of the run: each runs as fast as a core lets
/// it, and the speeds are measured. Held until dropped.
pub fn one_sim() -> crate::common::shared::Held {
    crate::common::shared::lock("nixflash-sim")
}

/// The blinky for `board` and a simavr on PATH, or None after [`skip`].
pub fn ready(test: &str, kind: Kind) -> Option<Built> {
    if !on_path("simavr") {
        skip(test, "simavr is not on PATH (apt install simavr)");
        return None;
    }
    match build(kind) {
        Ok(b) => Some(b),
        Err(why) => {
            skip(test, &why);
            None
        }
    }
}

/// `nixflash sim <args>` in `dir`, to its end (at most two minutes).
pub fn sim(dir: &Path, args: &[&str]) -> Output {
    let _one = one_sim();
    let mut cmd = crate::common::nixflash_realtime();
    cmd.current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join(".cfg"))
        .arg("sim")
        .args(args);
    run_bounded(&mut cmd, Duration::from_secs(120))
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {:?}", text(o)))
}

/// The LED's steady interval from a report, in seconds, checked to be 500 ms give or take the
/// busy-wait's overhead; the number of changes.
pub fn led_interval(report: &serde_json::Value, board: &str) -> (f64, u64) {
    let steady = &report["led"]["steady"];
    let interval = steady["interval_seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("{board}: the LED did not blink steadily: {report}"));
    assert!(
        (interval - 0.5).abs() < 0.0025,
        "{board}: the LED changes every {interval} s, not every 500 ms"
    );
    (interval, report["led"]["changes"].as_u64().unwrap())
}

/// The LED's changes said one by one (`--- LED on at 6.4 ms`): on or off, and when, in ms.
pub fn led_lines(err: &str) -> Vec<(bool, f64)> {
    err.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("--- LED ")?;
            let (state, at) = rest.split_once(" at ")?;
            let ms = at.strip_suffix(" ms")?.parse().ok()?;
            Some((state == "on", ms))
        })
        .collect()
}

/// `source` (C) compiled by avr-gcc for `mcu` into `dir/<name>.elf`, or None after [`skip`].
pub fn avr_gcc(test: &str, dir: &Path, name: &str, mcu: &str, source: &str) -> Option<PathBuf> {
    if !on_path("avr-gcc") {
        skip(
            test,
            "avr-gcc is not on PATH (apt install gcc-avr avr-libc)",
        );
        return None;
    }
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let elf = dir.join(format!("{name}.elf"));
    let o = run_bounded(
        Command::new("avr-gcc")
            .arg(format!("-mmcu={mcu}"))
            .args(["-Os", "-o"])
            .arg(&elf)
            .arg(&c),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "avr-gcc: {:?}", text(&o));
    Some(elf)
}
