//! nixflash's serial monitor, the same for every board: the port's bytes on stdout (text that is
//! not UTF-8 shown escaped), keys or piped stdin to the board, reconnection after a replug.
//! With the firmware's ELF it also reads the firmware: addresses become functions and source
//! lines, defmt frames are decoded.
//!
//! [`input`] turns keys and piped bytes into what they mean, [`output`] formats the port's bytes
//! into lines, [`decode`] reads the firmware, [`terminal`] keeps raw mode and SIGTERM in order;
//! this module runs the session. [`rtt`] is the monitor of boards whose firmware logs over RTT
//! through a debug probe, read by probe-rs.

pub mod decode;
pub mod input;
pub mod many;
pub mod output;
pub mod rtt;
mod terminal;

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serialport::SerialPort;

use crate::board::family::ResetStep;
use crate::error::{Failure, Kind};
use crate::report::Console;
use crate::serial::access::{self, QUIET};
use crate::serial::reset;
pub use decode::Decode;
pub use input::Eol;
use input::{Input, Source};
pub use output::LineFormatter;
use output::Output;

/// Everything [`monitor`] needs.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// The port's path (a symlink such as /dev/serial/by-id/... is fine, and survives replugs).
    pub port: String,
    pub baud: u32,
    /// Prefix every line from the board with the local time, `[HH:MM:SS.mmm] `.
    pub timestamps: bool,
    /// Append what is shown (port output, timestamps included) to this file.
    pub log: Option<PathBuf>,
    /// What Enter sends (on a terminal: the Enter key; from a pipe: each `\n`).
    pub eol: Eol,
    /// What Ctrl-R does: the board's reset sequence for this port.
    pub reset: Vec<ResetStep>,
    /// End the session after this long (for scripts and tests).
    pub duration: Option<Duration>,
    /// Wait this long for the port to appear before giving up (e.g. right after flashing, while
    /// a native-USB board comes back).
    pub wait: Duration,
    /// When the port vanishes, wait for it to return (true) or end with an error (false).
    pub reconnect: bool,
    /// The firmware's ELF, to annotate addresses and decode defmt frames (none: bytes as they
    /// come).
    pub decode: Option<Decode>,
}

/// Why a monitor session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorEnd {
    /// Ctrl-] or Ctrl-C typed on the terminal.
    Quit,
    /// SIGINT (Ctrl-C when the terminal is not in raw mode).
    Interrupted,
    /// SIGTERM.
    Terminated,
    /// `duration` elapsed.
    Duration,
    /// Standard output was closed (e.g. `nixflash monitor | head`).
    OutputClosed,
    /// What passed the bytes on ended: probe-rs, for the RTT monitor ([`rtt`]).
    SourceEnded,
}

impl MonitorEnd {
    /// What the closing status line says; none for the source's end, which its caller explains.
    fn why(self) -> Option<&'static str> {
        Some(match self {
            MonitorEnd::Quit => "quit",
            MonitorEnd::Interrupted => "interrupted",
            MonitorEnd::Terminated => "terminated",
            MonitorEnd::Duration => "time is up",
            MonitorEnd::OutputClosed => "output closed",
            MonitorEnd::SourceEnded => return None,
        })
    }

    /// A signal, or the session's time (`deadline`) is up: what ends it before the next read.
    fn asked(deadline: Option<Instant>) -> Option<MonitorEnd> {
        if crate::interrupt::interrupted() {
            Some(MonitorEnd::Interrupted)
        } else if terminal::terminated() {
            Some(MonitorEnd::Terminated)
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            Some(MonitorEnd::Duration)
        } else {
            None
        }
    }
}

/// What happened in a monitor session: what its closing status line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MonitorReport {
    pub end: MonitorEnd,
    /// Bytes read from the port.
    pub received: u64,
    /// Bytes written to the port.
    pub sent: u64,
    /// How many times the port vanished and came back.
    pub reconnects: u32,
}

