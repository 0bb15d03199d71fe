//! Driving Nix: finding it, the git tracking check a flake needs, the standard library's lock
//! for build-std boards, and `nix build` itself with live output, Ctrl-C and a diagnosis on
//! failure.
//!
//! [`build`] is the one entry point for commands that need firmware (`build`, `flash`).

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::board::Board;
use crate::diagnose::{self, Diagnosis};
use crate::interrupt;
use crate::manifest::Manifest;
use crate::size::{self, SizeReport};

/// The flags that make any Nix 2.4+ accept flakes, whatever the user's nix.conf says.
pub const FEATURES: [&str; 2] = ["--extra-experimental-features", "nix-command flakes"];

/// The copy of the standard library's Cargo.lock that build-std flakes read.
pub const STD_LOCK: &str = "nix/std-Cargo.lock";
/// What [`STD_LOCK`] was copied from, so an unchanged pin costs no nix call.
pub const STD_LOCK_SOURCE: &str = "nix/std-Cargo.lock.source";
/// Where rust-src keeps the standard library's lock.
pub const RUST_SRC_LOCK: &str = "lib/rustlib/src/rust/library/Cargo.lock";

/// Prints one progress line on stderr, cargo style: a right-aligned verb, then the message.
pub fn status(verb: &str, message: &str) {
    eprintln!("{verb:>12} {message}");
}

/// Nix, found on PATH.
#[derive(Debug, Clone)]
pub struct Nix {
    pub path: PathBuf,
    /// Print each nix command before running it.
    pub verbose: bool,
    /// The user's own arguments (what follows `--` on nixflash's command line), appended to every
    /// nix command: `--override-input`, `--builders`, `--option substituters ...`, `--offline`.
    pub extra_args: Vec<String>,
}

impl Nix {
    /// Finds `nix` on PATH, or says how to install it.
    pub fn find(verbose: bool) -> Result<Nix> {
        match which::which("nix") {
            Ok(path) => Ok(Nix {
                path,
                verbose,
                extra_args: Vec::new(),
            }),
            Err(_) => bail!(
                "nix is not installed (no `nix` on PATH)\n\
                 hint: nixflash builds firmware with Nix, which brings the Rust toolchain; install \
                 it with `sh <(curl -L https://nixos.org/nix/install) --daemon` (see \
                 https://nixos.org/download), then open a new shell\n\
                 hint: flakes need no configuration: nixflash enables them for its own nix calls"
            ),
        }
    }

    /// The same nix, with the user's own arguments for every command it runs.
    pub fn with_args(mut self, extra_args: &[String]) -> Nix {
        self.extra_args = extra_args.to_vec();
        self
    }

    /// A `nix` command with flakes enabled, run in `dir`: `args`, then the user's own arguments.
    pub fn command<S: AsRef<OsStr>>(&self, dir: &Path, args: &[S]) -> Command {
        if self.verbose {
            let shown: Vec<String> = args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .chain(self.extra_args.iter().cloned())
                .map(|a| shell_word(&a))
                .collect();
            status("Running", &format!("`nix {}`", shown.join(" ")));
        }
        let mut c = Command::new(&self.path);
        c.args(FEATURES)
            .args(args)
            .args(&self.extra_args)
            .current_dir(dir);
        c
    }

    /// `nix --version`, e.g. `2.26.3`.
    pub fn version(&self) -> Result<String> {
        let out = Command::new(&self.path)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.path.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .last()
            .map(str::to_string)
            .with_context(|| format!("`nix --version` printed nothing useful: {text}"))
    }
}

fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.,/:=@#+".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `major.minor` of a Nix version string, for comparisons.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The folder holding the project's flake.nix: the package's, or the nearest one above it (a
/// workspace root).
pub fn flake_dir(manifest: &Manifest) -> Result<PathBuf> {
    manifest
        .root
        .ancestors()
        .find(|d| d.join("flake.nix").is_file())
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "no flake.nix in {} or the folders above it\nhint: add one with `nixflash init \
                 --board {}` (it also writes rust-toolchain.toml and .cargo/config.toml)",
                manifest.root.display(),
                manifest.board.as_deref().unwrap_or("<id>")
            )
        })
}

// ---------------------------------------------------------------------------------------------
// git

