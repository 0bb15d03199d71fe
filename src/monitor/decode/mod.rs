//! The monitor reads the firmware: with its ELF, addresses in the board's output are annotated
//! with the function and source line they belong to ([`addresses`]), and defmt frames are
//! decoded into their message, level and location ([`defmt`]).
//!
//! Loading never stops the monitor: an ELF that cannot be used is said in one status line and
//! the port's bytes are shown as they are.

pub mod addresses;
pub mod defmt;
mod firmware;

use addresses::Symbols;
pub use defmt::Piece;
pub use firmware::{load, Decode, Loaded};

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

    /// `text` with, after each line it completes, the annotations of the addresses in it.
    pub fn annotate(&mut self, text: String) -> String {
        let mut out: Option<String> = None;
        // Bytes of `text` already in `out`, and where the line being looked at starts.
        let (mut copied, mut start) = (0, 0);
        for (end, _) in text.match_indices('\n') {
            let piece = &text[start..=end];
            let mut notes = String::new();
            if self.line.is_empty() {
                self.symbols.annotate(piece, &mut notes);
            } else {
                self.remember(piece);
                let line = std::mem::take(&mut self.line);
                self.symbols.annotate(&line, &mut notes);
            }
            if !notes.is_empty() {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len() * 2));
                o.push_str(&text[copied..=end]);
                o.push_str(&notes);
                copied = end + 1;
            }
            start = end + 1;
        }
        self.remember(&text[start..]);
        match out {
            None => text,
            Some(mut o) => {
                o.push_str(&text[copied..]);
                o
            }
        }
    }

    /// A decoded defmt line, with the annotations of the addresses in its message, ending in
    /// `\n`.
    pub fn line(&mut self, line: &str) -> String {
        let mut out = format!("{line}\n");
        self.symbols.annotate(line, &mut out);
        out
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
