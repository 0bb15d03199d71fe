//! The monitor reads the firmware: with its ELF, addresses in the board's output are annotated
//! with the function and source line they belong to ([`addresses`]), and defmt frames are
//! decoded into their message, level and location ([`defmt`]).
//!
//! Loading never stops the monitor: an ELF that cannot be used is said in one status line and
//! the port's bytes are shown as they are.

pub mod addresses;
pub mod defmt;
mod firmware;

use crate::firmware::symbols::Symbols;
pub use defmt::Piece;
pub use firmware::{load, shown, stale, Decode, Loaded};

/// The longest part of a line that is searched for addresses.
const MAX_LINE: usize = 4096;

/// What the monitor knows about the firmware while it runs.
pub struct Decoder {
    symbols: Symbols,
    defmt: Option<defmt::Defmt>,
    /// The text of the line being received, up to [`MAX_LINE`] bytes.
    line: String,
}

impl Decoder {
    fn new(symbols: Symbols, defmt: Option<defmt::Defmt>) -> Decoder {
        Decoder {
            symbols,
            defmt,
            line: String::new(),
        }
    }

    /// Sorts the port's bytes into text, decoded defmt frames and notices.
    pub fn split(&mut self, bytes: &[u8], out: &mut Vec<Piece>) {
        match &mut self.defmt {
            Some(d) => d.feed(bytes, out),
            None => out.push(Piece::Text(bytes.to_vec())),
        }
    }

    /// The port has been quiet: the end of an unfinished frame will not come.
    pub fn quiet(&mut self, out: &mut Vec<Piece>) {
        if let Some(d) = &mut self.defmt {
            d.quiet(out);
        }
    }

    /// Appends `text` to `out`, with, after each line it completes, the annotations of the
    /// addresses in that line.
    pub fn annotate_into(&mut self, text: &str, out: &mut String) {
        out.reserve(text.len());
        // Text without an `x` (nor the line it continues) has no `0x`: nothing to look up.
        let has_x = |s: &str| memchr::memchr2(b'x', b'X', s.as_bytes()).is_some();
        if !has_x(text) && !has_x(&self.line) {
            out.push_str(text);
            if let Some(i) = memchr::memrchr(b'\n', text.as_bytes()) {
                self.line.clear();
                self.remember(&text[i + 1..]);
            } else {
                self.remember(text);
            }
            return;
        }
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', text.as_bytes()) {
            let piece = &text[start..=end];
            out.push_str(piece);
            if self.line.is_empty() {
                addresses::annotate(&mut self.symbols, piece, out);
            } else {
                self.remember(piece);
                let line = std::mem::take(&mut self.line);
                addresses::annotate(&mut self.symbols, &line, out);
                self.line = line;
                self.line.clear();
            }
            start = end + 1;
        }
        out.push_str(&text[start..]);
        self.remember(&text[start..]);
    }

    /// Appends a decoded defmt line to `out`, ending in `\n`, with the annotations of the
    /// addresses in its message.
    pub fn line_into(&mut self, line: &str, out: &mut String) {
        out.push_str(line);
        out.push('\n');
        addresses::annotate(&mut self.symbols, line, out);
    }

    /// Keeps the start of the line being received.
    fn remember(&mut self, part: &str) {
        let room = MAX_LINE.saturating_sub(self.line.len());
        if room > 0 {
            let mut end = part.len().min(room);
            while !part.is_char_boundary(end) {
                end -= 1;
            }
            self.line.push_str(&part[..end]);
        }
    }
}
