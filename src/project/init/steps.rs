//! The steps of `init` that decide a file each (or the old family's files): what to write,
//! remove or keep, into the [`Plan`].

use std::fs;
use std::path::Path;

use anyhow::Result;
use toml_edit::DocumentMut;

use super::{Change, Plan, HELLO_WORLD, IGNORED};
use crate::board::{Board, Database};
use crate::error::Kind;
use crate::project::{manifest_edit, refuse};
use crate::render;
use crate::transaction::Transaction;

/// The old family's files: removed when they are what nixflash wrote. A path several
/// families write (build.rs) is looked at once, against every board that writes it.
pub(super) fn old_family_files(
    root: &Path,
    db: &Database,
    board: &Board,
    ours_text: &dyn Fn(&str, &str) -> bool,
    plan: &mut Plan,
) {
    let keep = render::init_files(board.family());
    let mut seen: Vec<String> = Vec::new();
    for family in db.families().filter(|f| f.id != board.family_id) {
        for path in render::init_files(family) {
            if keep.contains(&path) || seen.contains(&path) || !root.join(&path).exists() {
                continue;
            }
            seen.push(path.clone());
            let have = fs::read_to_string(root.join(&path)).unwrap_or_default();
            let written_by_us = ours_text(&path, &have);
            if written_by_us {
                plan.removes.push(path.clone().into());
                plan.changes.push(Change::Removed(path.into()));
            } else {
                plan.changes.push(Change::Kept(
                path.into(),
                format!("not what nixflash wrote for an {} board: delete it if the {} does not need it", family.id, board.name),
            ));
            }
        }
    }
}

/// Cargo.toml: the board, its dependencies and profile settings, and what the flake's
/// checks.sim expects of the blinky; `templates` are the board's template Cargo.toml and the
/// previous board's.
pub(super) fn edit_manifest(
    doc: &mut DocumentMut,
    board: &Board,
    (template, old_template): (&str, Option<&str>),
    main_is_blinky: bool,
    plan: &mut Plan,
) -> Result<()> {
    let mut edits = manifest_edit::apply(doc, board, template, old_template)?;
    edits.extend(manifest_edit::apply_sim(
        doc,
        template,
        old_template,
        main_is_blinky,
    )?);
    if !edits.is_empty() {
        plan.writes.push(("Cargo.toml".into(), doc.to_string()));
        plan.changes
            .push(Change::Edited("Cargo.toml".into(), edits.join("; ")));
    }
    Ok(())
}

/// What Cargo.lock is decided from.
pub(super) struct LockOf<'a> {
    pub(super) root: &'a Path,
    pub(super) board: &'a Board,
    /// The package's Cargo.toml, as edited.
    pub(super) doc: &'a DocumentMut,
    /// The board's template Cargo.toml and Cargo.lock.
    pub(super) template: &'a str,
    pub(super) lock: &'a str,
    /// Whether the package is a nixflash project.
    pub(super) ours: bool,
    pub(super) force: bool,
}

/// Cargo.lock: from nixflash's lock data, when it can lock every dependency; a lock the user
/// changed is replaced only with `force`.
pub(super) fn cargo_lock(
    l: &LockOf,
    ours_text: &dyn Fn(&str, &str) -> bool,
    tx: &mut Transaction,
    plan: &mut Plan,
) -> Result<()> {
    let LockOf {
        root,
        board,
        doc,
        template,
        lock,
        ours,
        force,
    } = *l;
    let template_doc: DocumentMut = template.parse()?;
    let theirs: Vec<String> = manifest_edit::dependency_names(doc)
        .into_iter()
        .filter(|d| !manifest_edit::dependency_names(&template_doc).contains(d))
        .collect();
    let have_lock = fs::read_to_string(root.join("Cargo.lock")).ok();
    match (&have_lock, theirs.is_empty()) {
        (Some(l), true) if l == lock => {}
        // Changed since nixflash wrote it (`cargo update`): the user's.
        (Some(l), true) if ours && !ours_text("Cargo.lock", l) => {
            if !force {
                return Err(refuse(
                    Kind::NeedsForce,
                    "Cargo.lock was changed since nixflash wrote it (by `cargo update`?)".into(),
                    format!(
                        "pass --force to replace it with nixflash's lock data for the {} (yours \
                         is kept beside it as Cargo.lock.orig)",
                        board.name
                    ),
                ));
            }
            let copy = tx.keep_original(Path::new("Cargo.lock"));
            plan.writes.push(("Cargo.lock".into(), lock.into()));
            plan.changes
                .push(Change::Replaced("Cargo.lock".into(), Some(copy)));
        }
        (_, true) => {
            plan.writes.push(("Cargo.lock".into(), lock.into()));
            plan.changes.push(if have_lock.is_some() {
                Change::Replaced("Cargo.lock".into(), None)
            } else {
                Change::Added("Cargo.lock".into())
            });
        }
        (Some(_), false) => plan.todo.push(format!(
            "your package also depends on {}, which nixflash has no lock data for: run `cargo \
             update` so that Cargo.lock locks the board's crates too (it needs the network)",
            theirs.join(", ")
        )),
        (None, false) => plan.todo.push(format!(
            "your package also depends on {}, which nixflash has no lock data for: run `cargo \
             generate-lockfile` (it needs the network); the flake builds from Cargo.lock",
            theirs.join(", ")
        )),
    }
    Ok(())
}