/// Where the flake stands with git.
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
        match Command::new("git")
            .args(["rev-parse", "--show-toplevel"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
        {
            Err(_) => Git::NotInstalled,
            Ok(out) if !out.status.success() => Git::NotARepo,
            Ok(out) => Git::Repo {
                root: PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
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

/// Files a build always reads, wherever they are ignored or not.
const ALWAYS_NEEDED: &[&str] = &[
    "flake.nix",
    "flake.lock",
    "Cargo.toml",
    "Cargo.lock",
    "rust-toolchain.toml",
    "rust-toolchain",
    ".cargo/config.toml",
    ".cargo/config",
    "Ravedude.toml",
    "build.rs",
    STD_LOCK,
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
    let others = crate::git::run(
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
    wanted.extend(refs.iter().map(|r| r.display().to_string()));
    let mut args = vec![
        "ls-files",
        "-z",
        "--others",
        "--ignored",
        "--exclude-standard",
        "--",
    ];
    args.extend(wanted.iter().map(String::as_str));
    let ignored = nul_paths(&crate::git::run(flake_dir, &args)?);
    Ok(Untracked { files, ignored })
}

/// `git add --intent-to-add` these files (relative to `dir`): the flake sees them, and the next
/// commit is left to the user.
pub fn intent_to_add(dir: &Path, files: &[PathBuf]) -> Result<()> {
    crate::git::add(dir, &["--intent-to-add"], files)
}

fn shell_list(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| shell_word(&f.display().to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The git step of a build: intent-to-add what the flake needs, or report it.
fn check_git(flake_dir: &Path, git: &Git, add: bool) -> Result<()> {
    match git {
        Git::NotInstalled => {
            status(
                "Note",
                "git is not installed: Nix copies the whole project folder (target/ too) on every \
                 build; install git and `git init` the project to make builds faster",
            );
            return Ok(());
        }
        Git::NotARepo => {
            status(
                "Note",
                &format!(
                    "{} is not in a git repository: Nix copies the whole folder (target/ too) on \
                     every build; `git init && git add -A` makes builds faster",
                    flake_dir.display()
                ),
            );
            return Ok(());
        }
        Git::Repo { .. } => {}
    }
    let u = untracked(flake_dir)?;
    if !u.files.is_empty() {
        let list = shell_list(&u.files);
        if add {
            intent_to_add(flake_dir, &u.files)?;
            status(
                "Git-added",
                &format!(
                    "{list} (intent-to-add): a flake only sees the files git tracks; commit them \
                     when you are ready"
                ),
            );
        } else {
            status(
                "Warning",
                &format!(
                    "git does not track {list}, so Nix cannot see it; run: git add \
                     --intent-to-add -- {list}"
                ),
            );
        }
    }
    if !u.ignored.is_empty() {
        let list = shell_list(&u.ignored);
        status(
            "Warning",
            &format!(
                "{list} is ignored by .gitignore, so Nix cannot see it; remove it from .gitignore, \
                 or run: git add --force --intent-to-add -- {list}"
            ),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The standard library's lock (build-std boards)

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// What the pinned rust-src depends on, as one hash: rust-toolchain.toml (the channel) and the
/// rust-overlay node of flake.lock (the manifests). A flake.lock without a rust-overlay input
/// counts as a whole.
pub fn pin_key(flake_dir: &Path) -> String {
    let mut material = String::from("nixflash std-lock pin 1\n");
    for name in ["rust-toolchain.toml", "rust-toolchain"] {
        if let Ok(bytes) = std::fs::read(flake_dir.join(name)) {
            material.push_str(&format!("{name} {}\n", sha256_hex(&bytes)));
            break;
        }
    }
    match std::fs::read(flake_dir.join("flake.lock")) {
        Err(_) => material.push_str("flake.lock none\n"),
        Ok(bytes) => match overlay_node(&bytes) {
            Some(node) => material.push_str(&format!("rust-overlay {node}\n")),
            None => material.push_str(&format!("flake.lock {}\n", sha256_hex(&bytes))),
        },
    }
    sha256_hex(material.as_bytes())
}

/// The `locked` attributes of the node flake.lock's root uses as `rust-overlay`, as JSON with
/// sorted keys.
fn overlay_node(lock: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(lock).ok()?;
    let nodes = v.get("nodes")?;
    let root = nodes.get(v.get("root")?.as_str()?)?;
    let name = root.get("inputs")?.get("rust-overlay")?.as_str()?;
    let locked = nodes.get(name)?.get("locked")?;
    serde_json::to_string(locked).ok()
}

/// The record kept in [`STD_LOCK_SOURCE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StdLockSource {
    /// [`pin_key`] when the copy was made.
    pub pin: String,
    /// The rust-src store path it was copied from.
    pub rust_src: String,
    /// sha256 of the copy, to notice a hand-edited or checked-out-over copy.
    pub lock: String,
}

impl StdLockSource {
    fn read(flake_dir: &Path) -> Option<StdLockSource> {
        let text = std::fs::read_to_string(flake_dir.join(STD_LOCK_SOURCE)).ok()?;
        toml::from_str(&text).ok()
    }

    fn write(&self, flake_dir: &Path) -> Result<()> {
        let text = format!(
            "# Written by nixflash. nix/std-Cargo.lock is {RUST_SRC_LOCK} of the toolchain that\n\
             # rust-toolchain.toml pins (through rust-overlay, locked in flake.lock); -Z build-std \
             needs it.\n\
             # This file records what the copy was made from, so that `nixflash build` looks again\n\
             # only when the pin changes. Keep both files in git.\n{}",
            toml::to_string(self)?
        );
        let path = flake_dir.join(STD_LOCK_SOURCE);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// What the std-lock step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum StdLock {
    /// The board does not build std: no lock needed.
    NotNeeded,
    /// The pin is unchanged since the copy was made: nothing was run.
    Unchanged,
    /// rust-src was realised and the copy already matched it.
    Checked { rust_src: PathBuf },
    /// The copy was (re)written from rust-src.
    Updated { rust_src: PathBuf },
}

/// Keeps [`STD_LOCK`] equal to the pinned rust-src's library/Cargo.lock. Without `force`, an
/// unchanged pin (see [`pin_key`]) and an unchanged copy cost no nix call.
pub fn sync_std_lock(
    nix: &Nix,
    flake_dir: &Path,
    git: &Git,
    board: &Board,
    opts: &BuildOptions,
) -> Result<StdLock> {
    let lock_path = flake_dir.join(STD_LOCK);
    let current = std::fs::read(&lock_path).ok();
    let record = StdLockSource::read(flake_dir);
    if !opts.force_std_lock {
        if let (Some(rec), Some(cur)) = (&record, &current) {
            if rec.pin == pin_key(flake_dir) && rec.lock == sha256_hex(cur) {
                return Ok(StdLock::Unchanged);
            }
        }
    }

    let rust_src = match realise(nix, flake_dir, "rust-src")? {
        Ok(path) => path,
        Err(run) => {
            let vars = diagnosis_vars(flake_dir, git, board);
            return Err(anyhow::Error::new(BuildFailed::new(
                "nix build .#rust-src",
                run,
                false,
                &vars,
            ))
            .context(
                "cannot get the pinned toolchain's rust-src, which nix/std-Cargo.lock is copied from",
            ));
        }
    };
    let src_lock = rust_src.join(RUST_SRC_LOCK);
    let fresh = std::fs::read(&src_lock).with_context(|| {
        format!(
            "the flake's rust-src ({}) has no {RUST_SRC_LOCK}\nhint: `packages.<system>.rust-src` \
             must be the toolchain's rust-src component",
            rust_src.display()
        )
    })?;
    let changed = current.as_deref() != Some(fresh.as_slice());
    if changed {
        if let Some(dir) = lock_path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&lock_path, &fresh)
            .with_context(|| format!("cannot write {}", lock_path.display()))?;
    }
    // The realisation may have written flake.lock (a first build): key on what is there now.
    let rec = StdLockSource {
        pin: pin_key(flake_dir),
        rust_src: rust_src.display().to_string(),
        lock: sha256_hex(&fresh),
    };
    if record.as_ref() != Some(&rec) {
        rec.write(flake_dir)?;
    }
    let files = [PathBuf::from(STD_LOCK), PathBuf::from(STD_LOCK_SOURCE)];
    let added = match git {
        Git::Repo { .. } if opts.git_add => {
            crate::git::add(flake_dir, &[], &files)?;
            ", and git-added it"
        }
        Git::Repo { .. } => {
            "; git-add it (--no-git-add): git add nix/std-Cargo.lock nix/std-Cargo.lock.source"
        }
        _ => "",
    };
    if changed {
        status(
            "Updated",
            &format!(
                "{STD_LOCK} to the standard library's lock of the pinned toolchain ({}){added}",
                channel(flake_dir).unwrap_or_else(|| "rust-src".to_string())
            ),
        );
        Ok(StdLock::Updated { rust_src })
    } else {
        Ok(StdLock::Checked { rust_src })
    }
}

/// The channel rust-toolchain.toml pins, for messages.
pub fn channel(flake_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(flake_dir.join("rust-toolchain.toml")).ok()?;
    let t: toml::Table = text.parse().ok()?;
    t.get("toolchain")?
        .get("channel")?
        .as_str()
        .map(str::to_string)
}

/// The Nix system name of this machine (`x86_64-linux`, `aarch64-darwin`), as flake outputs are
/// keyed.
pub fn system() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    };
    format!("{}-{os}", std::env::consts::ARCH)
}

/// Evaluates the flake's firmware derivation (`packages.<system>.default.drvPath`) without
/// building anything: its path, or nix's error (the `error:` lines of its log).
pub fn evaluate_firmware(nix: &Nix, flake_dir: &Path) -> Result<String> {
    let attr = format!(".#packages.{}.default.drvPath", system());
    let run = run_nix(nix.command(flake_dir, &["eval", "--raw", &attr]), false)?;
    interrupt::check()?;
    if !run.status.success() {
        let lines = relevant_lines(&run.log, 10);
        let errors: Vec<&str> = lines
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .map(|l| l.strip_prefix("error:").map(str::trim).unwrap_or(l))
            .collect();
        bail!("{}", errors.join(" "));
    }
    Ok(run.stdout.trim().to_string())
}

/// `nix build .#<attr> --json --no-link`, quietly: its out path, or the failed run.
fn realise(nix: &Nix, flake_dir: &Path, attr: &str) -> Result<std::result::Result<PathBuf, Run>> {
    let installable = format!(".#{attr}");
    let run = run_nix(
        nix.command(flake_dir, &["build", &installable, "--json", "--no-link"]),
        false,
    )?;
    interrupt::check()?;
    if !run.status.success() {
        return Ok(Err(run));
    }
    out_path(&run.stdout).map(Ok)
}

/// The `out` path in `nix build --json` output.
pub fn out_path(json: &str) -> Result<PathBuf> {
    let v: serde_json::Value = serde_json::from_str(json.trim())
        .with_context(|| format!("cannot read nix's JSON output: {json}"))?;
    v.get(0)
        .and_then(|b| b.get("outputs"))
        .and_then(|o| o.get("out"))
        .and_then(|o| o.as_str())
        .map(PathBuf::from)
        .with_context(|| format!("nix's JSON output names no `out` path: {json}"))
}

// ---------------------------------------------------------------------------------------------
// Running nix with live output

/// How many lines of a log are kept for the diagnosis: the start (evaluation warnings) and the end.
const LOG_HEAD: usize = 500;
const LOG_TAIL: usize = 5000;

/// The output of a finished nix command whose stderr was shown live.
struct Run {
    status: ExitStatus,
    stdout: String,
    log: String,
}

/// Runs `cmd` with its stderr passed through line by line and kept, and Ctrl-C forwarded.
fn run_live(cmd: Command) -> Result<Run> {
    run_nix(cmd, true)
}

/// Runs `cmd`, keeping its stderr (and passing it through when `live`), with Ctrl-C forwarded.
fn run_nix(mut cmd: Command, live: bool) -> Result<Run> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot start nix")?;
    let stderr = child.stderr.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");

    let tee = std::thread::spawn(move || {
        let mut head = Vec::new();
        let mut tail = VecDeque::new();
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        let mut err = std::io::stderr();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if live {
                let _ = err.write_all(&line);
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            if head.len() < LOG_HEAD {
                head.push(text);
            } else {
                tail.push_back(text);
                if tail.len() > LOG_TAIL {
                    tail.pop_front();
                }
            }
        }
        head.extend(tail);
        head.join("\n")
    });

    // Ctrl-C at a terminal reaches nix too; a SIGINT sent to nixflash alone is passed on.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        let pid = child.id();
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if interrupt::interrupted() {
                    forward_interrupt(pid);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let mut out = String::new();
    let read = stdout.read_to_string(&mut out);
    let status = child.wait().context("cannot wait for nix")?;
    done.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    let log = tee.join().unwrap_or_default();
    read.context("cannot read nix's output")?;
    Ok(Run {
        status,
        stdout: out,
        log,
    })
}

#[cfg(unix)]
fn forward_interrupt(pid: u32) {
    // SAFETY: kill(2) with a child's pid, which is not reaped before `done` is set.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGINT);
    }
}

#[cfg(not(unix))]
fn forward_interrupt(_pid: u32) {}

/// The lines of a nix log worth repeating after a failure: the builder's last lines and the
/// error, without progress chatter. At most `max` lines.
pub fn relevant_lines(log: &str, max: usize) -> Vec<String> {
    let lines: Vec<&str> = log.lines().filter(|l| !is_chatter(l.trim())).collect();
    let Some(start) = lines.iter().position(|l| l.starts_with("error:")) else {
        // No `error:` line: the end of the log.
        let from = lines.len().saturating_sub(max);
        return lines[from..].iter().map(|l| l.to_string()).collect();
    };
    // The error block has priority (its end says most); then what the builder said last
    // (`pname> ...` lines, as nix -L prints them), up to 15 lines.
    // Nix's evaluation trace (`… while evaluating …` frames with their code excerpts) is on
    // screen already; the `error:` lines themselves say what failed.
    let mut in_frame = false;
    let error: Vec<&str> = lines[start..]
        .iter()
        .filter(|l| {
            let t = l.trim();
            if t.starts_with('…') {
                in_frame = true;
                return false;
            }
            if t.starts_with("error:") {
                in_frame = false;
                return t != "error:";
            }
            !in_frame
        })
        .copied()
        .collect();
    let error_keep = error.len().min(max);
    let builder: Vec<&str> = lines[..start]
        .iter()
        .rev()
        .take_while(|l| is_builder_line(l))
        .take((max - error_keep).min(15))
        .copied()
        .collect();
    builder
        .into_iter()
        .rev()
        .chain(error[error.len() - error_keep..].iter().copied())
        .map(str::to_string)
        .collect()
}

/// Lines of a nix log that say nothing about a failure.
fn is_chatter(t: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "copying path",
        "building '/nix/store",
        "these ",
        "this derivation",
        "this path",
    ];
    t.is_empty()
        || (t.starts_with("warning: Git tree") && t.ends_with("is dirty"))
        || PREFIXES.iter().any(|p| t.starts_with(p))
        || (t.starts_with("/nix/store/") && t.ends_with(".drv"))
}

fn is_builder_line(l: &str) -> bool {
    // `name> text`, the prefix nix -L puts on build output.
    l.split_once("> ").is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.contains(' ')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
    })
}

// ---------------------------------------------------------------------------------------------
// build

/// What a build is asked to do.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `git add --intent-to-add` untracked files the flake needs, and git-add the std lock.
    pub git_add: bool,
    /// Print each nix command.
    pub verbose: bool,
    /// Keep a `result` link to the firmware in the flake folder, as `nix build` does.
    pub link: bool,
    /// Realise rust-src and compare the std lock even if the pin looks unchanged.
    pub force_std_lock: bool,
    /// The user's own arguments for every nix command (see [`Nix::extra_args`]).
    pub nix_args: Vec<String>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            git_add: true,
            verbose: false,
            link: true,
            force_std_lock: false,
            nix_args: Vec::new(),
        }
    }
}

