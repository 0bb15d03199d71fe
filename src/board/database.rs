//! The board database: the families and boards compiled into nixflash (`boards/`), then the
//! user's board files (`$XDG_CONFIG_HOME/nixflash/boards/`), then the project's (`boards/`); a
//! later file with a board's id replaces the earlier one.
//!
//! A board file is resolved in layers: its family's `[board]` defaults, then the board it
//! `inherit`s (resolved the same way, from any source), then its own fields; `{id}` and `{chip}`
//! in the result are the board's own. The family's `[fixed]` values must survive.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use include_dir::{include_dir, Dir};
use serde::Serialize;

use super::layers::{ancestors, broken_fixed, chain, expand, locate, merge};
use super::{line_col, Board, Family, Warning};
use crate::error::{Failure, Kind};

static BUILTIN_BOARDS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/boards");

/// Where a board definition came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "kebab-case")]
pub enum Source {
    Builtin,
    User(PathBuf),
    Project(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Builtin => f.write_str("built in"),
            Source::User(p) => write!(f, "user file {}", p.display()),
            Source::Project(p) => write!(f, "project file {}", p.display()),
        }
    }
}

/// A board together with where it was defined.
#[derive(Debug, Clone)]
pub struct Entry {
    pub board: Board,
    pub source: Source,
}

/// One board file, read but not resolved.
#[derive(Debug, Clone)]
pub(super) struct RawBoard {
    pub(super) table: toml::Table,
    pub(super) text: String,
    /// Its path, or `boards/<file>` for built-in ones.
    pub(super) origin: String,
    pub(super) source: Source,
}

/// All known families and boards.
#[derive(Debug, Clone, Default)]
pub struct Database {
    families: BTreeMap<String, Arc<Family>>,
    entries: BTreeMap<String, Entry>,
    /// What is wrong with the user's and the project's board files.
    warnings: Vec<Warning>,
}

/// The families compiled into nixflash.
fn builtin_families() -> Result<BTreeMap<String, Arc<Family>>> {
    let dir = BUILTIN_BOARDS
        .get_dir("families")
        .context("nixflash was built without boards/families")?;
    let mut out = BTreeMap::new();
    for f in dir.files() {
        let (Some(id), Some(text)) = (
            f.path().file_stem().and_then(|s| s.to_str()),
            f.contents_utf8(),
        ) else {
            continue;
        };
        let origin = format!("boards/{}", f.path().display());
        let family = Family::parse(id, text, &origin)?;
        check_files(&family, &origin)?;
        out.insert(id.to_string(), Arc::new(family));
    }
    Ok(out)
}

/// Every file an option's choice names (`files`) is a template of the family's.
fn check_files(family: &Family, origin: &str) -> Result<()> {
    for (name, o) in &family.options {
        for (c, choice) in &o.choices {
            let id = &family.id;
            if let Some(f) = choice
                .files
                .iter()
                .find(|f| !crate::templates::family_has_template(id, f))
            {
                anyhow::bail!(
                    "{origin}: invalid family `{id}`: `options.{name}.choices.{c}.files` names \
                     `{f}`, but templates/{id}/ has no {f}.jinja"
                );
            }
        }
    }
    Ok(())
}

fn read_raw(text: &str, origin: &str, source: Source) -> Result<RawBoard> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        invalid(origin, line, col, e.message())
    })?;
    Ok(RawBoard {
        table,
        text: text.to_string(),
        origin: origin.to_string(),
        source,
    })
}

fn invalid(origin: &str, line: usize, col: usize, message: &str) -> anyhow::Error {
    anyhow::Error::new(
        Failure::new(
            Kind::BoardFile,
            format!(
                "{origin}:{line}:{col}: invalid board file: {}",
                message.trim_end()
            ),
        )
        .hint(
            "the board format is described in nixflash's boards/README.md; compare with \
             `nixflash boards show uno --toml`",
        ),
    )
}

impl Database {
    /// The boards compiled into nixflash (every one of them must be good).
    pub fn builtin() -> Result<Database> {
        let db = Database::from_raw(builtin_raw()?, Vec::new())?;
        match db.warnings.first() {
            Some(w) => Err(w.to_error()),
            None => Ok(db),
        }
    }

    /// The families alone, no board read: families are built in (board files of the user's or a
    /// project's cannot add one), so this is all that needs only them reads.
    pub fn families_only() -> Result<Database> {
        Ok(Database {
            families: builtin_families()?,
            entries: BTreeMap::new(),
            warnings: Vec::new(),
        })
    }

