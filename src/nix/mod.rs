//! Driving Nix: finding it, running it with the user's own arguments, and `nix build` of a
//! project's firmware with its output live, Ctrl-C forwarded, and a diagnosis on failure.
//!
//! [`build`] is the one entry point for commands that need firmware (`build`, `flash`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::{Failure, Kind};
use crate::git::{self, Git};
use crate::interrupt;
use crate::manifest::Manifest;
use crate::process::{self, Cmd, Output, Show};
use crate::report::{Event, Reporter};

mod build;
mod excerpt;
pub mod log;
mod rebuild;
pub mod std_lock;
mod store;
mod version_cache;

pub use build::{build, build_failed, diagnosis_vars, BuildOptions, Built};
pub use excerpt::{failed_drv, relevant_lines};
pub use rebuild::{rebuild, Rebuilt};

use crate::version::Version;
pub use store::missing_inputs;

/// The flags that make any Nix 2.4+ accept flakes, whatever the user's nix.conf says.
pub const FEATURES: [&str; 2] = ["--extra-experimental-features", "nix-command flakes"];

/// Settings of every nix command nixflash runs: no "Git tree ... is dirty" warning, which every
/// build of a project with uncommitted edits would print (nixflash git-adds what the flake needs).
pub const SETTINGS: [&str; 3] = ["--option", "warn-dirty", "false"];

/// The first Nix whose `nix flake update` takes input names; older ones need
/// `nix flake lock --update-input <name>`.
pub const FLAKE_UPDATE_TAKES_INPUTS: Version = Version(2, 19, 0);

/// The oldest Nix a generated project builds with: what the nixpkgs nixflash pins needs
/// (templates/pins.toml), and never below 2.4 (flakes, `nix build --json`).
pub fn min_version() -> Version {
    crate::pins::pins()
        .ok()
        .and_then(|p| p.values().filter_map(|p| p.min_nix).max())
        .unwrap_or(Version(2, 4, 0))
        .max(Version(2, 4, 0))
}

/// What is wrong with Nix `v` at `path` when it is older than `min`: the problem and what to do.
pub fn version_problem(path: &Path, v: Version, min: Version) -> Option<(String, String)> {
    (v < min).then(|| {
        (
            format!(
                "nix {v} ({}) is older than {min}, which the nixpkgs that projects pin needs",
                path.display()
            ),
            "install a current Nix (https://nixos.org/download), or put a newer one first on \
             PATH; distributions' packages are often old (Debian 12 has 2.8)"
                .to_string(),
        )
    })
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
    /// Whether [`Nix::require_version`] took the version remembered from an earlier run.
    version_recalled: bool,
}

impl Nix {
    /// Finds `nix` on PATH, or says how to install it.
    pub fn find(verbose: bool) -> Result<Nix> {
        match which::which("nix") {
            Ok(path) => Ok(Nix {
                path,
                verbose,
                extra_args: Vec::new(),
                version_recalled: false,
            }),
            Err(_) => Err(Failure::new(
                Kind::NixMissing,
                "nix is not installed (no `nix` on PATH)",
            )
            .hint(
                "nixflash builds firmware with Nix, which brings the Rust toolchain; install \
                     it with `sh <(curl -L https://nixos.org/nix/install) --daemon` (see \
                     https://nixos.org/download), then open a new shell",
            )
            .hint("flakes need no configuration: nixflash enables them for its own nix calls")
            .into()),
        }
    }

    /// The same nix, with the user's own arguments for every command it runs.
    pub fn with_args(mut self, extra_args: &[String]) -> Nix {
        self.extra_args = extra_args.to_vec();
        self
    }

    /// The user's arguments after `args`: what a nix command is run with, and shows.
    fn all_args<'a, S: AsRef<str>>(&'a self, args: &'a [S]) -> Vec<&'a str> {
        args.iter()
            .map(AsRef::as_ref)
            .chain(self.extra_args.iter().map(String::as_str))
            .collect()
    }

