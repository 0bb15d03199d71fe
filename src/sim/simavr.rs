//! Running firmware in simavr: the trace it writes into a pseudo-terminal ([`super::pty`]) as
//! the simulation goes, told what to trace by the `.mmcu` section ([`super::mmcu`]).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{check_firmware, finish, mmcu, pty, vcd, watch, End, Options, Program, Ran, Report};
use crate::board::Board;
use crate::error::{Failure, Kind};
use crate::process::Cmd;
use crate::report::Console;

/// What comes out of the threads that read simavr.
enum Msg {
    Change(vcd::Change),
    TraceEnd(Option<String>),
    Stderr(String),
    StderrEnd,
}

/// Runs `elf` on `board` with `program` as `opts` say, showing the firmware's serial output on
/// the console's `out` (or `err`) and the LED's changes on its `err` as they come.
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
        .with_context(|| format!("board `{}` has no `sim` table for the simulator", board.id))?;
    let clock = board
        .clock
        .with_context(|| format!("board `{}` has no `clock`", board.id))?;

    let dir = tempfile::Builder::new()
        .prefix("nixflash-sim-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    let mut pty = pty::Pty::open()?;
    let cmd = simavr_command(board, program, elf, opts, spec, &pty.path, dir.path())?;

    let mut watch = new_watch(board, spec, clock, elf, opts, console)?;

    let started = Instant::now();
    let mut child = cmd
        .spawn_piped()
        .with_context(|| format!("cannot run {}", program.program.display()))?;
    let (rx, stdout) = read_simavr(&mut child, &pty)?;

    let Watched {
        crash,
        crashed,
        said,
        stopped_when_seen,
        exited,
        trace_error,
    } = supervise(&mut child, &rx, &mut watch, &mut pty, opts)?;
    let (code, ended) = exited.context("simavr did not end")?;
    let wall = ended.duration_since(started);
    let out = stdout.join().unwrap_or_default();

    if let Some(e) = trace_error {
        return Err(
            Failure::new(Kind::SimFailed, format!("cannot read simavr's trace: {e}")).into(),
        );
    }
    let end = how_it_ended(crashed, stopped_when_seen, &out)
        .ok_or_else(|| ended_unexpectedly(program, elf, board, &cmd, code, &said, &out))?;
    let (ran_ns, exact) = match (end, opts.duration) {
        (End::Duration, Some(d)) => (d.as_nanos() as u64, true),
        _ => (watch.last_ns, false),
    };
    let ran = Ran {
        end,
        ran_ns,
        wall,
        clock: "simulated",
        exact,
        crash,
    };
    finish(board, program, elf, spec, watch, ran)
}

/// Starts the threads that read simavr: its trace (from the pty) and stderr as [`Msg`]s, its
/// stdout whole at the end.
fn read_simavr(
    child: &mut crate::process::Running,
    pty: &pty::Pty,
) -> Result<(mpsc::Receiver<Msg>, std::thread::JoinHandle<String>)> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut master = pty.master.try_clone().context("cannot read the pty")?;
    let trace_tx = tx.clone();
    std::thread::spawn(move || read_trace(&mut master, &trace_tx));
    let stderr = child.stderr().context("simavr's stderr")?;
    let err_tx = tx.clone();
    std::thread::spawn(move || read_stderr(stderr, &err_tx));
    drop(tx);
    let mut stdout = child.stdout().context("simavr's stdout")?;
    let stdout = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stdout.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    });
    Ok((rx, stdout))
}

/// What watches the run, with a VCD comment that says what ran.
fn new_watch(
    board: &Board,
    spec: &crate::board::SimSpec,
    clock: u64,
    elf: &Path,
    opts: &Options,
    console: Console,
) -> Result<watch::Watch> {
    let comment = format!(
        "nixflash sim: {} ({} at {} Hz) running {}. {}_TX: each byte the firmware sent, for one \
         frame at {} baud (the board's console speed).",
        board.name,
        spec.mcu,
        clock,
        elf.display(),
        spec.uart,
        board.monitor.baud
    );
    super::new_watch(board, spec, opts, console, &comment)
}

/// Sends simavr's stderr, line by line, and its end.
fn read_stderr(stderr: std::process::ChildStderr, err_tx: &mpsc::Sender<Msg>) {
    for line in BufReader::new(stderr).split(b'\n') {
        let Ok(line) = line else { break };
        let _ = err_tx.send(Msg::Stderr(String::from_utf8_lossy(&line).into_owned()));
    }
    let _ = err_tx.send(Msg::StderrEnd);
}

/// simavr's command line for `elf` on the board: a copy of the firmware with the section that
/// tells simavr what to trace (the UART's data register and the LED's `pin`) into the pty at
/// `trace`, in `dir`, and the stop trace when `opts` give a duration.
fn simavr_command(
    board: &Board,
    program: &Program,
    elf: &Path,
    opts: &Options,
    spec: &crate::board::SimSpec,
    trace: &Path,
    dir: &Path,
) -> Result<Cmd> {
    let (port, bit) = spec
        .led_pin()
        .with_context(|| format!("`sim.led = \"{}\"` is not a pin", spec.led))?;
    let mmcu = mmcu::Mmcu::default()
        .vcd_file(&trace.to_string_lossy(), 1000)?
        .register(
            spec.uart_data.context("`sim.uart-data` is not set")?,
            "uart",
        )?
        .pin(port, bit, "led")?;
    let data = std::fs::read(elf)
        .with_context(|| format!("cannot read the firmware {}", elf.display()))?;
    let traced = dir.join("firmware.elf");
    let copy = crate::firmware::section::with_section(&data, ".mmcu", mmcu.bytes())
        .with_context(|| format!("cannot add simavr's trace section to {}", elf.display()))?;
    std::fs::write(&traced, copy).context("cannot write the firmware's copy")?;
    let stop = dir.join("stop.vcd");
    let traced_s = traced.display().to_string();
    let stop_s = stop.display().to_string();
    let fill = [("elf", traced_s.as_str()), ("stop", stop_s.as_str())];
    let mut args = Vec::new();
    if let Some(d) = opts.duration {
        std::fs::write(&stop, vcd::stop_input(d.as_micros() as u64))
            .context("cannot write the trace that ends the simulation")?;
        for a in &program.spec.stop_args {
            args.push(board.fill(a, &fill)?);
        }
    }
    for a in &program.spec.args {
        args.push(board.fill(a, &fill)?);
    }
    Ok(Cmd::new(&program.program).args(&args).dir(dir))
}

