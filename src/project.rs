//! The project on disk: creating one (`new`), adding nixflash to one (`init`), git.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::board::Board;
use crate::error::Failure;
use crate::git::{self, enclosing_work_tree};
use crate::interrupt;
use crate::render::{self, File, Project};

/// Fails with a message and a hint.
fn refuse(message: String, hint: impl Into<String>) -> anyhow::Error {
    Failure::new(message).hint(hint).into()
}

/// Checks a package name the way `cargo new` does, with a message that says what to change.
pub fn validate_crate_name(name: &str) -> Result<()> {
    let hint = "use lowercase letters, digits, `-` and `_`, starting with a letter (for example \
                `blinky`), or pass --name";
    if name.is_empty() {
        return Err(refuse("the package name is empty".to_string(), hint));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(refuse(
            format!("invalid character `{c}` in package name `{name}`"),
            hint,
        ));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(refuse(
            format!("the package name `{name}` cannot start with a digit"),
            hint,
        ));
    }
    if name.starts_with('-') {
        return Err(refuse(
            format!("the package name `{name}` cannot start with `-`"),
            hint,
        ));
    }
    if name.len() > 64 {
        return Err(refuse(
            format!("the package name `{name}` is longer than 64 characters"),
            hint,
        ));
    }
    let ident = name.replace('-', "_");
    const KEYWORDS: &[&str] = &[
        "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
        "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
        "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub",
        "ref", "return", "self", "static", "struct", "super", "trait", "true", "try", "type",
        "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    ];
    if KEYWORDS.contains(&ident.as_str()) {
        return Err(refuse(
            format!("the package name `{name}` is a Rust keyword"),
            hint,
        ));
    }
    const RESERVED: &[&str] = &[
        "core",
        "std",
        "alloc",
        "proc_macro",
        "test",
        "build",
        "deps",
        "examples",
        "incremental",
        "con",
        "prn",
        "aux",
        "nul",
        "com1",
        "com2",
        "com3",
        "com4",
        "com5",
        "com6",
        "com7",
        "com8",
        "com9",
        "lpt1",
        "lpt2",
        "lpt3",
        "lpt4",
        "lpt5",
        "lpt6",
        "lpt7",
        "lpt8",
        "lpt9",
    ];
    if RESERVED.contains(&ident.to_ascii_lowercase().as_str()) {
        return Err(refuse(
            format!("the package name `{name}` is reserved (cargo refuses it)"),
            hint,
        ));
    }
    Ok(())
}

/// What `new` was asked to do.
pub struct NewOptions<'a> {
    pub path: &'a Path,
    pub board: &'a Board,
    pub name: Option<&'a str>,
    pub force: bool,
    pub git: bool,
    /// Choices among the board family's options (`log` = `defmt`); the rest take their defaults.
    pub options: BTreeMap<String, String>,
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

fn is_empty_dir(p: &Path) -> Result<bool> {
    Ok(fs::read_dir(p)
        .with_context(|| format!("cannot read {}", p.display()))?
        .next()
        .is_none())
}

fn write_files(root: &Path, files: &[File]) -> Result<()> {
    for f in files {
        interrupt::check()?;
        let path = root.join(&f.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, &f.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
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
    let files = render::render(opts.board, &project)?;
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

/// What `init` did.
#[derive(Debug)]
pub struct Initialized {
    pub name: String,
    /// Files written, relative to the project root.
    pub files: Vec<PathBuf>,
    /// Whether `[package.metadata.nixflash]` was added or changed.
    pub metadata_changed: bool,
    pub has_lock: bool,
    pub git_added: bool,
}

/// `nixflash init`: adds the Nix and board files to the Cargo project at `root`.
pub fn init(root: &Path, board: &Board, force: bool, git: bool) -> Result<Initialized> {
    let manifest_path = root.join("Cargo.toml");
    let text = fs::read_to_string(&manifest_path).map_err(|e| {
        Failure::new(format!("no Cargo.toml in {}", root.display()))
            .hint(format!(
                "run `nixflash init` at the root of a Cargo package, or create a project with \
                 `nixflash new <path> --board {}`",
                board.id
            ))
            .because(e)
    })?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", manifest_path.display()))?;
    let name = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            refuse(
                format!("{} has no [package] name", manifest_path.display()),
                "run `nixflash init` in the package's folder, not at a workspace root",
            )
        })?;

    let existing_board = doc
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("nixflash"))
        .and_then(|n| n.get("board"))
        .and_then(|b| b.as_str())
        .map(str::to_string);

    let wanted = render::init_files(board.family());
    let files: Vec<File> = render::render(board, &Project::new(&name))?
        .into_iter()
        .filter(|f| wanted.iter().any(|p| f.path == Path::new(p)))
        .collect();
    let mut conflicts: Vec<String> = files
        .iter()
        .filter(|f| root.join(&f.path).exists())
        .map(|f| f.path.display().to_string())
        .collect();
    if existing_board.as_deref().is_some_and(|b| b != board.id) {
        conflicts.push(format!(
            "Cargo.toml's [package.metadata.nixflash] board = \"{}\"",
            existing_board.as_deref().unwrap_or_default()
        ));
    }
    if !conflicts.is_empty() && !force {
        return Err(refuse(
            format!(
                "these already exist and would be overwritten:\n  {}",
                conflicts.join("\n  ")
            ),
            "move them aside, or pass --force to overwrite them",
        ));
    }

    let metadata_changed = existing_board.as_deref() != Some(board.id.as_str());
    if metadata_changed {
        let package = doc["package"]
            .as_table_mut()
            .context("[package] in Cargo.toml is not a table")?;
        let metadata = package
            .entry("metadata")
            .or_insert_with(|| {
                let mut t = toml_edit::Table::new();
                t.set_implicit(true);
                toml_edit::Item::Table(t)
            })
            .as_table_mut()
            .context("package.metadata in Cargo.toml is not a table")?;
        let nf = metadata
            .entry("nixflash")
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
            .as_table_mut()
            .context("package.metadata.nixflash in Cargo.toml is not a table")?;
        nf["board"] = toml_edit::value(board.id.as_str());
    }

    // Write every file next to its destination first, then rename them all into place.
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| -> Result<()> {
        let mut all: Vec<(PathBuf, String)> = files
            .iter()
            .map(|f| (f.path.clone(), f.contents.clone()))
            .collect();
        if metadata_changed {
            all.push((PathBuf::from("Cargo.toml"), doc.to_string()));
        }
        for (rel, contents) in &all {
            interrupt::check()?;
            let dest = root.join(rel);
            if let Some(d) = dest.parent() {
                fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            }
            let tmp = dest.with_file_name(format!(
                ".{}.nixflash-{}",
                dest.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
                std::process::id()
            ));
            fs::write(&tmp, contents).with_context(|| format!("cannot write {}", tmp.display()))?;
            staged.push((tmp, dest));
        }
        interrupt::check()?;
        Ok(())
    })();
    if let Err(e) = result {
        for (tmp, _) in &staged {
            let _ = fs::remove_file(tmp);
        }
        return Err(e);
    }
    for (tmp, dest) in &staged {
        fs::rename(tmp, dest).with_context(|| format!("cannot write {}", dest.display()))?;
    }

    let written: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    let mut git_added = false;
    if git && enclosing_work_tree(root).is_some() {
        let mut add = written.clone();
        if metadata_changed {
            add.push(PathBuf::from("Cargo.toml"));
        }
        git::add(root, &[], &add)?;
        git_added = true;
    }
    Ok(Initialized {
        name,
        files: written,
        metadata_changed,
        has_lock: root.join("Cargo.lock").exists(),
        git_added,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_follow_cargo() {
        for ok in ["blinky", "my-blinky", "my_blinky2", "_x", "Blinky"] {
            validate_crate_name(ok).unwrap();
        }
        for bad in [
            "", "2fast", "a b", "blinky!", "fn", "core", "test", "-x", "con", "héllo",
        ] {
            assert!(validate_crate_name(bad).is_err(), "{bad} accepted");
        }
    }
}
