//! What the monitor shows: the port's bytes as text (bytes that are not UTF-8 escaped as `\\xNN`,
//! lines stamped with the time if asked) on stdout and in the log file, with what the firmware's
//! ELF tells about them (addresses annotated, defmt frames decoded: [`super::decode`]), and its
//! own status lines (`--- ...`) on stderr: the [`Console`] the command line hands in.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::decode::{Decoder, Piece};
use crate::report::Console;

/// Where the port's text goes: the console's output (CR added before LF on a raw terminal) and
/// the log file.
pub(super) struct Output {
    console: Console,
    pub(super) fmt: LineFormatter,
    /// What the firmware's ELF makes of the port's bytes, when the monitor has one.
    pub(super) decoder: Option<Decoder>,
    log: Option<File>,
    log_path: Option<PathBuf>,
    crlf: bool,
    last_cr: bool,
    raw: bool,
    /// Kept from one read to the next: what the decoder made of the bytes, and their text.
    pieces: Vec<Piece>,
    text: String,
    shown: String,
}

impl Output {
    pub(super) fn new(
        fmt: LineFormatter,
        log: Option<File>,
        log_path: Option<PathBuf>,
        raw: bool,
        console: Console,
    ) -> Output {
        Output {
            crlf: raw && console.out_is_terminal,
            console,
            fmt,
            decoder: None,
            log,
            log_path,
            last_cr: false,
            raw,
            pieces: Vec::new(),
            text: String::new(),
            shown: String::new(),
        }
    }

    /// The output of a session: lines stamped with the time if `timestamps`, kept in the `log`
    /// file too (appended to), with CR added before LF on a terminal in `raw` mode.
    pub(super) fn start(
        log: Option<&Path>,
        timestamps: bool,
        raw: bool,
        console: Console,
    ) -> Result<Output> {
        let file = match log {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open the log file {}", p.display()))?,
            ),
            None => None,
        };
        if timestamps {
            init_local_time();
        }
        let fmt = LineFormatter::new(timestamps);
        Ok(Output::new(
            fmt,
            file,
            log.map(Path::to_path_buf),
            raw,
            console,
        ))
    }

    /// Decodes with what [`super::decode::load`] made of the firmware, after saying how it went.
    pub(super) fn decode_with(&mut self, loaded: super::decode::Loaded) {
        for n in &loaded.notices {
            self.status(n);
        }
        self.decoder = loaded.decoder;
    }

    /// Shows bytes from the port; `Ok(true)` when stdout has been closed.
    pub(super) fn port(&mut self, bytes: &[u8]) -> Result<bool> {
        let Some(mut decoder) = self.decoder.take() else {
            let text = self.fmt.feed(bytes);
            return self.emit(&text);
        };
        let mut pieces = std::mem::take(&mut self.pieces);
        decoder.split(bytes, &mut pieces);
        let closed = self.pieces(&mut decoder, &mut pieces);
        self.pieces = pieces;
        self.decoder = Some(decoder);
        closed
    }

    /// The port has been quiet: what was held back for more bytes is shown (or said to be cut
    /// short); `Ok(true)` when stdout has been closed.
    pub(super) fn quiet(&mut self) -> Result<bool> {
        if let Some(mut decoder) = self.decoder.take() {
            let mut pieces = Vec::new();
            decoder.quiet(&mut pieces);
            let closed = self.pieces(&mut decoder, &mut pieces);
            let mut tail = String::new();
            decoder.annotate_into(&self.fmt.escape_pending(), &mut tail);
            self.decoder = Some(decoder);
            if closed? {
                return Ok(true);
            }
            let tail = self.fmt.stamp(&tail);
            return self.emit(&tail);
        }
        let tail = self.fmt.flush();
        self.emit(&tail)
    }

    /// Shows the pieces of one read at once (one write), status lines in their place.
    fn pieces(&mut self, decoder: &mut Decoder, pieces: &mut Vec<Piece>) -> Result<bool> {
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        let closed = self.pieces_into(decoder, pieces, &mut text);
        self.text = text;
        closed
    }

    fn pieces_into(
        &mut self,
        decoder: &mut Decoder,
        pieces: &mut Vec<Piece>,
        text: &mut String,
    ) -> Result<bool> {
        for piece in pieces.drain(..) {
            match piece {
                Piece::Text(bytes) => {
                    decoder.annotate_into(&self.fmt.escape(&bytes), text);
                }
                Piece::Line(line) => {
                    // A decoded line starts a line of its own; bytes held back for the rest
                    // of a UTF-8 sequence will not get it now.
                    let held = self.fmt.escape_pending();
                    decoder.annotate_into(&held, text);
                    let at_start = match text.as_bytes().last() {
                        Some(&c) => c == b'\n',
                        None => self.fmt.at_line_start,
                    };
                    if !at_start {
                        decoder.annotate_into("\n", text);
                    }
                    decoder.line_into(&line, text);
                }
                Piece::Notice(n) => {
                    let shown = self.fmt.stamp(text);
                    text.clear();
                    if self.emit(&shown)? {
                        return Ok(true);
                    }
                    self.status(&n);
                }
            }
        }
        if !self.fmt.timestamps {
            self.fmt.note_end(text);
            return self.emit(text);
        }
        let mut shown = std::mem::take(&mut self.shown);
        shown.clear();
        self.fmt.stamp_into(text, &mut shown);
        let closed = self.emit(&shown);
        self.shown = shown;
        closed
    }

    /// Writes text; `Ok(true)` when stdout has been closed.
    pub(super) fn emit(&mut self, text: &str) -> Result<bool> {
        if text.is_empty() {
            return Ok(false);
        }
        if let Some(log) = &mut self.log {
            log.write_all(text.as_bytes()).with_context(|| {
                format!(
                    "cannot write the log file {}",
                    self.log_path.as_deref().unwrap_or(Path::new("?")).display()
                )
            })?;
        }
        let shown = if self.crlf {
            let mut s = String::with_capacity(text.len() + 8);
            for c in text.chars() {
                if c == '\n' && !self.last_cr {
                    s.push('\r');
                }
                self.last_cr = c == '\r';
                s.push(c);
            }
            Cow::Owned(s)
        } else {
            Cow::Borrowed(text)
        };
        let out = &mut self.console.out;
        match out.write_all(shown.as_bytes()).and_then(|_| out.flush()) {
            Ok(()) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(true),
            Err(e) => Err(e).context("cannot write to standard output"),
        }
    }

    /// A status line on the console's stderr, on a line of its own.
    pub(super) fn status(&mut self, msg: &str) {
        let nl = if self.raw { "\r\n" } else { "\n" };
        let lead = if !self.fmt.at_line_start && self.console.out_is_terminal {
            nl
        } else {
            ""
        };
        let err = &mut self.console.err;
        let _ = write!(err, "{lead}--- {msg}{nl}");
        let _ = err.flush();
    }
}

