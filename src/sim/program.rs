//! Finding the family's simulator: the one on PATH when it can simulate the board's MCU,
//! otherwise the one the project's flake pins (`packages.<system>.simulator`, nixpkgs' simavr),
//! realised with `nix build .#simulator`, as the flasher is ([`crate::tool`]); and its command
//! line as the generated flake's `checks.sim` runs it.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use anyhow::Result;

use crate::board::family::Simulator;
use crate::board::Board;
use crate::error::{Failure, Kind};
use crate::report::Reporter;
use crate::tool::{Flake, Wanted};

pub use crate::tool::Source;

/// A simulator ready to run.
#[derive(Debug, Clone)]
pub struct Program {
    pub spec: Simulator,
    pub program: PathBuf,
    pub source: Source,
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {})",
            self.spec.tool.as_str(),
            self.program.display(),
            self.source.describe()
        )
    }
}

/// The board family's simulator, or why it has none.
pub fn spec(board: &Board) -> Result<&Simulator> {
    board.simulator().ok_or_else(|| {
        // The boards it can run, from the board data (a family with a `[simulator]`).
        let db = crate::board::Database::load(None).ok();
        let mut names: Vec<&str> = db
            .iter()
            .flat_map(|db| db.boards())
            .filter(|b| b.simulator().is_some())
            .map(|b| b.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        let message = match &board.family().simulator {
            // A family whose simulator emulates a few of its boards (QEMU's machines).
            Some(sim) => format!(
                "no simulator runs the {}'s firmware ({} emulates no such board): run it on the \
                 board itself, `nixflash flash --monitor`",
                board.name,
                sim.tool.as_str()
            ),
            None => format!(
                "nixflash has no simulator for the {} ({} family) yet",
                board.name,
                board.family().name
            ),
        };
        let failure = Failure::new(Kind::Unsupported, message).hint(format!(
            "`nixflash sim` runs the firmware of these boards: {}; `nixflash boards` lists them",
            names.join(", ")
        ));
        // A family with a simulator: the message already says to run it on the board.
        match board.family().simulator {
            Some(_) => failure,
            None => {
                failure.hint("run this firmware on the board itself: `nixflash flash --monitor`")
            }
        }
        .into()
    })
}

/// Checks the simulator found in `path`: it runs, and lists the board's MCU among those it
/// simulates. The error says why it cannot be used.
pub fn check(board: &Board, path: &OsString, source: Source) -> Result<Program> {
    let spec = spec(board)?;
    let name = spec.tool.as_str();
    let program = crate::tool::program_in(name, path)?;
    let listed = crate::tool::output_of(&program, &spec.list_args, path)?;
    let mcu = board
        .sim
        .as_ref()
        .map(|s| s.listed())
        .unwrap_or(&board.chip);
    if !listed.split_whitespace().any(|w| w == mcu) {
        anyhow::bail!(
            "{} cannot simulate the {mcu}: `{name} {}` does not list it",
            program.display(),
            spec.list_args.join(" ")
        );
    }
    Ok(Program {
        spec: spec.clone(),
        program,
        source,
    })
}

/// The simulator for `board`: the one on PATH if it can simulate the board, else the one `flake`
/// pins.
pub fn find(board: &Board, flake: &Flake, reporter: &dyn Reporter) -> Result<Program> {
    let spec = spec(board)?;
    let check = |path: &OsString, source: Source| check(board, path, source);
    let wanted = Wanted {
        name: spec.tool.as_str(),
        role: "simulator",
        install: format!("install it: {}", spec.install),
        build_hint: Some(
            "projects made before nixflash had `nixflash sim` have no simulator in their \
             flake.nix: compare with a new project's, or install simavr",
        ),
        check: &check,
    };
    crate::tool::find(&wanted, flake, reporter)
}
