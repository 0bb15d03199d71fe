//! `nixflash flash`.

use std::path::PathBuf;
use std::time::Duration;

use super::status;
use crate::board::Board;
use crate::context::Context;
use crate::error::{Failure, Kind};
use crate::flash::{self, boot_drive, boot_drive::Done};
use crate::monitor;
use crate::serial::reset;
use anyhow::Result;

use super::firmware::Firmware;

/// Build the firmware and flash it to the board
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n  nixflash flash                          build, find the board's port, flash\n  \
    nixflash flash --monitor --timestamps   the same, then watch it, each line stamped\n  \
    nixflash flash --no-build --port /dev/ttyACM0\n  \
    nixflash flash --elf target/avr-none/release/blinky.elf --port /dev/ttyACM0\n  \
    nixflash flash --monitor -- --offline\n  \
    nixflash flash --port /media/$USER/RPI-RP2   a Pico's boot drive\n  \
    nixflash flash --all --jobs 8           every connected board of the project's, 8 at a time\n  \
    nixflash flash --port /dev/ttyACM0 --port /dev/ttyACM1\n\n\
    The flasher is ravedude (AVR boards) or espflash (ESP32 boards): the one on PATH if it is \
    new enough, otherwise the one the project's flake.nix pins (built with Nix).\n\n\
    A Raspberry Pi Pico (RP2040, RP2350) is flashed through its boot drive: hold BOOTSEL while \
    you plug it in, and nixflash copies the firmware, as a UF2 file, onto the drive it shows \
    (RPI-RP2 or RP2350), found under /media/$USER, /run/media/$USER, /media or /Volumes; \
    --port <folder> or NIXFLASH_BOOT_DRIVE=<folder> names it. Without a drive, picotool on PATH \
    (version 2 or newer) flashes it instead.\n\n\
    Cortex-M boards (STM32, nRF) are flashed through a debug probe (an on-board ST-LINK, J-Link \
    or DAPLink, or one on the SWD pins) with probe-rs, which finds the probe itself: no port is \
    looked for; probe-rs then resets the chip to start the firmware, and --monitor reads its log \
    over RTT through the probe.\n\n\
    Before it flashes, it prints the firmware's SHA-256 as `build` does: the ELF's, and that of \
    its flash image, settings excluded.\n\n",
    super::nix_args_help!()
))]
pub struct Args {
    /// The board's serial port, e.g. /dev/ttyACM0 (a Pico: the folder of its boot drive); default:
    /// `port` in [package.metadata.nixflash], else the one port with one of the board's USB ids.
    /// Repeatable: several boards are flashed at once
    #[arg(long, short)]
    pub port: Vec<String>,
    /// Flash every connected board whose USB id is the board's (as `nixflash ports` shows them),
    /// several at once
    #[arg(long)]
    pub all: bool,
    /// With several boards: how many are flashed at a time
    #[arg(long, short, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// The board, for an ELF given with --elf (default: the project's; outside a project, the
    /// one the ELF's chip tells)
    #[arg(long, short, value_name = "ID", requires = "elf")]
    pub board: Option<String>,
    /// Open nixflash's serial monitor after flashing (the monitor options below need it); with
    /// several boards, one monitor of all, each line prefixed with the board's name or port
    #[arg(long, short)]
    pub monitor: bool,
    /// Flash through a debug probe with probe-rs instead of the board's usual way: a Raspberry
    /// Pi Debug Probe (or another CMSIS-DAP probe) on a Pico's SWD pins. Cortex-M boards are
    /// always flashed this way
    #[arg(long, conflicts_with_all = ["all", "set"])]
    pub probe: bool,
    /// A setting written to the board's settings region with the firmware, `key=value`
    /// (repeatable; AVR, RP2, and ESP32 projects made with `-o wifi`): see `nixflash image --help`
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    #[command(flatten, next_help_heading = "Firmware")]
    pub firmware: super::firmware::FirmwareArgs,
    #[command(flatten, next_help_heading = "Monitor (with --monitor)")]
    pub monitor_flags: super::monitor::MonitorFlags,
    #[command(flatten, next_help_heading = "Building")]
    pub flags: super::NixFlags,
}

