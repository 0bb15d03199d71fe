//! `nixflash init`: nixflash added to an existing Cargo package, or a nixflash project switched to
//! another board.
//!
//! In a package that is not a nixflash project yet, the Nix and board files are added (refusing to
//! write over files of the package's own unless `--force`), the board's dependencies and profile
//! settings are added to Cargo.toml, Cargo.lock is written from nixflash's lock data when the
//! package has no dependencies of its own, and src/main.rs becomes the blinky only when it is
//! still cargo's hello world. In a nixflash project (Cargo.toml names a board), every
//! board-derived file is written for the new board and the old family's files go; src/ is left
//! alone, except that across families (which needs `--force`) an untouched generated blinky is
//! replaced by the new board's. The generated README follows the board too.
//!
//! A file is replaced as it is only when it is what nixflash wrote (rendered for the board the
//! project names, or for any board when `board =` was edited by hand). One the user wrote or
//! edited is replaced only with `--force`, and kept beside it as `<name>.orig` (an edited README
//! is kept). Everything is written, removed and git-added all or nothing (see
//! [`crate::transaction`]).

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use toml_edit::DocumentMut;

use super::refuse;
use crate::board::{Board, Database};
use crate::error::{Failure, Kind};
use crate::git::{self, enclosing_work_tree};
use crate::options::{self, Wish};
use crate::render::{self, File, Project};
use crate::transaction::Transaction;

mod steps;

use steps::{
    blinky_modules, cargo_lock, edit_manifest, gitignore, main_rs_change, old_family_files, LockOf,
};

/// One thing `init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A file written where there was none.
    Added(PathBuf),
    /// A file written over what was there; where the old one is kept, when it was the user's.
    Replaced(PathBuf, Option<PathBuf>),
    /// A file of the old board's family, deleted (and taken out of git).
    Removed(PathBuf),
    /// A file changed in part: what changed.
    Edited(PathBuf, String),
    /// A file left as it was, and why.
    Kept(PathBuf, String),
}

/// What `init` did.
#[derive(Debug)]
pub struct Initialized {
    pub name: String,
    /// The board the project was for, when it switched boards.
    pub switched_from: Option<String>,
    pub changes: Vec<Change>,
    /// What the user still has to do, if anything.
    pub todo: Vec<String>,
    /// Whether what it wrote and removed was git-added.
    pub git_added: bool,
    /// Files it did not write, which git did not track, and which it git-added.
    pub git_added_untracked: Vec<PathBuf>,
    /// What became of the project's options: choices dropped (the board does not offer them)
    /// and choices turned on (another needs them), one sentence each.
    pub notes: Vec<String>,
}

/// What cargo's `cargo new` writes as src/main.rs.
const HELLO_WORLD: &str = "fn main() {\n    println!(\"Hello, world!\");\n}\n";

/// The generated README, which names the board.
const README: &str = "README.md";

/// Lines a project's .gitignore needs: Nix's `result` link, direnv's cache, and the settings
/// file of `nixflash flash --set` (Wi-Fi passwords: never in git, never in the Nix store).
const IGNORED: [&str; 3] = ["/result", "/.direnv", "/settings.toml"];

/// The text of a rendered file.
fn rendered<'a>(files: &'a [File], path: &str) -> Option<&'a str> {
    files
        .iter()
        .find(|f| f.path == Path::new(path))
        .map(|f| f.contents.as_str())
}