/// A built firmware.
#[derive(Debug, Clone, Serialize)]
pub struct Built {
    /// The Nix store path of the package.
    pub out: PathBuf,
    /// The firmware: `<out>/bin/<bin>.elf`.
    pub elf: PathBuf,
    /// The `result` link, if one was made.
    pub link: Option<PathBuf>,
    /// Flash and RAM use against the board.
    pub size: SizeReport,
    pub std_lock: StdLock,
}

/// A failed `nix build`: its log and what is known about it. Its Display is the whole report
/// (relevant log lines, diagnoses, `hint:` lines).
#[derive(Debug)]
pub struct BuildFailed {
    /// What was run, e.g. `nix build .#default`.
    pub command: String,
    pub code: Option<i32>,
    pub log: String,
    /// Whether the log was shown as it came.
    pub shown: bool,
    pub diagnoses: Vec<Diagnosis>,
}

impl BuildFailed {
    fn new(command: &str, run: Run, shown: bool, vars: &[(&str, String)]) -> BuildFailed {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        BuildFailed {
            command: command.to_string(),
            code: run.status.code(),
            diagnoses: diagnose::diagnose(&run.log, &vars),
            log: run.log,
            shown,
        }
    }
}

/// The values diagnoses may use besides what they capture from the log.
fn diagnosis_vars(flake_dir: &Path, git: &Git, board: &Board) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("flake_dir", flake_dir.display().to_string()),
        ("board", board.id.clone()),
    ];
    if let Some(root) = git.root() {
        vars.push(("git_root", root.display().to_string()));
    }
    vars
}

