//! Rendering a project from the built-in templates (`templates/`) for one board.
//!
//! `templates/common/` is rendered for every board, `templates/<family>/` on top of it: a family
//! file replaces the common file with the same name, and may `{% extends %}` it to fill in its
//! blocks. A file's path in the project is its template path without the folder and the `.jinja`
//! suffix. `templates/locks/<name>.lock` (the name from the family's `files.lock`) holds the
//! dependency part of the lock file cargo resolved for the template; the package's own entry is
//! inserted in cargo's order, so a new project's Cargo.lock is exactly what cargo would write.
//! The flake inputs' pins ([`crate::pins`]): flake.nix names the inputs and the flake.lock
//! written beside it locks them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use include_dir::{Dir, DirEntry};
use minijinja::{Environment, UndefinedBehavior};

use crate::board::Family;
use crate::error::{Failure, Kind};
use serde::Serialize;

use crate::board::Board;
use crate::pins::{flake_lock, pins, Pin};
use crate::templates::TEMPLATES;

/// The files `nixflash init` adds to an existing Cargo project for a board of `family`: the Nix
/// and board files, never the package's sources, manifest or lock.
pub fn init_files(family: &Family) -> Vec<String> {
    let mut files: Vec<String> = [
        "flake.nix",
        "flake.lock",
        ".envrc",
        "rust-toolchain.toml",
        ".cargo/config.toml",
    ]
    .map(String::from)
    .into();
    files.extend(family.files.init.iter().cloned());
    files
}

/// One rendered file, with its path relative to the project root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: PathBuf,
    pub contents: String,
}

/// What the templates see besides the board.
#[derive(Debug, Clone, Serialize)]
pub struct Project {
    /// The package name (`blinky`).
    pub name: String,
    /// The package name as a Rust identifier (`my_blinky`).
    pub ident: String,
    /// Choices among the family's options (`log` = `defmt`); an option not named here takes
    /// its default.
    #[serde(skip)]
    pub options: BTreeMap<String, String>,
    /// The package's version (a new project's is 0.1.0).
    pub version: String,
}

impl Project {
    pub fn new(name: &str) -> Project {
        Project {
            name: name.to_string(),
            ident: name.replace('-', "_"),
            options: BTreeMap::new(),
            version: "0.1.0".to_string(),
        }
    }

    /// The same with another version (an existing package's).
    pub fn with_version(mut self, version: &str) -> Project {
        self.version = version.to_string();
        self
    }

    /// The same project with `option` set to `choice`.
    pub fn with_option(mut self, option: &str, choice: &str) -> Project {
        self.options.insert(option.to_string(), choice.to_string());
        self
    }

    /// Every kind of project `nixflash new` can make for `board`: one for each combination of
    /// choices the data allows ([`crate::options::combinations`]), the default one first.
    pub fn variants(board: &Board, name: &str) -> Vec<Project> {
        crate::options::combinations(board)
            .into_iter()
            .map(|choices| {
                let mut p = Project::new(name);
                p.options = crate::options::non_default(board.family(), &choices)
                    .into_iter()
                    .map(|(n, c)| (n.to_string(), c.to_string()))
                    .collect();
                p
            })
            .collect()
    }
}

/// Every option of the board's family with the project's choice, its requirements, or its
/// default, after checking that the project chooses only among what the board offers (see
/// [`crate::options::resolve`]).
pub fn options(board: &Board, project: &Project) -> Result<BTreeMap<String, String>> {
    let wishes: Vec<crate::options::Wish> = project
        .options
        .iter()
        .map(|(n, c)| crate::options::Wish::flag(&format!("{n}={c}")))
        .collect();
    Ok(crate::options::resolve(board, &wishes)?.choices)
}

#[derive(Serialize)]
struct TemplateContext<'a> {
    project: &'a Project,
    board: &'a Board,
    family: &'a Family,
    options: &'a BTreeMap<String, String>,
    /// The options whose choice is not the default, recorded in the project's Cargo.toml
    /// (`[package.metadata.nixflash] log = "defmt"`) so that `init` keeps them.
    choices: BTreeMap<&'a str, &'a str>,
    pins: &'a BTreeMap<String, Pin>,
    nixflash_version: &'static str,
    /// The family's simulator, if it runs this board.
    simulator: Option<&'a crate::board::family::Simulator>,
    /// The simulator's command line in the flake's `checks.sim`, for a board with a simulator.
    sim_command: Option<String>,
    /// How the flasher knows the board (Ravedude.toml: `[general] board`, or `[board] inherit`).
    flasher_board: Option<crate::board::FlasherBoard>,
}