/// `nixflash init`: see the module's documentation. `wishes` are the options asked for now
/// (`-o log=defmt`); the ones the project records in `[package.metadata.nixflash]` are kept
/// where the board offers them, and the others dropped with a note saying why.
pub fn init(
    root: &Path,
    board: &Board,
    db: &Database,
    wishes: &[Wish],
    force: bool,
    git: bool,
) -> Result<Initialized> {
    let (mut doc, pkg) = read_package(root, board, db)?;
    // A nixflash project: its board-derived files are nixflash's to write again.
    let ours = pkg.named.is_some();
    let made_for: Option<&Board> = pkg
        .named
        .as_deref()
        .and_then(|id| db.find(id))
        .map(|e| &e.board);
    let previous = made_for.filter(|b| b.id != board.id);
    if let Some(prev) = previous {
        refuse_family_switch(&pkg.name, prev, board, force)?;
    }

    // The project as it is to be: the recorded choices the new board's family offers, and the
    // ones asked for now; and as it was made (its board, its recorded choices).
    let (choices, notes) = choose_options(board, &pkg.recorded, wishes)?;
    let files = render::render(board, &pkg.project(choices))?;
    let old_files = made_for
        .map(|p| render::render(p, &pkg.project(offered(p, &pkg.recorded))))
        .transpose()?;
    let mut plan = Plan::default();

    // What nixflash wrote: the files rendered for the board the project names or, when its
    // `board =` was edited by hand, for any board (each with the project's recorded choices).
    let every_board: OnceCell<Vec<Vec<File>>> = OnceCell::new();
    let ours_text = |path: &str, have: &str| -> bool {
        old_files.as_deref().and_then(|o| rendered(o, path)) == Some(have)
            || (every_board.get_or_init(|| pkg.for_every_board(db)))
                .iter()
                .any(|r| rendered(r, path) == Some(have))
    };
    let mut tx = Transaction::new(root);

    // The Nix and board files, and (in a nixflash project) the README, which names the board.
    board_files(
        &BoardFiles {
            root,
            board,
            files: &files,
            ours,
            force,
            previous,
            ours_text: &ours_text,
        },
        &mut tx,
        &mut plan.writes,
        &mut plan.changes,
    )?;
    if ours {
        old_family_files(root, db, board, &ours_text, &mut plan);
    }

    // src/main.rs is, or becomes (below), the board's blinky unless it is the user's own.
    let blinky = rendered(&files, "src/main.rs").context("no rendered src/main.rs")?;
    let old = |path| old_files.as_deref().and_then(|o| rendered(o, path));
    let old_blinky = old("src/main.rs");
    let main_rs = fs::read_to_string(root.join("src/main.rs")).ok();
    let main_is_blinky = main_rs
        .as_deref()
        .is_none_or(|m| m == blinky || m == HELLO_WORLD || Some(m) == old_blinky);
    let template = rendered(&files, "Cargo.toml").context("no rendered Cargo.toml")?;
    let templates = (template, old("Cargo.toml"));
    edit_manifest(&mut doc, board, templates, main_is_blinky, &mut plan)?;
    let lock_of = LockOf {
        root,
        board,
        doc: &doc,
        template,
        lock: rendered(&files, "Cargo.lock").context("no rendered Cargo.lock")?,
        ours,
        force,
    };
    cargo_lock(&lock_of, &ours_text, &mut tx, &mut plan)?;
    main_rs_change(main_rs, blinky, old_blinky, previous, board, &mut plan);
    blinky_modules(root, &files, main_is_blinky, &ours_text, &mut plan);
    carried_board_files(root, db, board, &mut plan.writes, &mut plan.changes)?;
    gitignore(root, &mut plan);

    let (git_added, untracked) = write_all(tx, root, board, git, &plan)?;
    Ok(Initialized {
        name: pkg.name.clone(),
        switched_from: previous.map(|p| p.id.clone()),
        changes: plan.changes,
        todo: plan.todo,
        git_added,
        git_added_untracked: untracked,
        notes,
    })
}

/// What `init` is to do: the files to write and remove, and what it says about them.
#[derive(Default)]
struct Plan {
    writes: Vec<(PathBuf, String)>,
    removes: Vec<PathBuf>,
    changes: Vec<Change>,
    todo: Vec<String>,
}

/// The package's Cargo.toml as `init` finds it (besides the document).
struct Package {
    name: String,
    version: String,
    /// The board it names, in a nixflash project.
    named: Option<String>,
    /// Template choices it records (`log = "defmt"`).
    recorded: BTreeMap<String, String>,
}

impl Package {
    /// The project with `choices`, as `init` renders it.
    fn project(&self, choices: BTreeMap<String, String>) -> Project {
        let mut p = Project::new(&self.name).with_version(&self.version);
        p.options = choices;
        p
    }

    /// The files rendered for every board, each with the recorded choices it offers.
    fn for_every_board(&self, db: &Database) -> Vec<Vec<File>> {
        db.boards()
            .filter_map(|b| render::render(b, &self.project(offered(b, &self.recorded))).ok())
            .collect()
    }
}

