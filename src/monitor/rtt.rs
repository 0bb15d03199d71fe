//! The monitor of a board whose firmware logs defmt frames over RTT (defmt-rtt, the `cortex-m`
//! family) through its debug probe. probe-rs attaches to the running firmware (the family's
//! `attach-args`: no flashing, no reset) and reads the RTT channel; nixflash decodes the frames
//! with the firmware's table, as it decodes a serial port's ([`super::decode`]), and shows them
//! the same way: level, message, source line, addresses annotated.
//!
//! probe-rs decodes defmt itself when the ELF it is given has a defmt table. It is given a copy
//! without its defmt table ([`crate::firmware::section::without_defmt_table`]): it then passes the
//! channel's bytes on as text, `0x48` for each (its `BinaryLE` output), which [`Hex`] turns
//! back into bytes. Its other lines are shown as status lines.

use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::input::{Input, Source};
use super::output::Output;
use super::{decode, terminal, Decode, Eol, MonitorEnd as End};
use crate::board::Board;
use crate::error::{Failure, Kind};
use crate::flash::{probe, Flasher};
use crate::report::Console;

/// What [`monitor`] needs.
pub struct RttOptions<'a> {
    pub board: &'a Board,
    /// probe-rs, as the flasher resolver found it.
    pub probe_rs: &'a Flasher,
    /// The firmware running on the board: probe-rs finds the RTT channel with it.
    pub elf: PathBuf,
    pub view: View,
}

/// How the channel is shown.
pub struct View {
    /// What the frames are decoded with (the firmware's ELF; none with --raw: the bytes are
    /// shown as they come).
    pub decode: Option<Decode>,
    pub timestamps: bool,
    pub log: Option<PathBuf>,
    pub duration: Option<Duration>,
}

/// probe-rs's output, text in which each byte of the channel is `0x` and two hex digits: the
/// bytes, and the lines of other text.
#[derive(Debug, Default)]
pub struct Hex {
    /// The start of a `0xHH` cut off by the end of the last chunk.
    partial: Vec<u8>,
    /// Other text of the line being received.
    other: Vec<u8>,
}

impl Hex {
    /// Adds a chunk of probe-rs's stdout: the channel's bytes to `bytes`, whole lines of other
    /// text (not empty) to `lines`.
    pub fn feed(&mut self, chunk: &[u8], bytes: &mut Vec<u8>, lines: &mut Vec<String>) {
        for &c in chunk {
            self.partial.push(c);
            let p = &self.partial;
            let hex = |i: usize| p.get(i).is_none_or(u8::is_ascii_hexdigit);
            let ok = p[0] == b'0' && p.get(1).is_none_or(|&x| x == b'x') && hex(2) && hex(3);
            if !ok {
                // Not a byte: the first character is other text, the rest is looked at again.
                let rest = self.partial.split_off(1);
                self.other_char(self.partial[0], lines);
                self.partial.clear();
                self.feed(&rest, bytes, lines);
            } else if p.len() == 4 {
                let digits = std::str::from_utf8(&p[2..4]).unwrap_or("00");
                bytes.push(u8::from_str_radix(digits, 16).unwrap_or(0));
                self.partial.clear();
            }
        }
    }

    fn other_char(&mut self, c: u8, lines: &mut Vec<String>) {
        if c == b'\n' {
            let line = String::from_utf8_lossy(&self.other).trim().to_string();
            if !line.is_empty() {
                lines.push(line);
            }
            self.other.clear();
        } else {
            self.other.push(c);
        }
    }
}

/// Runs probe-rs attached to the board and shows the firmware's RTT channel until the user quits,
/// a signal, or `duration`. probe-rs failing (no probe, the probe busy, the chip silent) is one
/// line with what to do ([`probe::explain`]).
pub fn monitor(opts: &RttOptions, console: Console) -> Result<()> {
    let data = std::fs::read(&opts.elf)
        .with_context(|| format!("cannot read the firmware {}", opts.elf.display()))?;
    let hidden = crate::firmware::section::without_defmt_table(&data)
        .with_context(|| format!("{} is not an ELF file", opts.elf.display()))?;
    let copy = tempfile::Builder::new()
        .prefix("nixflash-rtt-")
        .suffix(".elf")
        .tempfile()
        .context("cannot write a copy of the firmware for probe-rs")?;
    std::fs::write(copy.path(), hidden.as_deref().unwrap_or(&data))
        .context("cannot write a copy of the firmware for probe-rs")?;
    let (mut child, chunks) = spawn(opts, copy.path())?;
    let header = format!(
        "Reading the {}'s RTT channel through its debug probe with {}",
        opts.board.name, opts.probe_rs
    );
    let (end, _) = watch(&opts.view, chunks, &header, console)?;
    if end == End::SourceEnded {
        return Err(ended(opts, child));
    }
    child.stop();
    Ok(())
}

/// Shows an RTT channel as probe-rs passes it on (`chunks` of its output: [`Hex`] text) until
/// the user quits, a signal, `duration`, or the end of `chunks`; `header` is the first status
/// line. How it ended and how many bytes of the channel came; the closing status line is said
/// unless the channel closed (the caller says why).
pub fn watch(
    view: &View,
    chunks: mpsc::Receiver<Vec<u8>>,
    header: &str,
    console: Console,
) -> Result<(End, u64)> {
    crate::interrupt::install();
    let _term = terminal::SigtermGuard::install();
    let started = Instant::now();
    let stdin_tty = io::stdin().is_terminal();
    let raw = match stdin_tty {
        true => Some(terminal::RawMode::enable().context("cannot put the terminal in raw mode")?),
        false => None,
    };
    let mut out = Output::start(view.log.as_deref(), view.timestamps, raw.is_some(), console)?;
    let keys = match stdin_tty {
        true => "Ctrl-] or Ctrl-C quits",
        false => "SIGINT or SIGTERM ends",
    };
    out.status(&format!("{header} ({keys})"));
    if let Some(d) = &view.decode {
        out.decode_with(decode::load(d));
    }
    let mut input = Source::new(stdin_tty, Eol::Lf);
    let result = session(view, &chunks, &mut out, &mut input, started);
    drop(raw);
    let (end, received) = result?;
    let _ = out.quiet();
    let Some(why) = end.why() else {
        return Ok((end, received));
    };
    out.status(&format!(
        "Monitor closed ({why}): {received} bytes received"
    ));
    Ok((end, received))
}

