//! What a simulation shows and keeps as it runs: the firmware's serial output (escaped and
//! stamped as the monitor does), the LED's changes ([`super::led`]), the expected texts, and
//! the `--vcd` trace.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::led::{self, Tracker};
use super::vcd::{Change, Writer};
use crate::monitor::LineFormatter;
use crate::report::Console;

/// The most serial output a report keeps (the live display shows all of it).
const KEPT_TEXT: usize = 1 << 20;

/// An expected text, and when it appeared.
#[derive(Debug, Clone, Serialize)]
pub struct Expectation {
    pub text: String,
    /// Simulated seconds at its last byte, if it appeared.
    pub seen_at_seconds: Option<f64>,
}

/// The `--vcd` trace being written: the LED (signal 0) and the bytes sent (signal 1).
struct Trace {
    writer: Writer<BufWriter<File>>,
    /// How long one byte takes on the wire: the byte's value is shown for that long.
    frame_ns: u64,
    /// When the byte shown ends (the UART signal goes back to z).
    byte_ends: Option<u64>,
}

impl Trace {
    fn before(&mut self, t: u64) -> Result<()> {
        if let Some(end) = self.byte_ends.filter(|e| *e <= t) {
            self.writer.change(end, 1, None)?;
            self.byte_ends = None;
        }
        Ok(())
    }
}

/// Where the live display goes and what it looks like.
pub struct Display {
    pub timestamps: bool,
    /// The firmware's serial output on stderr (with `--json`, whose report is stdout's).
    pub uart_to_stderr: bool,
}

/// The state of one simulation's output.
pub struct Watch {
    display: Display,
    console: Console,
    shown: LineFormatter,
    plain: LineFormatter,
    pub text: String,
    pub uart_bytes: u64,
    window: Vec<u8>,
    longest: usize,
    pub expect: Vec<Expectation>,
    pub led: Tracker,
    pub last_ns: u64,
    trace: Option<Trace>,
    at_line_start: bool,
}

impl Watch {
    /// `vcd`: the trace to write, named after `led_pin`, `uart` at `baud`, described by `comment`.
    pub fn new(
        display: Display,
        console: Console,
        expect: &[String],
        vcd: Option<(&Path, &str, &str, u32, &str)>,
    ) -> Result<Watch> {
        let trace = match vcd {
            None => None,
            Some((path, led_pin, uart, baud, comment)) => {
                let file = File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                let led_name = format!("LED_{led_pin}");
                let uart_name = format!("{uart}_TX");
                let writer = Writer::new(
                    BufWriter::new(file),
                    "nixflash",
                    &[(led_name.as_str(), 1), (uart_name.as_str(), 8)],
                    comment,
                )?;
                Some(Trace {
                    writer,
                    frame_ns: 10 * 1_000_000_000 / u64::from(baud.max(1)),
                    byte_ends: None,
                })
            }
        };
        Ok(Watch {
            shown: LineFormatter::new(display.timestamps),
            plain: LineFormatter::new(false),
            display,
            console,
            text: String::new(),
            uart_bytes: 0,
            window: Vec::new(),
            longest: expect.iter().map(String::len).max().unwrap_or(0),
            expect: expect
                .iter()
                .map(|t| Expectation {
                    text: t.clone(),
                    seen_at_seconds: None,
                })
                .collect(),
            led: Tracker::default(),
            last_ns: 0,
            trace,
            at_line_start: true,
        })
    }

    /// Whether every expected text has appeared.
    pub fn all_seen(&self) -> bool {
        self.expect.iter().all(|e| e.seen_at_seconds.is_some())
    }

    /// One change of simavr's trace: `uart` is a byte written to the console's data register,
    /// `led` the LED pin's level.
    pub fn change(&mut self, c: &Change) -> Result<()> {
        self.last_ns = self.last_ns.max(c.time_ns);
        if let Some(t) = &mut self.trace {
            t.before(c.time_ns)?;
        }
        match (c.signal.as_str(), c.value) {
            ("uart", Some(v)) => self.byte(c.time_ns, v as u8),
            ("led", level) => {
                for line in self.led.level(c.time_ns, level.map(|v| v != 0)) {
                    self.status(&line);
                }
                if let (Some(t), Some(v)) = (&mut self.trace, level) {
                    t.writer.change(c.time_ns, 0, Some(v))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn byte(&mut self, at_ns: u64, b: u8) -> Result<()> {
        self.uart_bytes += 1;
        let stamp = format!("[{:>10.6} s] ", at_ns as f64 / 1e9);
        let shown = self.shown.feed_at(&[b], &stamp);
        self.emit(&shown)?;
        if self.text.len() < KEPT_TEXT {
            self.text.push_str(&self.plain.feed(&[b]));
        }
        self.window.push(b);
        if self.window.len() > self.longest.max(1) * 2 {
            self.window.drain(..self.window.len() - self.longest);
        }
        for e in self
            .expect
            .iter_mut()
            .filter(|e| e.seen_at_seconds.is_none())
        {
            if self.window.ends_with(e.text.as_bytes()) {
                e.seen_at_seconds = Some(at_ns as f64 / 1e9);
            }
        }
        if let Some(t) = &mut self.trace {
            t.writer.change(at_ns, 1, Some(u64::from(b)))?;
            t.byte_ends = Some(at_ns + t.frame_ns);
        }
        Ok(())
    }

    fn emit(&mut self, text: &str) -> Result<()> {
        if let Some(c) = text.chars().last() {
            self.at_line_start = c == '\n';
        }
        let w = if self.display.uart_to_stderr {
            &mut self.console.err
        } else {
            &mut self.console.out
        };
        let r = w.write_all(text.as_bytes()).and_then(|_| w.flush());
        match r {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                Err(e).context("cannot write the firmware's output")
            }
            _ => Ok(()),
        }
    }

    /// A line of nixflash's own (`--- ...`) on the console's `err`, on a line of its own.
    pub fn status(&mut self, line: &str) {
        let same_terminal = self.display.uart_to_stderr
            || (self.console.out_is_terminal && self.console.err_is_terminal);
        let lead = if !self.at_line_start && same_terminal {
            "\n"
        } else {
            ""
        };
        if same_terminal {
            self.at_line_start = true;
        }
        let e = &mut self.console.err;
        let _ = writeln!(e, "{lead}--- {line}");
        let _ = e.flush();
    }

    /// Shows what the serial output still holds back, and ends the `--vcd` trace at `end_ns`.
    pub fn finish(&mut self, end_ns: u64) -> Result<()> {
        let rest = self.shown.flush();
        self.emit(&rest)?;
        let rest = self.plain.flush();
        self.text.push_str(&rest);
        if let Some(mut t) = self.trace.take() {
            t.before(end_ns)?;
            t.writer.finish(end_ns)?;
        }
        Ok(())
    }

    /// What the LED did, said compactly.
    pub fn led_summary(&mut self) -> Vec<String> {
        self.led.finish()
    }
}

/// `led::time`, for the command's lines.
pub fn time(ns: u64) -> String {
    led::time(ns)
}
