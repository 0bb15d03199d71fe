//! Flashing through a debug probe (the family's `method = "probe-rs"`): probe-rs finds the probe
//! on USB itself (an on-board ST-LINK, J-Link or DAPLink, or one wired to the SWD pins) and is
//! told the chip (`flash.chip`, as its target database names it), so nixflash looks for no serial
//! port: it checks the firmware, finds probe-rs (PATH, else the project's flake) and runs it.
//!
//! probe-rs's own lines are shown as they come, without its log warnings and backtraces
//! (`RUST_LOG=error`, `RUST_BACKTRACE=0`); when it fails in a way nixflash knows (no probe, a
//! probe it cannot open, several probes, a chip that does not answer), that is one line with the
//! next step instead of probe-rs's error.

use std::path::Path;

use anyhow::{Context as _, Result};

use std::ffi::OsString;

use super::{Flasher, Outcome};
use crate::board::flasher::ProbeRs;
use crate::board::Board;
use crate::board::FlashMethod;
use crate::error::{Failure, Kind};
use crate::process::{Cmd, Show};
use crate::report::{Event, Reporter};
use crate::tool::Flake;
use crate::tool::Wanted;

/// What to do when the user may not reach the probe: doctor checks the udev rules and the group
/// (and writes the rules); probe-rs' page explains them.
const SETUP: &str = "`nixflash doctor --probes` checks the udev rules and the plugdev group and \
                     says what to do (https://probe.rs/docs/getting-started/probe-setup/)";

/// The way `board` is flashed through a debug probe: its family's flasher (the `cortex-m`
/// family), or its family's second way of flashing (`[probe]`, taken with `flash --probe`).
#[derive(Debug, Clone, Copy)]
pub struct Way<'b> {
    pub probe_rs: &'b ProbeRs,
    /// The project flake's package that pins probe-rs: `flasher` or `probe`.
    pub package: &'static str,
}

/// The debug-probe way of flashing `board`, if its family has one.
pub fn way(board: &Board) -> Option<Way<'_>> {
    let family = board.family();
    match (&family.flasher, &family.probe) {
        (FlashMethod::ProbeRs(p), _) => Some(Way {
            probe_rs: p,
            package: "flasher",
        }),
        (_, Some(p)) => Some(Way {
            probe_rs: p,
            package: "probe",
        }),
        _ => None,
    }
}

/// [`way`], or the error that says the board has none.
pub fn way_or_error(board: &Board) -> Result<Way<'_>> {
    way(board).ok_or_else(|| {
        Failure::new(
            Kind::Unsupported,
            format!("the {} is not flashed through a debug probe", board.name),
        )
        .hint("leave --probe out: `nixflash flash` flashes it the way its family does")
        .into()
    })
}

/// probe-rs for `way`: from PATH if it is new enough, else the one the project's flake pins.
pub fn find_probe_rs(way: Way, flake: &Flake, reporter: &dyn Reporter) -> Result<Flasher> {
    let spec = &way.probe_rs.tool;
    let check = |path: &OsString, source| super::check_program(spec, path, source);
    let wanted = Wanted {
        name: &spec.name,
        role: way.package,
        install: format!("install it with {}", spec.how_to_install()),
        build_hint: None,
        check: &check,
    };
    crate::tool::find(&wanted, flake, reporter)
}

/// Flashes `elf` to `board` with probe-rs, its output live, then starts the firmware (the
/// way's `start-args`: probe-rs' download leaves the core halted); `project_root` is where it
/// runs.
pub fn flash(
    board: &Board,
    way: Way,
    project_root: &Path,
    elf: &Path,
    flake: &Flake,
    reporter: &dyn Reporter,
) -> Result<Outcome> {
    crate::firmware::check(board, elf)?;
    let flasher = find_probe_rs(way, flake, reporter)?;
    reporter.report(Event::step("Flasher", flasher.to_string()));
    let file = elf.display().to_string();
    let fill = [("elf", file.as_str())];
    // The download, then (if it worked) what starts the firmware; the first failure ends it.
    let mut code = 0;
    for args in [&way.probe_rs.tool.args, &way.probe_rs.start_args] {
        if code != 0 || args.is_empty() {
            continue;
        }
        let args = super::fill_args(board, args, None, &fill)?;
        code = run(
            board,
            &flasher,
            flasher.command(&args).dir(project_root),
            reporter,
        )?;
    }
    Ok(Outcome { code, flasher })
}

