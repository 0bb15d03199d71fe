//! Reading a nixflash project: its root, package name, binaries and board.
//!
//! This must work on a machine with Nix and no Rust toolchain, and must never make rustup download
//! the nightly that rust-toolchain.toml pins (a plain `cargo metadata` does, and also fetches git
//! dependencies). So: `cargo metadata --no-deps --offline` when a cargo is on PATH and answers
//! (with rustup's toolchain file overridden and auto-install off), otherwise Cargo.toml read
//! directly. A package name cannot be inherited from a workspace, so the package's own file is
//! enough for it; the board may also be set for a whole workspace, in its root's
//! `[workspace.metadata.nixflash]`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::{Failure, Kind};
use crate::process::Cmd;

/// How the project was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBy {
    CargoMetadata,
    /// Cargo.toml settles all nixflash reads (see [`read`]): cargo was not asked.
    Toml,
    /// Cargo.toml directly, because no cargo answered.
    TomlWithoutCargo,
}

/// The parts of a project nixflash needs.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The folder holding the package's Cargo.toml.
    pub root: PathBuf,
    /// The package name.
    pub name: String,
    /// The names of the package's binaries (the firmware is `<bin>.elf`).
    pub bins: Vec<String>,
    /// `[package.metadata.nixflash] board`, if set.
    pub board: Option<String>,
    /// `[package.metadata.nixflash] port`: the board's serial port (or a Pico's boot drive),
    /// where `--port` is not given.
    pub port: Option<String>,
    /// `[package.metadata.nixflash] baud`: the monitor's speed, where `--baud` is not given.
    pub baud: Option<u32>,
    pub read_by: ReadBy,
}

impl Manifest {
    /// The binary the firmware is built from: the one named like the package, else the first.
    pub fn firmware_bin(&self) -> &str {
        self.bins
            .iter()
            .find(|b| **b == self.name)
            .or(self.bins.first())
            .map(String::as_str)
            .unwrap_or(&self.name)
    }

    /// The board id, or an error that says how to set it.
    pub fn board_id(&self) -> Result<&str> {
        self.board.as_deref().ok_or_else(|| {
            Failure::new(
                Kind::BoardNeeded,
                format!(
                    "{} does not say which board it is for",
                    self.root.join("Cargo.toml").display()
                ),
            )
            .hint(
                "add\n\n    [package.metadata.nixflash]\n    board = \"uno\"\n\nto it (ids: \
                 `nixflash boards`), or run `nixflash init --board <id>`",
            )
            .into()
        })
    }
}

/// Finds the project around `dir` (the nearest Cargo.toml with a [package] above it) and reads it.
pub fn discover(dir: &Path) -> Result<Manifest> {
    let root = find_root(dir)?;
    read(&root)
}

/// How the error of [`find_root`] starts when there is no project at all (not a broken one).
pub const NO_PROJECT: &str = "no Cargo project here";

/// The nearest folder at or above `dir` whose Cargo.toml has a `[package]`. A Cargo.toml on the
/// way that is not valid TOML is an error that says where.
pub fn find_root(dir: &Path) -> Result<PathBuf> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    for d in dir.ancestors() {
        let m = d.join("Cargo.toml");
        if m.is_file() {
            let text = std::fs::read_to_string(&m)
                .with_context(|| format!("cannot read {}", m.display()))?;
            if parse_manifest(&m, &text)?.contains_key("package") {
                return Ok(d.to_path_buf());
            }
        }
    }
    Err(Failure::new(
        Kind::NotAProject,
        format!(
            "{NO_PROJECT} ({} and the folders above it have no Cargo.toml with a [package])",
            dir.display()
        ),
    )
    .hint(
        "run this inside a project made by `nixflash new`, or create one: nixflash new blinky \
         --board uno",
    )
    .into())
}

/// A Cargo.toml's table, or an error that says where it is not valid TOML.
fn parse_manifest(path: &Path, text: &str) -> Result<toml::Table> {
    toml::from_str(text).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| crate::board::line_col(text, s.start))
            .unwrap_or((1, 1));
        Failure::new(
            Kind::ProjectFile,
            format!(
                "{}:{line}:{col}: invalid TOML: {}",
                path.display(),
                e.message().trim_end()
            ),
        )
        .hint("fix it: cargo cannot read it either")
        .into()
    })
}

