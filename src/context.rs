//! Where a command runs: the project around the current folder (its package root, manifest, flake
//! folder, git state) and the board database as that project sees it (built-in boards, the
//! user's, the project's `boards/`). Resolved once per command, so that every command agrees on
//! which project and which `boards/` folder count; the parts that cost a process (cargo metadata,
//! git) are read when first asked for.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::board::{Board, Database};
use crate::error::{Failure, Kind, Report};
use crate::git::Git;
use crate::manifest::{self, Manifest};

pub struct Context {
    pub cwd: PathBuf,
    /// The package root: the nearest folder at or above `cwd` whose Cargo.toml has a `[package]`.
    pub root: Option<PathBuf>,
    /// Why there is no root, if there is none.
    no_root: Option<Report>,
    pub db: Database,
    manifest: OnceCell<std::result::Result<Manifest, Report>>,
    git: OnceCell<Git>,
}

impl Context {
    /// The context of the current folder.
    pub fn current() -> Result<Context> {
        let cwd = std::env::current_dir().context("cannot read the current folder")?;
        Context::at(&cwd)
    }

    /// The context of `dir`.
    pub fn at(dir: &Path) -> Result<Context> {
        let (root, no_root) = match manifest::find_root(dir) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(Report::of(&e))),
        };
        let db = Database::load(root.as_deref())?;
        Ok(Context {
            cwd: dir.to_path_buf(),
            root,
            no_root,
            db,
            manifest: OnceCell::new(),
            git: OnceCell::new(),
        })
    }

    /// The project's manifest, read once (by cargo metadata when cargo answers offline).
    pub fn manifest(&self) -> Result<&Manifest> {
        let read = self
            .manifest
            .get_or_init(|| match (&self.root, &self.no_root) {
                (Some(root), _) => manifest::read(root).map_err(|e| Report::of(&e)),
                (None, Some(why)) => Err(why.clone()),
                (None, None) => unreachable!("a context has a root or a reason for none"),
            });
        match read {
            Ok(m) => Ok(m),
            Err(r) => Err(r.to_failure().into()),
        }
    }

    /// Whether the current folder is outside any project: no Cargo.toml with a `[package]` at
    /// or above it. A project whose Cargo.toml cannot be read is not outside one.
    pub fn outside_a_project(&self) -> bool {
        self.no_root
            .as_ref()
            .is_some_and(|r| r.kind == Kind::NotAProject)
    }

    /// The project's board, from its Cargo.toml, as the database knows it.
    pub fn board(&self) -> Result<&Board> {
        let m = self.manifest()?;
        let id = m.board_id()?;
        self.db.get(id).map_err(|e| {
            e.context(format!(
                "{} names board `{id}` in [package.metadata.nixflash]",
                m.root.join("Cargo.toml").display()
            ))
        })
    }

    /// The project's board, checked against the files made for a board (.cargo/config.toml, the
    /// HAL's feature, ravedude's board): a board edited by hand in Cargo.toml is an error that
    /// says how to switch boards. For the commands that build.
    pub fn board_to_build(&self) -> Result<&Board> {
        let board = self.board()?;
        let root = &self.manifest()?.root;
        if let Some(why) = crate::project::board_mismatch(root, board) {
            return Err(Failure::new(Kind::BoardMismatch, format!(
                "{} says board `{}`, but {why}",
                root.join("Cargo.toml").display(),
                board.id
            ))
            .hint(format!(
                "to switch the project to the {}, run `nixflash init --board {}`: it writes the \
                 board's files again (and says what it changed)",
                board.name, board.id
            ))
            .hint("or set `board` in [package.metadata.nixflash] back to the board the project is for")
            .into());
        }
        Ok(board)
    }

    /// The folder of the project's flake.nix.
    pub fn flake_dir(&self) -> Result<PathBuf> {
        crate::nix::flake_dir(self.manifest()?)
    }

    /// Where the project (or the current folder) stands with git.
    pub fn git(&self) -> &Git {
        self.git.get_or_init(|| {
            let dir = self
                .flake_dir()
                .ok()
                .or_else(|| self.root.clone())
                .unwrap_or_else(|| self.cwd.clone());
            Git::of(&dir)
        })
    }
}