fn collect<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    for e in dir.entries() {
        match e {
            DirEntry::Dir(d) => collect(d, out),
            DirEntry::File(f) => out.push(f),
        }
    }
}

/// The templates for a family by the path they render to: `(output path, template name)`, the
/// family's file winning over the common one.
fn template_set(family: &str) -> Result<Vec<(PathBuf, String)>> {
    let mut set: Vec<(PathBuf, String)> = Vec::new();
    for folder in ["common", family] {
        let dir = TEMPLATES
            .get_dir(folder)
            .with_context(|| format!("nixflash was built without templates/{folder}"))?;
        let mut files = Vec::new();
        collect(dir, &mut files);
        for f in files {
            let rel = f.path().strip_prefix(folder).unwrap_or(f.path());
            let Some(name) = rel.to_str().and_then(|s| s.strip_suffix(".jinja")) else {
                continue;
            };
            let out = PathBuf::from(name);
            set.retain(|(p, _)| *p != out);
            set.push((out, f.path().display().to_string()));
        }
    }
    set.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(set)
}

/// A template environment that finds every template by its path under templates/, so that a
/// family's template can extend a common one.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_loader(|name| {
        Ok(TEMPLATES
            .get_file(name)
            .and_then(|f| f.contents_utf8())
            .map(str::to_string))
    });
    env
}

