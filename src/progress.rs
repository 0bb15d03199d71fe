//! What nixflash says while it works: one line per step on stderr, cargo style (a right-aligned
//! verb, then the message), so that it reads well between the lines of the tools it runs. In
//! colour on a terminal; plain when stderr is piped or NO_COLOR is set.

use std::io::Write;

use anstyle::{AnsiColor, Style};

/// How an error's label looks.
pub const ERROR: Style = AnsiColor::Red.on_default().bold();
/// How a warning's label looks.
pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
/// How a hint's label looks.
pub const HINT: Style = AnsiColor::Cyan.on_default().bold();
/// How a step's verb looks.
pub const STEP: Style = AnsiColor::Green.on_default().bold();

/// Prints one progress line on stderr: `    Building blinky for the Arduino Uno with nix…`.
/// A `Warning` is yellow, every other verb green.
pub fn status(verb: &str, message: &str) {
    let style = if verb == "Warning" { WARN } else { STEP };
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "{style}{verb:>12}{style:#} {message}");
}
