//! One monitor of several boards (`flash --monitor` with several ports): every board's lines on
//! the same stdout, each prefixed with the board's label (its `name` setting, else its port), a
//! line at a time so that boards never cut into each other's lines. Each port is read by a
//! thread of its own, as [`super::monitor`] reads one (lines formatted, the firmware's ELF
//! decoding addresses and defmt frames, reconnection after a replug); what is typed is not sent
//! (which board would it go to?): Ctrl-C, SIGTERM or `duration` end the session.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::output::{LineFormatter, Output};
use super::{decode, open_waiting, terminal, Link, MonitorOptions, Polled};
use crate::report::Console;

/// One board to watch: its label and how to watch it.
#[derive(Debug, Clone)]
pub struct Watched {
    pub label: String,
    pub opts: MonitorOptions,
}

/// A writer that prints whole lines, each prefixed, onto a writer shared by several.
struct Prefixed {
    shared: Arc<Mutex<Box<dyn Write + Send>>>,
    prefix: String,
    line: Vec<u8>,
}

impl Write for Prefixed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            if b != b'\r' {
                self.line.push(b);
            }
            if b == b'\n' {
                let mut w = self.shared.lock().unwrap_or_else(|e| e.into_inner());
                w.write_all(self.prefix.as_bytes())?;
                w.write_all(&self.line)?;
                w.flush()?;
                self.line.clear();
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Prefixed {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.line.push(b'\n');
            let line = std::mem::take(&mut self.line);
            let _ = self.write_all(&line);
        }
    }
}

/// Watches every board of `boards` until Ctrl-C, SIGTERM or the first board's `duration`; a board
/// whose port cannot be opened is said, and the others are watched.
pub fn monitor_many(boards: &[Watched], console: Console) -> Result<()> {
    crate::interrupt::install();
    let _term = terminal::SigtermGuard::install();
    let started = Instant::now();
    let out = Arc::new(Mutex::new(console.out));
    let err = Arc::new(Mutex::new(console.err));
    let stop = Arc::new(AtomicBool::new(false));
    let width = boards.iter().map(|b| b.label.len()).max().unwrap_or(0);
    {
        let mut e = err.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            e,
            "--- Watching {} boards, each line prefixed with its board (what is typed is not \
             sent; Ctrl-C ends)",
            boards.len()
        );
    }
    let threads: Vec<_> = boards
        .iter()
        .cloned()
        .map(|b| {
            let prefixed = |shared: &Arc<Mutex<Box<dyn Write + Send>>>| Prefixed {
                shared: shared.clone(),
                prefix: format!("[{:<width$}] ", b.label),
                line: Vec::new(),
            };
            let console = Console {
                out: Box::new(prefixed(&out)),
                err: Box::new(prefixed(&err)),
                out_is_terminal: false,
                err_is_terminal: false,
            };
            let stop = stop.clone();
            thread::spawn(move || watch(&b.opts, console, &stop))
        })
        .collect();
    let deadline = boards
        .first()
        .and_then(|b| b.opts.duration)
        .map(|d| started + d);
    while super::MonitorEnd::asked(deadline).is_none() && !threads.iter().all(|t| t.is_finished()) {
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let mut e = err.lock().unwrap_or_else(|e| e.into_inner());
    let _ = writeln!(e, "--- Monitor closed");
    Ok(())
}

/// Reads one board's port until `stop`, its lines through `console`; a failure is said there.
fn watch(opts: &MonitorOptions, mut console: Console, stop: &AtomicBool) {
    let port = match open_waiting(opts, &mut console.err) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(console.err, "--- {e:#}");
            return;
        }
    };
    let loaded = opts.decode.as_ref().map(decode::load);
    let mut out = Output::new(
        LineFormatter::new(opts.timestamps),
        None,
        None,
        false,
        console,
    );
    if let Some(loaded) = loaded {
        out.decoder = loaded.decoder;
    }
    out.status(&format!("Connected to {} at {} baud", opts.port, opts.baud));
    if let Err(e) = read(opts, port, &mut out, stop) {
        out.status(&format!("{e:#}"));
    }
    let _ = out.quiet();
}

/// The reading loop of [`watch`]: the port's bytes to `out`, reconnecting after a replug.
fn read(
    opts: &MonitorOptions,
    first: super::Port,
    out: &mut Output,
    stop: &AtomicBool,
) -> Result<()> {
    let mut link = Link::new(first);
    while !stop.load(Ordering::Relaxed) {
        if let Polled::OutputClosed = link.poll(opts, out)? {
            break;
        }
    }
    Ok(())
}
