//! `nixflash new`: a complete project in a folder of its own, all or nothing.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{refuse, validate_crate_name, write_files};
use crate::board::Board;
use crate::error::Kind;
use crate::git::{self, enclosing_work_tree};
use crate::interrupt;
use crate::options::{self, Wish};
use crate::render::{self, File, Project};
use crate::transaction::Transaction;

/// What `new` was asked to do.
pub struct NewOptions<'a> {
    pub path: &'a Path,
    pub board: &'a Board,
    pub name: Option<&'a str>,
    pub force: bool,
    pub git: bool,
    /// Options asked for (`-o log=defmt`); the rest take their defaults, or are turned on for
    /// the ones asked for.
    pub options: Vec<Wish>,
    /// Files written besides the rendered ones: a user's board files
    /// ([`crate::board::Database::carried_files`]).
    pub extra: Vec<File>,
}

/// What `new` did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Written where there was none.
    Created,
    /// Written over a file of the user's, which is kept as `kept` (relative to the project).
    Replaced { kept: PathBuf },
    /// Already there, as nixflash writes it.
    Unchanged,
}

/// What `new` made.
#[derive(Debug)]
pub struct Created {
    pub root: PathBuf,
    pub name: String,
    /// Each file (relative to the root) and what was done with it.
    pub files: Vec<(PathBuf, Written)>,
    /// Some(true) when a repository was created, Some(false) when an enclosing one was used.
    pub git: Option<bool>,
    /// Options turned on because others need them, one sentence each.
    pub notes: Vec<String>,
}

/// Whether `dir` holds nothing but, perhaps, a git repository (`git init` or a clone of an empty
/// repository): `new` writes into it without --force.
fn is_nearly_empty(dir: &Path) -> Result<bool> {
    Ok(fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .all(|e| e.is_ok_and(|e| e.file_name() == ".git")))
}

/// `nixflash new`: into a new folder, renders the project into a temporary folder beside it,
/// adds it to git, then renames it into place in one step; into an existing folder, writes the
/// files in place, all or nothing (see [`Transaction`]). Missing folders above it are created,
/// as `cargo new` does, and removed again if `new` fails.
pub fn create(opts: &NewOptions) -> Result<Created> {
    let target = opts.path;
    let exists = target.exists();
    let name = match opts.name {
        Some(n) => n.to_string(),
        None => {
            // `new .` takes the folder's name, as `cargo init` does.
            let named = if exists {
                target.canonicalize().ok()
            } else {
                Some(target.to_path_buf())
            };
            named
                .as_deref()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    refuse(
                        Kind::NameInvalid,
                        format!("cannot take a package name from `{}`", target.display()),
                        "pass --name",
                    )
                })?
        }
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

    if exists {
        if !target.is_dir() {
            return Err(refuse(
                Kind::Usage,
                format!("`{}` exists and is not a folder", target.display()),
                "choose another path",
            ));
        }
        if !opts.force && !is_nearly_empty(target)? {
            return Err(refuse(
                Kind::NeedsForce,
                format!("`{}` is not empty", target.display()),
                format!(
                    "choose a new folder, run `nixflash init --board {}` inside an existing Cargo \
                     project, or pass --force to write over its files (yours are kept as \
                     <name>.orig)",
                    opts.board.id
                ),
            ));
        }
    }

    let resolved = options::resolve(opts.board, &opts.options)?;
    let mut project = Project::new(&name);
    project.options = options::non_default(opts.board.family(), &resolved.choices)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut files = render::render(opts.board, &project)?;
    files.extend(opts.extra.iter().cloned());
    let (files, git) = if exists {
        into_folder(opts, &files)?
    } else {
        into_new_folder(opts, &files)?
    };
    Ok(Created {
        root: target.to_path_buf(),
        name,
        files,
        git,
        notes: resolved.notes,
    })
}

/// The files and what was done with each, and the git state (as in [`Created`]).
type Made = (Vec<(PathBuf, Written)>, Option<bool>);

/// `new` into a folder that does not exist yet.
fn into_new_folder(opts: &NewOptions, files: &[File]) -> Result<Made> {
    let target = opts.path;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    let mut tx = Transaction::new(&parent);
    tx.create_dirs(&parent)?;
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
    tx.made_tree(&staging);
    fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    let new_repo = opts.git && enclosing.is_none();
    // The repository is written here when that gives what git would (no git process: they took
    // longer than the rest of `new`), else `git init` runs while the files are written.
    let branch = if new_repo {
        git::require_installed()?;
        git::repo::plain_init()
    } else {
        None
    };
    let init = if new_repo && branch.is_none() {
        Some(git::start_init(&staging)?)
    } else {
        None
    };
    let written = write_files(&staging, files);
    let git_state = match (init, branch) {
        (Some(child), _) => {
            git::finish_init(&staging, child)?;
            written?;
            interrupt::check()?;
            git::add(&staging, &[], &paths)?;
            Some(true)
        }
        (None, Some(branch)) => {
            written?;
            interrupt::check()?;
            git::repo::create(&staging, &branch, &paths)?;
            Some(true)
        }
        (None, None) => {
            written?;
            opts.git.then_some(false)
        }
    };
    interrupt::check()?;
    fs::rename(&staging, target)
        .with_context(|| format!("cannot move the new project into {}", target.display()))?;
    tx.made_tree(target);
    if git_state == Some(false) {
        tx.git_add(target, &[], &paths, &[])?;
    }
    interrupt::check()?;
    tx.commit();
    let listed = paths.into_iter().map(|p| (p, Written::Created)).collect();
    Ok((listed, git_state))
}

/// `new` into a folder that exists: empty but for a git repository, or with files of the user's
/// (--force), which are kept beside the new ones.
fn into_folder(opts: &NewOptions, files: &[File]) -> Result<Made> {
    let target = opts.path;
    let mut tx = Transaction::new(target);
    let repo = if opts.git {
        enclosing_work_tree(target)
    } else {
        None
    };
    // `git init` runs while the files are written.
    let init = if opts.git && repo.is_none() {
        tx.made_tree(&target.join(".git"));
        Some(git::start_init(target)?)
    } else {
        None
    };
    let mut listed = Vec::new();
    let staged = (|| -> Result<()> {
        for f in files {
            let what = match fs::read(target.join(&f.path)) {
                Ok(old) if old == f.contents.as_bytes() => Written::Unchanged,
                Ok(_) => Written::Replaced {
                    kept: tx.keep_original(&f.path),
                },
                Err(_) => Written::Created,
            };
            if what != Written::Unchanged {
                tx.stage(&f.path, f.contents.as_bytes())?;
            }
            listed.push((f.path.clone(), what));
        }
        Ok(())
    })();
    if let Some(child) = init {
        git::finish_init(target, child)?;
    }
    staged?;
    tx.apply()?;
    if opts.git {
        let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
        tx.git_add(target, &[], &paths, &[])?;
    }
    interrupt::check()?;
    tx.commit();
    Ok((listed, opts.git.then_some(repo.is_none())))
}
