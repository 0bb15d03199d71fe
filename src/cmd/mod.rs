//! One module per command: argument structs (clap) and what the command prints or asks. The work
//! is in the library.

pub(crate) mod boards;
pub(crate) mod build;
pub mod cli;
pub(crate) mod doctor;
pub(crate) mod firmware;
pub(crate) mod flash;
pub(crate) mod flash_many;
pub(crate) mod image;
pub(crate) mod monitor;
pub(crate) mod new;
pub(crate) mod ports;
pub(crate) mod sim;
pub(crate) mod terminal;
pub(crate) mod update;
pub(crate) mod verify;

use std::io::{self, IsTerminal, Write};

use crate::board::{Board, Database};
use crate::context::Context;
use crate::error::{Failure, Kind, Report};
use crate::manifest::ReadBy;
use crate::nix::BuildOptions;
use crate::serial::{self, PortChoice};
use anyhow::{Context as _, Result};
pub use terminal::{status, Terminal};

/// The board a command needs, if any: a warning about a board file is left to the error when
/// its board is the one needed.
#[derive(Debug, Clone, Copy)]
pub enum Needs<'a> {
    /// No board in particular (a list).
    Nothing,
    /// This one (`--board uno`).
    Board(&'a str),
    /// The one the project's Cargo.toml names, in a project.
    ProjectBoard,
}

/// The context of the current folder, after the warnings about board files the command can do
/// without (see [`context_at`]).
pub fn context(needs: Needs) -> Result<Context> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    context_at(&cwd, needs)
}

/// The context of `dir`. A board file that cannot be used is a warning, printed here, and its
/// board is left out; the board the command needs is its error instead, when the command asks
/// for it.
pub fn context_at(dir: &std::path::Path, needs: Needs) -> Result<Context> {
    let ctx = Context::at(dir)?;
    let project_board;
    let needed = match needs {
        Needs::Nothing => None,
        Needs::Board(b) => Some(b),
        Needs::ProjectBoard => {
            project_board = match ctx.root {
                Some(_) => ctx.manifest().ok().and_then(|m| m.board.clone()),
                None => None,
            };
            project_board.as_deref()
        }
    };
    for w in ctx.db.warnings() {
        if !needed.is_some_and(|b| w.about(b)) {
            status("Warning", &w.message);
        }
    }
    Ok(ctx)
}

/// What follows `--` on the command line of the commands that run nix.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NixArgs {
    /// Arguments for every nix command nixflash runs, after `--` (see below)
    #[arg(last = true, value_name = "NIX_ARGS", allow_hyphen_values = true)]
    pub nix_args: Vec<String>,
}

/// The flags of every command that runs nix on the project (build, flash, update).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NixFlags {
    /// Do not `git add --intent-to-add` untracked files the flake needs: print the command instead
    #[arg(long)]
    pub no_git_add: bool,
    /// Show each nix command nixflash runs, and how the project was read
    #[arg(long, short)]
    pub verbose: bool,
    #[command(flatten)]
    pub nix: NixArgs,
}

impl NixFlags {
    /// The context of the current folder; with --verbose, how its project was read is said.
    pub fn context(&self) -> Result<Context> {
        let ctx = context(Needs::ProjectBoard)?;
        if self.verbose {
            let m = ctx.manifest()?;
            status(
                "Project",
                &format!(
                    "{} in {}, read {}",
                    m.name,
                    path(&m.root),
                    match m.read_by {
                        ReadBy::CargoMetadata => "by `cargo metadata --no-deps --offline`",
                        ReadBy::Toml => "from Cargo.toml directly (it says all nixflash needs)",
                        ReadBy::TomlWithoutCargo => {
                            "from Cargo.toml directly (no cargo answered)"
                        }
                    }
                ),
            );
        }
        Ok(ctx)
    }

    /// The Nix of a command with these flags (None when it is not installed), for the tools the
    /// project's flake pins.
    pub fn nix(&self) -> Option<crate::nix::Nix> {
        let nix = crate::nix::Nix::find(self.verbose).ok()?;
        Some(nix.with_args(&self.nix.nix_args))
    }

    /// What a build with these flags does (a `result` link kept).
    pub fn build_options(&self) -> BuildOptions {
        BuildOptions {
            git_add: !self.no_git_add,
            verbose: self.verbose,
            nix_args: self.nix.nix_args.clone(),
            ..Default::default()
        }
    }
}

/// The help text about [`NixArgs`], a literal for `concat!` in `after_help`.
macro_rules! nix_args_help {
    () => {
        "Arguments after `--` go to every nix command nixflash runs (the firmware build, the \
         rust-src realisation behind nix/std-Cargo.lock, the flasher build, `nix flake update`). \
         Remote builders and binary caches are how a team outgrows one machine:\n  \
         -- --builders 'ssh://big-box x86_64-linux'      build on another machine\n  \
         -- --option extra-substituters https://cache.example.org\n     \
            --option extra-trusted-public-keys 'cache.example.org-1:...'   a team's binary cache\n  \
         -- --offline                                    use only what the Nix store has\n  \
         -- --override-input nixpkgs path:/src/nixpkgs   a local nixpkgs instead of the pinned one"
    };
}
pub(crate) use nix_args_help;

