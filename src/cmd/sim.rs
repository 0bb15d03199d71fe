//! `nixflash sim`.

use std::path::PathBuf;
use std::time::Duration;

use super::status;
use crate::board::Board;
use crate::error::{Failure, Kind};
use crate::sim::{self, watch::time, End, Options, Report};
use anyhow::Result;

/// Run the firmware in a simulator, without the board (simavr, QEMU)
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n  nixflash sim                                  build, then run until Ctrl-C\n  \
    nixflash sim --duration 3 --timestamps        3 s of simulated time, lines stamped with it\n  \
    nixflash sim --expect \"Hello from\" --duration 2   a test: exit 0 if the text came, else 1\n  \
    nixflash sim --no-build --vcd blink.vcd --duration 5   the LED and serial bytes for GTKWave\n\n\
    The firmware runs on the board's MCU at its clock (from the board database). Its serial \
    console's output is shown as the monitor shows it (stdout; bytes that are not UTF-8 as \
    \\xNN), the LED's changes on stderr, counted once it blinks steadily or fast. With --expect \
    and no --duration, the simulation ends as soon as every text has appeared. The simulator is \
    the board family's: simavr for AVR boards, QEMU (qemu-system-arm) for the boards it emulates \
    (the micro:bit v1, `-M microbit`: its UART's output and its LED pin, in real time, so the \
    times are the host's clock and --json's led.median_interval_seconds is the period to trust; \
    the defmt logs over RTT cannot show). Other boards have none, and say so. The one on PATH is \
    used if it simulates the board, otherwise the one the project's flake.nix pins \
    (packages.<system>.simulator, built with Nix). `nix flake check` runs the same firmware in \
    it too (checks.sim, with the texts and duration of [package.metadata.nixflash.sim] in \
    Cargo.toml). Before it runs, the firmware's SHA-256 is printed, the ELF's and its flash \
    image's, as `build` prints them; --json has them as \"sha256\": {\"elf\", \"image\", \
    \"image_size\", \"image_is\"}.\n\n",
    super::nix_args_help!()
))]
pub struct Args {
    /// Simulated seconds to run for (default: until Ctrl-C)
    #[arg(long, value_name = "SECS", value_parser = super::seconds)]
    pub duration: Option<Duration>,
    /// Text the firmware must send on its serial console: exit 1 naming it if it does not
    /// (repeatable)
    #[arg(long, value_name = "TEXT")]
    pub expect: Vec<String>,
    /// Write the LED pin and the console's bytes as a VCD trace (GTKWave, PulseView)
    #[arg(long, value_name = "FILE")]
    pub vcd: Option<PathBuf>,
    /// Start each line of serial output with the simulated time
    #[arg(long)]
    pub timestamps: bool,
    /// Print a report as JSON on stdout at the end (the serial output then goes to stderr)
    #[arg(long)]
    pub json: bool,
    /// The board, for an ELF given with --elf (default: the project's; outside a project, the
    /// one the ELF's chip tells)
    #[arg(long, short, value_name = "ID", requires = "elf")]
    pub board: Option<String>,
    #[command(flatten, next_help_heading = "Firmware")]
    pub firmware: super::firmware::FirmwareArgs,
    #[command(flatten, next_help_heading = "Building")]
    pub flags: super::NixFlags,
}

pub fn run(a: Args) -> Result<u8> {
    let json = a.json;
    match simulate(a) {
        Ok(verdict) => verdict,
        Err(e) => super::answer_failure(json, Err(e)),
    }
}

