//! `nixflash flash`.

use std::time::Duration;

use anyhow::Result;
use nixflash::error::Failure;
use nixflash::monitor;
use nixflash::progress::status;
use nixflash::serial::reset;

/// Build the firmware and flash it to the board
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n  nixflash flash                          build, find the board's port, flash\n  \
    nixflash flash --monitor --timestamps   the same, then watch it, each line stamped\n  \
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
    /// Open nixflash's serial monitor after flashing (the monitor options below need it)
    #[arg(long, short)]
    pub monitor: bool,
    #[command(flatten, next_help_heading = "Firmware")]
    pub firmware: super::firmware::FirmwareArgs,
    #[command(flatten, next_help_heading = "Monitor (with --monitor)")]
    pub monitor_flags: super::monitor::MonitorFlags,
    #[command(flatten, next_help_heading = "Building")]
    pub flags: super::NixFlags,
}

pub fn run(a: Args) -> Result<u8> {
    if let (false, Some(first)) = (a.monitor, a.monitor_flags.given().first()) {
        return Err(Failure::new(format!("{first} is an option of the monitor"))
            .hint("add --monitor to open nixflash's monitor after flashing")
            .into());
    }
    let ctx = a.flags.context()?;
    let board = ctx.board_to_build()?;
    let project = ctx.manifest()?;

    // What can be found out at once comes first: the firmware (or whether it can be built),
    // then the board's port, before a long build.
    let firmware = a.firmware.check(&ctx, "flash")?;
    let port = super::pick_port(a.port.as_deref(), board, &ctx.db)?;
    let port = port.as_str();
    let elf = super::firmware::FirmwareArgs::get(firmware, &ctx, &a.flags)?;

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
        let mut opts = a.monitor_flags.options(
            port.to_string(),
            board.monitor.baud,
            reset::steps_for(board, port),
            // Boards with their own USB port vanish while they restart after flashing.
            Duration::from_secs(5),
        )?;
        // The monitor reads the firmware it was just given.
        opts.decode =
            a.monitor_flags
                .decode(Some(elf.clone()), Some(board), Some(project.root.clone()));
        monitor::monitor(&opts)?;
    }
    Ok(0)
}
