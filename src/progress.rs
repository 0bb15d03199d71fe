//! What nixflash says while it works: one line per step on stderr, cargo style (a right-aligned
//! verb, then the message), so that it reads well between the lines of the tools it runs.

/// Prints one progress line on stderr: `    Building blinky for the Arduino Uno with nix…`.
pub fn status(verb: &str, message: &str) {
    eprintln!("{verb:>12} {message}");
}
