//! `nixflash new` and `nixflash init`.

use std::path::PathBuf;

use std::io::{self, IsTerminal, Write};

use super::status;
use crate::board::{Board, Database};
use crate::error::{Failure, Kind};
use crate::options::{self, Wish};
use crate::project::{self, Change, NewOptions, Written};
use anyhow::{Context as _, Result};

/// Create a new firmware project for a board
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  nixflash new blinky --board uno\n  \
    nixflash new ~/src/lamp --board esp32c3 --name desk-lamp\n  \
    nixflash new sensor --board esp32c3 -o log=defmt\n  \
    nixflash new station --board esp32c3 -o wifi\n\n\
    The project is complete: Cargo.toml, src/main.rs (a blinky), rust-toolchain.toml, \
    .cargo/config.toml, flake.nix, .envrc, .gitignore and a README, all added to git \
    (a flake only sees files git tracks).")]
pub struct Args {
    /// Folder to create, with the folders above it (`.`: the current one); its name is the
    /// package name unless --name is given
    pub path: PathBuf,
    /// Board id or alias; `nixflash boards` lists them (without it, on a terminal, you choose)
    #[arg(long, short)]
    pub board: Option<String>,
    /// Package name, if not the folder's name
    #[arg(long)]
    pub name: Option<String>,
    /// Write into a folder that is not empty, replacing files with the same names (each kept
    /// beside the new one as <name>.orig)
    #[arg(long)]
    pub force: bool,
    /// Do not run `git init` / `git add` (Nix will not see files git does not track)
    #[arg(long)]
    pub no_git: bool,
    /// A project option, <name>=<choice> (repeatable; `-o wifi` is wifi=on); `nixflash boards
    /// show <id>` lists a board's
    #[arg(short = 'o', long = "option", value_name = "NAME=CHOICE", value_parser = OptionArg, long_help = option_help(), hide_possible_values = true)]
    pub options: Vec<String>,
    /// Now `-o log=<choice>`
    #[arg(long, value_name = "CHOICE", hide = true)]
    pub log: Option<String>,
}

/// Add nixflash's Nix and board files to an existing Cargo project
#[derive(clap::Args)]
#[command(after_help = "Run it at the root of a Cargo package.\n\n\
    In a package that is not a nixflash project yet (`cargo new`), it writes flake.nix, \
    flake.lock, .envrc, rust-toolchain.toml, .cargo/config.toml and, by family, Ravedude.toml \
    or build.rs; adds the board and its dependencies (the HAL) to Cargo.toml, keeping yours; \
    writes Cargo.lock from nixflash's lock data when the package has no dependencies of its own; \
    makes src/main.rs the blinky only if it is still cargo's hello world; adds /result and \
    /.direnv to .gitignore. It refuses to write over files it did not make, or that you edited \
    since (unless --force, which keeps yours as <name>.orig). All or nothing: an error, a full \
    disk or a signal leaves the package as it was.\n\n\
    In a nixflash project, --board <other> switches boards: every board-derived file is written \
    for the new board (the generated README too), the old family's files go, src/ stays (across families it needs --force, \
    and replaces src/main.rs only if it is still the generated blinky). Choices made with `new` \
    (`-o log=defmt`, recorded in [package.metadata.nixflash]) are kept where the new board offers \
    them; it says which it drops and why. It lists what changed.\n\n\
    Examples:\n  cargo new lamp && cd lamp && nixflash init --board uno\n  \
    nixflash init --board nano           the project was for the Uno: now for the Nano\n  \
    nixflash init --board esp32c3 --force   from AVR to ESP32-C3\n  \
    nixflash init --board esp32c6 -o log=defmt   ESP32-C6, logging with defmt")]
pub struct InitArgs {
    /// Board id or alias; `nixflash boards` lists them
    #[arg(long, short)]
    pub board: String,
    /// The package's folder (default: the current one)
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// Replace files of yours, or ones you edited since nixflash wrote them (each kept beside the
    /// new one as <name>.orig)
    #[arg(long)]
    pub force: bool,
    /// Do not `git add` the new files
    #[arg(long)]
    pub no_git: bool,
    /// A project option, <name>=<choice>, as for `new` (repeatable; default: the project's
    /// choices, recorded in Cargo.toml, else the family's defaults)
    #[arg(short = 'o', long = "option", value_name = "NAME=CHOICE", value_parser = OptionArg, long_help = option_help(), hide_possible_values = true)]
    pub options: Vec<String>,
    /// Now `-o log=<choice>`
    #[arg(long, value_name = "CHOICE", hide = true)]
    pub log: Option<String>,
}