/// Reads the package at `root`: from Cargo.toml alone when it settles what nixflash needs (see
/// [`toml_settles`]), which costs no process (cargo metadata takes ~30 ms, more through rustup's
/// proxy); else through cargo when it can answer offline, else from the TOML all the same.
pub fn read(root: &Path) -> Result<Manifest> {
    let (path, doc) = cargo_toml(root)?;
    let by_toml = from_toml(root, &path, &doc)?;
    let mut m = if toml_settles(&doc, &by_toml) {
        by_toml
    } else {
        read_with_cargo(root).unwrap_or(Manifest {
            read_by: ReadBy::TomlWithoutCargo,
            ..by_toml
        })
    };
    (m.port, m.baud) = port_and_baud(&path, &doc)?;
    Ok(m)
}

/// The package's Cargo.toml at `root`: its path and its table, read and parsed once.
fn cargo_toml(root: &Path) -> Result<(PathBuf, toml::Table)> {
    let path = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let doc = parse_manifest(&path, &text)?;
    Ok((path, doc))
}

/// Whether Cargo.toml read directly (`m`) says what cargo metadata would: the name and board
/// always do; the binaries do when the firmware's is sure, one named like the package or the
/// only one, and the edition is 2018 or later (edition 2015 infers no binaries beside explicit
/// `[[bin]]`s; an inherited edition is the workspace's to say).
fn toml_settles(doc: &toml::Table, m: &Manifest) -> bool {
    let edition = doc
        .get("package")
        .and_then(|p| p.get("edition"))
        .and_then(|e| e.as_str());
    let modern = edition.is_some_and(|e| e != "2015");
    modern && (m.bins.contains(&m.name) || m.bins.len() == 1)
}

/// `port` and `baud` of the package's `[package.metadata.nixflash]`, each checked.
fn port_and_baud(path: &Path, doc: &toml::Table) -> Result<(Option<String>, Option<u32>)> {
    let Some(table) = doc
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("nixflash"))
    else {
        return Ok((None, None));
    };
    let wrong = |key: &str, what: &str, example: &str| {
        Failure::new(
            Kind::ProjectFile,
            format!(
                "{}: `{key}` in [package.metadata.nixflash] must be {what}",
                path.display()
            ),
        )
        .hint(format!("for example `{key} = {example}`, or remove it"))
    };
    let port = match table.get("port") {
        None => None,
        Some(toml::Value::String(p)) if !p.is_empty() => Some(p.clone()),
        Some(_) => return Err(wrong("port", "the name of a port", "\"/dev/ttyACM0\"").into()),
    };
    let baud = match table.get("baud") {
        None => None,
        Some(toml::Value::Integer(b)) if *b > 0 => u32::try_from(*b).ok(),
        Some(_) => None,
    };
    if table.get("baud").is_some() && baud.is_none() {
        return Err(wrong("baud", "a whole number of baud above zero", "115200").into());
    }
    Ok((port, baud))
}

/// `cargo metadata --no-deps --offline`, if a cargo is on PATH and answers without downloading.
pub fn read_with_cargo(root: &Path) -> Option<Manifest> {
    let cargo = which::which("cargo").ok()?;
    let mut cmd = Cmd::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        // Keep rustup from installing the toolchain rust-toolchain.toml pins: any installed one
        // can read a manifest, and a missing one makes this fail (then the TOML is read instead).
        .env("RUSTUP_AUTO_INSTALL", "0");
    // An explicit RUSTUP_TOOLCHAIN of the user's is kept.
    if std::env::var_os("RUSTUP_TOOLCHAIN").is_none() {
        cmd = cmd.env("RUSTUP_TOOLCHAIN", "stable");
    }
    let out = cmd.output().ok()?;
    if !out.success() {
        return None;
    }
    let text = std::str::from_utf8(&out.stdout).ok()?;
    let line = text.lines().find(|l| l.starts_with('{'))?;
    let meta = cargo_metadata::MetadataCommand::parse(line).ok()?;
    let manifest_path = root.join("Cargo.toml").canonicalize().ok()?;
    let pkg = meta
        .packages
        .iter()
        .find(|p| p.manifest_path.as_std_path() == manifest_path)?;
    let bins = pkg
        .targets
        .iter()
        .filter(|t| t.is_bin())
        .map(|t| t.name.clone())
        .collect();
    let board_in = |m: &serde_json::Value| {
        m.get("nixflash")
            .and_then(|n| n.get("board"))
            .and_then(|b| b.as_str())
            .map(str::to_string)
    };
    let board = board_in(&pkg.metadata).or_else(|| board_in(&meta.workspace_metadata));
    Some(Manifest {
        root: root.to_path_buf(),
        name: pkg.name.to_string(),
        bins,
        board,
        port: None,
        baud: None,
        read_by: ReadBy::CargoMetadata,
    })
}

