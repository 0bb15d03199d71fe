//! `nixflash update`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::status;
use crate::flake_lock::{self, Change, Locked};
use crate::git::{self, Git};
use crate::nix::std_lock::{self, StdLock};
use crate::nix::{self, BuildOptions, Nix};
use crate::transaction::Transaction;
use anyhow::Result;

/// Update the flake's inputs (`nix flake update`), then nix/std-Cargo.lock
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n  nixflash update                 every input\n  \
    nixflash update rust-overlay    a newer toolchain manifest only\n  \
    nixflash update --std-lock      only copy the pinned toolchain's std lock again\n\n",
    super::nix_args_help!()
))]
pub struct UpdateArgs {
    /// Inputs to update (default: all of them)
    #[arg(conflicts_with = "std_lock")]
    pub inputs: Vec<String>,
    /// Do not update inputs: only make nix/std-Cargo.lock equal to the pinned toolchain's again
    #[arg(long)]
    pub std_lock: bool,
    #[command(flatten)]
    pub flags: super::NixFlags,
}

pub fn run(a: UpdateArgs) -> Result<u8> {
    crate::interrupt::also_on_termination();
    let ctx = a.flags.context()?;
    let board = ctx.board_to_build()?;
    let mut nix = Nix::find(a.flags.verbose)?.with_args(&a.flags.nix.nix_args);
    nix.require_version()?;
    let flake_dir = ctx.flake_dir()?;
    let git = ctx.git();
    // All or nothing: flake.lock as it was comes back if a later step fails or is interrupted.
    let mut tx = Transaction::new(&flake_dir);
    if !a.std_lock {
        tx.back_up(Path::new("flake.lock"))?;
        // Nix marks a flake.lock it creates intent-to-add.
        if git.root().is_some() {
            tx.back_up_index(&flake_dir)?;
        }
        // A corrupted flake.lock is refused, a missing one starts from the tested pins (so that
        // only the inputs named move).
        let rewritten = flake_lock::prepare(&flake_dir)?;
        let before = flake_lock::read(&flake_dir)?;
        if !before.is_empty() {
            flake_lock::check_inputs(&a.inputs, &before)?;
        }
        if rewritten {
            status(
                "Wrote",
                "flake.lock from nixflash's tested pins (it was missing)",
            );
        }
        let what = if a.inputs.is_empty() {
            "every input".to_string()
        } else {
            a.inputs.join(", ")
        };
        status(
            "Updating",
            &format!("the flake's inputs ({what}) in flake.lock"),
        );
        nix::flake_update(&nix, &flake_dir, &a.inputs, &super::Terminal)?;
        report_moves(&before, &flake_lock::read(&flake_dir)?);
        if let (Git::Repo { .. }, true) = (git, !a.flags.no_git_add) {
            let u = git::untracked(&flake_dir)?;
            let lock = PathBuf::from("flake.lock");
            if u.files.contains(&lock) {
                tx.git_add(&flake_dir, &["--intent-to-add"], &[lock], &[])?;
                status("Git-added", "flake.lock (intent-to-add)");
            }
        }
    }
    if !board.rust.build_std {
        status(
            "Done",
            &format!(
                "the {} does not build std: no nix/std-Cargo.lock to refresh",
                board.name
            ),
        );
        tx.commit();
        return Ok(0);
    }
    let opts = BuildOptions {
        link: false,
        force_std_lock: true,
        ..a.flags.build_options()
    };
    match std_lock::sync(&nix, &flake_dir, git, board, &opts, &super::Terminal)? {
        StdLock::Checked { rust_src } => status(
            "Checked",
            &format!(
                "{} already equals {}'s",
                std_lock::STD_LOCK,
                super::path(&rust_src)
            ),
        ),
        StdLock::Updated { .. } | StdLock::Unchanged | StdLock::NotNeeded => {}
    }
    tx.commit();
    Ok(0)
}

/// One line per input of flake.lock: what `nix flake update` moved, old → new.
fn report_moves(before: &BTreeMap<String, Locked>, after: &BTreeMap<String, Locked>) {
    for change in flake_lock::changes(before, after) {
        match change {
            Change::Moved(name, old, new) => status("Moved", &format!("{name} {old} → {new}")),
            Change::Unchanged(name, at) => status("Unchanged", &format!("{name} {at}")),
            Change::Added(name, at) => status("Locked", &format!("{name} {at} (new)")),
            Change::Removed(name, at) => status("Removed", &format!("{name} (was {at})")),
        }
    }
}