/// The `-o` values: any string (nixflash's own errors say what is wrong with one, for the
/// board), with every family's `name=choice` offered to shell completion.
#[derive(Clone)]
struct OptionArg;

impl clap::builder::TypedValueParser for OptionArg {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        value
            .to_str()
            .map(str::to_string)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidUtf8).with_cmd(cmd))
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        // clap's names are `&'static str` (without its `string` feature): made once.
        static VALUES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
        let values = VALUES.get_or_init(|| {
            options::completions()
                .into_iter()
                .map(|v| &*Box::leak(v.into_boxed_str()))
                .collect()
        });
        Some(Box::new(
            values.iter().map(|v| clap::builder::PossibleValue::new(*v)),
        ))
    }
}

/// The long help of `-o`: every family's options, with their choices, defaults and needs. clap
/// builds every command's help text on every run, and the families' options come from the board
/// database, which takes milliseconds to load: they are listed only when help is asked for.
fn option_help() -> String {
    let mut s = String::from(
        "A project option, <name>=<choice> (repeatable); `-o <name>` alone is <name>=on for an \
         on/off option. What an option needs is turned on with it. `nixflash boards show <id>` \
         lists a board's options.\n",
    );
    if !super::cli::help_asked() {
        return s;
    }
    let Ok(db) = Database::builtin() else {
        return s;
    };
    for f in db.families() {
        s.push_str(&format!("\n{} (`{}`):", f.name, f.id));
        if f.options.is_empty() {
            s.push_str(" no options\n");
            continue;
        }
        s.push('\n');
        for (name, o) in &f.options {
            s.push_str(&format!("  {name:<7} {}\n", options::describe(o)));
        }
    }
    s
}

/// The wishes of `-o` and of the hidden `--log`, which says it is now `-o log=<choice>`.
fn wishes(opts: &[String], log: &Option<String>) -> Vec<Wish> {
    let mut all: Vec<Wish> = Vec::new();
    if let Some(l) = log {
        status(
            "Note",
            &format!("--log {l} is now `-o log={l}` (--log stays for a while)"),
        );
        all.push(Wish::flag(&format!("log={l}")));
    }
    all.extend(opts.iter().map(|o| Wish::flag(o)));
    all
}

pub fn run_new(a: Args) -> Result<u8> {
    crate::interrupt::also_on_termination();
    let ctx = super::context(match &a.board {
        Some(b) => super::Needs::Board(b),
        None => super::Needs::Nothing,
    })?;
    let board = match &a.board {
        Some(b) => ctx.db.get(b)?,
        None => choose_board(&ctx.db)?,
    };
    let created = project::create(&NewOptions {
        path: &a.path,
        board,
        name: a.name.as_deref(),
        force: a.force,
        git: !a.no_git,
        options: wishes(&a.options, &a.log),
        extra: ctx
            .db
            .carried_files(board)?
            .into_iter()
            .map(|(path, contents)| crate::render::File { path, contents })
            .collect(),
    })?;
    super::outln!(
        "Created {} for the {} ({}) in {}",
        created.name,
        board.name,
        board.id,
        super::path(&created.root)
    );
    for (f, what) in &created.files {
        match what {
            Written::Created => super::outln!("  {}", f.display()),
            Written::Replaced { kept } => super::outln!(
                "  {}  (replaced: yours is kept as {})",
                f.display(),
                super::path(kept)
            ),
            Written::Unchanged => super::outln!("  {}  (already there, unchanged)", f.display()),
        }
    }
    for n in &created.notes {
        super::outln!("Options: {n}.");
    }
    match created.git {
        Some(true) => super::outln!("Initialised a git repository and added every file (a flake only sees tracked files)."),
        Some(false) => super::outln!("Added every file to the enclosing git repository."),
        None => super::outln!("Not added to git (--no-git): run `git add` before `nix build`, or Nix will not see the files."),
    }
    if let Some(n) = &board.notes {
        super::outln!("\nNote: {}", n.trim().replace('\n', " "));
    }
    if created.root == std::path::Path::new(".") {
        super::outln!("\nNext:\n  nixflash build");
    } else {
        super::outln!(
            "\nNext:\n  cd {}\n  nixflash build",
            super::path(&created.root)
        );
    }
    let table = created.root.join("partitions.csv");
    if let Ok(Some(_)) = crate::settings::partitions::settings_region(&table) {
        super::outln!(
            "  nixflash flash --set ssid=<network> --set password=<secret>   \
             (settings go onto the board, never into the build: see the README)"
        );
    }
    Ok(0)
}