/// Runs one probe-rs command, reported, its lines shown as they come; its exit code. A failure
/// nixflash knows is one line ([`explain`]); another shows probe-rs' error.
fn run(board: &Board, flasher: &Flasher, cmd: Cmd, reporter: &dyn Reporter) -> Result<i32> {
    let cmd = quiet(cmd);
    reporter.report(Event::step("Running", cmd.display()));
    // Its error, from `Error:` on, is held back: explained in one line, or shown after.
    let mut in_error = false;
    let o = cmd
        .run(Show::Each(&mut |line: &str| {
            in_error |= line.starts_with("Error:");
            if !in_error {
                reporter.report(Event::Output {
                    line: line.to_string(),
                    detail: false,
                });
            }
        }))
        .with_context(|| format!("cannot run {}", flasher.program.display()))?;
    if !o.success() {
        let said = format!("{}\n{}", o.stdout_text(), o.stderr);
        if let Some(known) = explain(board, &said) {
            return Err(known.into());
        }
        for line in said.lines().skip_while(|l| !l.starts_with("Error:")) {
            reporter.report(Event::Output {
                line: line.to_string(),
                detail: false,
            });
        }
    }
    Ok(o.code())
}

/// probe-rs without its log warnings and backtraces.
pub fn quiet(cmd: Cmd) -> Cmd {
    cmd.env("RUST_LOG", "error").env("RUST_BACKTRACE", "0")
}

/// The one line for a failure of probe-rs's that nixflash knows, from what it printed.
pub fn explain(board: &Board, said: &str) -> Option<Failure> {
    let chip = board.flash.chip.as_deref().unwrap_or(&board.chip);
    let name = &board.name;
    if said.contains("No connected probes were found") {
        return Some(
            Failure::new(
                Kind::PortNotFound,
                format!("no debug probe is connected (probe-rs found none for the {name})"),
            )
            .hint(format!(
                "plug in {}; if it is plugged in, your user may not reach it: {SETUP}",
                match board.family().flasher.through_probe() {
                    true => format!(
                        "the {name}'s USB port (its on-board probe), or a probe wired to its SWD \
                         pins"
                    ),
                    false => format!(
                        "the debug probe wired to the {name}'s SWD pins (a Raspberry Pi Debug \
                         Probe: its SC to SWCLK, SD to SWDIO, GND to GND)"
                    ),
                }
            )),
        );
    }
    if said.contains("probes were found") {
        return Some(
            Failure::new(
                Kind::PortAmbiguous,
                "several debug probes are connected: probe-rs cannot tell which is the board's",
            )
            .hint(format!(
                "unplug every probe but the {name}'s, or run probe-rs with --probe"
            )),
        );
    }
    if said.contains("could not be opened") || said.contains("Failed to open the debug probe") {
        return Some(
            Failure::new(
                Kind::PortBusy,
                "the debug probe could not be opened: another program holds it, or your user may \
                 not open it",
            )
            .hint(format!(
                "close what else uses the probe (another probe-rs, OpenOCD, an IDE's debugger); \
                 otherwise your user may not open it: {SETUP}"
            )),
        );
    }
    if said.contains("Connecting to the chip was unsuccessful") {
        return Some(
            Failure::new(
                Kind::BoardMismatch,
                format!("the debug probe answers, but no {chip} behind it does"),
            )
            .hint(format!(
                "check that the board is the {name} ({chip}), that it is powered, and that the \
                 probe's SWDIO, SWCLK and GND reach it"
            )),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Database;

    #[test]
    fn probe_rs_s_failures_become_one_line_each() {
        let db = Database::builtin().unwrap();
        let mb = db.get("microbit-v2").unwrap();
        let kind = |said: &str| explain(mb, said).map(|f| f.kind);
        assert_eq!(
            kind("Error: No connected probes were found."),
            Some(Kind::PortNotFound)
        );
        assert_eq!(
            kind("Error: 2 probes were found: ..."),
            Some(Kind::PortAmbiguous)
        );
        assert_eq!(
            kind("Error: Failed to open the debug probe.\n\nCaused by:\n    0: The selected USB device could not be opened."),
            Some(Kind::PortBusy)
        );
        assert_eq!(
            kind("Error: Connecting to the chip was unsuccessful."),
            Some(Kind::BoardMismatch)
        );
        assert_eq!(kind("Error: The flashing procedure failed"), None);
        let f = explain(mb, "Error: Connecting to the chip was unsuccessful.").unwrap();
        assert_eq!(
            f.message,
            "the debug probe answers, but no nRF52833_xxAA behind it does"
        );
    }
}
