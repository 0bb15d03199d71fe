//! The command line: clap's parser for every command, and what runs each one.

use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd;

#[derive(Parser)]
#[command(
    name = "nixflash",
    version,
    about = "From an empty folder to embedded Rust firmware on a board, built reproducibly by Nix",
    long_about = "From an empty folder to embedded Rust firmware on a board, built reproducibly by Nix.\n\n\
        nixflash writes a complete Cargo project for your board (toolchain pin, HAL, linker settings, \
        a flake.nix with crane and rust-overlay), builds it with Nix and flashes it.",
    after_help = "Start here:\n  nixflash boards                     which boards are supported\n  \
        nixflash new blinky --board uno     a blinky for the Arduino Uno, in ./blinky\n  \
        cd blinky && nixflash build         build it with Nix and show its size"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    New(cmd::new::Args),
    Init(cmd::new::InitArgs),
    Boards(cmd::boards::Args),
    Build(cmd::build::Args),
    Verify(cmd::verify::Args),
    Update(cmd::update::UpdateArgs),
    Doctor(cmd::doctor::DoctorArgs),
    Flash(cmd::flash::Args),
    Image(cmd::image::Args),
    Monitor(cmd::monitor::Args),
    Ports(cmd::ports::Args),
    Sim(cmd::sim::Args),
    Completions(CompletionsArgs),
}

/// Print a shell completion script for nixflash
#[derive(clap::Args)]
#[command(
    after_help = "Examples (write the file once, then open a new shell):\n  \
    nixflash completions bash > ~/.local/share/bash-completion/completions/nixflash\n  \
    nixflash completions zsh > \"${fpath[1]}/_nixflash\"\n  \
    nixflash completions fish > ~/.config/fish/completions/nixflash.fish\n  \
    nixflash completions elvish >> ~/.config/elvish/rc.elv\n  \
    nixflash completions powershell >> $PROFILE\n\n\
    Bash without the bash-completion package: echo 'source <(nixflash completions bash)' >> ~/.bashrc"
)]
struct CompletionsArgs {
    /// The shell
    shell: clap_complete::Shell,
}

/// Runs nixflash with the process's arguments; the exit code to end with.
pub fn main() -> ExitCode {
    quiet_on_closed_pipes();
    crate::interrupt::install();
    let cli = Cli::parse();
    let result: Result<u8> = match cli.command {
        Command::New(a) => cmd::new::run_new(a),
        Command::Init(a) => cmd::new::run_init(a),
        Command::Boards(a) => cmd::boards::run(a),
        Command::Build(a) => cmd::build::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Update(a) => cmd::update::run(a),
        Command::Doctor(a) => cmd::doctor::run(a),
        Command::Flash(a) => cmd::flash::run(a),
        Command::Image(a) => cmd::image::run(a),
        Command::Monitor(a) => cmd::monitor::run(a),
        Command::Ports(a) => cmd::ports::run(a),
        Command::Sim(a) => cmd::sim::run(a),
        Command::Completions(a) => {
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut Cli::command(), "nixflash", &mut script);
            cmd::out(&String::from_utf8_lossy(&script));
            Ok(0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            cmd::print_error(&e);
            ExitCode::from(if crate::interrupt::interrupted() {
                crate::interrupt::exit_code()
            } else {
                1
            })
        }
    }
}

/// Whether this run asks for help (`--help`, `-h`, `nixflash help …`): help texts that cost time
/// to make are made only then.
pub fn help_asked() -> bool {
    let mut args = std::env::args_os().skip(1);
    let first = args.next();
    first.as_deref() == Some(std::ffi::OsStr::new("help"))
        || first
            .into_iter()
            .chain(args)
            .any(|a| a == "--help" || a == "-h")
}

/// A closed pipe on stdout or stderr (`nixflash ... | head -1`) ends nixflash quietly. Commands
/// write stdout through `cmd::out`, which does; this covers every other line, which Rust's
/// printing macros would turn into a panic.
fn quiet_on_closed_pipes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to std") && text.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
