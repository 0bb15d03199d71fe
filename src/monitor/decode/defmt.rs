//! defmt frames among the port's text, as esp-println's `defmt-espflash` feature sends them:
//! `0xFF 0x00`, the frame in rzCOBS (which has no zero byte), `0x00`. Text may come between
//! frames; `0xFF` is never UTF-8, so text cannot be taken for a frame start. Frames are decoded
//! with the firmware's table (the ELF's `.defmt` section) by defmt-decoder.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::rc::Rc;

use defmt_decoder::Table;

use crate::firmware::defmt::DefmtTable;

/// A frame longer than this is not one: the bytes were something else.
const MAX_FRAME: usize = 16 * 1024;

/// Frames up to this long are remembered with their line: firmware sends the same ones again
/// and again (a log call without arguments, or with the same values).
const CACHED_FRAME: usize = 64;
/// How many frames are remembered at most (then forgotten all at once).
const CACHED_FRAMES: usize = 4096;

/// What the port's bytes were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text, as it came.
    Text(Vec<u8>),
    /// A decoded frame: `INFO  message (src/main.rs:20)`, without a line end.
    Line(Rc<str>),
    /// Something the user should know, for a `--- ` status line.
    Notice(String),
}

/// The firmware's defmt table, and where the port's bytes are in the framing.
pub struct Defmt {
    table: Table,
    /// Where each log call of the table is in the source, as shown after its message:
    /// ` (src/main.rs:20)`.
    places: BTreeMap<u64, String>,
    /// Lines of frames seen before, by the frame's bytes.
    seen: HashMap<Box<[u8]>, Rc<str>, BuildHasherDefault<Fnv>>,
    framer: Framer,
}

impl Defmt {
    /// The table of an ELF: `Ok(None)` when it has no `.defmt` section, `Err(why)` when it has
    /// one that cannot be used. Source lines come from its DWARF, when it has some.
    /// `rtt`: the bytes are an RTT channel's (frames only), not a serial port's.
    pub fn load(elf: &[u8], root: Option<&Path>, rtt: bool) -> Result<Option<Defmt>, String> {
        let Some(DefmtTable { table, places }) = DefmtTable::read(elf, root)? else {
            return Ok(None);
        };
        Ok(Some(Defmt {
            table,
            places,
            seen: HashMap::default(),
            framer: if rtt {
                Framer::rtt()
            } else {
                Framer::default()
            },
        }))
    }

    /// Whether frames can be placed in the source (the ELF has DWARF for them).
    pub fn has_locations(&self) -> bool {
        !self.places.is_empty()
    }

    /// Sorts the port's bytes into text, decoded frames and notices, in order.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Piece>) {
        let Defmt {
            table,
            places,
            seen,
            framer,
        } = self;
        framer.feed(bytes, out, &mut |f| {
            if let Some(line) = seen.get(f) {
                return Some(line.clone());
            }
            let line: Rc<str> = decode(table, places, f)?.into();
            if f.len() <= CACHED_FRAME {
                if seen.len() >= CACHED_FRAMES {
                    seen.clear();
                }
                seen.insert(f.into(), line.clone());
            }
            Some(line)
        });
    }

    /// The port has been quiet: see [`Framer::quiet`].
    pub fn quiet(&mut self, out: &mut Vec<Piece>) {
        self.framer.quiet(out)
    }
}

/// FNV-1a: frames are a few bytes long, and come from the board, not from an attacker.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Where the port's bytes are in esp-println's framing, or in an RTT channel's.
#[derive(Debug, Default)]
pub struct Framer {
    /// An RTT channel: every byte belongs to a frame, there is no text and no `0xFF 0x00`.
    rtt: bool,
    /// `0xFF` ended the last bytes: a frame may be starting.
    pending_ff: bool,
    /// Inside a frame.
    in_frame: bool,
    /// The bytes of a frame that started in an earlier read.
    buf: Vec<u8>,
}

impl Framer {
    /// The framing of an RTT channel (defmt-rtt): frames only, one after the other.
    pub fn rtt() -> Framer {
        Framer {
            rtt: true,
            in_frame: true,
            ..Framer::default()
        }
    }