/// Renders every file of a new project for `board`, Cargo.lock included.
pub fn render(board: &Board, project: &Project) -> Result<Vec<File>> {
    let mut out = render_sources(board, project)?;
    out.push(File {
        path: PathBuf::from("Cargo.lock"),
        contents: complete_lock(lock_template(board, project)?, project),
    });
    out.push(File {
        path: PathBuf::from("flake.lock"),
        contents: flake_lock(&pins()?),
    });
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The names of the lock data nixflash has (`arduino-uno`, `esp32c3`).
pub fn lock_names() -> Vec<String> {
    TEMPLATES
        .get_dir("locks")
        .map(|d| {
            d.files()
                .filter_map(|f| f.path().file_stem()?.to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The name of the lock data a project needs (see [`crate::options::lock_name`]).
pub fn lock_name(board: &Board, project: &Project) -> Result<String> {
    crate::options::lock_name(board, &options(board, project)?)
}

/// The dependency lock data for a project (see [`lock_name`]).
fn lock_template(board: &Board, project: &Project) -> Result<&'static str> {
    let name = lock_name(board, project)?;
    let base = board.fill(&board.family().files.lock, &[])?;
    if let Some(text) = TEMPLATES
        .get_file(format!("locks/{name}.lock"))
        .and_then(|f| f.contents_utf8())
    {
        return Ok(text);
    }
    if name != base {
        let chosen = options(board, project)?;
        let choices = crate::options::non_default(board.family(), &chosen);
        let shown: Vec<String> = choices.iter().map(|(n, c)| format!("{n}={c}")).collect();
        return Err(Failure::new(
            Kind::LockDataMissing,
            format!(
                "nixflash has no dependency lock for the {} with {} (lock data `{name}` in \
             templates/locks/), so it cannot write a Cargo.lock that pins every crate",
                board.name,
                shown.join(", ")
            ),
        )
        .hint(format!(
            "this combination of options is not ready for the board yet: the lock data \
             nixflash has for it: {}",
            lock_names()
                .into_iter()
                .filter(|n| *n == base || n.starts_with(&format!("{base}-")))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    Err(Failure::new(
        Kind::LockDataMissing,
        format!(
            "nixflash has no dependency lock for board `{}` (its HAL feature `{}`; lock data \
         `{name}`), so it cannot write a Cargo.lock that pins every crate",
            board.id, board.hal.feature
        ),
    )
    .hint(format!(
        "if the board works with one of the features nixflash has locks for ({}), set \
         `hal.feature` to it in your board file",
        lock_names().join(", ")
    ))
    .hint(format!(
        "or make the lock yourself: create the project for a board with the same HAL \
         (`nixflash new <path> --board {}`), set the HAL's feature to `{}` in Cargo.toml and \
         `board = \"{}\"` in [package.metadata.nixflash], then run `cargo generate-lockfile` \
         (it needs the network)",
        crate::board::Database::builtin()
            .ok()
            .and_then(|db| db
                .boards()
                .find(|b| b.hal.krate == board.hal.krate)
                .map(|b| b.id.clone()))
            .unwrap_or_else(|| "<id>".into()),
        board.hal.feature,
        board.id
    ))
    .into())
}

/// Renders the templates for `board`: every file but Cargo.lock.
pub fn render_sources(board: &Board, project: &Project) -> Result<Vec<File>> {
    let env = environment();
    let pins = pins()?;
    let options = options(board, project)?;
    let family = board.family();
    let choices = crate::options::non_default(family, &options);
    let ctx = TemplateContext {
        project,
        board,
        family,
        options: &options,
        choices,
        pins: &pins,
        nixflash_version: env!("CARGO_PKG_VERSION"),
        simulator: board.simulator(),
        sim_command: sim_command(board)?,
        flasher_board: board.flasher_board(),
    };
    let mut out = Vec::new();
    for (path, name) in template_set(&board.family().id)? {
        if !crate::options::renders(family, &options, &path.to_string_lossy()) {
            continue;
        }
        let rendered = env
            .get_template(&name)
            .and_then(|t| t.render(&ctx))
            .with_context(|| format!("rendering templates/{name} for board `{}`", board.id))?;
        out.push(File {
            path,
            contents: rendered,
        });
    }
    Ok(out)
}

/// Inserts the package's own entry into a lock file that lists only its dependencies, keeping
/// cargo's order (by name, then version).
fn complete_lock(deps_lock: &str, project: &Project) -> String {
    let (header, body) = match deps_lock.find("[[package]]") {
        Some(i) => deps_lock.split_at(i),
        None => (deps_lock, ""),
    };
    let mut blocks: Vec<String> = body
        .split("[[package]]")
        .filter(|b| !b.trim().is_empty())
        .map(|b| format!("[[package]]{}", b.trim_end_matches('\n')))
        .collect();
    // The package's direct dependencies are recorded under the placeholder name `@root`.
    let mut root_deps = Vec::new();
    blocks.retain(|b| {
        if let Some(rest) = b.strip_prefix("[[package]]\nname = \"@root\"") {
            root_deps.extend(
                rest.lines()
                    .filter(|l| l.starts_with(" \""))
                    .map(str::to_string),
            );
            false
        } else {
            true
        }
    });
    let mut root = format!(
        "[[package]]\nname = \"{}\"\nversion = \"{}\"",
        project.name, project.version
    );
    if !root_deps.is_empty() {
        root.push_str("\ndependencies = [\n");
        root.push_str(&root_deps.join("\n"));
        root.push_str("\n]");
    }
    blocks.push(root);
    let key = |b: &String| -> (String, String) {
        let field = |k: &str| {
            b.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        (field("name"), field("version"))
    };
    blocks.sort_by_key(key);
    let mut s = header.to_string();
    s.push_str(&blocks.join("\n\n"));
    s.push('\n');
    s
}

/// The family's simulator command line as the generated flake's `checks.sim` runs it (a shell
/// line, in which `${firmware}`, `${name}` and `${simStop}` are the flake's), if the family has
/// one.
fn sim_command(board: &Board) -> Result<Option<String>> {
    let Some(sim) = board.simulator() else {
        return Ok(None);
    };
    let fill = [
        ("elf", "${firmware}/bin/${name}.elf"),
        ("stop", "${simStop}"),
    ];
    let mut words = vec![sim.tool.as_str().to_string()];
    for a in sim.stop_args.iter().chain(&sim.args) {
        words.push(board.fill(a, &fill)?);
    }
    Ok(Some(crate::process::shell_line(&words)))
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