pub fn run(a: Args) -> Result<u8> {
    let many = a.all || a.port.len() > 1;
    refuse_usage(&a, many)?;
    let ctx = a.flags.context()?;
    let with_monitor = a.monitor;
    let board = super::firmware::board(
        &ctx,
        a.board.as_deref(),
        a.firmware.elf.as_deref(),
        true,
        |x, y| {
            // What flashing needs of a board; after it, what the monitor needs.
            x.family_id == y.family_id
                && x.flash == y.flash
                && (!with_monitor || x.monitor == y.monitor)
        },
    )?;
    let board: &Board = &board;
    let project = match ctx.root {
        Some(_) => Some(ctx.manifest()?),
        None => None,
    };
    let root = project.map_or_else(|| ctx.cwd.clone(), |p| p.root.clone());
    let kept = project.and_then(|p| p.port.as_deref());
    let kept_baud = project.and_then(|p| p.baud);

    // What can be found out at once comes first: the firmware (or whether it can be built),
    // then the board's port, before a long build.
    let root_dir = project.map(|p| p.root.as_path());
    if many && !board.family().flasher.uses_serial_port() {
        return Err(super::flash_many::no_boot_drives(board));
    }
    // Several boards: each its own settings, planned once the boards are known.
    let plan = match many {
        true => None,
        false => Some(flash::settings::plan(
            board,
            root_dir,
            &a.set,
            &super::Terminal,
        )?),
    };
    let firmware = a.firmware.check(&ctx, "flash")?;
    if a.probe || board.family().flasher.through_probe() {
        let way = flash::probe::way_or_error(board)?;
        if a.port.len() > 1 {
            return Err(Failure::new(
                Kind::Usage,
                "several boards are flashed through serial ports, not through a debug probe",
            )
            .hint("flash one board at a time through its probe")
            .into());
        }
        return flash_probe(&a, &ctx, board, firmware, (&root, project), way);
    }
    let Some(plan) = plan else {
        return super::flash_many::run(&a, &ctx, board, firmware, &root, root_dir);
    };
    if !board.family().flasher.uses_serial_port() {
        return flash_rp2(&a, &ctx, board, firmware, kept, &plan);
    }
    // --port, else the project's own ([package.metadata.nixflash] port), else the board's.
    let requested = a.port.first().map(String::as_str);
    let port = super::pick_port(requested.or(kept), board, &ctx.db)?;
    let port = port.as_str();
    let (elf, _) = super::firmware::FirmwareArgs::get(firmware, &ctx, &a.flags, board)?;

    let nix = a.flags.nix();
    let flake = crate::tool::Flake::of(&ctx, nix.as_ref());
    let outcome = flash::flash(board, &root, &elf, port, plan, &flake, &super::Terminal)?;
    // Ctrl-C reached the flasher too: report the interruption, not the flasher's failure.
    crate::interrupt::check()?;
    if outcome.code != 0 {
        return Ok(flasher_failed(
            outcome.code,
            format!(
                "{} failed (exit code {}) flashing {} to the {} on {port}",
                outcome.flasher.name,
                outcome.code,
                super::path(&elf),
                board.name,
            ),
            format!(
                "its messages above say why; check that the board on {port} is the {} ({})",
                board.name, board.id
            ),
        ));
    }
    eprintln!(
        "Flashed {} to the {} on {port}.",
        super::path(&elf),
        board.name
    );
    if a.monitor {
        open_monitor(&a, board, (port, false), kept_baud, &elf, project)?;
    }
    Ok(0)
}