/// Turns port bytes into text: bytes that are not UTF-8 escaped as `\xNN` (a sequence cut
/// between two reads is kept until the next one), lines optionally prefixed with the time.
#[derive(Debug)]
pub struct LineFormatter {
    timestamps: bool,
    at_line_start: bool,
    pending: Vec<u8>,
    clock: fn() -> String,
    /// What lines started now are stamped with instead of the clock's time ([`Self::feed_at`]).
    stamp: Option<String>,
}

impl LineFormatter {
    /// A formatter; with `timestamps`, lines start with the local time `[HH:MM:SS.mmm] `.
    pub fn new(timestamps: bool) -> Self {
        LineFormatter {
            timestamps,
            at_line_start: true,
            pending: Vec::new(),
            clock: local_clock,
            stamp: None,
        }
    }

    /// The same with another clock (for tests of the layout).
    #[cfg(test)]
    fn with_clock(timestamps: bool, clock: fn() -> String) -> Self {
        LineFormatter {
            clock,
            ..LineFormatter::new(timestamps)
        }
    }

    /// The text for these bytes (an incomplete UTF-8 sequence at the end is held back).
    pub fn feed(&mut self, bytes: &[u8]) -> String {
        let text = self.escape(bytes);
        self.stamp(&text)
    }

    /// The text for these bytes without timestamps (see [`LineFormatter::stamp`]).
    pub(crate) fn escape(&mut self, bytes: &[u8]) -> String {
        let mut data = std::mem::take(&mut self.pending);
        data.extend_from_slice(bytes);
        let mut decoded = String::new();
        let mut rest: &[u8] = &data;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    decoded.push_str(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    decoded.push_str(std::str::from_utf8(good).expect("checked valid"));
                    match e.error_len() {
                        Some(n) => {
                            for b in &bad[..n] {
                                write!(decoded, "\\x{b:02x}").unwrap();
                            }
                            rest = &bad[n..];
                        }
                        None => {
                            self.pending = bad.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        decoded
    }

    /// Like [`Self::feed`], lines that these bytes start stamped `stamp` instead of the local
    /// time (a simulation's own time).
    pub fn feed_at(&mut self, bytes: &[u8], stamp: &str) -> String {
        self.stamp = Some(stamp.to_string());
        let text = self.feed(bytes);
        self.stamp = None;
        text
    }

    /// Text for bytes held back (escaped): called when the port has been quiet.
    pub fn flush(&mut self) -> String {
        let s = self.escape_pending();
        self.stamp(&s)
    }

    /// Bytes held back, escaped, without timestamps.
    pub(crate) fn escape_pending(&mut self) -> String {
        let mut s = String::new();
        for b in std::mem::take(&mut self.pending) {
            write!(s, "\\x{b:02x}").unwrap();
        }
        s
    }

    /// Text with the time at the start of each line, if asked: one time for all the lines of
    /// `text`, which arrived together.
    pub(crate) fn stamp(&mut self, text: &str) -> String {
        self.stamped(text).into_owned()
    }

    /// [`LineFormatter::stamp`] without a copy when there are no timestamps.
    pub(crate) fn stamped<'t>(&mut self, text: &'t str) -> Cow<'t, str> {
        if !self.timestamps {
            self.note_end(text);
            return Cow::Borrowed(text);
        }
        let mut s = String::with_capacity(text.len() + 64);
        self.stamp_into(text, &mut s);
        Cow::Owned(s)
    }

    /// Notes whether `text`, shown as it is, ends a line.
    fn note_end(&mut self, text: &str) {
        if let Some(&c) = text.as_bytes().last() {
            self.at_line_start = c == b'\n';
        }
    }

    /// Appends `text` to `out` with the time at the start of each line, if asked.
    pub(crate) fn stamp_into(&mut self, text: &str, out: &mut String) {
        if !self.timestamps {
            self.note_end(text);
            out.push_str(text);
            return;
        }
        let mut now: Option<String> = None;
        out.reserve(text.len() + 64);
        let mut rest = text;
        while !rest.is_empty() {
            if self.at_line_start {
                match &self.stamp {
                    Some(stamp) => out.push_str(stamp),
                    None => out.push_str(now.get_or_insert_with(self.clock)),
                }
            }
            let end = memchr::memchr(b'\n', rest.as_bytes()).map_or(rest.len(), |i| i + 1);
            out.push_str(&rest[..end]);
            self.at_line_start = rest.as_bytes()[end - 1] == b'\n';
            rest = &rest[end..];
        }
    }
}

pub(super) fn init_local_time() {
    #[cfg(unix)]
    {
        extern "C" {
            fn tzset();
        }
        // SAFETY: tzset reads TZ and /etc/localtime; called before any other thread formats time.
        unsafe { tzset() };
    }
}

/// `[HH:MM:SS.mmm] ` in local time (UTC where the zone is unknown).
fn local_clock() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (h, m, s) = local_hms(now.as_secs());
    format!("[{h:02}:{m:02}:{s:02}.{:03}] ", now.subsec_millis())
}

