//! Finding the family's simulator: the one on PATH when it can simulate the board's MCU,
//! otherwise the one the project's flake pins (`packages.<system>.simulator`, nixpkgs' simavr),
//! realised with `nix build .#simulator`, as the flasher is ([`crate::flash`]); and its command
//! line as the generated flake's `checks.sim` runs it.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::board::family::Simulator;
use crate::board::Board;
use crate::error::Failure;
use crate::nix::Nix;
use crate::process::{Cmd, Show};

/// Where the simulator comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path,
    /// `packages.<system>.simulator` of the project's flake, realised at this store path.
    Flake(PathBuf),
}

/// A simulator ready to run.
#[derive(Debug, Clone)]
pub struct Program {
    pub spec: Simulator,
    pub program: PathBuf,
    pub source: Source,
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.spec.tool.as_str(), self.program.display())?;
        match &self.source {
            Source::Path => f.write_str(", from PATH)"),
            Source::Flake(_) => f.write_str(", pinned by the project's flake.nix)"),
        }
    }
}

/// The board family's simulator, or why it has none.
pub fn spec(board: &Board) -> Result<&Simulator> {
    board.family().simulator.as_ref().ok_or_else(|| {
        // The boards it can run, from the board data (a family with a `[simulator]`).
        let db = crate::board::Database::load(None).ok();
        let mut names: Vec<&str> = db
            .iter()
            .flat_map(|db| db.boards())
            .filter(|b| b.family().simulator.is_some())
            .map(|b| b.name.as_str())
            .collect();
        names.dedup();
        Failure::new(format!(
            "nixflash has no simulator for the {} ({} family) yet",
            board.name,
            board.family().name
        ))
        .hint(format!(
            "`nixflash sim` runs the firmware of these boards: {}; `nixflash boards` lists them",
            names.join(", ")
        ))
        .hint("run this firmware on the board itself: `nixflash flash --monitor`")
        .into()
    })
}

/// Checks the simulator found in `path`: it runs, and lists the board's MCU among those it
/// simulates. The error says why it cannot be used.
pub fn check(board: &Board, path: &OsString, source: Source) -> Result<Program> {
    let spec = spec(board)?;
    let name = spec.tool.as_str();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let program = which::which_in(name, Some(path), &cwd)
        .map_err(|_| anyhow::anyhow!("{name} is not on PATH"))?;
    let out = Cmd::new(&program)
        .args(&spec.list_args)
        .env("PATH", path)
        .output()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let listed = format!("{}\n{}", out.stdout_text(), out.stderr);
    let mcu = board
        .sim
        .as_ref()
        .map(|s| s.mcu.as_str())
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

/// The simulator for `board`: the one on PATH if it can simulate the board, else the flake's,
/// built with `nix_args` added to the nix command.
pub fn find(board: &Board, project_root: &Path, nix_args: &[String]) -> Result<Program> {
    let spec = spec(board)?;
    let name = spec.tool.as_str();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = match check(board, &path, Source::Path) {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    let flake = project_root.join("flake.nix");
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let nix = which::which_in("nix", Some(&path), cwd).ok();
    let (Some(nix), true) = (nix.clone(), flake.is_file()) else {
        let why_not_nix = if nix.is_none() {
            "Nix is not installed".to_string()
        } else {
            format!("{} does not exist", flake.display())
        };
        return Err(Failure::new(format!(
            "no usable {name}: {on_path:#}, and {why_not_nix}, so the simulator the project's \
             flake pins cannot be used either"
        ))
        .hint(format!("install it: {}", spec.install))
        .hint(
            "or install Nix (https://nixos.org/download): nixflash then uses the simulator \
             pinned by the project's flake.nix",
        )
        .into());
    };
    eprintln!(
        "{name} on PATH cannot be used ({on_path:#}): building the one {} pins \
         (nix build .#simulator) ...",
        flake.display()
    );
    let nix = Nix {
        path: nix,
        verbose: false,
        extra_args: nix_args.to_vec(),
    };
    let run = nix
        .command(
            project_root,
            &["build", ".#simulator", "--no-link", "--json"],
        )
        .run(Show::Stderr)
        .with_context(|| format!("cannot run {}", nix.path.display()))?;
    if !run.success() {
        return Err(Failure::new(format!(
            "`nix build .#simulator` failed in {} ({})",
            project_root.display(),
            run.status
        ))
        .hint("Nix's messages above say why")
        .hint(
            "projects made before nixflash had `nixflash sim` have no simulator in their \
             flake.nix: compare with a new project's, or install simavr",
        )
        .into());
    }
    let out = crate::nix::out_path(&run.stdout_text())?;
    let mut flake_path = OsString::from(out.join("bin"));
    if !path.is_empty() {
        flake_path.push(":");
        flake_path.push(&path);
    }
    check(board, &flake_path, Source::Flake(out.clone())).map_err(|e| {
        Failure::new(format!(
            "the simulator the project's flake pins ({}) cannot be used",
            out.display()
        ))
        .hint(format!("install one: {}", spec.install))
        .because(e)
        .into()
    })
}
