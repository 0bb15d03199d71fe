//! Running firmware without the board: `nixflash sim` runs it in the board family's simulator
//! (simavr for AVR boards) on the board's MCU at its clock, and shows what the board would do:
//! the firmware's serial output and its LED.
//!
//! simavr is run as a program, the one on PATH or the one the project's flake pins
//! ([`program`]). It is told what to trace by a `.mmcu` section added to a copy of the ELF
//! ([`mmcu`]): every byte the firmware writes to its console USART's data register and the LED
//! pin's level, as a VCD trace ([`vcd`]) that it writes into a pseudo-terminal, line by line as
//! the simulation goes. A run of bounded length gets an input trace that ends at that time,
//! which is what stops simavr there. [`watch`] shows and keeps what the trace says.

pub mod led;
pub mod mmcu;
pub mod program;
#[cfg(unix)]
mod pty;
#[cfg(unix)]
mod qemu;
#[cfg(unix)]
mod simavr;
pub mod vcd;
pub mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::board::family::SimTool;
use crate::board::{Board, SimSpec};
use crate::error::{Failure, Kind};
use crate::report::Console;
pub use program::{find, Program, Source};
pub use watch::{Display, Expectation};

/// What `nixflash sim` was asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Simulated time to run for; `None`: until Ctrl-C (or, with `expect`, until every text
    /// appeared).
    pub duration: Option<Duration>,
    /// Texts the firmware must send on its console.
    pub expect: Vec<String>,
    /// Write the LED and the console's bytes as a VCD trace here.
    pub vcd: Option<PathBuf>,
    /// Stamp each line of serial output with the simulated time.
    pub timestamps: bool,
    /// Show the serial output on stderr (stdout is for the `--json` report).
    pub uart_to_stderr: bool,
}

/// Why a simulation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum End {
    /// It ran for the duration asked.
    Duration,
    /// Every expected text appeared (no duration was given).
    Expected,
    /// Ctrl-C, or another signal.
    Interrupted,
    /// The firmware put the CPU to sleep with interrupts off: nothing can wake it.
    Halted,
    /// The simulated CPU crashed (simavr: "avr_sadly_crashed").
    Crashed,
}

/// The LED's part of a report.
#[derive(Debug, Clone, Serialize)]
pub struct LedReport {
    /// Its pin (`PB5`).
    pub pin: String,
    pub changes: u64,
    /// The first changes, one by one.
    pub edges: Vec<led::Edge>,
    /// The longest run of changes at one interval, if there was one.
    pub steady: Option<led::Steady>,
    /// The median interval between the toggles kept in `edges`.
    pub median_interval_seconds: Option<f64>,
}

impl LedReport {
    /// The report of the LED on `pin` that `led` followed.
    pub fn new(pin: &str, led: &led::Tracker) -> LedReport {
        LedReport {
            pin: pin.to_string(),
            changes: led.changes,
            edges: led.edges.clone(),
            steady: led.steady,
            median_interval_seconds: led.median_interval_ns().map(|ns| ns as f64 / 1e9),
        }
    }
}

/// The serial console's part of a report.
#[derive(Debug, Clone, Serialize)]
pub struct UartReport {
    /// The USART (`USART0`).
    pub name: String,
    pub bytes: u64,
    /// What it sent, bytes that are not UTF-8 escaped as `\xNN` (at most the first MiB).
    pub text: String,
}

/// What happened in a simulation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub board: String,
    pub mcu: String,
    pub clock_hz: u64,
    pub elf: PathBuf,
    pub simulator: PathBuf,
    /// `path` or `flake`.
    pub simulator_source: &'static str,
    pub end: End,
    pub simulated_seconds: f64,
    /// What the times are: `simulated` (the simulator's own clock, exact: simavr) or `wall`
    /// (the host's clock, which the simulated machine's timers follow: QEMU).
    pub clock: &'static str,
    /// Whether `simulated_seconds` is exact; when the run was stopped (Ctrl-C, a crash), it is
    /// the time of the last change seen, and the simulation went on a little further.
    pub simulated_exact: bool,
    pub wall_seconds: f64,
    /// Simulated seconds per wall second.
    pub speed: f64,
    pub uart: UartReport,
    pub led: LedReport,
    pub expect: Vec<Expectation>,
    /// What simavr said about a crash.
    pub crash: Vec<String>,
}

impl Report {
    /// The expected texts that never appeared.
    pub fn missing(&self) -> Vec<&str> {
        self.expect
            .iter()
            .filter(|e| e.seen_at_seconds.is_none())
            .map(|e| e.text.as_str())
            .collect()
    }
}