/// Simulates, then judges the run: the outer error is a failure before the simulation could say
/// anything, the inner one its verdict (which `--json` puts in the report).
fn simulate(a: Args) -> Result<Result<u8>> {
    let ctx = a.flags.context()?;
    let board = super::firmware::board(
        &ctx,
        a.board.as_deref(),
        a.firmware.elf.as_deref(),
        false,
        // What the simulation needs of a board.
        |x, y| x.family_id == y.family_id && x.sim == y.sim && x.clock == y.clock,
    )?;
    let board: &Board = &board;
    if ctx.root.is_some() {
        ctx.manifest()?;
    }
    // What can be found out at once comes first, before a long build.
    sim::program::spec(board)?;
    if a.duration == Some(Duration::ZERO) {
        return Err(Failure::new(Kind::Usage, "--duration must be above zero")
            .hint("it is in seconds of simulated time, e.g. --duration 2 or --duration 0.5")
            .into());
    }
    if a.expect.iter().any(String::is_empty) {
        return Err(Failure::new(Kind::Usage, "--expect \"\" expects nothing")
            .hint("give the text the firmware must send, e.g. --expect \"Hello from\"")
            .into());
    }
    let firmware = a.firmware.check(&ctx, "simulate")?;
    let (elf, hashes) = super::firmware::FirmwareArgs::get(firmware, &ctx, &a.flags, board)?;
    sim::check_firmware(board, &elf)?;
    let nix = a.flags.nix();
    let flake = crate::tool::Flake::of(&ctx, nix.as_ref());
    let program = sim::find(board, &flake, &super::Terminal)?;
    status("Simulator", &program.to_string());
    header(board, &program, &elf, &a);
    let opts = Options {
        duration: a.duration,
        expect: a.expect.clone(),
        vcd: a.vcd.clone(),
        timestamps: a.timestamps,
        uart_to_stderr: a.json,
    };
    let report = sim::run(board, &program, &elf, &opts, super::terminal::console())?;
    summary(board, &report, a.vcd.as_deref());
    let verdict = verdict(&report);
    if a.json {
        let mut j = match serde_json::to_value(&report)? {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a report is a JSON object"),
        };
        j.insert("sha256".into(), serde_json::to_value(&hashes)?);
        match &verdict {
            Ok(()) => {
                j.insert("ok".into(), true.into());
            }
            Err(e) => j.extend(super::failure_json(e)),
        }
        super::outln!("{}", serde_json::to_string_pretty(&j)?);
    }
    Ok(verdict.map(|()| 0))
}

/// What runs, for how long, and what is watched; what cannot be seen.
fn header(board: &Board, program: &sim::Program, elf: &std::path::Path, a: &Args) {
    let spec = board.sim.as_ref();
    let mcu = spec.map_or(board.chip.as_str(), |s| s.mcu.as_str());
    let clock = board.clock.unwrap_or_default() as f64 / 1e6;
    let machine = spec.and_then(|s| s.machine.as_deref());
    let time = match machine {
        Some(_) => "wall time (QEMU runs in real time)",
        None => "simulated time",
    };
    let how_long = match a.duration {
        Some(d) => format!("for {} s of {time}", d.as_secs_f64()),
        None if !a.expect.is_empty() => "until every expected text appeared (or Ctrl-C)".into(),
        None => "until Ctrl-C".into(),
    };
    let on = match machine {
        Some(m) => format!(
            "{} (QEMU's `{m}` machine: its {mcu} at {clock} MHz)",
            board.name
        ),
        None => format!("{}'s {mcu} at {clock} MHz", board.name),
    };
    let unseen = program
        .spec
        .unseen
        .as_deref()
        .map(|u| format!("; not shown: {u}"))
        .unwrap_or_default();
    status(
        "Simulating",
        &format!("{} on the {on}, {how_long}{unseen}", super::path(elf)),
    );
    let Some(s) = spec else { return };
    status(
        "Watching",
        &format!(
            "{} (the serial console, on {}) and the LED on {} ({})",
            s.uart,
            if a.json { "stderr" } else { "stdout" },
            s.led,
            board.hal.led
        ),
    );
    if let Some(u) = &board.hal.uart {
        status(
            "Note",
            &format!(
                "{} is the {}'s UART ({}, {} baud), which its USB interface chip passes to the \
                 computer as a serial port",
                s.uart, board.name, u.tx, u.baud
            ),
        );
    } else if !board.monitor.usb_console {
        status(
            "Note",
            &format!(
                "the {}'s console is its TX/RX pins ({}), not its USB port: what is shown \
                 is what a USB-serial adapter on those pins would show",
                board.name, s.uart
            ),
        );
    }
}