    /// Built-in boards, then `$XDG_CONFIG_HOME/nixflash/boards/`, then `<project>/boards/`. A
    /// file that cannot be used is left out with a [`Warning`] ([`Database::warnings`]).
    pub fn load(project_root: Option<&Path>) -> Result<Database> {
        Database::load_from(user_boards_dir().as_deref(), project_root)
    }

    /// [`Database::load`] with the user's board folder given.
    pub fn load_from(user_dir: Option<&Path>, project_root: Option<&Path>) -> Result<Database> {
        let mut raw = builtin_raw()?;
        let mut warnings = Vec::new();
        if let Some(dir) = user_dir {
            raw.extend(raw_dir(dir, Source::User, &mut warnings));
        }
        if let Some(root) = project_root {
            raw.extend(raw_dir(
                &root.join("boards"),
                Source::Project,
                &mut warnings,
            ));
        }
        Database::from_raw(raw, warnings)
    }

    /// What is wrong with the board files, in the order the files were read.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    fn from_raw(raw: Vec<RawBoard>, warnings: Vec<Warning>) -> Result<Database> {
        let mut db = Database {
            families: builtin_families()?,
            entries: BTreeMap::new(),
            warnings,
        };
        // By id: a later file replaces an earlier one.
        let mut by_id: BTreeMap<String, RawBoard> = BTreeMap::new();
        let mut order = Vec::new();
        for r in raw {
            let id = match r.table.get("id").and_then(|v| v.as_str()) {
                Some(id) => id.to_string(),
                None => {
                    let e = invalid(&r.origin, 1, 1, "missing field `id`");
                    db.warnings
                        .push(Warning::left_out(&r.origin, names(&r), &e));
                    continue;
                }
            };
            if !order.contains(&id) {
                order.push(id.clone());
            }
            by_id.insert(id, r);
        }
        for id in order {
            let r = &by_id[&id];
            let done = db
                .resolve(&id, &by_id)
                .and_then(|board| db.insert(board, r.source.clone()));
            if let Err(mut e) = done {
                // Inheriting a board whose own file was left out: that file is the cause.
                let parent = r.table.get("inherit").and_then(|v| v.as_str());
                if let Some(w) = parent.and_then(|p| db.warnings.iter().find(|w| w.about(p))) {
                    e = anyhow::Error::new(Failure::new(
                        Kind::BoardFile,
                        format!(
                            "{}: board `{id}` inherits `{}`, whose file {} cannot be used",
                            r.origin,
                            parent.unwrap_or_default(),
                            w.file
                        ),
                    ));
                }
                db.warnings.push(Warning::left_out(&r.origin, names(r), &e));
            }
        }
        Ok(db)
    }

    /// The board `id` of `raw`, resolved and checked.
    fn resolve(&self, id: &str, raw: &BTreeMap<String, RawBoard>) -> Result<Board> {
        let r = &raw[id];
        let chain = chain(id, raw, &mut Vec::new())?;
        let family_id = chain
            .get("family")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                anyhow::Error::new(
                    Failure::new(
                        Kind::BoardFile,
                        format!(
                            "{}: board `{id}` names no family (family = \"...\")",
                            r.origin
                        ),
                    )
                    .hint(format!("families: {}", self.family_ids().join(", "))),
                )
            })?;
        let family = self.families.get(&family_id).cloned().ok_or_else(|| {
            let at = locate(&r.text, &["family"], false).map_or((1, 1), |o| line_col(&r.text, o));
            anyhow::Error::new(
                Failure::new(Kind::BoardFile, format!(
                    "{}:{}:{}: board `{id}` is of family `{family_id}`, which nixflash does not know",
                    r.origin, at.0, at.1
                ))
                .hint(format!(
                    "families: {} (a family needs nixflash's own templates, so it cannot come \
                     from a board file)",
                    self.family_ids().join(", ")
                )),
            )
        })?;
        let full = merge(family.board.clone(), chain);
        let broken = broken_fixed(&family.fixed, &full, "");
        if let Some((key, want)) = broken.first() {
            bail!(
                "{}: board `{id}` sets `{key}`, which every {} board has as {want} (the family's \
                 templates are written for it)",
                r.origin,
                family.id
            );
        }
        let mut full = toml::Value::Table(full);
        let chip = full
            .get("chip")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        expand(&mut full, id, &chip);
        let mut board: Board = full.try_into().map_err(|e: toml::de::Error| {
            // The error says which table it is in ("... in `hal`"), and names the field.
            let text = e.to_string();
            let message = e.message().trim_end().to_string();
            let mut path: Vec<&str> = text
                .rsplit_once("in `")
                .map(|(_, p)| p.trim_end().trim_end_matches('`').split('.').collect())
                .unwrap_or_default();
            let unknown = message
                .strip_prefix("unknown field `")
                .and_then(|m| m.split('`').next());
            if let Some(field) = unknown {
                path.push(field);
            }
            let (line, col) = locate(&r.text, &path, unknown.is_some())
                .map(|o| line_col(&r.text, o))
                .unwrap_or((1, 1));
            let place = if path.is_empty() {
                String::new()
            } else {
                format!(" (`{}`)", path.join("."))
            };
            invalid(&r.origin, line, col, &format!("{message}{place}"))
        })?;
        board.ancestors = ancestors(id, raw, &family);
        board.family = Some(family);
        board
            .validate()
            .with_context(|| format!("{}: invalid board `{id}`", r.origin))?;
        Ok(board)
    }

    /// Adds a resolved board. Its id may not name another board (an error); an alias that
    /// does keeps naming that one, and the board goes without it (a warning).
    fn insert(&mut self, mut board: Board, source: Source) -> Result<()> {
        let other = |name: &str| {
            self.entries
                .values()
                .find(|e| e.board.id != board.id && e.board.answers_to(name))
        };
        if let Some(other) = other(&board.id) {
            return Err(anyhow::Error::new(
                Failure::new(
                    Kind::BoardFile,
                    format!(
                        "{}: `{}` already names board `{}` ({})",
                        source_label(&source),
                        board.id,
                        other.board.id,
                        other.source
                    ),
                )
                .hint(format!(
                    "give the board another id, or replace `{}` by using its id",
                    other.board.id
                )),
            ));
        }
        // The aliases another board has, by that board.
        let mut taken: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for a in &board.aliases {
            if let Some(o) = other(a) {
                let entry = taken
                    .entry(o.board.id.clone())
                    .or_insert_with(|| (o.source.to_string(), Vec::new()));
                entry.1.push(format!("`{a}`"));
            }
        }
        for (other_id, (other_source, aliases)) in &taken {
            let file = source_label(&source);
            let (what, verb, they) = match aliases.len() {
                1 => ("alias", "names", "it stays"),
                _ => ("aliases", "name", "they stay"),
            };
            self.warnings.push(Warning::note(
                &file,
                format!(
                    "{file}: {what} {} already {verb} board `{other_id}` ({other_source}): {they} \
                     `{other_id}`'s, and `{}` goes without; remove {} from {file} (or give the \
                     board the id `{other_id}` to replace that board)",
                    aliases.join(", "),
                    board.id,
                    if aliases.len() == 1 { "it" } else { "them" },
                ),
            ));
            board
                .aliases
                .retain(|a| !aliases.contains(&format!("`{a}`")));
        }
        self.entries
            .insert(board.id.clone(), Entry { board, source });
        Ok(())
    }

    pub fn family_ids(&self) -> Vec<String> {
        self.families.keys().cloned().collect()
    }

    pub fn families(&self) -> impl Iterator<Item = &Family> {
        self.families.values().map(|f| f.as_ref())
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn boards(&self) -> impl Iterator<Item = &Board> {
        self.entries.values().map(|e| &e.board)
    }

    /// Finds a board by id or alias.
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.values().find(|e| e.board.answers_to(name))
    }

    /// Like [`Database::find`], with an error that suggests the closest names. A board whose
    /// file was left out ([`Database::warnings`]) is that file's error, even when a board of an
    /// earlier source answers to the name: the file was meant to replace it.
    pub fn get(&self, name: &str) -> Result<&Board> {
        if let Some(w) = self.warnings.iter().find(|w| w.about(name)) {
            return Err(w.to_error());
        }
        if let Some(e) = self.find(name) {
            return Ok(&e.board);
        }
        let mut f = Failure::new(Kind::BoardUnknown, format!("unknown board `{name}`"));
        let close = self.closest(name);
        if !close.is_empty() {
            f = f.hint(format!("did you mean {}?", close.join(", ")));
        }
        Err(f.hint("`nixflash boards` lists every board").into())
    }

    /// Board ids and aliases most like `name`, best first (ids of the boards they name).
    pub fn closest(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        let mut scored: Vec<(f64, String, String)> = Vec::new();
        for b in self.boards() {
            for cand in std::iter::once(&b.id).chain(&b.aliases) {
                let mut score = strsim::jaro_winkler(&name, cand);
                if cand.contains(&name) || (name.len() >= 3 && name.contains(cand.as_str())) {
                    score = score.max(0.9);
                }
                scored.push((score, cand.clone(), b.id.clone()));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut out: Vec<String> = Vec::new();
        for (score, cand, id) in scored {
            if score < 0.8 || out.len() >= 3 {
                break;
            }
            let label = if cand == id {
                format!("`{id}`")
            } else {
                format!("`{cand}` ({id})")
            };
            if !out
                .iter()
                .any(|o| o.contains(&format!("`{id}`")) || o.ends_with(&format!("({id})")))
            {
                out.push(label);
            }
        }
        out
    }

    /// The board files of the user's or a project's that `board` is made of (its own, and those
    /// of the boards it inherits), as `(boards/<id>.toml, text)`: what a new project for the
    /// board carries in its `boards/`, so that it builds where those files are not. Built-in
    /// boards need none.
    pub fn carried_files(&self, board: &Board) -> Result<Vec<(PathBuf, String)>> {
        let mut out = Vec::new();
        for id in std::iter::once(board.id.as_str()).chain(board.inherits()) {
            if let Some(Source::User(p) | Source::Project(p)) = self.source_of(id) {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read board file {}", p.display()))?;
                out.push((PathBuf::from("boards").join(format!("{id}.toml")), text));
            }
        }
        Ok(out)
    }

    /// Where a board came from.
    pub fn source_of(&self, id: &str) -> Option<&Source> {
        self.entries.get(id).map(|e| &e.source)
    }

    /// The USB-serial bridge chip with this id, from any family's list.
    pub fn bridge_chip(&self, id: super::UsbId) -> Option<&str> {
        self.families()
            .find_map(|f| f.usb_serial.get(&id))
            .map(String::as_str)
    }
}

fn builtin_raw() -> Result<Vec<RawBoard>> {
    let mut files: Vec<_> = BUILTIN_BOARDS
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort_by_key(|f| f.path());
    files
        .into_iter()
        .map(|f| {
            let origin = format!("boards/{}", f.path().display());
            let text = f
                .contents_utf8()
                .with_context(|| format!("{origin} is not UTF-8"))?;
            read_raw(text, &origin, Source::Builtin)
        })
        .collect()
}

/// Every `*.toml` in `dir` (a missing folder has none); a file that cannot be read or parsed,
/// or that is empty, is left out with a warning.
fn raw_dir(
    dir: &Path,
    source: fn(PathBuf) -> Source,
    warnings: &mut Vec<Warning>,
) -> Vec<RawBoard> {
    let shown = dir.display().to_string();
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            let e = anyhow::Error::new(e).context(format!("cannot read the board folder {shown}"));
            warnings.push(Warning::left_out(&shown, Vec::new(), &e));
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = read
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let origin = path.display().to_string();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| vec![s.to_ascii_lowercase()])
            .unwrap_or_default();
        let read = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read board file {origin}"))
            .and_then(|text| read_raw(&text, &origin, source(path.clone())));
        match read {
            Ok(r) if r.table.is_empty() => warnings.push(Warning::note(
                &origin,
                format!(
                    "{origin} is empty, so it defines no board: write one in it (`nixflash \
                     boards show uno --toml` is a start) or remove it"
                ),
            )),
            Ok(r) => out.push(r),
            Err(e) => warnings.push(Warning::left_out(&origin, stem, &e)),
        }
    }
    out
}

