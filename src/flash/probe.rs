//! Flashing through a debug probe (the family's `method = "probe-rs"`): probe-rs finds the probe
//! on USB itself (an on-board ST-LINK, J-Link or DAPLink, or one wired to the SWD pins) and is
//! told the chip (`flash.chip`, as its target database names it), so nixflash looks for no serial
//! port: it checks the firmware, finds probe-rs (PATH, else the project's flake) and runs it.

use std::path::Path;

use anyhow::Result;

use super::{command, find, run, Outcome};
use crate::board::Board;
use crate::report::{Event, Reporter};
use crate::tool::Flake;

/// Flashes `elf` to `board` with probe-rs, its output live; `project_root` is where it runs.
pub fn flash(
    board: &Board,
    project_root: &Path,
    elf: &Path,
    flake: &Flake,
    reporter: &dyn Reporter,
) -> Result<Outcome> {
    crate::firmware::check(board, elf)?;
    let flasher = find(board, flake, reporter)?;
    reporter.report(Event::step("Flasher", flasher.to_string()));
    let cmd = command(&flasher, board, elf, None, None, None)?.dir(project_root);
    run(flasher, cmd, reporter)
}