/// src/main.rs: the blinky, unless it is the user's.
pub(super) fn main_rs_change(
    main_rs: Option<String>,
    blinky: &str,
    old_blinky: Option<&str>,
    previous: Option<&Board>,
    board: &Board,
    plan: &mut Plan,
) {
    match main_rs {
        None => {
            plan.writes.push(("src/main.rs".into(), blinky.into()));
            plan.changes.push(Change::Added("src/main.rs".into()));
        }
        Some(m) if m == blinky => {}
        Some(m) if m == HELLO_WORLD || Some(m.as_str()) == old_blinky => {
            plan.writes.push(("src/main.rs".into(), blinky.into()));
            plan.changes
                .push(Change::Replaced("src/main.rs".into(), None));
        }
        Some(_) => {
            let why = match previous {
                Some(p) if p.family_id != board.family_id => format!(
                    "yours, written for {}: port it to {} (`nixflash new` in another folder shows \
                     the {}'s blinky)",
                    p.hal.krate, board.hal.krate, board.name
                ),
                Some(_) => format!(
                    "yours; the {} uses {} too (check the pins it uses)",
                    board.name, board.hal.krate
                ),
                None => format!(
                    "yours, not cargo's hello world (`nixflash new` in another folder shows the \
                     {}'s blinky)",
                    board.name
                ),
            };
            plan.changes.push(Change::Kept("src/main.rs".into(), why));
        }
    }
}

/// .gitignore: Nix's result link, direnv's cache, the settings file.
pub(super) fn gitignore(root: &Path, plan: &mut Plan) {
    let ignore = fs::read_to_string(root.join(".gitignore")).unwrap_or_default();
    let missing: Vec<&str> = IGNORED
        .into_iter()
        .filter(|l| !ignore.lines().any(|have| have.trim() == *l))
        .collect();
    if !missing.is_empty() {
        let mut new = ignore.clone();
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        for l in &missing {
            new.push_str(l);
            new.push('\n');
        }
        plan.writes.push((".gitignore".into(), new));
        plan.changes.push(Change::Edited(
            ".gitignore".into(),
            format!("added {}", missing.join(", ")),
        ));
    }
}

/// The blinky's other sources (src/settings.rs, which its `mod settings;` needs), when src/main.rs
/// is or becomes the blinky: each written when missing or as nixflash wrote it, kept when yours.
pub(super) fn blinky_modules(
    root: &Path,
    files: &[render::File],
    main_is_blinky: bool,
    ours_text: &dyn Fn(&str, &str) -> bool,
    plan: &mut Plan,
) {
    let modules = files
        .iter()
        .filter(|f| f.path.starts_with("src") && f.path != Path::new("src/main.rs"));
    for f in modules.filter(|_| main_is_blinky) {
        let change = match fs::read_to_string(root.join(&f.path)) {
            Err(_) => Change::Added(f.path.clone()),
            Ok(have) if have == f.contents => continue,
            Ok(have) if ours_text(&f.path.to_string_lossy(), &have) => {
                Change::Replaced(f.path.clone(), None)
            }
            Ok(_) => {
                let why = "yours; the blinky in src/main.rs needs nixflash's (`nixflash new` in \
                           another folder shows it)";
                plan.changes.push(Change::Kept(f.path.clone(), why.into()));
                continue;
            }
        };
        plan.writes.push((f.path.clone(), f.contents.clone()));
        plan.changes.push(change);
    }
}