/// The names a board file gives its board, as far as it can be read: its id, its aliases, and
/// the file's name.
fn names(r: &RawBoard) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let strings = |v: Option<&toml::Value>| -> Vec<String> {
        match v {
            Some(toml::Value::String(s)) => vec![s.to_ascii_lowercase()],
            Some(toml::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
                .collect(),
            _ => Vec::new(),
        }
    };
    out.extend(strings(r.table.get("id")));
    out.extend(strings(r.table.get("aliases")));
    if let Some(stem) = Path::new(&r.origin).file_stem().and_then(|s| s.to_str()) {
        out.push(stem.to_ascii_lowercase());
    }
    out
}

fn source_label(s: &Source) -> String {
    match s {
        Source::Builtin => "built-in boards".into(),
        Source::User(p) | Source::Project(p) => p.display().to_string(),
    }
}

/// `$XDG_CONFIG_HOME/nixflash/boards`, or `~/.config/nixflash/boards`.
pub fn user_boards_dir() -> Option<PathBuf> {
    Some(crate::xdg::config_home()?.join("nixflash").join("boards"))
}

/// The text of a built-in board file, for `boards show --toml`.
pub fn builtin_source(id: &str) -> Option<&'static str> {
    BUILTIN_BOARDS
        .get_file(format!("{id}.toml"))
        .and_then(|f| f.contents_utf8())
}

#[cfg(test)]
#[path = "database_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "database_family_tests.rs"]
mod family_tests;