/// Reads Cargo.toml directly, without cargo.
pub fn read_toml(root: &Path) -> Result<Manifest> {
    let (path, doc) = cargo_toml(root)?;
    from_toml(root, &path, &doc)
}

/// The package of `doc`, the Cargo.toml at `path` in `root`, as [`read_toml`] reads it.
fn from_toml(root: &Path, path: &Path, doc: &toml::Table) -> Result<Manifest> {
    let package = doc
        .get("package")
        .and_then(|p| p.as_table())
        .ok_or_else(|| {
            Failure::new(
                Kind::NotAProject,
                format!("{} has no [package]", path.display()),
            )
            .hint(
                "run nixflash in the package's folder, not at a workspace root (or name the \
                 package with -p where the command takes it)",
            )
        })?;
    let name = package
        .get("name")
        .and_then(|n| n.as_str())
        .with_context(|| format!("{} has no package name", path.display()))?
        .to_string();
    let explicit: &[toml::Value] = doc
        .get("bin")
        .and_then(|b| b.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut bins: Vec<String> = explicit
        .iter()
        .filter_map(|b| b.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .collect();
    // A [[bin]] whose path is src/main.rs replaces the binary cargo would infer from it.
    let main_taken = explicit.iter().any(|b| {
        b.get("path")
            .and_then(|p| p.as_str())
            .is_some_and(|p| Path::new(p) == Path::new("src/main.rs"))
    });
    let autobins = package.get("autobins").and_then(|v| v.as_bool()) != Some(false);
    if autobins {
        if root.join("src/main.rs").is_file() && !main_taken && !bins.contains(&name) {
            bins.insert(0, name.clone());
        }
        if let Ok(dir) = std::fs::read_dir(root.join("src/bin")) {
            let mut more: Vec<String> = dir
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "rs") {
                        p.file_stem().and_then(|s| s.to_str()).map(str::to_string)
                    } else if p.join("main.rs").is_file() {
                        p.file_name().and_then(|s| s.to_str()).map(str::to_string)
                    } else {
                        None
                    }
                })
                .filter(|n| !bins.contains(n))
                .collect();
            more.sort();
            bins.extend(more);
        }
    }
    let board_in = |metadata: Option<&toml::Value>| {
        metadata
            .and_then(|m| m.get("nixflash"))
            .and_then(|n| n.get("board"))
            .and_then(|b| b.as_str())
            .map(str::to_string)
    };
    let board = board_in(package.get("metadata")).or_else(|| {
        let ws = workspace_root(root, package)?;
        let text = std::fs::read_to_string(ws.join("Cargo.toml")).ok()?;
        let doc: toml::Table = toml::from_str(&text).ok()?;
        board_in(doc.get("workspace")?.get("metadata"))
    });
    Ok(Manifest {
        root: root.to_path_buf(),
        name,
        bins,
        board,
        port: None,
        baud: None,
        read_by: ReadBy::Toml,
    })
}

/// The workspace the package at `root` belongs to, if any: `package.workspace` when set, else
/// the nearest folder above with a `[workspace]` in its Cargo.toml (the package's own included).
pub fn workspace_root(root: &Path, package: &toml::Table) -> Option<PathBuf> {
    if let Some(p) = package.get("workspace").and_then(|w| w.as_str()) {
        return Some(root.join(p));
    }
    root.ancestors().find_map(|d| {
        let text = std::fs::read_to_string(d.join("Cargo.toml")).ok()?;
        let doc: toml::Table = toml::from_str(&text).ok()?;
        doc.contains_key("workspace").then(|| d.to_path_buf())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cargo.toml alone settles a package whose firmware binary is sure and whose edition is
    /// 2018 or later; edition 2015, or several binaries none named like the package, ask cargo.
    #[test]
    fn cargo_toml_settles_only_what_it_can_say() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("src/bin")).unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
        let settles = |toml: &str| {
            std::fs::write(root.join("Cargo.toml"), toml).unwrap();
            let (_, doc) = cargo_toml(root).unwrap();
            toml_settles(&doc, &read_toml(root).unwrap())
        };
        let package = "[package]\nname = \"fw\"\nversion = \"0.1.0\"\n";
        assert!(settles(&format!("{package}edition = \"2021\"\n")));
        assert!(!settles(package));
        assert!(!settles(&format!("{package}edition = \"2015\"\n")));
        assert!(!settles(&format!("{package}edition.workspace = true\n")));
        let two = "[[bin]]\nname = \"a\"\npath = \"src/main.rs\"\n\n\
                   [[bin]]\nname = \"b\"\npath = \"src/bin/b.rs\"\n";
        assert!(!settles(&format!("{package}edition = \"2021\"\n\n{two}")));
    }
}
