//! The monitor reads the firmware: real ELFs compiled here (`common::firmware`), the board's
//! output sent through a real pty (`common::pty`). By area: [`addresses`] (addresses in
//! esp-backtrace's panic text and in register dumps become functions and source lines),
//! [`frames`] (defmt frames, encoded here by the `defmt` crate's own encoder from the firmware's
//! table, are decoded), [`rtt`] (the same over RTT, as probe-rs passes a Cortex-M board's channel
//! on), [`elf`] (which ELF, and what an ELF that cannot be used does: one status line, and the
//! monitor goes on).

mod addresses;
mod elf;
mod frames;
mod rtt;

use std::path::Path;
use std::process::Stdio;

use crate::common::pty::{path, Monitor, Pty};

/// A monitor on a new pty for `board`, run in `cwd`, with these extra arguments.
pub(super) fn monitor(board: &str, cwd: &Path, args: &[&str]) -> (Pty, Monitor) {
    let pty = Pty::new();
    let mut all = vec!["--port", path(&pty.path), "--board", board];
    all.extend_from_slice(args);
    let home = tempfile::tempdir().unwrap();
    let m = Monitor::spawn_in(&all, Stdio::null(), cwd.to_path_buf(), home);
    m.wait_stderr("--- Connected to");
    (pty, m)
}

/// Ends the monitor with SIGTERM; it must end cleanly. Returns stdout.
pub(super) fn close(mut m: Monitor) -> String {
    m.signal(libc::SIGTERM);
    let status = m.wait_exit();
    assert!(status.success(), "{status:?}\n{}", m.stderr());
    String::from_utf8(m.stdout()).unwrap()
}

/// The annotations in the monitor's output, in order: each address and its frames, innermost
/// first (`fw::checksum at src/main.rs:12`).
pub(super) fn annotations(out: &str) -> Vec<(String, Vec<String>)> {
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    for line in out.lines() {
        if let Some(outer) = line.strip_prefix("    inlined into ") {
            found.last_mut().expect(line).1.push(outer.to_string());
        } else if let Some((address, frame)) = line.split_once(" - ") {
            if address.starts_with("0x") && !address.contains(' ') {
                found.push((address.to_string(), vec![frame.to_string()]));
            }
        }
    }
    found
}