#[cfg(unix)]
fn local_hms(secs: u64) -> (i32, i32, i32) {
    let t = secs as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which is a plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return utc_hms(secs);
    }
    (tm.tm_hour, tm.tm_min, tm.tm_sec)
}

#[cfg(not(unix))]
fn local_hms(secs: u64) -> (i32, i32, i32) {
    utc_hms(secs)
}

fn utc_hms(secs: u64) -> (i32, i32, i32) {
    let d = (secs % 86_400) as i32;
    (d / 3600, d / 60 % 60, d % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> String {
        "[T] ".to_string()
    }

    #[test]
    fn formatter_escapes_bytes_that_are_not_utf8() {
        let mut f = LineFormatter::with_clock(false, fixed);
        assert_eq!(f.feed(b"ok \xff\xfe caf\xc3\xa9\n"), "ok \\xff\\xfe café\n");
        // A sequence cut between two reads is joined.
        assert_eq!(f.feed(b"\xe2\x82"), "");
        assert_eq!(f.feed(b"\xac!"), "€!");
        // A cut sequence that never completes is escaped when the port goes quiet...
        assert_eq!(f.feed(b"x\xe2\x82"), "x");
        assert_eq!(f.flush(), "\\xe2\\x82");
        assert_eq!(f.flush(), "");
        // ...or when the next byte shows it is broken.
        assert_eq!(f.feed(b"\xe2"), "");
        assert_eq!(f.feed(b"A"), "\\xe2A");
    }

    #[test]
    fn formatter_stamps_each_line_once() {
        let mut f = LineFormatter::with_clock(true, fixed);
        assert_eq!(f.feed(b"one\r\ntw"), "[T] one\r\n[T] tw");
        assert_eq!(f.feed(b"o\n"), "o\n");
        assert_eq!(f.feed(b"\n"), "[T] \n");
        assert_eq!(f.feed(b"\xffz"), "[T] \\xffz");
        let mut plain = LineFormatter::with_clock(false, fixed);
        assert_eq!(plain.feed(b"a\nb\n"), "a\nb\n");
        // Given a stamp (a simulation's time), lines carry it instead of the clock's.
        let mut sim = LineFormatter::with_clock(true, fixed);
        assert_eq!(sim.feed_at(b"a\nb", "[1 s] "), "[1 s] a\n[1 s] b");
        assert_eq!(sim.feed_at(b"\n", "[2 s] "), "\n");
        assert_eq!(sim.feed(b"c"), "[T] c");
        let mut off = LineFormatter::with_clock(false, fixed);
        assert_eq!(off.feed_at(b"a\n", "[1 s] "), "a\n");
    }

    #[test]
    fn clock_looks_like_a_time() {
        let s = local_clock();
        let b = s.as_bytes();
        assert_eq!(s.len(), 15, "{s}");
        assert_eq!(
            (b[0], b[3], b[6], b[9], b[13], b[14]),
            (b'[', b':', b':', b'.', b']', b' '),
            "{s}"
        );
        assert_eq!(utc_hms(86_400 + 3_600 * 13 + 60 * 5 + 9), (13, 5, 9));
    }
}
