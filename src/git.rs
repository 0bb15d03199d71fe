//! git, as far as a flake needs it: a flake only sees the files git tracks, so `new`, `init` and
//! `build` git-add, and `build` and `doctor` find the files the flake needs that git does not
//! track.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::{Failure, Kind};
use crate::process::Cmd;

/// The error for a git that cannot be started.
fn spawn_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Failure::new(Kind::GitMissing, "git is not installed")
            .hint("install git (a flake only sees files git tracks), or pass --no-git")
            .into()
    } else {
        anyhow::Error::new(e).context("cannot run git")
    }
}

/// `git <args>` in `dir`.
pub fn command(dir: &Path, args: &[&str]) -> Cmd {
    Cmd::new("git").args(args).dir(dir)
}

/// Runs `git <args>` in `dir` and returns its standard output; a failure carries git's message.
pub fn run(dir: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = command(dir, args).output().map_err(spawn_error)?;
    if !out.success() {
        anyhow::bail!(
            "`git {}` failed in {}: {}",
            args.join(" "),
            dir.display(),
            out.stderr.trim()
        );
    }
    Ok(out.stdout)
}

/// Starts `git init -q` in `dir`. Without a template folder of the user's (init.templateDir or
/// GIT_TEMPLATE_DIR), git's default one only holds inactive sample hooks: skipping it halves the
/// time `git init` takes.
pub fn start_init(dir: &Path) -> Result<crate::process::Started> {
    let mut args = vec!["init", "-q"];
    if !user_has_templates() {
        args.push("--template=");
    }
    command(dir, &args).start().map_err(spawn_error)
}

/// Waits for what [`start_init`] started.
pub fn finish_init(dir: &Path, started: crate::process::Started) -> Result<()> {
    let (status, stderr) = started.finish()?;
    if !status.success() {
        anyhow::bail!("`git init` failed in {}: {}", dir.display(), stderr.trim());
    }
    Ok(())
}

/// Whether the user configured git templates (checked in the config files, without running git).
fn user_has_templates() -> bool {
    if std::env::var_os("GIT_TEMPLATE_DIR").is_some() {
        return true;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    let mut files = vec![PathBuf::from("/etc/gitconfig")];
    files.extend(home.map(|h| h.join(".gitconfig")));
    files.extend(xdg.map(|x| x.join("git/config")));
    files.extend(std::env::var_os("GIT_CONFIG_GLOBAL").map(PathBuf::from));
    files.iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|t| {
            let t = t.to_ascii_lowercase();
            t.contains("templatedir") || t.contains("[include") || t.contains("[includeif")
        })
    })
}

/// `git add <flags> -- <files>` in `dir` (paths relative to it); nothing to add runs nothing.
pub fn add(dir: &Path, flags: &[&str], files: &[PathBuf]) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut args = vec!["add"];
    args.extend_from_slice(flags);
    args.push("--");
    args.extend(names.iter().map(String::as_str));
    run(dir, &args).map(|_| ())
}

/// Those of `files` (relative to `dir`, which exist) that git does not track and does not ignore.
pub fn untracked_of(dir: &Path, files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut args = vec!["ls-files", "-z", "--others", "--exclude-standard", "--"];
    args.extend(names.iter().map(String::as_str));
    Ok(nul_paths(&run(dir, &args)?))
}

/// `git add --intent-to-add` these files (relative to `dir`): the flake sees them, and the next
/// commit is left to the user.
pub fn intent_to_add(dir: &Path, files: &[PathBuf]) -> Result<()> {
    add(dir, &["--intent-to-add"], files)
}

/// The git work tree `dir` lies in, if any: the nearest folder above with a `.git` (a folder, or
/// a file for worktrees and submodules). Found without running git, which keeps `new` fast.
pub fn enclosing_work_tree(dir: &Path) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// Where a folder stands with git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Git {
    /// No `git` on PATH.
    NotInstalled,
    /// Not inside a work tree: Nix copies the whole folder (a `path:` flake).
    NotARepo,
    /// Inside the work tree at `root`.
    Repo { root: PathBuf },
}

impl Git {
    /// Looks at the repository around `dir`.
    pub fn of(dir: &Path) -> Git {
        match command(dir, &["rev-parse", "--show-toplevel"]).output() {
            Err(_) => Git::NotInstalled,
            Ok(out) if !out.success() => Git::NotARepo,
            Ok(out) => Git::Repo {
                root: PathBuf::from(out.stdout_text().trim()),
            },
        }
    }

    pub fn root(&self) -> Option<&Path> {
        match self {
            Git::Repo { root } => Some(root),
            _ => None,
        }
    }
}

fn nul_paths(bytes: &[u8]) -> Vec<PathBuf> {
    bytes
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
        .collect()
}

/// Files the flake needs that git does not track, relative to the flake folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Untracked {
    /// Untracked and not ignored: `git add --intent-to-add` fixes them.
    pub files: Vec<PathBuf>,
    /// Ignored by .gitignore although the flake reads them: only `git add --force` helps.
    pub ignored: Vec<PathBuf>,
}

