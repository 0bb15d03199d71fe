//! `nix build` of a project's firmware: its output live (or as a progress line), Ctrl-C
//! forwarded, the size of what it built, and on failure the lines that matter and a diagnosis.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::std_lock::{self, StdLock};
use super::{check_git, flake_dir, missing_inputs, out_path, Nix};
use crate::board::Board;
use crate::diagnose::{self, Diagnosis};
use crate::error::{Failure, Help};
use crate::firmware::size::{self, SizeReport};
use crate::git::Git;
use crate::interrupt;
use crate::manifest::Manifest;
use crate::process::Output;
use crate::progress::status;

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

/// A failed `nix build`: its log and what is known about it. Its Display is the failure and the
/// log lines that matter; its [`Help`] the diagnoses and what to do.
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
    pub fn new(command: &str, run: Output, shown: bool, vars: &[(&str, String)]) -> BuildFailed {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        BuildFailed {
            command: command.to_string(),
            code: run.status.code(),
            diagnoses: diagnose::diagnose(&run.stderr, &vars),
            log: run.stderr,
            shown,
        }
    }
}

/// The values diagnoses may use besides what they capture from the log.
pub fn diagnosis_vars(
    flake_dir: &Path,
    git: &Git,
    board: &Board,
    nix_args: &[String],
) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("flake_dir", flake_dir.display().to_string()),
        ("board", board.id.clone()),
        ("nix_args", crate::process::shell_line(nix_args)),
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
        let lines = super::relevant_lines(&self.log, 25);
        if !lines.is_empty() {
            write!(f, "\nfrom the nix log:")?;
            for l in lines {
                write!(f, "\n  | {l}")?;
            }
        }
        Ok(())
    }
}

impl Help for BuildFailed {
    fn diagnoses(&self) -> Vec<String> {
        self.diagnoses.iter().map(|d| d.problem.clone()).collect()
    }

    fn hints(&self) -> Vec<String> {
        let mut hints: Vec<String> = self.diagnoses.iter().flat_map(|d| d.fix.clone()).collect();
        if !hints.is_empty() {
            return hints;
        }
        // Commands that work whether or not the user's nix.conf enables flakes.
        let nix = format!("nix {} '{}'", super::FEATURES[0], super::FEATURES[1]);
        let above = if self.shown {
            "the full log is above; "
        } else {
            ""
        };
        match super::failed_drv(&self.log) {
            Some(drv) => hints.push(format!(
                "{above}`{nix} log {drv}` shows the whole log of the derivation that failed"
            )),
            None => {
                let args = self.command.strip_prefix("nix ").unwrap_or(&self.command);
                hints.push(format!(
                    "{above}run `{nix} {args} --print-build-logs` in the project to see the \
                     whole log"
                ));
            }
        }
        hints
    }
}

impl std::error::Error for BuildFailed {}

/// Builds the firmware of `manifest` for `board` with Nix: checks git tracking, keeps the std
/// lock in sync (build-std boards), runs `nix build .#default`, finds the ELF and reads its sizes.
/// Progress goes to stderr, one line per step, with nix's own output live in between; the size
/// line is printed too.
pub fn build(manifest: &Manifest, board: &Board, opts: &BuildOptions) -> Result<Built> {
    let nix = Nix::find(opts.verbose)?.with_args(&opts.nix_args);
    nix.require_version()?;
    let flake_dir = flake_dir(manifest)?;
    if crate::flake_lock::prepare(&flake_dir)? {
        status(
            "Wrote",
            "flake.lock from nixflash's tested pins (it was missing; `nixflash update` moves \
             them on purpose)",
        );
    } else if crate::flake_lock::inspect(&flake_dir) == crate::flake_lock::LockFile::Missing {
        status(
            "Warning",
            "there is no flake.lock: Nix locks the flake's inputs to their newest revisions",
        );
    }
    let git = Git::of(&flake_dir);
    check_git(&flake_dir, &git, opts.git_add)?;
    interrupt::check()?;
    say_if_first_build(&flake_dir, &opts.nix_args);

    let std_lock = if board.rust.build_std {
        std_lock::sync(&nix, &flake_dir, &git, board, opts)?
    } else {
        StdLock::NotNeeded
    };
    interrupt::check()?;

    status(
        "Building",
        &format!("{} for the {} with nix…", manifest.name, board.name),
    );
    let mut args = vec!["build", ".#default", "--json"];
    if opts.link {
        args.extend(["--out-link", "result"]);
    } else {
        args.push("--no-link");
    }
    let run = nix.run(&flake_dir, &args, &format!("building {}", manifest.name))?;
    interrupt::check()?;
    if !run.success() {
        let vars = diagnosis_vars(&flake_dir, &git, board, &opts.nix_args);
        let shown = !std::io::IsTerminal::is_terminal(&std::io::stderr());
        return Err(BuildFailed::new("nix build .#default", run, shown, &vars).into());
    }

    let out = out_path(&run.stdout_text())?;
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
        return Err(Failure::new(format!(
            "the build has no firmware {}\n(its bin/ holds: {})",
            elf.display(),
            if found.is_empty() {
                "nothing".to_string()
            } else {
                found.join(", ")
            }
        ))
        .hint(format!(
            "the flake must install the binary `{bin}` as bin/{bin}.elf (nixflash's template \
             renames it in postInstall)"
        ))
        .into());
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

/// Before a first build (the flake's inputs are not in the store yet), says once that it
/// downloads them and a toolchain, which takes a while. Inputs the user overrides (after `--`)
/// are not downloaded.
fn say_if_first_build(flake_dir: &Path, nix_args: &[String]) {
    let overridden: Vec<&str> = nix_args
        .windows(2)
        .filter(|w| w[0] == "--override-input")
        .map(|w| w[1].as_str())
        .collect();
    let missing: Vec<String> = missing_inputs(flake_dir)
        .into_iter()
        .filter(|i| !overridden.contains(&i.as_str()))
        .collect();
    if missing.is_empty() {
        return;
    }
    let toolchain = std_lock::channel(flake_dir)
        .map(|c| format!("the Rust toolchain ({c})"))
        .unwrap_or_else(|| "the Rust toolchain".into());
    status(
        "Note",
        &format!(
            "this is the first build with these pins: Nix downloads {} and {toolchain}, then \
             builds every dependency. That takes minutes (and the network); later builds reuse \
             it all.",
            missing.join(", ")
        ),
    );
}

/// `path` relative to `base` when it lies below it, else as is.
fn pathdiff(path: &Path, base: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rel) if !rel.as_os_str().is_empty() => format!("./{}", rel.display()),
        _ => path.display().to_string(),
    }
}
