//! `nixflash init`: nixflash's files added to an existing Cargo package.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::refuse;
use crate::board::Board;
use crate::error::Failure;
use crate::git::{self, enclosing_work_tree};
use crate::interrupt;
use crate::render::{self, File, Project};

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
