//! `nix build` of a project's firmware: its output live (or as a progress line), Ctrl-C
//! forwarded, the size of what it built, and on failure the lines that matter and a diagnosis.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::std_lock::{self, StdLock};
use super::{check_git, flake_dir, missing_inputs, out_path, Nix};
use crate::board::Board;
use crate::diagnose;
use crate::error::{Failure, Kind};
use crate::firmware::hash::Hashes;
use crate::firmware::size::{self, SizeReport};
use crate::git::Git;
use crate::interrupt;
use crate::manifest::Manifest;
use crate::process::Output;
use crate::report::{Event, Reporter};

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
    /// The SHA-256 of the ELF and of the bytes that go to the board.
    pub sha256: Hashes,
    pub std_lock: StdLock,
}

/// The failure of a `nix build` (`command`, e.g. `nix build .#default`) that ended as `run`:
/// the failure and the log lines that matter as its message, what the log is known to mean as
/// its diagnoses, and their fixes as hints (else where the whole log is). `shown`: whether the
/// log was shown as it came.
pub fn build_failed(command: &str, run: Output, shown: bool, vars: &[(&str, String)]) -> Failure {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let diagnoses = diagnose::diagnose(&run.stderr, &vars);
    let mut message = match run.status.code() {
        Some(c) => format!("`{command}` failed (exit code {c})"),
        None => format!("`{command}` was stopped by a signal"),
    };
    let lines = super::relevant_lines(&run.stderr, 25);
    if !lines.is_empty() {
        message.push_str("\nfrom the nix log:");
        for l in lines {
            message.push_str(&format!("\n  | {l}"));
        }
    }
    let mut f = Failure::new(Kind::BuildFailed, message);
    for d in &diagnoses {
        f = f.diagnosis(d.problem.clone());
    }
    let fixes: Vec<String> = diagnoses.into_iter().flat_map(|d| d.fix).collect();
    if fixes.is_empty() {
        return f.hint(whole_log_hint(command, &run.stderr, shown));
    }
    fixes.into_iter().fold(f, Failure::hint)
}