    /// A `nix` command with flakes enabled, run in `dir`: `args`, then the user's own arguments.
    pub fn command<S: AsRef<str>>(&self, dir: &Path, args: &[S]) -> Cmd {
        Cmd::new(&self.path)
            .args(FEATURES)
            .args(SETTINGS)
            .args(self.all_args(args))
            .dir(dir)
    }

    /// Runs `nix <args>` in `dir` with its progress reported (see [`log`]), `title` saying what
    /// it does; with `verbose`, the command is reported first. The output's stderr is the plain
    /// log (what `nix ... -L` would have printed).
    pub fn run<S: AsRef<str>>(
        &self,
        dir: &Path,
        args: &[S],
        title: &str,
        reporter: &dyn Reporter,
    ) -> Result<Output> {
        if self.verbose {
            let line = process::shell_line(&self.all_args(args));
            reporter.report(Event::step("Running", format!("`nix {line}`")));
        }
        let mut log = log::NixLog::new(title, reporter);
        let mut each = |l: &str| log.line(l);
        // The log format is nixflash's business, not part of the command it shows.
        let run = self
            .command(dir, args)
            .args(["--log-format", "internal-json"])
            .run(Show::Each(&mut each))
            .with_context(|| format!("cannot run {}", self.path.display()));
        let text = log.finish();
        let mut out = run?;
        out.stderr = text;
        Ok(out)
    }

    /// Checks that this Nix is one a generated project builds with ([`min_version`]): an older
    /// one fails in ways that say nothing of its age (a flake it cannot read, a download it
    /// cannot make look like being offline). A version remembered for this very binary (see
    /// [`version_cache`]) is taken without starting nix.
    pub fn require_version(&mut self) -> Result<Version> {
        let min = min_version();
        if let Some(v) = version_cache::recall(&self.path).filter(|v| *v >= min) {
            self.version_recalled = true;
            return Ok(v);
        }
        self.version_recalled = false;
        let v = self.version()?;
        version_cache::remember(&self.path, v);
        self.version_problem(v)
    }

    /// After a nix command failed, when [`Nix::require_version`] took a remembered version:
    /// asks nix for its version now, so that a nix changed behind the same file (a wrapper
    /// script) that is now too old gets its own error rather than the failure it caused.
    pub fn recheck_version(&self) -> Result<()> {
        if self.version_recalled {
            let v = self.version()?;
            version_cache::remember(&self.path, v);
            self.version_problem(v)?;
        }
        Ok(())
    }

    /// `v`, or the error that it is too old.
    fn version_problem(&self, v: Version) -> Result<Version> {
        match version_problem(&self.path, v, min_version()) {
            None => Ok(v),
            Some((problem, fix)) => Err(Failure::new(Kind::NixTooOld, problem).hint(fix).into()),
        }
    }

    /// `nix --version`, e.g. 2.26.3.
    pub fn version(&self) -> Result<Version> {
        let out = Cmd::new(&self.path)
            .arg("--version")
            .output()
            .with_context(|| format!("cannot run {}", self.path.display()))?;
        let text = out.stdout_text();
        Version::find_in(&text)
            .with_context(|| format!("`nix --version` printed nothing useful: {text}"))
    }

    /// `nix build .#<attr> --json --no-link`, its progress reported: its out path, or the
    /// failed run.
    pub fn realise(
        &self,
        flake_dir: &Path,
        attr: &str,
        reporter: &dyn Reporter,
    ) -> Result<std::result::Result<PathBuf, Output>> {
        let installable = format!(".#{attr}");
        let run = self.run(
            flake_dir,
            &["build", &installable, "--json", "--no-link"],
            &format!("building .#{attr}"),
            reporter,
        )?;
        interrupt::check()?;
        if !run.success() {
            return Ok(Err(run));
        }
        out_path(&run.stdout_text()).map(Ok)
    }