/// probe-rs attached, its stderr read by a thread (kept for its error).
struct Child {
    running: crate::process::Running,
    stderr: thread::JoinHandle<String>,
}

impl Child {
    /// Stops probe-rs (as Ctrl-C would; for good when it is dropped).
    fn stop(&mut self) {
        let _ = self.running.interrupt();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && matches!(self.running.try_wait(), Ok(None)) {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts probe-rs attached to the board, reading `copy` of the ELF: it, and its stdout in chunks
/// as a thread reads them.
fn spawn(opts: &RttOptions, copy: &Path) -> Result<(Child, mpsc::Receiver<Vec<u8>>)> {
    let elf = copy.display().to_string();
    let attach = &probe::way_or_error(opts.board)?.probe_rs.attach_args;
    if attach.is_empty() {
        return Err(Failure::new(
            Kind::Unsupported,
            format!("the {}'s firmware does not log over RTT", opts.board.name),
        )
        .hint("its console is a serial port: `nixflash monitor --port <port>`")
        .into());
    }
    let args = crate::flash::fill_args(opts.board, attach, None, &[("elf", elf.as_str())])?;
    let cmd = probe::quiet(opts.probe_rs.command(&args));
    let mut running = cmd
        .spawn_piped()
        .with_context(|| format!("cannot run {}", opts.probe_rs.program.display()))?;
    let (tx, chunks) = mpsc::channel();
    let mut stdout = running.stdout().context("probe-rs has no stdout")?;
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut stderr = running.stderr().context("probe-rs has no stderr")?;
    let stderr = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    Ok((Child { running, stderr }, chunks))
}

fn session(
    view: &View,
    chunks: &mpsc::Receiver<Vec<u8>>,
    out: &mut Output,
    input: &mut Source,
    started: Instant,
) -> Result<(End, u64)> {
    let deadline = view.duration.map(|d| started + d);
    let mut hex = Hex::default();
    let (mut bytes, mut lines) = (Vec::new(), Vec::new());
    let mut received = 0u64;
    let mut said_no_input = false;
    let end = loop {
        if let Some(end) = End::asked(deadline) {
            break end;
        }
        for key in input.take() {
            match key {
                Input::Quit => return Ok((End::Quit, received)),
                _ if !said_no_input => {
                    out.status("Nothing is sent to the firmware: defmt-rtt reads no input");
                    said_no_input = true;
                }
                _ => {}
            }
        }
        match chunks.recv_timeout(Duration::from_millis(50)) {
            Ok(chunk) => {
                hex.feed(&chunk, &mut bytes, &mut lines);
                for l in lines.drain(..) {
                    out.status(&format!("probe-rs: {l}"));
                }
                received += bytes.len() as u64;
                if !bytes.is_empty() && out.port(&bytes)? {
                    break End::OutputClosed;
                }
                bytes.clear();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break End::SourceEnded,
        }
    };
    Ok((end, received))
}

/// probe-rs ended by itself: why, in one line when nixflash knows the failure.
fn ended(opts: &RttOptions, mut child: Child) -> anyhow::Error {
    let code = child.running.wait().unwrap_or(-1);
    let said = child.stderr.join().unwrap_or_default();
    if let Some(known) = probe::explain(opts.board, &said) {
        return known.into();
    }
    let error: Vec<&str> = said
        .lines()
        .skip_while(|l| !l.starts_with("Error:"))
        .collect();
    let shown = match error.is_empty() {
        true => said.lines().rev().take(5).collect::<Vec<_>>().join("\n"),
        false => error.join("\n"),
    };
    Failure::new(
        Kind::FlashFailed,
        format!(
            "probe-rs stopped reading the {}'s RTT channel (exit code {code}): {}",
            opts.board.name,
            shown.trim()
        ),
    )
    .hint(
        "check that the debug probe is plugged in and the firmware runs (`nixflash flash` \
         starts it); `probe-rs list` shows the probes it sees",
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str]) -> (Vec<u8>, Vec<String>) {
        let mut h = Hex::default();
        let (mut bytes, mut lines) = (Vec::new(), Vec::new());
        for c in chunks {
            h.feed(c.as_bytes(), &mut bytes, &mut lines);
        }
        (bytes, lines)
    }

    #[test]
    fn hex_text_becomes_the_channel_s_bytes_wherever_chunks_end() {
        let (bytes, lines) = run(&["0x000x1", "a0xff0", "x", "0", "00x7F"]);
        assert_eq!(bytes, vec![0x00, 0x1a, 0xff, 0x00, 0x7f]);
        assert!(lines.is_empty());
    }

    #[test]
    fn other_text_is_lines_and_bytes_around_it_are_kept() {
        let (bytes, lines) = run(&["0x01 Finished in 0.2s\n0x02", "\n\n0x0g0x03 00x\n"]);
        assert_eq!(bytes, vec![0x01, 0x02, 0x03]);
        assert_eq!(lines, vec!["Finished in 0.2s", "0x0g 00x"]);
    }
}