    /// Sorts bytes into text and frames, each frame given to `decode` (a line, or `None` when
    /// it does not decode), in order.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<Piece>,
        decode: &mut dyn FnMut(&[u8]) -> Option<Rc<str>>,
    ) {
        let mut rest = bytes;
        if self.pending_ff {
            self.pending_ff = false;
            match rest.first() {
                None => {
                    self.pending_ff = true;
                    return;
                }
                Some(0) => {
                    self.in_frame = true;
                    rest = &rest[1..];
                }
                Some(_) => text(out, &[0xFF]),
            }
        }
        while !rest.is_empty() {
            if !self.in_frame {
                match memchr::memchr(0xFF, rest) {
                    None => {
                        text(out, rest);
                        rest = &[];
                    }
                    Some(i) => {
                        text(out, &rest[..i]);
                        match rest.get(i + 1) {
                            None => {
                                self.pending_ff = true;
                                rest = &[];
                            }
                            Some(0) => {
                                self.in_frame = true;
                                rest = &rest[i + 2..];
                            }
                            // 0xFF in text (the next byte may be 0xFF again).
                            Some(_) => {
                                text(out, &rest[i..i + 1]);
                                rest = &rest[i + 1..];
                            }
                        }
                    }
                }
                continue;
            }
            // The first frame after a boot starts with an extra separator.
            if self.buf.is_empty() {
                let zeros = rest.iter().take_while(|&&b| b == 0).count();
                rest = &rest[zeros..];
            }
            let Some(end) = memchr::memchr(0, rest) else {
                self.buf.extend_from_slice(rest);
                rest = &[];
                if self.buf.len() > MAX_FRAME {
                    out.push(too_long(self.buf.len()));
                    self.buf.clear();
                    self.in_frame = self.rtt;
                }
                continue;
            };
            // A frame within one read is decoded where it is.
            let frame = if self.buf.is_empty() {
                &rest[..end]
            } else {
                self.buf.extend_from_slice(&rest[..end]);
                &self.buf[..]
            };
            rest = &rest[end + 1..];
            self.in_frame = self.rtt;
            if frame.len() > MAX_FRAME {
                out.push(too_long(frame.len()));
            } else if let Some(line) = decode(frame) {
                out.push(Piece::Line(line));
            } else {
                out.push(Piece::Notice(format!(
                    "a defmt frame ({} bytes) does not decode with this firmware's table (cut \
                     short, or from other firmware): skipped",
                    frame.len()
                )));
                // A frame cut short runs into the next one's start, `0xFF 0x00`: the zero taken
                // for its end was the next frame's.
                self.in_frame = self.rtt || frame.last() == Some(&0xFF);
            }
            self.buf.clear();
        }
    }

    /// The port has been quiet: a frame still open was cut short (a reset while it was being
    /// sent), and a lone `0xFF` was text.
    pub fn quiet(&mut self, out: &mut Vec<Piece>) {
        if self.pending_ff {
            self.pending_ff = false;
            text(out, &[0xFF]);
        }
        if self.rtt {
            // An RTT channel is written a whole frame at a time: a pause ends nothing.
            return;
        }
        if std::mem::take(&mut self.in_frame) {
            out.push(Piece::Notice(format!(
                "a defmt frame was cut short ({} bytes, then nothing): skipped",
                self.buf.len()
            )));
            self.buf.clear();
        }
    }
}

/// `[timestamp ]LEVEL message (file:line)`, if the frame is one of the table's, whole.
fn decode(table: &Table, places: &BTreeMap<u64, String>, frame: &[u8]) -> Option<String> {
    let raw = rzcobs::decode(frame).ok()?;
    let (f, used) = table.decode(&raw).ok()?;
    // rzCOBS pads the last group with zeros; anything else left over is not this frame.
    if raw[used..].iter().any(|&b| b != 0) {
        return None;
    }
    let mut s = String::with_capacity(96);
    if let Some(t) = f.display_timestamp() {
        let _ = write!(s, "{t} ");
    }
    if let Some(level) = f.level() {
        s.push_str(match level.as_str() {
            "trace" => "TRACE ",
            "debug" => "DEBUG ",
            "info" => "INFO  ",
            "warn" => "WARN  ",
            _ => "ERROR ",
        });
    }
    let _ = write!(s, "{}", f.display_message());
    if let Some(place) = places.get(&f.index()) {
        s.push_str(place);
    }
    Some(s)
}

