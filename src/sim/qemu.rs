//! Running firmware in QEMU (`qemu-system-arm -M microbit`), as the family's `[simulator]` says:
//! the machine's first UART is QEMU's stdout, and each change of a GPIO output is a trace line on
//! its stderr (`-trace <sim.gpio-trace>`), stamped with the host's time (`-msg timestamp=on`):
//! `<pid>@<seconds>.<micros>:nrf51_gpio_update_output_irq line 13 value 1`.
//!
//! QEMU runs the machine in real time (its timers count the host's clock), so the times are the
//! host's, from QEMU's start: the LED's from QEMU's stamps, taken as the firmware wrote the pin,
//! the UART's bytes as nixflash reads them. A run of bounded length is stopped after that much
//! wall time. The LED's changes count as steady at intervals 2 % apart (the host's scheduling
//! moves them by a few ms); the report's median interval is the one to trust.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::{check_firmware, finish, led, vcd, watch, End, Options, Program, Ran, Report};
use crate::board::{Board, SimSpec};
use crate::error::{Failure, Kind};
use crate::process::Cmd;
use crate::report::Console;

/// Intervals this many thousandths apart count as the same.
const WALL_CLOCK_PERMILLE: u64 = 20;

/// What comes out of the threads that read QEMU.
enum Msg {
    /// Bytes the firmware sent on the UART, and when they were read (ns from the start).
    Uart(Vec<u8>, u64),
    /// A GPIO output changed: its line and level (None: not driven), when (ns from the start).
    Gpio(u32, Option<bool>, u64),
    /// A line of QEMU's own.
    Said(String),
    /// One of its outputs ended.
    End,
}

/// Runs `elf` on `board` in QEMU as `opts` say, showing the UART's output on the console's `out`
/// (or `err`) and the LED's changes on its `err` as they come.
pub fn run(
    board: &Board,
    program: &Program,
    elf: &Path,
    opts: &Options,
    console: Console,
) -> Result<Report> {
    check_firmware(board, elf)?;
    let spec = board
        .sim
        .as_ref()
        .with_context(|| format!("board `{}` has no `sim` table for QEMU", board.id))?;
    let led_line = spec
        .led_line()
        .with_context(|| format!("`sim.led = \"{}\"` is not a pin", spec.led))?;
    let event = spec
        .gpio_trace
        .clone()
        .context("`sim.gpio-trace` is not set")?;
    let elf_s = elf.display().to_string();
    let mut args = Vec::new();
    for a in &program.spec.args {
        args.push(board.fill(a, &[("elf", elf_s.as_str())])?);
    }
    let cmd = Cmd::new(&program.program).args(&args);
    let mut watch = new_watch(board, spec, elf, opts, console)?;
    watch.led = led::Tracker::with_tolerance(WALL_CLOCK_PERMILLE);

    let t0 = SystemTime::now();
    let started = Instant::now();
    let mut child = cmd
        .spawn_piped()
        .with_context(|| format!("cannot run {}", program.program.display()))?;
    let rx = read_qemu(&mut child, started, t0, event)?;
    let seen = supervise(&mut child, &rx, &mut watch, opts, led_line, started)?;
    let wall = seen.ended.duration_since(started);
    let end = match (seen.stopped, seen.code) {
        (Some(end), _) => end,
        (None, code) => {
            return Err(ended_unexpectedly(program, board, &cmd, code, &seen.said));
        }
    };
    let ran_ns = match (end, opts.duration) {
        (End::Duration, Some(d)) => d.as_nanos() as u64,
        _ => wall.as_nanos() as u64,
    };
    let ran = Ran {
        end,
        ran_ns,
        wall,
        clock: "wall",
        exact: false,
        crash: Vec::new(),
    };
    finish(board, program, elf, spec, watch, ran)
}

/// What watches the run, with a VCD comment that says what ran.
fn new_watch(
    board: &Board,
    spec: &SimSpec,
    elf: &Path,
    opts: &Options,
    console: Console,
) -> Result<watch::Watch> {
    let comment = format!(
        "nixflash sim: {} (QEMU's {} machine) running {}, times from the host's clock. {}_TX: \
         each byte the firmware sent, as it was read from QEMU.",
        board.name,
        spec.machine.as_deref().unwrap_or_default(),
        elf.display(),
        spec.uart,
    );
    super::new_watch(board, spec, opts, console, &comment)
}

/// Starts the threads that read QEMU: its stdout (the UART) and its stderr (the trace, and its
/// messages).
fn read_qemu(
    child: &mut crate::process::Running,
    started: Instant,
    t0: SystemTime,
    event: String,
) -> Result<mpsc::Receiver<Msg>> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut stdout = child.stdout().context("QEMU's stdout")?;
    let out_tx = tx.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            let at = started.elapsed().as_nanos() as u64;
            if out_tx.send(Msg::Uart(buf[..n].to_vec(), at)).is_err() {
                break;
            }
        }
        let _ = out_tx.send(Msg::End);
    });
    let stderr = child.stderr().context("QEMU's stderr")?;
    let t0_ns = t0.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line).into_owned();
            let msg = match gpio_change(&line, &event) {
                Some((n, level, at)) => Msg::Gpio(n, level, at.saturating_sub(t0_ns)),
                None => Msg::Said(line),
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
        let _ = tx.send(Msg::End);
    });
    Ok(rx)
}