/// Files a build always reads, whether they are ignored or not (and the families' `files.init`,
/// Ravedude.toml or build.rs, which the board data lists).
const ALWAYS_NEEDED: &[&str] = &[
    "flake.nix",
    "flake.lock",
    "Cargo.toml",
    "Cargo.lock",
    "rust-toolchain.toml",
    "rust-toolchain",
    ".cargo/config.toml",
    ".cargo/config",
    // nix::std_lock::STD_LOCK, written out: the build uses git, so git does not use it (a test
    // below checks they agree).
    "nix/std-Cargo.lock",
];

/// Whether the flake reads `rel` (a path relative to the flake folder): what crane's
/// cleanCargoSource keeps (`*.rs`, `*.toml`, Cargo.lock, .cargo/config), the flake's own files,
/// everything under nix/, and whatever flake.nix names as a `./path`.
pub fn flake_needs(rel: &Path, flake_refs: &[PathBuf]) -> bool {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent = rel
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    // The settings file holds secrets (Wi-Fi passwords): never for the flake, whatever an old
    // .gitignore says.
    if rel == Path::new(crate::settings::FILE) {
        return false;
    }
    name.ends_with(".rs")
        || name.ends_with(".toml")
        || name == "Cargo.lock"
        || name == "flake.nix"
        || name == "flake.lock"
        || (parent == ".cargo" && name == "config")
        || rel.starts_with("nix")
        || flake_refs.iter().any(|r| rel.starts_with(r))
}

/// The `./paths` flake.nix names (other than `./.`), relative to the flake folder.
pub fn flake_refs(flake_nix: &str) -> Vec<PathBuf> {
    let re =
        regex_lite::Regex::new(r"(?:^|[^A-Za-z0-9_.\-/])\./([A-Za-z0-9._+\-][A-Za-z0-9._+\-/]*)")
            .expect("valid");
    let mut refs: Vec<PathBuf> = re
        .captures_iter(flake_nix)
        .map(|c| PathBuf::from(c[1].trim_end_matches('/')))
        .filter(|p| !p.as_os_str().is_empty() && p != Path::new("."))
        .collect();
    refs.sort();
    refs.dedup();
    refs
}

/// Finds the files the flake in `flake_dir` needs that git does not track.
pub fn untracked(flake_dir: &Path) -> Result<Untracked> {
    let refs = std::fs::read_to_string(flake_dir.join("flake.nix"))
        .map(|t| flake_refs(&t))
        .unwrap_or_default();
    let others = run(
        flake_dir,
        &[
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
            "--",
            ".",
        ],
    )?;
    let files: Vec<PathBuf> = nul_paths(&others)
        .into_iter()
        .filter(|p| flake_needs(p, &refs))
        .collect();

    let mut wanted: Vec<String> = ALWAYS_NEEDED.iter().map(|s| s.to_string()).collect();
    // And what `nixflash init` writes for a family (its `files.init`: Ravedude.toml, build.rs).
    let db = crate::board::Database::load(Some(flake_dir))?;
    wanted.extend(db.families().flat_map(|f| f.files.init.iter().cloned()));
    wanted.extend(refs.iter().map(|r| r.display().to_string()));
    wanted.sort();
    wanted.dedup();
    let mut args = vec![
        "ls-files",
        "-z",
        "--others",
        "--ignored",
        "--exclude-standard",
        "--",
    ];
    args.extend(wanted.iter().map(String::as_str));
    let ignored = nul_paths(&run(flake_dir, &args)?);
    Ok(Untracked { files, ignored })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flake_refs_finds_named_paths_but_not_the_whole_folder() {
        let nix = r#"
          src = craneLib.cleanCargoSource ./.;
          toolchainFor = p: p.rust-bin.fromRustupToolchainFile ./rust-toolchain.toml;
          stdLock = if builtins.pathExists ./nix/std-Cargo.lock then ./nix/std-Cargo.lock else 1;
          cargoLockList = [ ./Cargo.lock stdLock ];
          x = "${./assets}/y";
          url = "https://example.org/a/./b";
        "#;
        let refs = flake_refs(nix);
        let want: Vec<PathBuf> = [
            "Cargo.lock",
            "assets",
            "nix/std-Cargo.lock",
            "rust-toolchain.toml",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(refs, want);
    }

    #[test]
    fn flake_needs_follows_crane_and_the_flake() {
        let refs = vec![PathBuf::from("firmware.elf"), PathBuf::from("assets")];
        for yes in [
            "src/led.rs",
            "Cargo.toml",
            "Cargo.lock",
            "flake.lock",
            ".cargo/config",
            "nix/std-Cargo.lock",
            "firmware.elf",
            "assets/logo.bin",
            "sub/build.rs",
        ] {
            assert!(flake_needs(Path::new(yes), &refs), "{yes}");
        }
        for no in [
            "notes.txt",
            "README.md",
            "docs/x.png",
            "firmware.elf2",
            "settings.toml",
        ] {
            assert!(!flake_needs(Path::new(no), &refs), "{no}");
        }
    }

    #[test]
    fn the_std_lock_is_always_needed() {
        assert!(ALWAYS_NEEDED.contains(&crate::nix::std_lock::STD_LOCK));
    }
}
