//! `nixflash new` and `nixflash init`.

use std::path::PathBuf;

use anyhow::Result;
use nixflash::project::{self, NewOptions};

/// Create a new firmware project for a board
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  nixflash new blinky --board uno\n  \
    nixflash new ~/src/lamp --board esp32c3 --name desk-lamp\n  \
    nixflash new sensor --board esp32c3 --log defmt\n\n\
    The project is complete: Cargo.toml, src/main.rs (a blinky), rust-toolchain.toml, \
    .cargo/config.toml, flake.nix, .envrc, .gitignore and a README, all added to git \
    (a flake only sees files git tracks).")]
pub struct Args {
    /// Folder to create (its name is the package name unless --name is given)
    pub path: PathBuf,
    /// Board id or alias; `nixflash boards` lists them
    #[arg(long, short)]
    pub board: String,
    /// Package name, if not the folder's name
    #[arg(long)]
    pub name: Option<String>,
    /// Write into a folder that is not empty, replacing files with the same names
    #[arg(long)]
    pub force: bool,
    /// Do not run `git init` / `git add` (Nix will not see files git does not track)
    #[arg(long)]
    pub no_git: bool,
    /// How the firmware logs, where the board's family offers a choice (`nixflash boards show
    /// <id>` lists them), e.g. `defmt` for ESP32 boards, which `nixflash monitor` decodes
    #[arg(long, value_name = "CHOICE")]
    pub log: Option<String>,
}

/// Add nixflash's Nix and board files to an existing Cargo project
#[derive(clap::Args)]
#[command(
    after_help = "Run it at the root of a Cargo package. It writes flake.nix, .envrc, \
    rust-toolchain.toml, .cargo/config.toml and, by family, Ravedude.toml or build.rs, and adds \
    [package.metadata.nixflash] board = \"<id>\" to Cargo.toml. Your dependencies and src/ are \
    left alone.\n\nExample:\n  cd my-firmware && nixflash init --board uno"
)]
pub struct InitArgs {
    /// Board id or alias; `nixflash boards` lists them
    #[arg(long, short)]
    pub board: String,
    /// The package's folder (default: the current one)
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// Overwrite files that already exist
    #[arg(long)]
    pub force: bool,
    /// Do not `git add` the new files
    #[arg(long)]
    pub no_git: bool,
}

pub fn run_new(a: Args) -> Result<u8> {
    let ctx = nixflash::context::Context::current()?;
    let board = ctx.db.get(&a.board)?;
    let created = project::create(&NewOptions {
        path: &a.path,
        board,
        name: a.name.as_deref(),
        force: a.force,
        git: !a.no_git,
        options: a
            .log
            .iter()
            .map(|l| ("log".to_string(), l.clone()))
            .collect(),
    })?;
    println!(
        "Created {} for the {} ({}) in {}",
        created.name,
        board.name,
        board.id,
        created.root.display()
    );
    for f in &created.files {
        println!("  {}", f.display());
    }
    match created.git {
        Some(true) => println!("Initialised a git repository and added every file (a flake only sees tracked files)."),
        Some(false) => println!("Added every file to the enclosing git repository."),
        None => println!("Not added to git (--no-git): run `git add` before `nix build`, or Nix will not see the files."),
    }
    if let Some(n) = &board.notes {
        println!("\nNote: {}", n.trim().replace('\n', " "));
    }
    println!("\nNext:\n  cd {}\n  nixflash build", created.root.display());
    Ok(0)
}

pub fn run_init(a: InitArgs) -> Result<u8> {
    let ctx = nixflash::context::Context::at(&a.path)?;
    let board = ctx.db.get(&a.board)?;
    let done = project::init(&a.path, board, a.force, !a.no_git)?;
    println!(
        "Added nixflash files for the {} ({}) to {}:",
        board.name, board.id, done.name
    );
    for f in &done.files {
        println!("  {}", f.display());
    }
    if done.metadata_changed {
        println!(
            "  Cargo.toml: [package.metadata.nixflash] board = \"{}\"",
            board.id
        );
    }
    if done.git_added {
        println!("Added them to git.");
    }
    println!(
        "\nYour dependencies and src/ are unchanged: the firmware needs `{}` (feature `{}`).",
        board.hal.krate, board.hal.feature
    );
    if !done.has_lock {
        println!(
            "There is no Cargo.lock yet, and the flake needs one: run `cargo generate-lockfile`."
        );
    }
    println!("Next: nixflash build");
    Ok(0)
}