/// Reads the package's Cargo.toml: its name and version, the board it names and the template
/// choices it records (keys that name an option of some family, not `port` or `baud`).
fn read_package(root: &Path, board: &Board, db: &Database) -> Result<(DocumentMut, Package)> {
    let manifest_path = root.join("Cargo.toml");
    let text = fs::read_to_string(&manifest_path).map_err(|e| {
        Failure::new(
            Kind::NotAProject,
            format!("no Cargo.toml in {}", root.display()),
        )
        .hint(format!(
            "run `nixflash init` at the root of a Cargo package, or create a project with \
             `nixflash new <path> --board {}`",
            board.id
        ))
        .because(e)
    })?;
    let doc: DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", manifest_path.display()))?;
    let package = doc.get("package");
    let field = |k: &str| package.and_then(|p| p.get(k)).and_then(|n| n.as_str());
    let name = field("name").map(str::to_string).ok_or_else(|| {
        refuse(
            Kind::NotAProject,
            format!("{} has no [package] name", manifest_path.display()),
            "run `nixflash init` in the package's folder, not at a workspace root",
        )
    })?;
    let version = field("version").unwrap_or("0.0.0").to_string();
    let ours_table = package
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("nixflash"))
        .and_then(|n| n.as_table_like());
    let named = ours_table
        .and_then(|n| n.get("board"))
        .and_then(|b| b.as_str())
        .map(str::to_string);
    // Template choices the project records (`log = "defmt"`): keys that name an option of some
    // family (not `port`, `baud`).
    let recorded: BTreeMap<String, String> = ours_table
        .map(|t| {
            t.iter()
                .filter(|(k, _)| db.families().any(|f| f.options.contains_key(*k)))
                .filter_map(|(k, v)| Some((k.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok((
        doc,
        Package {
            name,
            version,
            named,
            recorded,
        },
    ))
}

/// Refuses to switch to a board of another family without `force`: src/main.rs is written for
/// the other family's HAL.
fn refuse_family_switch(name: &str, prev: &Board, board: &Board, force: bool) -> Result<()> {
    if prev.family_id != board.family_id && !force {
        return Err(Failure::new(
            Kind::NeedsForce,
            format!(
                "{name} is for the {} ({}), an {} board, and the {} is an {} board: its \
             src/main.rs is written for the other family's HAL",
                prev.name, prev.id, prev.family_id, board.name, board.family_id
            ),
        )
        .hint(format!(
            "pass --force to switch anyway: nixflash writes the {}'s files and replaces \
             src/main.rs if it is still the generated blinky (otherwise you port it)",
            board.name
        ))
        .into());
    }
    Ok(())
}

/// Whether the board offers option `name` with `choice`.
fn offers(b: &Board, name: &str, choice: &str) -> bool {
    options::why_not_offered(b, name).is_none()
        && b.family().options[name].choices.contains_key(choice)
}

/// The `recorded` choices board `b` offers.
fn offered(b: &Board, recorded: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    recorded
        .iter()
        .filter(|(k, v)| offers(b, k, v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The project's choices for the board (those that differ from the family's defaults): the
/// recorded ones it offers and the ones asked for now; and notes on the choices dropped or
/// turned on.
fn choose_options(
    board: &Board,
    recorded: &BTreeMap<String, String>,
    wishes: &[Wish],
) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut notes = Vec::new();
    for (k, v) in recorded.iter().filter(|(k, v)| !offers(board, k, v)) {
        let why = options::why_not_offered(board, k)
            .unwrap_or_else(|| format!("`{v}` is not one of its choices for the {}", board.name));
        notes.push(format!("dropped {k}={v}: {why}"));
    }
    let mut asked: Vec<Wish> = offered(board, recorded)
        .iter()
        .map(|(k, v)| Wish::recorded(k, v))
        .collect();
    asked.extend(wishes.iter().cloned());
    let resolved = options::resolve(board, &asked)?;
    notes.extend(resolved.notes);
    let choices = options::non_default(board.family(), &resolved.choices)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok((choices, notes))
}

/// Writes and removes the plan's files all or nothing, with git's index when `git` and the
/// project is in a work tree (see crate::transaction). Returns whether it git-added, and the
/// files it did not write that git did not track, and which it git-added.
fn write_all(
    mut tx: Transaction,
    root: &Path,
    board: &Board,
    git: bool,
    plan: &Plan,
) -> Result<(bool, Vec<PathBuf>)> {
    let (writes, removes) = (&plan.writes, &plan.removes);
    for (rel, contents) in writes {
        tx.stage(rel, contents.as_bytes())?;
    }
    for r in removes {
        tx.remove(r);
    }
    tx.apply()?;
    let in_git = git && enclosing_work_tree(root).is_some();
    let mut untracked = Vec::new();
    if in_git {
        let mut added: Vec<PathBuf> = writes.iter().map(|(p, _)| p.clone()).collect();
        // The project's files that were already right but that git does not track (an earlier
        // --no-git, or an older nixflash's failed git add): the flake cannot see them.
        let managed: Vec<PathBuf> = render::init_files(board.family())
            .into_iter()
            .map(PathBuf::from)
            .chain(
                [
                    README,
                    "Cargo.toml",
                    "Cargo.lock",
                    "src/main.rs",
                    ".gitignore",
                ]
                .map(PathBuf::from),
            )
            .filter(|p| root.join(p).is_file() && !added.contains(p))
            .collect();
        untracked = git::untracked_of(root, &managed)?;
        untracked.sort();
        added.extend(untracked.iter().cloned());
        tx.git_add(root, &[], &added, removes)?;
    }
    tx.commit();
    let git_added = in_git && !(writes.is_empty() && removes.is_empty());
    Ok((git_added, untracked))
}

/// A user's board travels with the project: its file, and those of the user's boards it
/// inherits, written into the project's boards/ where the project has none (see
/// [`Database::carried_files`]); a file the project has is the project's own.
fn carried_board_files(
    root: &Path,
    db: &Database,
    board: &Board,
    writes: &mut Vec<(PathBuf, String)>,
    changes: &mut Vec<Change>,
) -> Result<()> {
    for (path, text) in db.carried_files(board)? {
        if !root.join(&path).exists() {
            changes.push(Change::Added(path.clone()));
            writes.push((path, text));
        }
    }
    Ok(())
}

/// What [`board_files`] looks at.
struct BoardFiles<'a> {
    root: &'a Path,
    board: &'a Board,
    /// The files rendered for the board.
    files: &'a [File],
    /// Whether the package is a nixflash project already.
    ours: bool,
    force: bool,
    /// The board the project was for, when it switches.
    previous: Option<&'a Board>,
    /// Whether a file's text is what nixflash wrote (for some board).
    ours_text: &'a dyn Fn(&str, &str) -> bool,
}

/// The Nix and board files, and (in a nixflash project) the README: written where missing or
/// still as nixflash wrote them; a file of the user's, or one edited since nixflash wrote it, is
/// replaced only with --force, and then kept beside it (an edited README is kept).
fn board_files(
    w: &BoardFiles,
    tx: &mut Transaction,
    writes: &mut Vec<(PathBuf, String)>,
    changes: &mut Vec<Change>,
) -> Result<()> {
    let mut conflicts = Vec::new();
    let mut paths = render::init_files(w.board.family());
    if w.ours && w.root.join(README).exists() {
        paths.push(README.to_string());
    }
    for path in paths {
        let new = rendered(w.files, &path).context("a family file the templates do not render")?;
        match fs::read_to_string(w.root.join(&path)) {
            Err(_) => {
                writes.push((path.clone().into(), new.into()));
                changes.push(Change::Added(path.into()));
            }
            Ok(old) if old == new => {}
            Ok(old) if w.ours && (w.ours_text)(&path, &old) => {
                writes.push((path.clone().into(), new.into()));
                changes.push(Change::Replaced(path.into(), None));
            }
            Ok(_) if path == README => changes.push(Change::Kept(
                path.into(),
                match w.previous {
                    Some(p) => format!(
                        "yours, not what nixflash wrote: if it names the {}, change that",
                        p.name
                    ),
                    None => "yours, not what nixflash wrote".to_string(),
                },
            )),
            Ok(_) if w.force => {
                let copy = tx.keep_original(Path::new(&path));
                writes.push((path.clone().into(), new.into()));
                changes.push(Change::Replaced(path.into(), Some(copy)));
            }
            Ok(_) => conflicts.push(path),
        }
    }
    if !conflicts.is_empty() {
        let (what, hint) = if w.ours {
            (
                "these files were edited since nixflash wrote them",
                "pass --force to replace them (each is kept beside it as <name>.orig), or undo \
                 your edits",
            )
        } else {
            (
                "these already exist and would be overwritten",
                "move them aside, or pass --force to overwrite them (each is kept beside it as \
                 <name>.orig)",
            )
        };
        return Err(refuse(
            Kind::NeedsForce,
            format!("{what}:\n  {}", conflicts.join("\n  ")),
            hint,
        ));
    }
    Ok(())
}
