//! Where a command's firmware comes from: an ELF named with `--elf`, the last build
//! (`--no-build`), or a build now. Checked before anything slow or physical happens (looking for
//! the board's port, a long build), so that a missing firmware is said first.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::{status, Terminal};
use crate::board::Board;
use crate::context::Context;
use crate::error::{Failure, Kind};
use crate::firmware::hash::Hashes;
use crate::monitor::decode::shown;
use crate::nix::Nix;
use anyhow::Result;

/// The flags that say where the firmware comes from.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FirmwareArgs {
    /// Do not build: use the firmware of the last `nixflash build` (result/bin/<name>.elf)
    #[arg(long)]
    pub no_build: bool,
    /// Use this ELF file instead of building (implies --no-build)
    #[arg(long, value_name = "PATH")]
    pub elf: Option<PathBuf>,
}

/// Firmware that is there, or that a build will make.
pub enum Firmware {
    Ready(PathBuf),
    ToBuild,
}

impl FirmwareArgs {
    /// Checks that there is firmware to `what` ("flash", "simulate"), or that it can be built
    /// (Nix is installed and the project has a flake).
    pub fn check(&self, ctx: &Context, what: &str) -> Result<Firmware> {
        if let Some(elf) = &self.elf {
            if !elf.is_file() {
                return Err(Failure::new(
                    Kind::FirmwareMissing,
                    format!("the firmware {} does not exist", super::path(elf)),
                )
                .hint("pass the path of an ELF file to --elf")
                .into());
            }
            return Ok(Firmware::Ready(elf.clone()));
        }
        let project = ctx.manifest()?;
        if self.no_build {
            let bin = project.firmware_bin();
            // `build` keeps ./result in the flake's folder (a workspace's root, for a member).
            let dir = ctx.flake_dir().unwrap_or_else(|_| project.root.clone());
            let elf = dir.join("result/bin").join(format!("{bin}.elf"));
            if !elf.is_file() {
                return Err(Failure::new(
                    Kind::FirmwareMissing,
                    format!(
                        "there is no firmware to {what}: {} does not exist",
                        super::path(&elf)
                    ),
                )
                .hint("run `nixflash build` first (it makes ./result), or drop --no-build")
                .hint(format!("to {what} another ELF, pass --elf <path>"))
                .into());
            }
            if let Some(newer) = crate::monitor::decode::stale(&elf, &project.root) {
                status(
                    "Warning",
                    &format!(
                        "{} is older than {} (changed since that build): you {what} the last \
                         build, without that change; drop --no-build to build first",
                        shown(&elf),
                        shown(&newer)
                    ),
                );
            }
            return Ok(Firmware::Ready(elf));
        }
        Nix::find(false)?;
        ctx.flake_dir()?;
        Ok(Firmware::ToBuild)
    }

    /// The firmware's ELF for `board` and its hashes: as [`FirmwareArgs::check`] found it (its
    /// hashes printed now), or built now (the build prints them).
    pub fn get(
        firmware: Firmware,
        ctx: &Context,
        flags: &super::NixFlags,
        board: &Board,
    ) -> Result<(PathBuf, Hashes)> {
        let nix = flags.nix();
        let flake = crate::tool::Flake::of(ctx, nix.as_ref());
        let root = ctx.root.clone().unwrap_or_else(|| ctx.cwd.clone());
        let hash = |elf: &Path| crate::flash::hash::hashes(board, elf, &root, &flake, &Terminal);
        match firmware {
            Firmware::Ready(elf) => {
                let hashes = hash(&elf)?;
                // As sha256sum writes a file name: as it is, not as a shell word.
                super::terminal::hash_lines(&elf.display().to_string(), &hashes);
                Ok((elf, hashes))
            }
            Firmware::ToBuild => {
                let built = build(ctx, flags, &flags.build_options())?;
                Ok((built.elf, built.sha256))
            }
        }
    }
}

/// The board a command works for: `--board`, else the project's (checked against its files when
/// `build`), else, outside a project (or in one that names no board) with `--elf`, the one the
/// ELF's chip tells, as long as the
/// boards with that chip agree on what `same` compares (what the command needs of a board).
pub fn board<'c>(
    ctx: &'c Context,
    flag: Option<&str>,
    elf: Option<&Path>,
    build: bool,
    same: impl Fn(&Board, &Board) -> bool,
) -> Result<Cow<'c, Board>> {
    if let Some(id) = flag {
        return Ok(Cow::Borrowed(ctx.db.get(id)?));
    }
    // A Cargo project that names no board (nixflash's own, say) is no project for this.
    let has_board = ctx.root.is_some() && ctx.manifest().map_or(true, |m| m.board.is_some());
    match (has_board, elf) {
        (false, Some(elf)) => {
            let (board, chip) = crate::firmware::board_for(&ctx.db, elf, same)?;
            status(
                "Board",
                &format!(
                    "{} ({}: {}; --board names another)",
                    board.name, chip.name, chip.how
                ),
            );
            Ok(Cow::Owned(board))
        }
        _ if build => ctx.board_to_build().map(Cow::Borrowed),
        _ => ctx.board().map(Cow::Borrowed),
    }
}

/// The project's firmware built with Nix (`crate::nix::build`, reported on the terminal) and
/// hashed, its flash image made with the flasher the project would flash with.
pub fn build(
    ctx: &Context,
    flags: &super::NixFlags,
    opts: &crate::nix::BuildOptions,
) -> Result<crate::nix::Built> {
    let (manifest, board) = (ctx.manifest()?, ctx.board_to_build()?);
    let nix = flags.nix();
    let flake = crate::tool::Flake::of(ctx, nix.as_ref());
    let hash =
        |elf: &Path| crate::flash::hash::hashes(board, elf, &manifest.root, &flake, &Terminal);
    crate::nix::build(manifest, board, opts, &hash, &Terminal)
}