/// Where the whole log of a failed build is.
fn whole_log_hint(command: &str, log: &str, shown: bool) -> String {
    // Commands that work whether or not the user's nix.conf enables flakes.
    let nix = format!("nix {} '{}'", super::FEATURES[0], super::FEATURES[1]);
    let above = if shown { "the full log is above; " } else { "" };
    match super::failed_drv(log) {
        Some(drv) => {
            format!("{above}`{nix} log {drv}` shows the whole log of the derivation that failed")
        }
        None => {
            let args = command.strip_prefix("nix ").unwrap_or(command);
            format!(
                "{above}run `{nix} {args} --print-build-logs` in the project to see the whole log"
            )
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

/// Builds the firmware of `manifest` for `board` with Nix: checks git tracking, keeps the std
/// lock in sync (build-std boards), runs `nix build .#default`, finds the ELF, reads its sizes
/// and hashes it with `hash` (`crate::flash::hash::hashes`, which may need the flasher).
/// Each step is reported to `reporter`, nix's own output as it comes, and at the end
/// [`Event::Built`] (with the size and the hashes).
pub fn build(
    manifest: &Manifest,
    board: &Board,
    opts: &BuildOptions,
    hash: &dyn Fn(&Path) -> Result<Hashes>,
    reporter: &dyn Reporter,
) -> Result<Built> {
    let mut nix = Nix::find(opts.verbose)?.with_args(&opts.nix_args);
    nix.require_version()?;
    let flake_dir = flake_dir(manifest)?;
    flake_lock_step(&flake_dir, reporter)?;
    let git = Git::of(&flake_dir);
    check_git(&flake_dir, &git, opts.git_add, reporter)?;
    interrupt::check()?;
    say_if_first_build(&flake_dir, &opts.nix_args, reporter);

    let std_lock = if board.rust.build_std {
        std_lock::sync(&nix, &flake_dir, &git, board, opts, reporter)?
    } else {
        StdLock::NotNeeded
    };
    interrupt::check()?;

    reporter.report(Event::step(
        "Building",
        format!("{} for the {} with nix…", manifest.name, board.name),
    ));
    let mut args = vec!["build", ".#default", "--json"];
    if opts.link {
        args.extend(["--out-link", "result"]);
    } else {
        args.push("--no-link");
    }
    let title = format!("building {}", manifest.name);
    let run = nix.run(&flake_dir, &args, &title, reporter)?;
    interrupt::check()?;
    if !run.success() {
        nix.recheck_version()?;
        let vars = diagnosis_vars(&flake_dir, &git, board, &opts.nix_args);
        let shown = reporter.shows_details();
        return Err(build_failed("nix build .#default", run, shown, &vars).into());
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
        let holds = match found.join(", ") {
            s if s.is_empty() => "nothing".to_string(),
            s => s,
        };
        let message = format!(
            "the build has no firmware {}\n(its bin/ holds: {holds})",
            elf.display()
        );
        return Err(Failure::new(Kind::Flake, message)
            .hint(format!(
                "the flake must install the binary `{bin}` as bin/{bin}.elf (nixflash's template \
                 renames it in postInstall)"
            ))
            .into());
    }
    let link = opts.link.then(|| flake_dir.join("result"));
    let size = size::analyze_file(&elf, board)?;
    let sha256 = hash(&elf)?;
    reporter.report(Event::Built {
        elf: elf.clone(),
        link: link.clone(),
        size: size.clone(),
        hashes: sha256.clone(),
    });
    if !size.fits() {
        reporter.report(Event::warning(format!(
            "the firmware does not fit the {} ({} B of flash, {} B of RAM)",
            board.name, board.memory.flash, board.memory.ram
        )));
    }
    warn_if_in_settings(&elf, board, reporter);
    Ok(Built {
        out,
        elf,
        link,
        size,
        sha256,
        std_lock,
    })
}

/// Warns when the firmware's bytes reach into the board's settings region (AVR boards keep it
/// right below the bootloader, where nothing stops a large firmware).
fn warn_if_in_settings(elf: &Path, board: &Board, reporter: &dyn Reporter) {
    let Ok(bytes) = std::fs::read(elf) else {
        return;
    };
    if let (Some(end), Some(r)) = (
        size::reaches_settings(&bytes, &board.memory),
        board.memory.settings,
    ) {
        reporter.report(Event::warning(format!(
            "the firmware's bytes reach {end:#x}, into the {}'s settings region at {:#x}: \
             settings cannot be written to it (`flash --set` refuses), and it reads its own \
             code as settings; make it end below {:#x}",
            board.name, r.at, r.at
        )));
    }
}

/// The flake.lock step of a build: writes nixflash's tested pins when there is none (and says
/// so), or warns that Nix will lock to the newest revisions when there is none to write.
fn flake_lock_step(flake_dir: &Path, reporter: &dyn Reporter) -> Result<()> {
    if crate::flake_lock::prepare(flake_dir)? {
        reporter.report(Event::step(
            "Wrote",
            "flake.lock from nixflash's tested pins (it was missing; `nixflash update` moves \
             them on purpose)",
        ));
    } else if crate::flake_lock::inspect(flake_dir) == crate::flake_lock::LockFile::Missing {
        reporter.report(Event::warning(
            "there is no flake.lock: Nix locks the flake's inputs to their newest revisions",
        ));
    }
    Ok(())
}

/// Before a first build (the flake's inputs are not in the store yet), says once that it
/// downloads them and a toolchain, which takes a while. Inputs the user overrides (after `--`)
/// are not downloaded.
fn say_if_first_build(flake_dir: &Path, nix_args: &[String], reporter: &dyn Reporter) {
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
    reporter.report(Event::step(
        "Note",
        format!(
            "this is the first build with these pins: Nix downloads {} and {toolchain}, then \
             builds every dependency. That takes minutes (and the network); later builds reuse \
             it all.",
            missing.join(", ")
        ),
    ));
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;
    use crate::error::Report;

    fn failed(log: &str) -> Report {
        let run = Output {
            status: std::process::ExitStatus::from_raw(1 << 8),
            stdout: Vec::new(),
            stderr: log.to_string(),
        };
        let vars = [("git_root", "/src/blinky".to_string())];
        Report::of(&build_failed("nix build .#default", run, false, &vars).into())
    }

    #[test]
    fn a_failed_build_says_its_kind_diagnoses_and_fixes() {
        let r = failed(
            "error: path '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-source/src/led.rs' does not \
             exist\n",
        );
        assert_eq!(r.kind, Kind::BuildFailed);
        assert!(r
            .error
            .starts_with("`nix build .#default` failed (exit code 1)"));
        assert_eq!(r.diagnoses.len(), 1, "{r:?}");
        assert!(r.diagnoses[0].contains("`src/led.rs`"), "{r:?}");
        assert_eq!(
            r.hints[0],
            "git -C /src/blinky add --intent-to-add -- src/led.rs"
        );
        // Without a diagnosis, the hint says where the whole log is.
        let r = failed("error: something else entirely\n");
        assert_eq!(r.kind, Kind::BuildFailed);
        assert!(r.diagnoses.is_empty());
        assert!(r.hints[0].contains("--print-build-logs"), "{r:?}");
    }
}