/// A trace line of `event` (`4490@1796277566.811846:<event> line 13 value 1`): the line, its
/// level (`-1`: not driven), and the time of the stamp in ns since the Unix epoch.
pub fn gpio_change(line: &str, event: &str) -> Option<(u32, Option<bool>, u64)> {
    let (_, rest) = line.split_once('@')?;
    let (stamp, what) = rest.split_once(':')?;
    let (secs, micros) = stamp.split_once('.')?;
    let at = secs.parse::<u64>().ok()? * 1_000_000_000 + micros.parse::<u64>().ok()? * 1000;
    let mut words = what.strip_prefix(event)?.split_whitespace();
    let (Some("line"), Some(n), Some("value"), Some(v)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return None;
    };
    let level = match v {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    };
    Some((n.parse().ok()?, level, at))
}

/// What was seen while QEMU ran.
struct Seen {
    /// Why nixflash stopped it; None if it ended by itself.
    stopped: Option<End>,
    /// Its exit code, and when it ended.
    code: i32,
    ended: Instant,
    /// Its messages (the first 20).
    said: Vec<String>,
}

/// Watches QEMU until it has ended and what it wrote is read: the UART's bytes and the LED's
/// changes to `watch`; stops it after the duration, or, without one, once every expected text
/// appeared.
fn supervise(
    child: &mut crate::process::Running,
    rx: &mpsc::Receiver<Msg>,
    watch: &mut watch::Watch,
    opts: &Options,
    led_line: u32,
    started: Instant,
) -> Result<Seen> {
    let mut said = Vec::new();
    let mut stopped = None;
    let mut exited: Option<(i32, Instant)> = None;
    let mut ends = 0;
    loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(Msg::Uart(bytes, at)) => {
                for b in bytes {
                    watch.change(&change("uart", at.max(watch.last_ns), Some(b.into())))?;
                }
            }
            Ok(Msg::Gpio(n, level, at)) if n == led_line => {
                let at = at.max(watch.last_ns);
                watch.change(&change("led", at, level.map(u64::from)))?;
            }
            Ok(Msg::Gpio(..)) => {}
            Ok(Msg::Said(line)) if said.len() < 20 && !line.trim().is_empty() => said.push(line),
            Ok(Msg::Said(_)) => {}
            Ok(Msg::End) => ends += 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Both outputs ended: only QEMU's exit is left to see.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                ends = 2;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if stopped.is_none() && exited.is_none() {
            let open_ended = opts.duration.is_none() && !opts.expect.is_empty();
            let why = if opts.duration.is_some_and(|d| started.elapsed() >= d) {
                Some(End::Duration)
            } else if open_ended && watch.all_seen() {
                Some(End::Expected)
            } else if crate::interrupt::interrupted() {
                Some(End::Interrupted)
            } else {
                None
            };
            if let Some(why) = why {
                stopped = Some(why);
                child.interrupt().ok();
            }
        }
        match exited {
            None => {
                if let Some(status) = child.try_wait()? {
                    exited = Some((crate::process::exit_code(status), Instant::now()));
                }
            }
            Some((_, at)) if ends == 2 || at.elapsed() > Duration::from_secs(5) => break,
            Some(_) => {}
        }
    }
    let (code, ended) = exited.context("QEMU did not end")?;
    // Ctrl-C reached QEMU too (it ends on SIGINT).
    if stopped.is_none() && crate::interrupt::interrupted() {
        stopped = Some(End::Interrupted);
    }
    Ok(Seen {
        stopped,
        code,
        ended,
        said,
    })
}

fn change(signal: &str, time_ns: u64, value: Option<u64>) -> vcd::Change {
    vcd::Change {
        time_ns,
        signal: signal.to_string(),
        value,
    }
}

/// The error of a QEMU that ended by itself with exit `code`: its messages (`said`), and its
/// command line to run it again.
fn ended_unexpectedly(
    program: &Program,
    board: &Board,
    cmd: &Cmd,
    code: i32,
    said: &[String],
) -> anyhow::Error {
    Failure::new(
        Kind::SimFailed,
        format!(
            "{} ended by itself (exit code {code}) running the {}'s firmware:\n  {}",
            program.program.display(),
            board.name,
            said.join("\n  ")
        ),
    )
    .hint(format!(
        "its messages above say why; run it yourself: {}",
        cmd.display()
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpio_trace_lines_are_read() {
        let e = "nrf51_gpio_update_output_irq";
        assert_eq!(
            gpio_change(
                "4490@1796277566.811846:nrf51_gpio_update_output_irq line 13 value 1",
                e
            ),
            Some((13, Some(true), 1_796_277_566_811_846_000))
        );
        assert_eq!(
            gpio_change(
                "7@1.000002:nrf51_gpio_update_output_irq line 24 value -1",
                e
            ),
            Some((24, None, 1_000_002_000))
        );
        assert_eq!(
            gpio_change("qemu-system-arm: terminating on signal 2", e),
            None
        );
    }
}