/// What watches a run: the display `opts` ask for, the expected texts, and the VCD file to write
/// (with the board's names for the LED and the console, and `comment` saying what ran).
fn new_watch(
    board: &Board,
    spec: &SimSpec,
    opts: &Options,
    console: Console,
    comment: &str,
) -> Result<watch::Watch> {
    let vcd_out = opts.vcd.as_deref().map(|p| {
        (
            p,
            spec.led.as_str(),
            spec.uart.as_str(),
            board.monitor.baud,
            comment,
        )
    });
    let display = Display {
        timestamps: opts.timestamps,
        uart_to_stderr: opts.uart_to_stderr,
    };
    watch::Watch::new(display, console, &opts.expect, vcd_out)
}

/// How a run went, from the simulator's side.
struct Ran {
    end: End,
    /// Simulated time (for QEMU, which runs in real time: the host's), in nanoseconds.
    ran_ns: u64,
    wall: Duration,
    /// `"simulated"` or `"wall"`: what the times are.
    clock: &'static str,
    /// Whether `ran_ns` is exactly the duration asked for.
    exact: bool,
    crash: Vec<String>,
}

/// Ends what `watch` shows (the trace, the LED's summary) and reports the run of `elf` on
/// `board` by `program`.
fn finish(
    board: &Board,
    program: &Program,
    elf: &Path,
    spec: &SimSpec,
    mut watch: watch::Watch,
    ran: Ran,
) -> Result<Report> {
    // The trace ends at the run's end, or at its last change if that came later (QEMU's times
    // are the host's: a change may be stamped after the duration asked for).
    watch.finish(ran.ran_ns.max(watch.last_ns))?;
    watch.led_summary().iter().for_each(|l| watch.status(l));
    let wall_seconds = ran.wall.as_secs_f64();
    let simulated_seconds = ran.ran_ns as f64 / 1e9;
    Ok(Report {
        board: board.id.clone(),
        mcu: spec.mcu.clone(),
        clock_hz: board.clock.unwrap_or_default(),
        elf: elf.to_path_buf(),
        simulator: program.program.clone(),
        simulator_source: match program.source {
            Source::Path => "path",
            Source::Flake(_) => "flake",
        },
        end: ran.end,
        simulated_seconds,
        clock: ran.clock,
        simulated_exact: ran.exact,
        wall_seconds,
        speed: simulated_seconds / wall_seconds.max(1e-9),
        uart: UartReport {
            name: spec.uart.clone(),
            bytes: watch.uart_bytes,
            text: std::mem::take(&mut watch.text),
        },
        led: LedReport::new(&spec.led, &watch.led),
        expect: watch.expect.clone(),
        crash: ran.crash,
    })
}

/// Checks that `elf` is firmware for the board's MCU: the family's ELF machine, and, where the
/// ELF says which MCU it was linked for (avr-libc's device note), that one.
pub fn check_firmware(board: &Board, elf: &Path) -> Result<()> {
    crate::firmware::check(board, elf)?;
    let data = std::fs::read(elf)
        .with_context(|| format!("cannot read the firmware {}", elf.display()))?;
    if let Some(device) = crate::firmware::avr_device(&data) {
        if !device.eq_ignore_ascii_case(&board.chip) {
            return Err(Failure::new(
                Kind::NotFirmware,
                format!(
                    "{} is firmware for the {device}, but the {} has an {}",
                    elf.display(),
                    board.name,
                    board.chip
                ),
            )
            .hint(format!(
                "is it built for the right board? This project is for `{}`; simulate firmware \
                 built for it (drop --elf to build it)",
                board.id
            ))
            .into());
        }
    }
    Ok(())
}

/// Runs `elf` on `board` with `program` as `opts` say, showing the firmware's serial output on
/// the console's `out` (or `err`) and the LED's changes on its `err` as they come.
#[cfg(unix)]
pub fn run(
    board: &Board,
    program: &Program,
    elf: &Path,
    opts: &Options,
    console: Console,
) -> Result<Report> {
    match program.spec.tool {
        SimTool::Simavr => simavr::run(board, program, elf, opts, console),
        SimTool::QemuSystemArm => qemu::run(board, program, elf, opts, console),
    }
}

/// Without a Unix pseudo-terminal, simavr's trace cannot be read as it is written.
#[cfg(not(unix))]
pub fn run(_: &Board, _: &Program, _: &Path, _: &Options, _: Console) -> Result<Report> {
    Err(Failure::new(
        Kind::Unsupported,
        "`nixflash sim` needs a Unix system (Linux or macOS)",
    )
    .into())
}