/// Seconds as `led::time` says them.
fn secs(s: f64) -> String {
    time((s * 1e9).round() as u64)
}

fn say(line: &str) {
    eprintln!("--- {line}");
}

/// How it ended, how fast it ran, and what it sent.
fn summary(board: &Board, r: &Report, vcd: Option<&std::path::Path>) {
    let t = format!("{:.3} s", r.simulated_seconds);
    let ran = if r.simulated_exact {
        t
    } else {
        format!("at least {t}")
    };
    // How fast it ran, when it ran long enough for that to mean something.
    let speed = if r.clock == "wall" {
        format!(
            "{:.3} s in real time (QEMU: the times shown are the host's clock)",
            r.simulated_seconds
        )
    } else if r.simulated_seconds >= 0.1 {
        format!(
            "{ran} of simulated time in {:.2} s of wall time ({:.2} simulated seconds per wall \
             second)",
            r.wall_seconds, r.speed
        )
    } else {
        format!("{ran} of simulated time")
    };
    match r.end {
        End::Duration => say(&format!("Simulated {speed}")),
        End::Expected => say(&format!(
            "Every expected text appeared: stopped after {speed}"
        )),
        End::Interrupted => say(&format!("Stopped after {speed}")),
        End::Halted => say(&format!(
            "The firmware stopped the CPU (asleep with interrupts off, nothing can wake it) \
             after {speed}"
        )),
        End::Crashed => say(&format!("The simulated CPU crashed after {speed}")),
    }
    if r.uart.bytes == 0 {
        match board.sim.as_ref().filter(|s| s.native_usb) {
            Some(_) => say(&format!(
                "The simulated {} stayed silent: the firmware sent nothing on the {}'s TX/RX \
                 pins. A console on the {}'s own USB port cannot show here: simavr attaches no \
                 USB host to it",
                r.uart.name, board.name, board.chip
            )),
            None => say(&format!(
                "The firmware sent nothing on {} (its serial console)",
                r.uart.name
            )),
        }
    }
    for e in &r.expect {
        match e.seen_at_seconds {
            Some(at) => say(&format!("Expected {:?}: sent at {}", e.text, secs(at))),
            None => say(&format!("Expected {:?}: never sent", e.text)),
        }
    }
    if let Some(path) = vcd {
        say(&format!(
            "Wrote the LED ({}) and {}'s bytes to {}",
            r.led.pin,
            r.uart.name,
            super::path(path)
        ));
    }
}

/// A crash, or an expected text that never came, is an error.
fn verdict(r: &Report) -> Result<()> {
    let at = format!("{:.3} s", r.simulated_seconds);
    if r.end == End::Crashed {
        return Err(Failure::new(
            Kind::SimCrashed,
            format!(
                "the simulated {} crashed, {at} or more into the simulation (simavr: {})",
                r.mcu,
                r.crash.join(" / ")
            ),
        )
        .hint(
            "simavr stops the CPU when the firmware runs an instruction that is not one, or \
             jumps or writes outside memory; a stack overflow can do that",
        )
        .hint(format!(
            "to see where, run `{} --gdb --mcu {} --freq {} {}` and connect avr-gdb to it \
             (target remote :1234)",
            super::path(&r.simulator),
            r.mcu,
            r.clock_hz,
            super::path(&r.elf)
        ))
        .into());
    }
    let missing = r.missing();
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|m| format!("{m:?}")).collect();
        return Err(Failure::new(
            Kind::ExpectUnmet,
            format!(
                "the firmware never sent {} on {} in {} of simulated time",
                list.join(", "),
                r.uart.name,
                if r.simulated_exact {
                    at
                } else {
                    format!("at least {at}")
                }
            ),
        )
        .hint("its serial output is above: is the text spelled as the firmware sends it?")
        .hint("a longer --duration gives the firmware more time")
        .into());
    }
    Ok(())
}