pub fn run_init(a: InitArgs) -> Result<u8> {
    crate::interrupt::also_on_termination();
    let ctx = super::context_at(&a.path, super::Needs::Board(&a.board))?;
    let board = ctx.db.get(&a.board)?;
    let wishes = wishes(&a.options, &a.log);
    let done = project::init(&a.path, board, &ctx.db, &wishes, a.force, !a.no_git)?;
    match &done.switched_from {
        Some(old) => super::outln!(
            "Switched {} from `{old}` to the {} ({}):",
            done.name,
            board.name,
            board.id
        ),
        None => super::outln!(
            "Set up {} for the {} ({}):",
            done.name,
            board.name,
            board.id
        ),
    }
    if done.changes.is_empty() {
        super::outln!("  nothing to change: the project's files are already the board's");
    }
    for c in &done.changes {
        match c {
            Change::Added(p) => super::outln!("  added     {}", p.display()),
            Change::Replaced(p, None) => super::outln!("  replaced  {}", p.display()),
            Change::Replaced(p, Some(copy)) => super::outln!(
                "  replaced  {} (yours is kept as {})",
                p.display(),
                super::path(copy)
            ),
            Change::Removed(p) => super::outln!("  removed   {}", p.display()),
            Change::Edited(p, what) => super::outln!("  changed   {}: {what}", p.display()),
            Change::Kept(p, why) => super::outln!("  kept      {}: {why}", p.display()),
        }
    }
    if done.git_added {
        super::outln!("Added the changes to git (a flake only sees files git tracks).");
    }
    if !done.git_added_untracked.is_empty() {
        let names: Vec<String> = done
            .git_added_untracked
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        super::outln!(
            "Added to git what it did not track: {} (a flake only sees files git tracks).",
            names.join(", ")
        );
    }
    for n in &done.notes {
        super::outln!("Options: {n}.");
    }
    for t in &done.todo {
        super::outln!("To do: {t}");
    }
    super::outln!("Next: nixflash build");
    Ok(0)
}

/// The board, asked for on a terminal; elsewhere an error that lists them.
fn choose_board(db: &Database) -> Result<&Board> {
    let boards: Vec<&Board> = db.boards().collect();
    if !(io::stdin().is_terminal() && io::stderr().is_terminal()) {
        return Err(Failure::new(
            Kind::BoardNeeded,
            format!(
                "which board? pass --board <id>; the boards are:\n{}",
                super::boards::table(db.entries())
                    .lines()
                    .take_while(|l| !l.is_empty())
                    .map(|l| format!("  {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        )
        .hint("for example: nixflash new blinky --board uno")
        .into());
    }
    eprintln!("Which board is the project for?");
    for (i, b) in boards.iter().enumerate() {
        eprintln!("  {:>2}) {:<20} {} ({})", i + 1, b.id, b.name, b.chip);
    }
    eprint!("Number or id [1-{}]: ", boards.len());
    io::stderr().flush().ok();
    let mut line = String::new();
    io::stdin()
        .read_line(&mut line)
        .context("cannot read the answer")?;
    let answer = line.trim();
    if answer.is_empty() {
        return Err(Failure::new(Kind::Usage, "no board chosen")
            .hint("answer with a number or a board id, or pass --board <id>")
            .into());
    }
    if let Ok(n) = answer.parse::<usize>() {
        if (1..=boards.len()).contains(&n) {
            return Ok(boards[n - 1]);
        }
    }
    db.get(answer)
}
