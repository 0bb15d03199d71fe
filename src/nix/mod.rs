//! Driving Nix: finding it, running it with the user's own arguments, and `nix build` of a
//! project's firmware with its output live, Ctrl-C forwarded, and a diagnosis on failure.
//!
//! [`build`] is the one entry point for commands that need firmware (`build`, `flash`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::board::Board;
use crate::diagnose::{self, Diagnosis};
use crate::error::{Failure, Help};
use crate::git::{self, Git};
use crate::interrupt;
use crate::manifest::Manifest;
use crate::process::{self, Cmd, Output, Show};

pub mod log;
mod store;

use crate::progress::status;
use crate::size::{self, SizeReport};
use crate::std_lock::{self, StdLock};
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
    crate::render::pins()
        .ok()
        .and_then(|p| p.values().filter_map(|p| p.min_nix).max())
        .unwrap_or(Version(2, 4, 0))
        .max(Version(2, 4, 0))
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
            Err(_) => Err(Failure::new("nix is not installed (no `nix` on PATH)")
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

    /// A `nix` command with flakes enabled, run in `dir`: `args`, then the user's own arguments.
    pub fn command<S: AsRef<str>>(&self, dir: &Path, args: &[S]) -> Cmd {
        let args: Vec<&str> = args
            .iter()
            .map(AsRef::as_ref)
            .chain(self.extra_args.iter().map(String::as_str))
            .collect();
        if self.verbose {
            status("Running", &format!("`nix {}`", process::shell_line(&args)));
        }
        Cmd::new(&self.path)
            .args(FEATURES)
            .args(SETTINGS)
            .args(&args)
            .dir(dir)
    }

    /// Runs `nix <args>` in `dir` with its progress shown (see [`log`]), `title` saying what it
    /// does. The output's stderr is the plain log (what `nix ... -L` would have printed).
    pub fn run<S: AsRef<str>>(&self, dir: &Path, args: &[S], title: &str) -> Result<Output> {
        let mut log = log::NixLog::new(title);
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

    /// `nix build .#<attr> --json --no-link`, quietly: its out path, or the failed run.
    pub fn realise(
        &self,
        flake_dir: &Path,
        attr: &str,
    ) -> Result<std::result::Result<PathBuf, Output>> {
        let installable = format!(".#{attr}");
        let run = self.run(
            flake_dir,
            &["build", &installable, "--json", "--no-link"],
            &format!("building .#{attr}"),
        )?;
        interrupt::check()?;
        if !run.success() {
            return Ok(Err(run));
        }
        out_path(&run.stdout_text()).map(Ok)
    }

    /// Evaluates the flake's firmware derivation (`packages.<system>.default.drvPath`) without
    /// building anything: its path, or nix's error (the `error:` lines of its log).
    pub fn evaluate_firmware(&self, flake_dir: &Path) -> Result<String> {
        let attr = format!(".#packages.{}.default.drvPath", system());
        let run = self.run(flake_dir, &["eval", "--raw", &attr], "evaluating the flake")?;
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
            Failure::new(format!(
                "no flake.nix in {} or the folders above it",
                manifest.root.display()
            ))
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
    let u = git::untracked(flake_dir)?;
    let shell_list = |files: &[PathBuf]| {
        let words: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        process::shell_line(&words)
    };
    if !u.files.is_empty() {
        let list = shell_list(&u.files);
        if add {
            git::intent_to_add(flake_dir, &u.files)?;
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
pub fn diagnosis_vars(flake_dir: &Path, git: &Git, board: &Board) -> Vec<(&'static str, String)> {
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
        Ok(())
    }
}

impl Help for BuildFailed {
    fn diagnoses(&self) -> Vec<String> {
        self.diagnoses.iter().map(|d| d.problem.clone()).collect()
    }

    fn hints(&self) -> Vec<String> {
        let mut hints: Vec<String> = self.diagnoses.iter().flat_map(|d| d.fix.clone()).collect();
        if hints.is_empty() && self.shown {
            hints.push(
                "the full log is above; `nix log` on the failed derivation shows a builder's log \
                 again"
                    .into(),
            );
        } else if hints.is_empty() {
            hints.push(format!(
                "run `{}` in the project to see the whole log",
                self.command
            ));
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
    let flake_dir = flake_dir(manifest)?;
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
        let vars = diagnosis_vars(&flake_dir, &git, board);
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

/// `nix flake update [inputs…]` in the flake folder, with live output (before Nix 2.19, which
/// does not take input names there: `nix flake lock --update-input <input>…`).
pub fn flake_update(nix: &Nix, flake_dir: &Path, inputs: &[String]) -> Result<()> {
    let version = if inputs.is_empty() {
        FLAKE_UPDATE_TAKES_INPUTS
    } else {
        nix.version()?
    };
    let args = update_args(version, inputs);
    let run = nix.run(flake_dir, &args, "updating flake.lock")?;
    interrupt::check()?;
    if !run.success() {
        let lines: Vec<String> = relevant_lines(&run.stderr, 15)
            .iter()
            .map(|l| format!("  | {l}"))
            .collect();
        return Err(Failure::new(format!("`nix flake update` failed:\n{}", lines.join("\n")))
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
}
