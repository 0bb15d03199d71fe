//! What the keyboard, or a pipe on stdin, asks of the monitor.
//!
//! On a terminal (raw mode) keys come as crossterm events: Ctrl-] and Ctrl-C quit, Ctrl-R resets
//! the board, Enter sends the chosen line ending, everything else goes to the board as the bytes
//! a terminal would send. From a pipe or a file, bytes are forwarded as they are (each `\n` as
//! the line ending) by a reader thread; the end of stdin does not end the session.

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What Enter sends to the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eol {
    Cr,
    Lf,
    CrLf,
}

impl Eol {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Eol::Cr => b"\r",
            Eol::Lf => b"\n",
            Eol::CrLf => b"\r\n",
        }
    }
}

/// What the user asks of the monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Bytes(Vec<u8>),
    Reset,
    Quit,
}

/// What one key means, as a terminal in raw mode would send it.
pub fn key(k: KeyEvent, eol: Eol) -> Option<Input> {
    if k.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    let bytes: Vec<u8> = match k.code {
        KeyCode::Char(c) if ctrl => match c.to_ascii_lowercase() {
            'c' | ']' | '5' => return Some(Input::Quit),
            'r' => return Some(Input::Reset),
            c @ 'a'..='z' => vec![c as u8 - b'a' + 1],
            // crossterm reports the control bytes 0x1c-0x1f as Ctrl-4 .. Ctrl-7.
            c @ '4'..='7' => vec![c as u8 - b'4' + 0x1c],
            ' ' | '@' | '2' => vec![0],
            '[' | '3' => vec![0x1b],
            _ => return None,
        },
        KeyCode::Char(c) => c.to_string().into_bytes(),
        KeyCode::Enter => eol.bytes().to_vec(),
        KeyCode::Tab => b"\t".to_vec(),
        KeyCode::BackTab => b"\x1b[Z".to_vec(),
        KeyCode::Backspace => vec![0x7f],
        KeyCode::Esc => vec![0x1b],
        KeyCode::Up => b"\x1b[A".to_vec(),
        KeyCode::Down => b"\x1b[B".to_vec(),
        KeyCode::Right => b"\x1b[C".to_vec(),
        KeyCode::Left => b"\x1b[D".to_vec(),
        KeyCode::Home => b"\x1b[H".to_vec(),
        KeyCode::End => b"\x1b[F".to_vec(),
        KeyCode::Delete => b"\x1b[3~".to_vec(),
        _ => return None,
    };
    Some(Input::Bytes(bytes))
}

/// Turns bytes from a pipe into what they mean: every byte is sent, each `\n` as `eol`.
pub fn piped(bytes: &[u8], eol: Eol) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b == b'\n' {
            out.extend_from_slice(eol.bytes());
        } else {
            out.push(b);
        }
    }
    out
}

/// Where the monitor's input comes from.
pub enum Source {
    /// The terminal's key events (crossterm), read without waiting.
    Terminal(Eol),
    /// A reader thread's bytes (stdin is a pipe or a file).
    Pipe(mpsc::Receiver<Vec<u8>>, Eol),
}

impl Source {
    /// Keys when stdin is a terminal, else a thread reading stdin until its end.
    pub fn new(terminal: bool, eol: Eol) -> Source {
        if terminal {
            return Source::Terminal(eol);
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 1024];
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Source::Pipe(rx, eol)
    }

    /// What has come in since the last call, without waiting.
    pub fn take(&mut self) -> Vec<Input> {
        let mut out = Vec::new();
        match self {
            Source::Terminal(eol) => {
                while event::poll(Duration::ZERO).unwrap_or(false) {
                    match event::read() {
                        Ok(Event::Key(k)) => out.extend(key(k, *eol)),
                        Ok(_) => {}
                        Err(_) => break,
                    }
                    if out.last() == Some(&Input::Quit) {
                        break;
                    }
                }
            }
            Source::Pipe(rx, eol) => {
                while let Ok(bytes) = rx.try_recv() {
                    out.push(Input::Bytes(piped(&bytes, *eol)));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode, mods: KeyModifiers) -> Option<Input> {
        key(KeyEvent::new(code, mods), Eol::CrLf)
    }

    #[test]
    fn keys_mean_what_a_terminal_sends() {
        let ctrl = KeyModifiers::CONTROL;
        let none = KeyModifiers::NONE;
        assert_eq!(k(KeyCode::Char('c'), ctrl), Some(Input::Quit));
        assert_eq!(k(KeyCode::Char(']'), ctrl), Some(Input::Quit));
        assert_eq!(k(KeyCode::Char('5'), ctrl), Some(Input::Quit));
        assert_eq!(k(KeyCode::Char('r'), ctrl), Some(Input::Reset));
        assert_eq!(k(KeyCode::Char('a'), ctrl), Some(Input::Bytes(vec![1])));
        assert_eq!(
            k(KeyCode::Char('h'), none),
            Some(Input::Bytes(b"h".to_vec()))
        );
        assert_eq!(k(KeyCode::Char('é'), none), Some(Input::Bytes("é".into())));
        assert_eq!(
            k(KeyCode::Enter, none),
            Some(Input::Bytes(b"\r\n".to_vec()))
        );
        assert_eq!(k(KeyCode::Up, none), Some(Input::Bytes(b"\x1b[A".to_vec())));
        assert_eq!(k(KeyCode::F(5), none), None);
    }

    #[test]
    fn piped_newlines_become_the_line_ending() {
        assert_eq!(piped(b"ping\nx\n", Eol::CrLf), b"ping\r\nx\r\n");
        assert_eq!(piped(b"\x12\x03", Eol::Lf), b"\x12\x03");
    }
}
