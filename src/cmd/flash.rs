//! `nixflash flash`.

use std::path::PathBuf;

use std::time::Duration;

use anyhow::{bail, Result};
use nixflash::serial::{self, MonitorOptions, Reset};

/// Build the firmware and flash it to the board
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n  nixflash flash --port /dev/ttyACM0\n  \
    nixflash flash --no-build --port /dev/ttyACM0\n  \
    nixflash flash --elf target/avr-none/release/blinky.elf --port /dev/ttyACM0\n  \
    nixflash flash --monitor -- --offline\n\n\
    The flasher is ravedude (AVR boards) or espflash (ESP32 boards): the one on PATH if it is \
    new enough, otherwise the one the project's flake.nix pins (built with Nix).\n\n",
    super::nix_args_help!()
))]
pub struct Args {
    /// The board's serial port, e.g. /dev/ttyACM0
    #[arg(long, short)]
    pub port: Option<String>,
    /// Open nixflash's serial monitor after flashing
    #[arg(long, short)]
    pub monitor: bool,
    /// Baud rate of the serial monitor (default: the board's)
    #[arg(long, short, requires = "monitor")]
    pub baud: Option<u32>,
    /// Do not build: flash the firmware of the last `nixflash build` (result/bin/<name>.elf)
    #[arg(long)]
    pub no_build: bool,
    /// Flash this ELF file instead of building (implies --no-build)
    #[arg(long, value_name = "PATH")]
    pub elf: Option<PathBuf>,
    /// When building: do not `git add --intent-to-add` untracked files the flake needs
    #[arg(long)]
    pub no_git_add: bool,
    /// When building: show each nix command nixflash runs
    #[arg(long, short)]
    pub verbose: bool,
    #[command(flatten)]
    pub nix: super::NixArgs,
}

pub fn run(a: Args) -> Result<u8> {
    let (project, board) = super::build::project(a.verbose)?;
    let board = &board;

    // The port first: no board attached is found out before a long build.
    let port = serial::pick_port(a.port.as_deref(), board)?;
    let port = port.as_str();

    let elf = match (&a.elf, a.no_build) {
        (Some(elf), _) => {
            if !elf.is_file() {
                bail!(
                    "the firmware {} does not exist\nhint: pass the path of an ELF file to --elf",
                    elf.display()
                );
            }
            elf.clone()
        }
        (None, true) => {
            let bin = project.firmware_bin();
            let elf = project.root.join("result/bin").join(format!("{bin}.elf"));
            if !elf.is_file() {
                bail!(
                    "there is no firmware to flash: {} does not exist\n\
                     hint: run `nixflash build` first (it makes ./result), or drop --no-build\n\
                     hint: to flash another ELF, pass --elf <path>",
                    elf.display()
                );
            }
            elf
        }
        (None, false) => {
            let opts = nixflash::nix::BuildOptions {
                git_add: !a.no_git_add,
                verbose: a.verbose,
                nix_args: a.nix.nix_args.clone(),
                ..Default::default()
            };
            nixflash::nix::build(&project, board, &opts)?.elf
        }
    };

    let outcome = nixflash::flash::flash(board, &project.root, &elf, port, &a.nix.nix_args)?;
    // Ctrl-C reached the flasher too: report the interruption, not the flasher's failure.
    nixflash::interrupt::check()?;
    if outcome.code != 0 {
        super::print_error(&anyhow::anyhow!(
            "{} failed (exit code {}) flashing {} to the {} on {port}\n\
             hint: its messages above say why; check that the board on {port} is the {} ({})",
            outcome.flasher.tool.as_str(),
            outcome.code,
            elf.display(),
            board.name,
            board.name,
            board.id
        ));
        return Ok(u8::try_from(outcome.code).unwrap_or(1));
    }
    eprintln!("Flashed {} to the {} on {port}.", elf.display(), board.name);
    if a.monitor {
        let baud = a.baud.unwrap_or(board.monitor.baud);
        serial::monitor(&MonitorOptions {
            reset: Reset::for_board(board),
            // Boards with their own USB port vanish while they restart after flashing.
            wait: Duration::from_secs(5),
            ..MonitorOptions::new(port, baud)
        })?;
    }
    Ok(0)
}
