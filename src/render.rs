//! Rendering a project from the built-in templates (`templates/`) for one board.
//!
//! `templates/common/` is rendered for every board, `templates/<family>/` on top of it. A file's
//! path in the project is its template path without the family folder and the `.jinja` suffix.
//! `templates/locks/<hal feature>.lock` holds the dependency part of the lock file cargo resolved
//! for that template (`scripts/update-locks.sh` makes them); the package's own entry is inserted
//! in cargo's order, so a new project's Cargo.lock is exactly what cargo would write.

use std::path::PathBuf;

use anyhow::{Context, Result};
use include_dir::{include_dir, Dir, DirEntry};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::board::Board;

static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The files `nixflash init` adds to an existing Cargo project: the Nix and board files, never
/// the package's sources, manifest or lock.
pub const INIT_FILES: &[&str] = &[
    "flake.nix",
    ".envrc",
    "rust-toolchain.toml",
    ".cargo/config.toml",
    "Ravedude.toml",
    "build.rs",
];

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
}

impl Project {
    pub fn new(name: &str) -> Project {
        Project {
            name: name.to_string(),
            ident: name.replace('-', "_"),
        }
    }
}

#[derive(Serialize)]
struct TemplateContext<'a> {
    project: &'a Project,
    board: &'a Board,
    nixflash_version: &'static str,
}

fn collect<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    for e in dir.entries() {
        match e {
            DirEntry::Dir(d) => collect(d, out),
            DirEntry::File(f) => out.push(f),
        }
    }
}

/// The template files for a family, keyed by their output path (family files win over common).
fn template_set(family: &str) -> Result<Vec<(PathBuf, &'static str, String)>> {
    let mut set: Vec<(PathBuf, &'static str, String)> = Vec::new();
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
            let text = f
                .contents_utf8()
                .with_context(|| format!("templates/{} is not UTF-8", f.path().display()))?;
            let out = PathBuf::from(name);
            set.retain(|(p, _, _)| *p != out);
            set.push((out, text, format!("{}", f.path().display())));
        }
    }
    set.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(set)
}

/// Renders every file of a new project for `board`, Cargo.lock included.
pub fn render(board: &Board, project: &Project) -> Result<Vec<File>> {
    let mut out = render_sources(board, project)?;
    out.push(File {
        path: PathBuf::from("Cargo.lock"),
        contents: complete_lock(lock_template(board)?, project),
    });
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The dependency lock data for a board's HAL feature.
fn lock_template(board: &Board) -> Result<&'static str> {
    let lock_name = format!("locks/{}.lock", board.hal.feature);
    TEMPLATES
        .get_file(&lock_name)
        .and_then(|f| f.contents_utf8())
        .with_context(|| {
            format!(
                "nixflash has no templates/{lock_name} for board `{}`\nhint: a board with a new \
                 HAL feature needs its lock: run scripts/update-locks.sh in nixflash's source",
                board.id
            )
        })
}

/// Renders the templates for `board`: every file but Cargo.lock.
pub fn render_sources(board: &Board, project: &Project) -> Result<Vec<File>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    let ctx = TemplateContext {
        project,
        board,
        nixflash_version: env!("CARGO_PKG_VERSION"),
    };
    let mut out = Vec::new();
    for (path, text, origin) in template_set(board.family.as_str())? {
        let rendered = env
            .render_str(text, &ctx)
            .with_context(|| format!("rendering templates/{origin} for board `{}`", board.id))?;
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
        "[[package]]\nname = \"{}\"\nversion = \"0.1.0\"",
        project.name
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_renders_and_every_toml_parses() {
        let db = crate::board::Database::builtin().unwrap();
        for b in db.boards() {
            let files = render(b, &Project::new("my-fw")).unwrap();
            let names: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
            for want in [
                "Cargo.toml",
                "Cargo.lock",
                "src/main.rs",
                "rust-toolchain.toml",
                ".cargo/config.toml",
                "flake.nix",
                ".envrc",
                ".gitignore",
                "README.md",
            ] {
                assert!(names.iter().any(|n| n == want), "{}: no {want}", b.id);
            }
            for f in &files {
                let name = f.path.display().to_string();
                if name.ends_with(".toml") || name.ends_with(".lock") {
                    let t: toml::Table = toml::from_str(&f.contents)
                        .unwrap_or_else(|e| panic!("{}: {name}: {e}", b.id));
                    if name == "Cargo.toml" {
                        assert_eq!(
                            t["package"]["metadata"]["nixflash"]["board"].as_str(),
                            Some(b.id.as_str())
                        );
                        assert_eq!(t["package"]["name"].as_str(), Some("my-fw"));
                    }
                    if name == "Cargo.lock" {
                        let pkgs = t["package"].as_array().unwrap();
                        assert!(pkgs.iter().any(|p| p["name"].as_str() == Some("my-fw")));
                        assert!(!f.contents.contains("@root"));
                    }
                }
                assert!(
                    !f.contents.contains("{{") && !f.contents.contains("{%"),
                    "{}: {name}",
                    b.id
                );
            }
        }
    }

    #[test]
    fn lock_gets_the_root_package_in_order() {
        let deps = "version = 4\n\n[[package]]\nname = \"@root\"\ndependencies = [\n \"b\",\n]\n\n\
                    [[package]]\nname = \"b\"\nversion = \"1.0.0\"\n\n\
                    [[package]]\nname = \"d\"\nversion = \"1.0.0\"\n";
        let lock = complete_lock(deps, &Project::new("c"));
        assert_eq!(
            lock,
            "version = 4\n\n[[package]]\nname = \"b\"\nversion = \"1.0.0\"\n\n\
             [[package]]\nname = \"c\"\nversion = \"0.1.0\"\ndependencies = [\n \"b\",\n]\n\n\
             [[package]]\nname = \"d\"\nversion = \"1.0.0\"\n"
        );
    }
}
