//! What the library tells whoever runs it while it works, without printing: each stage reports
//! [`Event`]s to a [`Reporter`] it is given, and only the command line (`cmd/`) decides how they
//! look (cargo-style lines on stderr) or whether they show at all. A test passes a [`Recorder`]
//! and reads what was reported. Sessions that stream a device's output (the monitor, the
//! simulator) write it to the [`Console`] the command line hands them.

use std::io::Write;
use std::path::PathBuf;

use crate::firmware::hash::Hashes;
use crate::firmware::size::SizeReport;

/// Something worth telling while a step runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A step: a verb (`Building`, `Flasher`, `Running`, `Note`…) and what it is about, shown
    /// as one cargo-style line.
    Step { verb: &'static str, message: String },
    /// Something that does not stop the work but that the user should know.
    Warning(String),
    /// A firmware was built: the ELF, the `result` link to it if one was made, how much of the
    /// board it uses, and its hashes.
    Built {
        elf: PathBuf,
        link: Option<PathBuf>,
        size: SizeReport,
        hashes: Hashes,
    },
    /// One line of a tool's own output (nix's log, a builder's line, simavr), as the tool would
    /// have printed it. A `detail` (what is built or downloaded, a builder's output) is what a
    /// [`Event::Progress`] line stands in for where there is one; the others (warnings, errors,
    /// a tool's plain stderr) are always worth showing.
    Output { line: String, detail: bool },
    /// What a long-running tool is doing now: `title` says what it is for ("building blinky"),
    /// `message` where it is ("[3/7] building blinky-deps: Compiling ..."); each replaces the one
    /// before, until [`Event::ProgressEnd`].
    Progress { title: String, message: String },
    /// The tool of the last [`Event::Progress`] ended.
    ProgressEnd,
    /// Where one of several boards flashed at once is: one line per board, each event
    /// replacing that board's line.
    Board(BoardStatus),
}

/// One board of several flashed at once ([`Event::Board`]): which it is, and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardStatus {
    /// Its place in the list (from 0), the same in every event about it.
    pub index: usize,
    pub port: String,
    /// Its USB serial number, if the port is on USB and has one.
    pub serial: Option<String>,
    /// What it is doing: `waiting`, `checking the port`, `connecting`, `writing`, `verifying`…
    pub stage: String,
    /// How far the stage is, when the flasher's output says so.
    pub percent: Option<u8>,
    /// Set when it ended: whether it was flashed.
    pub finished: Option<bool>,
}

impl Event {
    /// A step event.
    pub fn step(verb: &'static str, message: impl Into<String>) -> Event {
        Event::Step {
            verb,
            message: message.into(),
        }
    }

    /// A warning event.
    pub fn warning(message: impl Into<String>) -> Event {
        Event::Warning(message.into())
    }
}

/// Receives the events of a step. `Sync` because a tool's output is read on a thread of its own
/// while it runs.
pub trait Reporter: Sync {
    fn report(&self, event: Event);

    /// Whether [`Event::Output`] details reach the user as they come (no progress line stands
    /// in for them): a failure then says that the log is above instead of repeating it.
    fn shows_details(&self) -> bool {
        false
    }
}

/// Reports nothing: for tests that only want the result.
#[cfg(test)]
pub struct Quiet;

#[cfg(test)]
impl Reporter for Quiet {
    fn report(&self, _event: Event) {}
}

/// Keeps every event, in order: for tests.
#[cfg(test)]
#[derive(Default)]
pub struct Recorder {
    events: std::sync::Mutex<Vec<Event>>,
}

#[cfg(test)]
impl Recorder {
    /// The events reported so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The step lines reported so far, as `verb message` (the other events left out).
    pub fn steps(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Step { verb, message } => Some(format!("{verb} {message}")),
                Event::Warning(message) => Some(format!("Warning {message}")),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
impl Reporter for Recorder {
    fn report(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }
}

/// Where a session that streams a device's output (the monitor, the simulator) writes: its
/// output and its own `--- ...` lines, handed in by the command line (its stdout and stderr)
/// or by a test (buffers).
pub struct Console {
    /// The device's output.
    pub out: Box<dyn Write + Send>,
    /// The session's own lines.
    pub err: Box<dyn Write + Send>,
    /// Whether `out` is a terminal (the monitor then adds CR before LF in raw mode).
    pub out_is_terminal: bool,
    /// Whether `err` is a terminal: when both are, they are one screen, so a line of the
    /// session's own starts on a line of its own.
    pub err_is_terminal: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorder_keeps_events_in_order_and_quiet_drops_them() {
        let r = Recorder::default();
        r.report(Event::step("Building", "blinky"));
        r.report(Event::warning("slow"));
        Quiet.report(Event::step("Lost", "nowhere"));
        assert_eq!(
            r.events(),
            [
                Event::Step {
                    verb: "Building",
                    message: "blinky".into()
                },
                Event::Warning("slow".into())
            ]
        );
    }
}
