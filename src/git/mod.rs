//! git, as far as a flake needs it: a flake only sees the files git tracks, so `new`, `init` and
//! `build` git-add, and `build` and `doctor` find the files the flake needs that git does not
//! track.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::{Failure, Kind};
use crate::process::Cmd;

pub mod repo;

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

/// The error of a missing git, if `git` is not on PATH.
pub fn require_installed() -> Result<()> {
    match which::which("git") {
        Ok(_) => Ok(()),
        Err(_) => Err(spawn_error(std::io::ErrorKind::NotFound.into())),
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

/// The user's git config files, in the order git reads them (a later one wins):
/// `$XDG_CONFIG_HOME/git/config` (else `~/.config/git/config`), then `~/.gitconfig`.
pub fn user_config_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = crate::xdg::config_home()
        .map(|x| x.join("git/config"))
        .into_iter()
        .collect();
    files.extend(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".gitconfig")));
    files
}

/// Whether the user configured git templates (checked in the config files, without running git).
fn user_has_templates() -> bool {
    if std::env::var_os("GIT_TEMPLATE_DIR").is_some() {
        return true;
    }
    let mut files = vec![PathBuf::from("/etc/gitconfig")];
    files.extend(user_config_files());
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

/// The git work tree `dir` lies in, if any: the nearest folder above with a `.git` (a folder
/// with a HEAD, or a file for worktrees and submodules). Found without running git, which keeps
/// `new` and `build` fast.
pub fn enclosing_work_tree(dir: &Path) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    dir.ancestors()
        .find(|d| {
            let git = d.join(".git");
            git.is_file() || git.join("HEAD").is_file()
        })
        .map(Path::to_path_buf)
}

/// Whether git finds repositories the plain way, as [`enclosing_work_tree`] does: none of the
/// variables that move or bound its search is set.
fn plain_discovery() -> bool {
    [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_CEILING_DIRECTORIES",
        "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    ]
    .iter()
    .all(|v| std::env::var_os(v).is_none())
}

/// Where `dir` lies in its work tree, as `git rev-parse --show-prefix` says (empty at the root).
fn prefix_in_work_tree(dir: &Path) -> Result<PathBuf> {
    if plain_discovery() {
        if let (Some(root), Ok(dir)) = (enclosing_work_tree(dir), dir.canonicalize()) {
            if let Ok(rel) = dir.strip_prefix(&root) {
                return Ok(rel.to_path_buf());
            }
        }
    }
    let out = run(dir, &["rev-parse", "--show-prefix"])?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out).trim()))
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
    /// Looks at the repository around `dir`: for the `.git` above it, without running git, unless
    /// git's variables move or bound where it looks (then as [`Git::asked`]).
    pub fn of(dir: &Path) -> Git {
        if !plain_discovery() {
            return Git::asked(dir);
        }
        if which::which("git").is_err() {
            return Git::NotInstalled;
        }
        match enclosing_work_tree(dir) {
            Some(root) => Git::Repo { root },
            None => Git::NotARepo,
        }
    }

    /// Asks git where `dir` stands (`git rev-parse --show-toplevel`): what [`Git::of`] falls back
    /// on, and what tells a `.git` git refuses (another user's, a broken one) from a repository.
    pub fn asked(dir: &Path) -> Git {
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

/// Finds the files the flake in `flake_dir` needs that git does not track, with one
/// `git status` (untracked files, and the ignored ones the flake reads).
pub fn untracked(flake_dir: &Path) -> Result<Untracked> {
    let refs = std::fs::read_to_string(flake_dir.join("flake.nix"))
        .map(|t| flake_refs(&t))
        .unwrap_or_default();
    let status = run(
        flake_dir,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain=v1",
            "-z",
            "--no-renames",
            "--untracked-files=all",
            "--ignored=matching",
            "--",
            ".",
        ],
    )?;
    // Porcelain paths are relative to the work tree's root, not to the folder git ran in.
    let prefix = prefix_in_work_tree(flake_dir)?;
    let (mut files, mut ignored_entries) = (Vec::new(), Vec::new());
    for entry in status.split(|b| *b == 0) {
        let (Some(code), Some(path)) = (entry.get(..2), entry.get(3..)) else {
            continue;
        };
        let path = PathBuf::from(String::from_utf8_lossy(path).into_owned());
        let Ok(rel) = path.strip_prefix(&prefix) else {
            continue;
        };
        match code {
            b"??" => files.push(rel.to_path_buf()),
            b"!!" => ignored_entries.push(rel.to_path_buf()),
            _ => {}
        }
    }
    files.retain(|p| flake_needs(p, &refs));

    let mut wanted: Vec<PathBuf> = ALWAYS_NEEDED.iter().map(PathBuf::from).collect();
    // And what `nixflash init` writes for a family (its `files.init`: Ravedude.toml, build.rs).
    let db = crate::board::Database::families_only()?;
    wanted.extend(
        db.families()
            .flat_map(|f| f.files.init.iter().map(PathBuf::from)),
    );
    wanted.extend(refs.iter().cloned());
    let ignored = ignored_wanted(flake_dir, &ignored_entries, &wanted);
    Ok(Untracked { files, ignored })
}

/// Of the ignored paths `git status --ignored=matching` listed (an ignored folder as one entry),
/// those the flake reads: a wanted file that is ignored or lies in an ignored folder (if it
/// exists), and what is ignored inside a wanted folder.
fn ignored_wanted(flake_dir: &Path, entries: &[PathBuf], wanted: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in entries {
        for w in wanted {
            if e == w || e.starts_with(w) {
                found.push(e.clone());
            } else if w.starts_with(e) && flake_dir.join(w).exists() {
                found.push(w.clone());
            }
        }
    }
    found.sort();
    found.dedup();
    found
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

    /// With real git, a flake in a subfolder of the repository: its untracked files, and a
    /// needed file inside an ignored folder, relative to the flake's folder.
    #[test]
    fn untracked_reads_one_status_of_a_flake_in_a_subfolder() {
        let d = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let out = command(d.path(), args).output().unwrap();
            assert!(out.success(), "git {args:?}: {}", out.stderr);
        };
        git(&["init", "-q"]);
        let fw = d.path().join("fw");
        for (file, text) in [
            ("fw/flake.nix", "{ outputs = _: { }; }\n"),
            ("fw/src/main.rs", "fn main() {}\n"),
            ("fw/notes.txt", "not for the flake\n"),
            ("fw/nix/std-Cargo.lock", "version = 4\n"),
            ("fw/target/x.rs", "ignored, not needed\n"),
            (".gitignore", "nix/\ntarget/\n"),
            ("other/lib.rs", "outside the flake\n"),
        ] {
            let p = d.path().join(file);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        git(&["add", "fw/flake.nix", ".gitignore"]);
        assert_eq!(
            Git::of(&fw),
            Git::Repo {
                root: d.path().canonicalize().unwrap()
            }
        );
        let u = untracked(&fw).unwrap();
        assert_eq!(u.files, [PathBuf::from("src/main.rs")]);
        assert_eq!(u.ignored, [PathBuf::from("nix/std-Cargo.lock")]);
    }

    #[test]
    fn the_std_lock_is_always_needed() {
        assert!(ALWAYS_NEEDED.contains(&crate::nix::std_lock::STD_LOCK));
    }
}