/// Runs the serial monitor until the user quits, a signal, or `duration`.
///
/// Port bytes go to the console's `out` (the command line's stdout; text that is not UTF-8 shown
/// escaped, e.g. `\xff`), status lines (starting with `--- `) to its `err` (stderr).
///
/// - stdin a terminal: raw mode (restored on every exit); keys go to the board as typed, Enter
///   as `eol`; Ctrl-] or Ctrl-C quits, Ctrl-R resets the board.
/// - stdin not a terminal (pipe, file, /dev/null): no raw mode; its bytes are forwarded as they
///   are, each `\n` as `eol`; its end does not end the session: SIGINT, SIGTERM or `duration` do.
///
/// When the port vanishes (USB unplug) it waits for the same path to return and goes on.
pub fn monitor(opts: &MonitorOptions, mut console: Console) -> Result<()> {
    crate::interrupt::install();
    let _term = terminal::SigtermGuard::install();
    let started = Instant::now();
    let stdin_tty = io::stdin().is_terminal();

    let port = open_waiting(opts, &mut console.err)?;
    // Read while the port's driver keeps what the board sends.
    let loaded = opts.decode.as_ref().map(decode::load);

    let raw = if stdin_tty {
        Some(terminal::RawMode::enable().context("cannot put the terminal in raw mode")?)
    } else {
        None
    };
    let mut out = Output::start(opts.log.as_deref(), opts.timestamps, raw.is_some(), console)?;

    let mut input = Source::new(stdin_tty, opts.eol);

    let keys = if stdin_tty {
        "Ctrl-] or Ctrl-C quits, Ctrl-R resets the board"
    } else {
        "stdin is not a terminal: its bytes are sent; SIGINT or SIGTERM ends"
    };
    out.status(&format!(
        "Connected to {} at {} baud ({keys})",
        opts.port, opts.baud
    ));
    if let Some(loaded) = loaded {
        out.decode_with(loaded);
    }

    let result = run_session(opts, port, &mut out, &mut input, started);
    if let Ok(r) = &result {
        let why = r.end.why().unwrap_or("the port's end");
        let _ = out.quiet();
        out.status(&format!(
            "Monitor closed ({why}): {} bytes received, {} sent, {} reconnects",
            r.received, r.sent, r.reconnects
        ));
    }
    drop(raw);
    result.map(drop)
}

/// The first open: errors are explained; a missing port is waited for up to `opts.wait`.
fn open_waiting(opts: &MonitorOptions, err: &mut dyn Write) -> Result<Box<dyn SerialPort>> {
    let deadline = Instant::now() + opts.wait;
    let mut said = false;
    loop {
        match access::open(&opts.port, opts.baud) {
            Ok(p) => return Ok(p),
            Err(e) if access::is_not_found(&e) && Instant::now() < deadline => {
                if !said {
                    let _ = writeln!(
                        err,
                        "--- Waiting up to {:.1} s for {} to appear",
                        opts.wait.as_secs_f64(),
                        opts.port
                    );
                    let _ = err.flush();
                    said = true;
                }
                crate::interrupt::check()?;
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(access::explain(&opts.port, &e)),
        }
    }
}

type Port = Box<dyn SerialPort>;

fn run_session(
    opts: &MonitorOptions,
    first: Port,
    out: &mut Output,
    input: &mut Source,
    started: Instant,
) -> Result<MonitorReport> {
    let deadline = opts.duration.map(|d| started + d);
    let mut report = MonitorReport {
        end: MonitorEnd::Quit,
        received: 0,
        sent: 0,
        reconnects: 0,
    };
    let mut link = Link::new(first);
    let mut said_dropped = false;
    let end = 'session: loop {
        if let Some(end) = MonitorEnd::asked(deadline) {
            break end;
        }
        for key in input.take() {
            match key {
                Input::Quit => break 'session MonitorEnd::Quit,
                Input::Reset => reset_board(link.port.as_mut(), opts, out),
                Input::Bytes(b) => {
                    match link.port.as_mut() {
                        Some(p) => match p.write_all(&b).and_then(|_| p.flush()) {
                            Ok(()) => report.sent += b.len() as u64,
                            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                                out.status("Could not send: the port does not take data")
                            }
                            Err(e) => link.lost(opts, out, &e)?,
                        },
                        None => {
                            if !said_dropped {
                                out.status("Not connected: what is typed is dropped until the port returns");
                                said_dropped = true;
                            }
                        }
                    }
                }
            }
        }
        match link.poll(opts, out)? {
            Polled::Idle => {}
            Polled::Received(n) => report.received += n,
            Polled::Reconnected => {
                report.reconnects += 1;
                said_dropped = false;
            }
            Polled::OutputClosed => break MonitorEnd::OutputClosed,
        }
    };
    report.end = end;
    Ok(report)
}

/// The port's side of a session (of one board, or of each of several): what it sends, shown
/// through an [`Output`], and the port opened again while it is away (None then: closed, so that
/// the device can come back under its name).
struct Link {
    port: Option<Port>,
    buf: [u8; 4096],
    last_try: Instant,
    last_data: Instant,
    last_wait_error: String,
}