    /// Evaluates the flake's firmware derivation (`packages.<system>.default.drvPath`) without
    /// building anything: its path, or nix's error (the `error:` lines of its log).
    pub fn evaluate_firmware(&self, flake_dir: &Path, reporter: &dyn Reporter) -> Result<String> {
        let attr = format!(".#packages.{}.default.drvPath", system());
        let run = self.run(
            flake_dir,
            &["eval", "--raw", &attr],
            "evaluating the flake",
            reporter,
        )?;
        interrupt::check()?;
        if !run.success() {
            let lines = relevant_lines(&run.stderr, 10);
            let errors: Vec<&str> = lines
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .map(|l| l.strip_prefix("error:").map(str::trim).unwrap_or(l))
                .collect();
            anyhow::bail!("{}", errors.join(" "));
        }
        Ok(run.stdout_text().trim().to_string())
    }
}

/// The folder holding the project's flake.nix: the package's, or the nearest one above it (a
/// workspace root).
pub fn flake_dir(manifest: &Manifest) -> Result<PathBuf> {
    manifest
        .root
        .ancestors()
        .find(|d| d.join("flake.nix").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            Failure::new(
                Kind::NoFlake,
                format!(
                    "no flake.nix in {} or the folders above it",
                    manifest.root.display()
                ),
            )
            .hint(format!(
                "add one with `nixflash init --board {}` (it also writes rust-toolchain.toml and \
                 .cargo/config.toml)",
                manifest.board.as_deref().unwrap_or("<id>")
            ))
            .into()
        })
}