impl std::fmt::Display for BuildFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(c) => write!(f, "`{}` failed (exit code {c})", self.command)?,
            None => write!(f, "`{}` was stopped by a signal", self.command)?,
        }
        let lines = relevant_lines(&self.log, 25);
        if !lines.is_empty() {
            write!(f, "\nthe end of the nix log:")?;
            for l in lines {
                write!(f, "\n  | {l}")?;
            }
        }
        for d in &self.diagnoses {
            write!(f, "\ndiagnosis: {}", d.problem)?;
        }
        for d in &self.diagnoses {
            for fix in &d.fix {
                write!(f, "\nhint: {fix}")?;
            }
        }
        if self.diagnoses.is_empty() && self.shown {
            write!(
                f,
                "\nhint: the full log is above; `nix log` on the failed derivation shows a \
                 builder's log again"
            )?;
        } else if self.diagnoses.is_empty() {
            write!(
                f,
                "\nhint: run `{}` in the project to see the whole log",
                self.command
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for BuildFailed {}

/// Builds the firmware of `manifest` for `board` with Nix: checks git tracking, keeps the std
/// lock in sync (build-std boards), runs `nix build .#default`, finds the ELF and reads its sizes.
/// Progress goes to stderr, one line per step, with nix's own output live in between; the size
/// line is printed too.
pub fn build(manifest: &Manifest, board: &Board, opts: &BuildOptions) -> Result<Built> {
    let nix = Nix::find(opts.verbose)?.with_args(&opts.nix_args);
    let flake_dir = flake_dir(manifest)?;
    let git = Git::of(&flake_dir);
    check_git(&flake_dir, &git, opts.git_add)?;
    interrupt::check()?;

    let std_lock = if board.rust.build_std {
        sync_std_lock(&nix, &flake_dir, &git, board, opts)?
    } else {
        StdLock::NotNeeded
    };
    interrupt::check()?;

    status(
        "Building",
        &format!("{} for the {} with nix…", manifest.name, board.name),
    );
    let mut args = vec!["build", ".#default", "--json", "-L"];
    if opts.link {
        args.extend(["--out-link", "result"]);
    } else {
        args.push("--no-link");
    }
    let run = run_live(nix.command(&flake_dir, &args))?;
    interrupt::check()?;
    if !run.status.success() {
        let vars = diagnosis_vars(&flake_dir, &git, board);
        return Err(BuildFailed::new("nix build .#default", run, true, &vars).into());
    }

    let out = out_path(&run.stdout)?;
    let bin = manifest.firmware_bin();
    let elf = out.join("bin").join(format!("{bin}.elf"));
    if !elf.is_file() {
        let found: Vec<String> = std::fs::read_dir(out.join("bin"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        bail!(
            "the build has no firmware {}\n(its bin/ holds: {})\nhint: the flake must install \
             the binary `{bin}` as bin/{bin}.elf (nixflash's template renames it in postInstall)",
            elf.display(),
            if found.is_empty() {
                "nothing".to_string()
            } else {
                found.join(", ")
            }
        );
    }
    let link = opts.link.then(|| flake_dir.join("result"));
    let size = size::analyze_file(&elf, board)?;
    let shown_link = match &link {
        Some(l) => format!(
            " (link: {})",
            pathdiff(l, &std::env::current_dir().unwrap_or_default())
        ),
        None => String::new(),
    };
    status("Built", &format!("{}{shown_link}", elf.display()));
    status("Size", &size.to_string());
    if !size.fits() {
        status(
            "Warning",
            &format!(
                "the firmware does not fit the {} ({} B of flash, {} B of RAM)",
                board.name, board.memory.flash, board.memory.ram
            ),
        );
    }
    Ok(Built {
        out,
        elf,
        link,
        size,
        std_lock,
    })
}

/// `path` relative to `base` when it lies below it, else as is.
fn pathdiff(path: &Path, base: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rel) if !rel.as_os_str().is_empty() => format!("./{}", rel.display()),
        _ => path.display().to_string(),
    }
}

/// `nix flake update [inputs…]` in the flake folder, with live output.
pub fn flake_update(nix: &Nix, flake_dir: &Path, inputs: &[String]) -> Result<()> {
    let mut args: Vec<&str> = vec!["flake", "update"];
    args.extend(inputs.iter().map(String::as_str));
    let run = run_live(nix.command(flake_dir, &args))?;
    interrupt::check()?;
    if !run.status.success() {
        let lines = relevant_lines(&run.log, 15);
        bail!(
            "`nix flake update` failed:\n{}\nhint: updating needs the network (GitHub); inputs \
             can be named to update only those: nixflash update rust-overlay",
            lines
                .iter()
                .map(|l| format!("  | {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(())
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
        for no in ["notes.txt", "README.md", "docs/x.png", "firmware.elf2"] {
            assert!(!flake_needs(Path::new(no), &refs), "{no}");
        }
    }

    #[test]
    fn versions_compare() {
        assert_eq!(parse_version("2.26.3"), Some((2, 26)));
        assert_eq!(parse_version("2.4pre2021"), Some((2, 4)));
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn out_path_reads_nix_build_json() {
        let json = r#"[{"drvPath":"/nix/store/a-fx.drv","outputs":{"out":"/nix/store/b-fx"},"startTime":0,"stopTime":0}]"#;
        assert_eq!(out_path(json).unwrap(), PathBuf::from("/nix/store/b-fx"));
        assert!(out_path("[]").is_err());
    }

    #[test]
    fn relevant_lines_keep_builder_output_and_error() {
        let log = "warning: Git tree '/x' is dirty\nthis derivation will be built:\n  /nix/store/w-fxbad.drv\n\
                   building '/nix/store/w-fxbad.drv'...\nfxbad> compiling\nfxbad> error[E0152]: found duplicate lang item `panic_impl`\n\
                   error: builder for '/nix/store/w-fxbad.drv' failed with exit code 3";
        assert_eq!(
            relevant_lines(log, 25),
            vec![
                "fxbad> compiling",
                "fxbad> error[E0152]: found duplicate lang item `panic_impl`",
                "error: builder for '/nix/store/w-fxbad.drv' failed with exit code 3",
            ]
        );
        let eval = "error:\n       … while calling the 'derivationStrict' builtin\n         at <nix/derivation-internal.nix>:37:12:\n           37|   strict = derivationStrict drvAttrs;\n             |            ^\n\n       error: path '/nix/store/c-source/firmware.elf' does not exist";
        assert_eq!(
            relevant_lines(eval, 25),
            vec!["       error: path '/nix/store/c-source/firmware.elf' does not exist"]
        );
        let no_error = "a\nb\nc";
        assert_eq!(relevant_lines(no_error, 2), vec!["b", "c"]);
    }

    #[test]
    fn pin_key_follows_the_overlay_node_and_the_toolchain_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let none = pin_key(p);
        std::fs::write(
            p.join("rust-toolchain.toml"),
            "[toolchain]\nchannel = \"nightly-2025-04-27\"\n",
        )
        .unwrap();
        let with_toolchain = pin_key(p);
        assert_ne!(none, with_toolchain);
        let lock = |rev: &str, nixpkgs: &str| {
            format!(
                r#"{{"nodes":{{"root":{{"inputs":{{"rust-overlay":"rust-overlay","nixpkgs":"nixpkgs"}}}},
                "rust-overlay":{{"locked":{{"rev":"{rev}","type":"github"}}}},
                "nixpkgs":{{"locked":{{"rev":"{nixpkgs}","type":"github"}}}}}},"root":"root","version":7}}"#
            )
        };
        std::fs::write(p.join("flake.lock"), lock("a", "n1")).unwrap();
        let a = pin_key(p);
        // Another nixpkgs does not change rust-src.
        std::fs::write(p.join("flake.lock"), lock("a", "n2")).unwrap();
        assert_eq!(pin_key(p), a);
        std::fs::write(p.join("flake.lock"), lock("b", "n2")).unwrap();
        assert_ne!(pin_key(p), a);
        std::fs::write(
            p.join("rust-toolchain.toml"),
            "[toolchain]\nchannel = \"nightly-2025-05-01\"\n",
        )
        .unwrap();
        let b2 = pin_key(p);
        std::fs::write(p.join("flake.lock"), lock("b", "n2")).unwrap();
        assert_eq!(pin_key(p), b2);
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word(".#default"), ".#default");
        assert_eq!(shell_word("nix-command flakes"), "'nix-command flakes'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