/// Reads simavr's VCD trace from the pty's `master` until it closes, sending each change, and
/// at the end the first error the trace had.
fn read_trace(master: &mut std::fs::File, trace_tx: &mpsc::Sender<Msg>) {
    let mut reader = vcd::Reader::default();
    let (mut buf, mut line) = (vec![0u8; 8192], Vec::new());
    let mut error = None;
    'read: loop {
        let n = match pty::read_chunk(master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b != b'\n' {
                line.push(b);
                continue;
            }
            match reader.line(&String::from_utf8_lossy(&line)) {
                Ok(changes) => {
                    for c in changes {
                        if trace_tx.send(Msg::Change(c)).is_err() {
                            break 'read;
                        }
                    }
                }
                Err(e) => error = Some(format!("{e:#}")),
            }
            line.clear();
        }
    }
    let _ = trace_tx.send(Msg::TraceEnd(error));
}

/// What was seen while simavr ran.
struct Watched {
    crash: Vec<String>,
    crashed: bool,
    /// simavr's messages (the first 20, and all after a crash).
    said: Vec<String>,
    stopped_when_seen: bool,
    /// Its exit code, and when it ended.
    exited: Option<(i32, Instant)>,
    trace_error: Option<String>,
}

/// Watches simavr until it has ended and what it wrote is read: each change of the trace to
/// `watch`, its messages, a crash (ending it), and every expected text seen (ending it when
/// there is no duration).
fn supervise(
    child: &mut crate::process::Running,
    rx: &mpsc::Receiver<Msg>,
    watch: &mut watch::Watch,
    pty: &mut pty::Pty,
    opts: &Options,
) -> Result<Watched> {
    let mut crash: Vec<String> = Vec::new();
    let mut crashed = false;
    let mut said: Vec<String> = Vec::new();
    let mut stopped_when_seen = false;
    let mut exited: Option<(i32, Instant)> = None;
    let (mut trace_done, mut stderr_done) = (false, false);
    let mut trace_error = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Msg::Change(c)) => watch.change(&c)?,
            Ok(Msg::TraceEnd(e)) => {
                trace_done = true;
                trace_error = e;
            }
            Ok(Msg::Stderr(line)) => {
                // simavr's own copy of the serial output is green; its messages are not.
                if !line.starts_with('\x1b') && !line.trim().is_empty() {
                    if line.contains("avr_sadly_crashed") {
                        crashed = true;
                        child.interrupt().ok();
                    }
                    if crashed || said.len() < 20 {
                        said.push(line.clone());
                    }
                    if crashed && crash.len() < 20 {
                        crash.push(line);
                    }
                }
            }
            Ok(Msg::StderrEnd) => stderr_done = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let open_ended = opts.duration.is_none() && !opts.expect.is_empty();
        if open_ended && !stopped_when_seen && watch.all_seen() {
            stopped_when_seen = true;
            child.interrupt().ok();
        }
        match exited {
            None => {
                if let Some(status) = child.try_wait()? {
                    exited = Some((crate::process::exit_code(status), Instant::now()));
                    // Reading the trace ends once everything simavr wrote is read.
                    pty.close_slave();
                }
            }
            // Whatever is left comes at once; a trace that never ends is not waited for long.
            Some((_, at)) if trace_done && stderr_done || at.elapsed() > Duration::from_secs(5) => {
                break
            }
            Some(_) => {}
        }
    }
    Ok(Watched {
        crash,
        crashed,
        said,
        stopped_when_seen,
        exited,
        trace_error,
    })
}

/// How the run ended, from what was seen and simavr's output `out`; None if it ended
/// unexpectedly.
fn how_it_ended(crashed: bool, stopped_when_seen: bool, out: &str) -> Option<End> {
    Some(if crashed {
        End::Crashed
    } else if stopped_when_seen {
        End::Expected
    } else if out.contains("Finished reading, ending simavr") {
        End::Duration
    } else if out.contains("sleeping with interrupts off") {
        End::Halted
    } else if crate::interrupt::interrupted() || out.contains("signal caught") {
        End::Interrupted
    } else {
        return None;
    })
}

/// The error of a simavr that ended unexpectedly with exit `code`: its messages (`said`) and
/// output (`out`), and its command line to run it again.
fn ended_unexpectedly(
    program: &Program,
    elf: &Path,
    board: &Board,
    cmd: &Cmd,
    code: i32,
    said: &[String],
    out: &str,
) -> anyhow::Error {
    let mut words: Vec<&str> = said.iter().map(String::as_str).collect();
    words.extend(out.lines().filter(|l| !l.trim().is_empty()).take(20));
    Failure::new(
        Kind::SimFailed,
        format!(
            "{} ended unexpectedly (exit code {code}) simulating {} on the {}:\n  {}",
            program.program.display(),
            elf.display(),
            board.name,
            words.join("\n  ")
        ),
    )
    .hint(format!(
        "its messages above say why; run it yourself: {}",
        cmd.display()
    ))
    .into()
}