/// The nix arguments that update `inputs` (all of them when empty) with Nix `version`.
fn update_args(version: Version, inputs: &[String]) -> Vec<String> {
    if inputs.is_empty() || version >= FLAKE_UPDATE_TAKES_INPUTS {
        let mut args = vec!["flake".to_string(), "update".to_string()];
        args.extend(inputs.iter().cloned());
        return args;
    }
    let mut args = vec!["flake".to_string(), "lock".to_string()];
    for input in inputs {
        args.extend(["--update-input".to_string(), input.clone()]);
    }
    args
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

/// The git step of a build: intent-to-add what the flake needs, or report it.
fn check_git(flake_dir: &Path, git: &Git, add: bool, reporter: &dyn Reporter) -> Result<()> {
    match git {
        Git::NotInstalled => {
            reporter.report(Event::step(
                "Note",
                "git is not installed: Nix copies the whole project folder (target/ too) on every \
                 build; install git and `git init` the project to make builds faster",
            ));
            return Ok(());
        }
        Git::NotARepo => {
            reporter.report(Event::step(
                "Note",
                format!(
                    "{} is not in a git repository: Nix copies the whole folder (target/ too) on \
                     every build; `git init && git add -A` makes builds faster",
                    flake_dir.display()
                ),
            ));
            return Ok(());
        }
        Git::Repo { .. } => {}
    }
    let u = match git::untracked(flake_dir) {
        Ok(u) => u,
        // A `.git` that git refuses (another user's, a broken one): as git sees the folder.
        Err(e) => match Git::asked(flake_dir) {
            Git::Repo { .. } => return Err(e),
            seen => return check_git(flake_dir, &seen, add, reporter),
        },
    };
    let shell_list = |files: &[PathBuf]| {
        let words: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        process::shell_line(&words)
    };
    if !u.files.is_empty() {
        let list = shell_list(&u.files);
        if add {
            git::intent_to_add(flake_dir, &u.files)?;
            reporter.report(Event::step(
                "Git-added",
                format!(
                    "{list} (intent-to-add): a flake only sees the files git tracks; commit them \
                     when you are ready"
                ),
            ));
        } else {
            reporter.report(Event::warning(format!(
                "git does not track {list}, so Nix cannot see it; run: git add \
                 --intent-to-add -- {list}"
            )));
        }
    }
    if !u.ignored.is_empty() {
        let list = shell_list(&u.ignored);
        reporter.report(Event::warning(format!(
            "{list} is ignored by .gitignore, so Nix cannot see it; remove it from .gitignore, \
             or run: git add --force --intent-to-add -- {list}"
        )));
    }
    Ok(())
}

/// `nix flake update [inputs…]` in the flake folder, its progress reported (before Nix 2.19,
/// which does not take input names there: `nix flake lock --update-input <input>…`).
pub fn flake_update(
    nix: &Nix,
    flake_dir: &Path,
    inputs: &[String],
    reporter: &dyn Reporter,
) -> Result<()> {
    let version = if inputs.is_empty() {
        FLAKE_UPDATE_TAKES_INPUTS
    } else {
        nix.version()?
    };
    let args = update_args(version, inputs);
    let run = nix.run(flake_dir, &args, "updating flake.lock", reporter)?;
    interrupt::check()?;
    if !run.success() {
        nix.recheck_version()?;
        let lines: Vec<String> = relevant_lines(&run.stderr, 15)
            .iter()
            .map(|l| format!("  | {l}"))
            .collect();
        return Err(Failure::new(
            Kind::UpdateFailed,
            format!("`nix flake update` failed:\n{}", lines.join("\n")),
        )
        .hint(
            "updating needs the network (GitHub); inputs can be named to update only those: \
                 nixflash update rust-overlay",
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_updated_the_way_the_nix_at_hand_takes_them() {
        let inputs = ["rust-overlay".to_string(), "crane".to_string()];
        assert_eq!(
            update_args(Version(2, 26, 3), &inputs),
            ["flake", "update", "rust-overlay", "crane"]
        );
        assert_eq!(
            update_args(Version(2, 18, 1), &inputs),
            [
                "flake",
                "lock",
                "--update-input",
                "rust-overlay",
                "--update-input",
                "crane"
            ]
        );
        assert_eq!(update_args(Version(2, 8, 0), &[]), ["flake", "update"]);
    }

    /// The git step of a build, with real git: what Nix cannot see is a warning without
    /// `git_add`, a `Git-added` step with it; outside a repository, a note. Nothing is printed.
    #[test]
    fn the_git_step_reports_its_events() {
        use crate::report::Recorder;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let git = |args: &[&str]| {
            let out = Cmd::new("git").args(args).dir(dir).output().unwrap();
            assert!(out.success(), "git {args:?}: {}", out.stderr);
        };
        let outside = Recorder::default();
        check_git(dir, &Git::of(dir), true, &outside).unwrap();
        assert_eq!(outside.steps().len(), 1);
        assert!(
            outside.steps()[0].starts_with("Note ") && outside.steps()[0].contains("git init"),
            "{:?}",
            outside.steps()
        );

        git(&["init", "-q"]);
        std::fs::write(dir.join("flake.nix"), "{ outputs = _: { }; }\n").unwrap();
        std::fs::write(dir.join("Cargo.lock"), "version = 4\n").unwrap();
        std::fs::write(dir.join(".gitignore"), "Cargo.lock\n").unwrap();
        let repo = Git::of(dir);
        let warned = Recorder::default();
        check_git(dir, &repo, false, &warned).unwrap();
        assert_eq!(
            warned.steps(),
            [
                "Warning git does not track flake.nix, so Nix cannot see it; run: git add \
                 --intent-to-add -- flake.nix",
                "Warning Cargo.lock is ignored by .gitignore, so Nix cannot see it; remove it \
                 from .gitignore, or run: git add --force --intent-to-add -- Cargo.lock"
            ]
        );

        let added = Recorder::default();
        check_git(dir, &repo, true, &added).unwrap();
        let steps = added.steps();
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert!(
            steps[0].starts_with("Git-added flake.nix (intent-to-add)"),
            "{steps:?}"
        );
        assert!(
            steps[1].starts_with("Warning Cargo.lock is ignored"),
            "{steps:?}"
        );
        // Added now: the next build has nothing to say about it.
        let again = Recorder::default();
        check_git(dir, &repo, true, &again).unwrap();
        assert_eq!(again.steps().len(), 1, "{:?}", again.steps());
    }

    #[test]
    fn out_path_reads_nix_build_json() {
        let json = r#"[{"drvPath":"/nix/store/a-fx.drv","outputs":{"out":"/nix/store/b-fx"},"startTime":0,"stopTime":0}]"#;
        assert_eq!(out_path(json).unwrap(), PathBuf::from("/nix/store/b-fx"));
        assert!(out_path("[]").is_err());
    }
}