/// Set once stdout turned out to be a closed pipe.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes `text` to stdout (colour kept on a terminal, dropped when piped or with NO_COLOR). On a
/// closed pipe (`nixflash boards --json | head -1`) the rest of the output is dropped quietly: the
/// command still finishes and exits with its own status (a failed build stays a failure).
pub fn out(text: &str) {
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut o = anstream::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            return;
        }
        let _ = writeln!(io::stderr(), "error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`out`].
macro_rules! outln {
    () => {
        $crate::cmd::out("\n")
    };
    ($($t:tt)*) => {
        $crate::cmd::out(&format!("{}\n", format_args!($($t)*)))
    };
}
pub(crate) use outln;

/// `print!` through [`out`].
macro_rules! outp {
    ($($t:tt)*) => {
        $crate::cmd::out(&format!($($t)*))
    };
}
pub(crate) use outp;

/// A path as the user would type it in a shell: quoted when it has spaces or other characters a
/// shell would take apart (`'my projects/lamp'`), as it is otherwise.
pub fn path(p: impl AsRef<std::path::Path>) -> String {
    crate::process::shell_word(&p.as_ref().to_string_lossy())
}

/// Rows of cells as left-aligned columns two spaces apart, one line each.
pub fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// What `--json` answers when a command fails: `ok` false, the error's `kind` (see
/// [`crate::error::Kind`]), its messages one a line (`error`), then `diagnosis` and `hints`.
pub fn failure_json(e: &anyhow::Error) -> serde_json::Map<String, serde_json::Value> {
    let r = Report::of(e);
    let mut error = r.error.clone();
    for c in &r.causes {
        error.push('\n');
        error.push_str(c);
    }
    let j = serde_json::json!({
        "ok": false,
        "kind": r.kind,
        "error": error,
        "diagnosis": r.diagnoses,
        "hints": r.hints,
    });
    match j {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    }
}

/// A command's result, with a failure also answered on stdout as [`failure_json`] when `json`:
/// tools get an answer either way; people get the error on stderr.
pub fn answer_failure(json: bool, result: Result<u8>) -> Result<u8> {
    match result {
        Err(e) if json => {
            outln!("{}", serde_json::to_string_pretty(&failure_json(&e))?);
            Err(e)
        }
        r => r,
    }
}

/// Prints an error the way every command reports failure: the chain of messages, then what is
/// known about the cause and what to do (labels in colour on a terminal).
pub fn print_error(e: &anyhow::Error) {
    let text = Report::of(e).to_string();
    let mut err = anstream::stderr().lock();
    for line in text.lines() {
        let styled = [
            ("error: ", terminal::ERROR),
            ("diagnosis: ", terminal::WARN),
            ("hint: ", terminal::HINT),
        ]
        .iter()
        .find_map(|(label, style)| {
            line.strip_prefix(label)
                .map(|rest| format!("{style}{label}{style:#}{rest}"))
        });
        let _ = writeln!(err, "{}", styled.as_deref().unwrap_or(line));
    }
}

/// The port to use for `board`: `requested` (`--port`) if given, else the one port with one of
/// the board's USB ids ("using ..." is said on stderr). With several, the user is asked on a
/// terminal (stdin and stderr both terminals), and told to pass `--port` otherwise.
pub fn pick_port(requested: Option<&str>, board: &Board, db: &Database) -> Result<String> {
    if let Some(p) = requested {
        return Ok(p.to_string());
    }
    let ports = serial::list_ports()?;
    match serial::choose_port(None, &ports, board, db)? {
        PortChoice::Given(p) => Ok(p),
        PortChoice::Matched(p) => {
            eprintln!(
                "Using {} ({}) for the {}",
                p.name,
                serial::describe(&p, db),
                board.name
            );
            Ok(p.name)
        }
        PortChoice::Several(list) => {
            if io::stdin().is_terminal() && io::stderr().is_terminal() {
                ask_port(&list, board, db)
            } else {
                Err(serial::ports::several_ports_error(&list, board, db))
            }
        }
    }
}

fn ask_port(list: &[serial::PortInfo], board: &Board, db: &Database) -> Result<String> {
    eprintln!("Several serial ports may be the {}:", board.name);
    for (i, p) in list.iter().enumerate() {
        eprintln!("  {}) {}  {}", i + 1, p.name, serial::describe(p, db));
    }
    eprint!("Which one? [1-{}]: ", list.len());
    io::stderr().flush().ok();
    let mut line = String::new();
    io::stdin()
        .read_line(&mut line)
        .context("cannot read the answer")?;
    let answer = line.trim();
    match answer.parse::<usize>() {
        Ok(n) if (1..=list.len()).contains(&n) => Ok(list[n - 1].name.clone()),
        _ => Err(Failure::new(
            Kind::Usage,
            format!("`{answer}` is not one of 1-{}", list.len()),
        )
        .hint("or say which with `--port`")
        .into()),
    }
}

/// The longest duration a seconds flag takes: a year.
pub const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// The value parser of every flag that takes seconds (`--duration`, `--wait`): a whole or
/// decimal number, finite, not negative, at most [`MAX_SECONDS`].
pub fn seconds(s: &str) -> Result<std::time::Duration, String> {
    let v = match s.trim().parse::<f64>() {
        Ok(v) if !v.is_nan() && v >= 0.0 => v,
        _ => return Err(format!("`{s}` is not a number of seconds (e.g. 5 or 0.5)")),
    };
    if v > MAX_SECONDS as f64 {
        return Err(format!(
            "{s} seconds is more than a year: at most {MAX_SECONDS} (leave the flag out to run \
             until Ctrl-C)"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(v))
}