/// The flags that do not go together, refused before anything else: monitor options without
/// --monitor, --log with several boards (`many`).
fn refuse_usage(a: &Args, many: bool) -> Result<()> {
    if let (false, Some(first)) = (a.monitor, a.monitor_flags.given().first()) {
        let f = Failure::new(Kind::Usage, format!("{first} is an option of the monitor"));
        return Err(f
            .hint("add --monitor to open nixflash's monitor after flashing")
            .into());
    }
    if many && a.monitor_flags.log.is_some() {
        return Err(Failure::new(
            Kind::Usage,
            "--log keeps one board's session: with several boards, every board's lines are on stdout",
        )
        .hint("keep them all with `nixflash flash ... --monitor | tee <file>`")
        .into());
    }
    Ok(())
}

/// `flash --monitor`: the monitor on `port` after flashing, reading the firmware it was just
/// given; a board whose console is on its pins, not its USB port, gets a note instead, unless
/// the port is wired to those pins (`on_console_pins`: a debug probe's UART).
fn open_monitor(
    a: &Args,
    board: &Board,
    (port, on_console_pins): (&str, bool),
    kept_baud: Option<u32>,
    elf: &std::path::Path,
    project: Option<&crate::manifest::Manifest>,
) -> Result<()> {
    if !board.monitor.usb_console && !on_console_pins {
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
        return Ok(());
    }
    let mut opts = a.monitor_flags.options(
        port.to_string(),
        kept_baud.unwrap_or(board.monitor.baud),
        reset::steps_for(board, port),
        // Boards with their own USB port vanish while they restart after flashing.
        Duration::from_secs(5),
    )?;
    opts.decode = a.monitor_flags.decode(
        Some(elf.to_path_buf()),
        Some(board),
        project.map(|p| p.root.clone()),
    );
    monitor::monitor(&opts, super::terminal::console())
}

/// Flashes an RP2 board: the UF2 file onto its boot drive, or with picotool when no drive is
/// mounted and picotool is on PATH.
fn flash_rp2(
    a: &Args,
    ctx: &Context,
    board: &Board,
    firmware: Firmware,
    kept: Option<&str>,
    plan: &flash::settings::Plan,
) -> Result<u8> {
    // Found before a long build, like a serial port.
    let requested = a
        .port
        .first()
        .map(String::as_str)
        .or(kept)
        .map(PathBuf::from);
    let target = boot_drive::target(board, requested.as_deref())?;
    let (elf, _) = super::firmware::FirmwareArgs::get(firmware, ctx, &a.flags, board)?;
    let done = match boot_drive::flash_to(board, &elf, target, plan, &super::Terminal)? {
        Done::Copied(done) => done,
        Done::Ran(outcome) => {
            crate::interrupt::check()?;
            if outcome.code != 0 {
                return Ok(flasher_failed(
                    outcome.code,
                    format!(
                        "{} failed (exit code {})",
                        outcome.flasher.name, outcome.code
                    ),
                    format!(
                        "hold BOOTSEL while you plug the {} in, so that its boot ROM answers",
                        board.name
                    ),
                ));
            }
            eprintln!(
                "Flashed {} to the {} with {}.",
                super::path(&elf),
                board.name,
                outcome.flasher.name
            );
            return Ok(0);
        }
    };
    eprintln!(
        "Flashed {} to the {}: wrote {} ({} UF2 blocks for {:#010x}..{:#010x}, family {}); the \
         board restarts into it.",
        super::path(&elf),
        board.name,
        super::path(&done.path),
        done.uf2.blocks,
        done.uf2.start,
        done.uf2.end,
        board.flash.uf2_family.as_deref().unwrap_or_default()
    );
    if a.monitor {
        status(
            "Note",
            &format!(
                "the {}'s greeting goes to {}, not to its USB port: connect a USB-serial adapter \
                 there and run `nixflash monitor --port <the adapter's port> --baud {}`",
                board.name,
                board.monitor.console.as_deref().unwrap_or("its TX/RX pins"),
                board.monitor.baud
            ),
        );
    }
    Ok(0)
}

