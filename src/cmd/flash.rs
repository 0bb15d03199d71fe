//! `nixflash flash`.

use std::path::PathBuf;

use std::time::Duration;

use anyhow::Result;
use nixflash::error::Failure;
use nixflash::monitor::{self, MonitorOptions};
use nixflash::progress::status;
use nixflash::serial::reset;

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
    #[command(flatten)]
    pub flags: super::NixFlags,
}

pub fn run(a: Args) -> Result<u8> {
    let ctx = a.flags.context()?;
    let (project, board) = (ctx.manifest()?, ctx.board()?);

    // The port first: no board attached is found out before a long build.
    let port = super::pick_port(a.port.as_deref(), board, &ctx.db)?;
    let port = port.as_str();

    let elf = match (&a.elf, a.no_build) {
        (Some(elf), _) => {
            if !elf.is_file() {
                return Err(
                    Failure::new(format!("the firmware {} does not exist", elf.display()))
                        .hint("pass the path of an ELF file to --elf")
                        .into(),
                );
            }
            elf.clone()
        }
        (None, true) => {
            let bin = project.firmware_bin();
            let elf = project.root.join("result/bin").join(format!("{bin}.elf"));
            if !elf.is_file() {
                return Err(Failure::new(format!(
                    "there is no firmware to flash: {} does not exist",
                    elf.display()
                ))
                .hint("run `nixflash build` first (it makes ./result), or drop --no-build")
                .hint("to flash another ELF, pass --elf <path>")
                .into());
            }
            elf
        }
        (None, false) => nixflash::nix::build(project, board, &a.flags.build_options())?.elf,
    };

    let outcome = nixflash::flash::flash(board, &project.root, &elf, port, &a.flags.nix.nix_args)?;
    // Ctrl-C reached the flasher too: report the interruption, not the flasher's failure.
    nixflash::interrupt::check()?;
    if outcome.code != 0 {
        super::print_error(
            &Failure::new(format!(
                "{} failed (exit code {}) flashing {} to the {} on {port}",
                outcome.flasher.tool.as_str(),
                outcome.code,
                elf.display(),
                board.name,
            ))
            .hint(format!(
                "its messages above say why; check that the board on {port} is the {} ({})",
                board.name, board.id
            ))
            .into(),
        );
        return Ok(u8::try_from(outcome.code).unwrap_or(1));
    }
    eprintln!("Flashed {} to the {} on {port}.", elf.display(), board.name);
    if a.monitor && !board.monitor.usb_console {
        // Nothing would ever arrive on the board's USB port.
        status(
            "Note",
            &format!(
                "the {}'s console is not on its USB port ({port}) but on its TX/RX pins: not \
                 opening the monitor there. Connect a USB-serial adapter to the pins and run \
                 `nixflash monitor --port <the adapter's port> --baud {}`",
                board.name, board.monitor.baud
            ),
        );
    } else if a.monitor {
        let baud = a.baud.unwrap_or(board.monitor.baud);
        monitor::monitor(&MonitorOptions {
            reset: reset::steps_for(board, port),
            // Boards with their own USB port vanish while they restart after flashing.
            wait: Duration::from_secs(5),
            ..MonitorOptions::new(port, baud)
        })?;
    }
    Ok(0)
}