/// What one [`Link::poll`] did.
enum Polled {
    /// Nothing came (or the port is still away).
    Idle,
    /// These many bytes came, and were shown.
    Received(u64),
    /// The port is back.
    Reconnected,
    /// Standard output was closed.
    OutputClosed,
}

impl Link {
    fn new(port: Port) -> Link {
        Link {
            port: Some(port),
            buf: [0; 4096],
            last_try: Instant::now(),
            last_data: Instant::now(),
            last_wait_error: String::new(),
        }
    }

    /// The port went away (`e`): closed and said, then waited for (or the session's error when
    /// reconnecting is off).
    fn lost(&mut self, opts: &MonitorOptions, out: &mut Output, e: &io::Error) -> Result<()> {
        self.port = None;
        gone(opts, out, e)?;
        self.last_try = Instant::now();
        Ok(())
    }

    /// Reads what the port has and shows it, or, while the port is away, tries to open it again
    /// (every 200 ms).
    fn poll(&mut self, opts: &MonitorOptions, out: &mut Output) -> Result<Polled> {
        let Some(p) = self.port.as_mut() else {
            thread::sleep(Duration::from_millis(50));
            if self.last_try.elapsed() >= Duration::from_millis(200) {
                self.last_try = Instant::now();
                self.port = reconnect(opts, out, &mut self.last_wait_error);
                if self.port.is_some() {
                    return Ok(Polled::Reconnected);
                }
            }
            return Ok(Polled::Idle);
        };
        match p.read(&mut self.buf) {
            Ok(0) => {
                self.lost(opts, out, &io::Error::from(io::ErrorKind::UnexpectedEof))?;
                Ok(Polled::Idle)
            }
            Ok(n) => {
                self.last_data = Instant::now();
                match out.port(&self.buf[..n])? {
                    true => Ok(Polled::OutputClosed),
                    false => Ok(Polled::Received(n as u64)),
                }
            }
            Err(e) if no_data_yet(&e) => match self.last_data.elapsed() >= QUIET && out.quiet()? {
                true => Ok(Polled::OutputClosed),
                false => Ok(Polled::Idle),
            },
            Err(e) => {
                self.lost(opts, out, &e)?;
                Ok(Polled::Idle)
            }
        }
    }
}

/// Whether a read's error only means that nothing came (yet).
fn no_data_yet(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The reset key: resets the board through the port's DTR/RTS lines as `opts.reset` says, if
/// the port is there.
fn reset_board(port: Option<&mut Port>, opts: &MonitorOptions, out: &mut Output) {
    match port {
        Some(p) => match reset::run(p.as_mut(), &opts.reset) {
            Ok(()) => out.status(&format!(
                "Reset the board ({})",
                reset::describe(&opts.reset)
            )),
            Err(e) => out.status(&format!(
                "Could not reset the board: {} (this port has no DTR/RTS lines, \
                 e.g. a pty)",
                e.description
            )),
        },
        None => out.status("Cannot reset: the port is away"),
    }
}

/// One try to open the port again while it is away: the port if it is back, saying so. An
/// error other than its absence is said once while it lasts (`last_wait_error`).
fn reconnect(
    opts: &MonitorOptions,
    out: &mut Output,
    last_wait_error: &mut String,
) -> Option<Port> {
    match access::open(&opts.port, opts.baud) {
        Ok(p) => {
            last_wait_error.clear();
            out.status(&format!("Reconnected to {}", opts.port));
            Some(p)
        }
        Err(e) if access::is_not_found(&e) => None,
        Err(e) => {
            // Right after a replug udev may not have set the permissions yet:
            // say what is wrong once, and keep trying.
            if e.description != *last_wait_error {
                out.status(&format!("Still waiting: {}", e.description));
                *last_wait_error = e.description.clone();
            }
            None
        }
    }
}

/// The port went away: say so, or end with an error when reconnecting is off.
fn gone(opts: &MonitorOptions, out: &mut Output, e: &io::Error) -> Result<()> {
    out.quiet()?;
    if !opts.reconnect {
        return Err(Failure::new(
            Kind::PortLost,
            format!("serial port {} went away ({e})", opts.port),
        )
        .hint("check the cable; without --no-reconnect the monitor waits for the port to return")
        .into());
    }
    out.status(&format!(
        "Port {} went away ({e}); waiting for it to return (replug the board, or quit)",
        opts.port
    ));
    Ok(())
}
