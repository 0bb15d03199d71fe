//! `nixflash new`: a complete project in a folder of its own, all or nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{is_empty_dir, refuse, validate_crate_name, write_files};
use crate::board::Board;
use crate::git::{self, enclosing_work_tree};
use crate::interrupt;
use crate::render::{self, File, Project};

/// What `new` was asked to do.
pub struct NewOptions<'a> {
    pub path: &'a Path,
    pub board: &'a Board,
    pub name: Option<&'a str>,
    pub force: bool,
    pub git: bool,
    /// Choices among the board family's options (`log` = `defmt`); the rest take their defaults.
    pub options: BTreeMap<String, String>,
    /// Files written besides the rendered ones: a user's board files
    /// ([`crate::board::Database::carried_files`]).
    pub extra: Vec<File>,
}

/// What `new` made.
#[derive(Debug)]
pub struct Created {
    pub root: PathBuf,
    pub name: String,
    pub files: Vec<PathBuf>,
    /// Some(true) when a repository was created, Some(false) when an enclosing one was used.
    pub git: Option<bool>,
}

/// Removes a folder when dropped, unless disarmed: a failed or interrupted `new` leaves nothing.
struct TempDir {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// `nixflash new`: renders the project into a temporary folder beside `path`, adds it to git,
/// then renames it into place in one step.
pub fn create(opts: &NewOptions) -> Result<Created> {
    let target = opts.path;
    let name = match opts.name {
        Some(n) => n.to_string(),
        None => target
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| {
                refuse(
                    format!("cannot take a package name from `{}`", target.display()),
                    "pass --name",
                )
            })?,
    };
    validate_crate_name(&name).with_context(|| {
        if opts.name.is_none() {
            format!(
                "the folder name `{name}` is not a valid package name; pass --name to choose one"
            )
        } else {
            "invalid --name".to_string()
        }
    })?;

    let exists = target.exists();
    if exists {
        if !target.is_dir() {
            return Err(refuse(
                format!("`{}` exists and is not a folder", target.display()),
                "choose another path",
            ));
        }
        if !opts.force && !is_empty_dir(target)? {
            return Err(refuse(
                format!("`{}` is not empty", target.display()),
                format!(
                    "choose a new folder, run `nixflash init --board {}` inside an existing Cargo \
                     project, or pass --force to write over its files",
                    opts.board.id
                ),
            ));
        }
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(refuse(
            format!("the folder `{}` does not exist", parent.display()),
            "create it first, or choose another path",
        ));
    }

    let mut project = Project::new(&name);
    project.options = opts.options.clone();
    let mut files = render::render(opts.board, &project)?;
    files.extend(opts.extra.iter().cloned());
    let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    let enclosing = if opts.git {
        enclosing_work_tree(&parent)
    } else {
        None
    };

    let staging = parent.join(format!(
        ".{}.nixflash-new-{}",
        target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("project"),
        std::process::id()
    ));
    let mut tmp = TempDir {
        path: staging.clone(),
        armed: true,
    };
    fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    // `git init` runs while the files are written.
    let init = if opts.git && enclosing.is_none() {
        Some(git::start_init(&staging)?)
    } else {
        None
    };
    let written = write_files(&staging, &files);
    let git_state = match init {
        Some(child) => {
            git::finish_init(&staging, child)?;
            written?;
            interrupt::check()?;
            git::add(&staging, &[], &paths)?;
            Some(true)
        }
        None => {
            written?;
            opts.git.then_some(false)
        }
    };
    interrupt::check()?;

    if exists && !is_empty_dir(target)? {
        // --force into a non-empty folder: move the files over one by one (each rename is atomic).
        for p in &paths {
            let dest = target.join(p);
            if let Some(d) = dest.parent() {
                fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            }
            fs::rename(staging.join(p), &dest)
                .with_context(|| format!("cannot write {}", dest.display()))?;
        }
        if git_state == Some(true) && !target.join(".git").exists() {
            fs::rename(staging.join(".git"), target.join(".git"))
                .context("cannot move the new git repository into place")?;
        }
    } else {
        if exists {
            fs::remove_dir(target)
                .with_context(|| format!("cannot replace the empty folder {}", target.display()))?;
        }
        fs::rename(&staging, target)
            .with_context(|| format!("cannot move the new project into {}", target.display()))?;
        tmp.armed = false;
    }
    drop(tmp);

    if git_state == Some(false) || (git_state == Some(true) && exists) {
        git::add(target, &[], &paths)?;
    }
    Ok(Created {
        root: target.to_path_buf(),
        name,
        files: paths,
        git: git_state,
    })
}