fn too_long(n: usize) -> Piece {
    Piece::Notice(format!(
        "{n} bytes after a defmt frame start and no frame end: not a defmt frame, skipped"
    ))
}

fn text(out: &mut Vec<Piece>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    if let Some(Piece::Text(t)) = out.last_mut() {
        t.extend_from_slice(bytes);
    } else {
        out.push(Piece::Text(bytes.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames here are plain text; the ones starting with `bad` do not decode.
    fn run(chunks: &[&[u8]], quiet: bool) -> Vec<Piece> {
        run_with(Framer::default(), chunks, quiet)
    }

    fn run_with(mut f: Framer, chunks: &[&[u8]], quiet: bool) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut decode = |frame: &[u8]| {
            let s = String::from_utf8(frame.to_vec()).ok()?;
            (!s.starts_with("bad")).then(|| format!("<{s}>").into())
        };
        for c in chunks {
            f.feed(c, &mut out, &mut decode);
        }
        if quiet {
            f.quiet(&mut out);
        }
        out
    }

    fn t(s: &[u8]) -> Piece {
        Piece::Text(s.to_vec())
    }

    fn l(s: &str) -> Piece {
        Piece::Line(s.into())
    }

    #[test]
    fn text_and_frames_are_told_apart() {
        assert_eq!(run(&[b"hello\n"], false), [t(b"hello\n")]);
        assert_eq!(
            run(&[b"a\xff\x00one\x00b\xff\x00\x00two\x00"], false),
            [t(b"a"), l("<one>"), t(b"b"), l("<two>")]
        );
        // Cut anywhere between reads, frame starts included.
        assert_eq!(
            run(
                &[b"a\xff", b"\x00on", b"e\x00\xff", b"\x00two", b"\x00z"],
                false
            ),
            [t(b"a"), l("<one>"), l("<two>"), t(b"z")]
        );
        // 0xFF that starts no frame is text, also twice in a row and at the very end.
        assert_eq!(run(&[b"x\xff\xffy\xff"], true), [t(b"x\xff\xffy\xff")]);
    }

    #[test]
    fn broken_frames_are_said_and_skipped() {
        // Cut short, then nothing.
        let out = run(&[b"\xff\x00half"], true);
        assert!(
            matches!(&out[..], [Piece::Notice(n)] if n.contains("cut short (4 bytes")),
            "{out:?}"
        );
        // Cut short by the next frame's start: that frame still decodes.
        let out = run(&[b"\xff\x00bad-half\xff\x00two\x00ok\n"], false);
        assert!(matches!(&out[0], Piece::Notice(n) if n.contains("does not decode")));
        assert_eq!(out[1..], [l("<two>"), t(b"ok\n")]);
        // No end for too long.
        let mut long = b"\xff\x00".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_FRAME + 1));
        long.extend_from_slice(b"\x00after");
        let out = run(&[&long], false);
        assert!(
            matches!(&out[0], Piece::Notice(n) if n.contains("not a defmt frame")),
            "{out:?}"
        );
        assert_eq!(out[1..], [t(b"after")]);
    }

    #[test]
    fn an_rtt_channel_is_frames_only_each_ended_by_a_zero() {
        let out = run_with(
            Framer::rtt(),
            &[b"\0hel", b"lo\0bad\0", b"wor", b"", b"ld\0\xFFx\0"],
            true,
        );
        assert_eq!(
            out,
            vec![
                l("<hello>"),
                Piece::Notice(
                    "a defmt frame (3 bytes) does not decode with this firmware's table (cut \
                     short, or from other firmware): skipped"
                        .into()
                ),
                l("<world>"),
                Piece::Notice(
                    "a defmt frame (2 bytes) does not decode with this firmware's table (cut \
                     short, or from other firmware): skipped"
                        .into()
                ),
            ]
        );
    }

    #[test]
    fn a_pause_in_an_rtt_channel_cuts_no_frame() {
        let out = run_with(Framer::rtt(), &[b"wor"], true);
        assert_eq!(out, vec![]);
        let mut f = Framer::rtt();
        let mut out = Vec::new();
        let mut decode = |frame: &[u8]| Some(String::from_utf8_lossy(frame).into_owned().into());
        f.feed(b"ab", &mut out, &mut decode);
        f.quiet(&mut out);
        f.feed(b"c\0", &mut out, &mut decode);
        assert_eq!(out, vec![l("abc")]);
    }
}