/// Flashes a board through its debug probe with probe-rs, which finds the probe itself: no serial
/// port is looked for. `--port` names none (refused); `--monitor` reads the firmware's RTT channel
/// through the probe.
fn flash_probe(
    a: &Args,
    ctx: &Context,
    board: &Board,
    firmware: Firmware,
    (root, project): (&std::path::Path, Option<&crate::manifest::Manifest>),
    way: flash::probe::Way,
) -> Result<u8> {
    if let Some(port) = a.port.first() {
        return Err(Failure::new(
            Kind::Usage,
            format!(
                "--port {port}: the {} is flashed through a debug probe, which probe-rs finds by \
                 itself",
                board.name
            ),
        )
        .hint("leave --port out (with several probes attached, unplug the others)")
        .into());
    }
    let (elf, _) = super::firmware::FirmwareArgs::get(firmware, ctx, &a.flags, board)?;
    let nix = a.flags.nix();
    let flake = crate::tool::Flake::of(ctx, nix.as_ref());
    let outcome = flash::probe::flash(board, way, root, &elf, &flake, &super::Terminal)?;
    crate::interrupt::check()?;
    let chip = board.flash.chip.as_deref().unwrap_or_default();
    if outcome.code != 0 {
        return Ok(flasher_failed(
            outcome.code,
            format!(
                "{} failed (exit code {}) flashing {} to the {} ({chip})",
                outcome.flasher.name,
                outcome.code,
                super::path(&elf),
                board.name
            ),
            format!(
                "its messages above say why; check that the debug probe is plugged in and wired \
                 to the {}, and that `probe-rs list` shows it",
                board.name
            ),
        ));
    }
    eprintln!(
        "Flashed {} to the {} with {} ({chip}).",
        super::path(&elf),
        board.name,
        outcome.flasher.name
    );
    if !a.monitor {
        return Ok(0);
    }
    if board.family().flasher.through_probe() {
        let project = project.map(|p| p.root.clone());
        super::monitor::rtt(board, way, &a.monitor_flags, Some(elf), project, &flake)?;
        return Ok(0);
    }
    // The console is on the board's pins: the probe's own serial port, wired to them.
    let port = probe_uart(board, way)?;
    let kept_baud = project.and_then(|p| p.baud);
    open_monitor(a, board, (&port, true), kept_baud, &elf, project)?;
    Ok(0)
}

/// The serial port of the debug probe (one with a USB id of the way's `uart-ids`), which is
/// wired to the board's console pins.
fn probe_uart(board: &Board, way: flash::probe::Way) -> Result<String> {
    let ports = crate::serial::list_ports()?;
    let ids = &way.probe_rs.uart_ids;
    let found: Vec<&str> = ports
        .iter()
        .filter(|p| p.usb.as_ref().is_some_and(|u| ids.contains(&u.id)))
        .map(|p| p.name.as_str())
        .collect();
    let console = board.monitor.console.as_deref().unwrap_or("its TX/RX pins");
    match found[..] {
        [one] => Ok(one.to_string()),
        [] => {
            Err(Failure::new(
                Kind::PortNotFound,
                format!(
                "no debug probe's serial port (USB id {}) to read the {}'s console ({console}) on",
                ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                board.name
            ),
            )
            .hint(format!(
            "wire the probe's UART to {console} and plug it in, or run `nixflash monitor --port \
             <a USB-serial adapter's port> --baud {}`",
            board.monitor.baud
        ))
            .into())
        }
        _ => Err(Failure::new(
            Kind::PortAmbiguous,
            format!("several debug probes' serial ports: {}", found.join(", ")),
        )
        .hint("run `nixflash monitor --port <the one wired to the board>`")
        .into()),
    }
}

/// Says that the flasher failed (`message`; `hint`: what to check) and gives its exit code as
/// nixflash's (1 when it does not fit one).
fn flasher_failed(code: i32, message: String, hint: String) -> u8 {
    super::print_error(&Failure::new(Kind::FlashFailed, message).hint(hint).into());
    u8::try_from(code).unwrap_or(1)
}
