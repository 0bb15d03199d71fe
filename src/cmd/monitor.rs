//! `nixflash monitor`: nixflash's own serial monitor.

use std::path::PathBuf;
use std::time::Duration;

use crate::board::family::ResetStep;
use crate::board::Board;
use crate::context::Context;
use crate::error::{Failure, Kind};
use crate::monitor::{self, Decode, Eol, MonitorOptions};
use crate::serial::{self, reset};
use anyhow::Result;

/// Watch a board's serial output, and type to it
#[derive(clap::Args)]
#[command(
    after_help = "Keys (when stdin is a terminal, which is put in raw mode):\n  \
    Ctrl-] or Ctrl-C   quit\n  Ctrl-R             reset the board (DTR/RTS pulse)\n  \
    Enter              sends --eol\n\n\
    When stdin is not a terminal (a pipe, a file, /dev/null), its bytes are sent to the board as \
    they are (each newline as --eol) and its end does not end the monitor: SIGINT, SIGTERM or \
    --duration do. Output from the board goes to stdout (bytes that are not UTF-8 shown as \\xNN), \
    nixflash's own lines (starting with `--- `) to stderr. When the port goes away (USB unplug) \
    the monitor waits for it to come back.\n\n\
    With the firmware's ELF (--elf, or in a project the last build's), addresses in its code are \
    followed by their function and source line, inlined functions included, and defmt frames are \
    decoded into level, message and source line; --raw shows the bytes as they come.\n\n\
    A Cortex-M board (STM32, nRF) logs defmt over RTT through its debug probe: the monitor runs \
    `probe-rs attach` on the firmware's ELF (which it needs: --elf, or the last build's) and \
    decodes the channel the same way; Ctrl-] or Ctrl-C quits, nothing is sent to the board.\n\n\
    Examples:\n  nixflash monitor                         in a project: its board's port and baud\n  \
    nixflash monitor --board uno --timestamps --log run.log\n  \
    nixflash monitor --port /dev/ttyUSB0 --baud 115200 --eol crlf\n  \
    nixflash monitor --board esp32c3 --elf target/riscv32imc-unknown-none-elf/release/fw\n  \
    printf 'status\\n' | nixflash monitor --port /dev/ttyACM0 --baud 9600 --duration 5"
)]
pub struct Args {
    /// Serial port (default: `port` in [package.metadata.nixflash], else the one port with one of
    /// the board's USB ids)
    #[arg(long, short)]
    pub port: Option<String>,
    /// Board id or alias (default: `board` in [package.metadata.nixflash] of the project's Cargo.toml)
    #[arg(long, short)]
    pub board: Option<String>,
    /// The firmware's ELF, to annotate addresses and decode defmt frames (default: in a
    /// project, the last build's result/bin/<name>.elf)
    #[arg(long, value_name = "PATH", conflicts_with = "raw")]
    pub elf: Option<PathBuf>,
    #[command(flatten)]
    pub monitor: MonitorFlags,
}

/// What the monitor does, the same options for `monitor` and `flash --monitor`.
#[derive(clap::Args, Debug, Clone)]
pub struct MonitorFlags {
    /// Baud rate (default: `baud` in [package.metadata.nixflash], else the board's)
    #[arg(long)]
    pub baud: Option<u32>,
    /// Start each line from the board with the local time, [HH:MM:SS.mmm]
    #[arg(long)]
    pub timestamps: bool,
    /// Also append the board's output to this file
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// What Enter sends to the board
    #[arg(long, value_enum, default_value_t = EolArg::Lf)]
    pub eol: EolArg,
    /// End the monitor after this many seconds
    #[arg(long, value_name = "SECS", value_parser = super::seconds)]
    pub duration: Option<Duration>,
    /// Wait up to this many seconds for the port to appear
    #[arg(long, value_name = "SECS", value_parser = super::seconds)]
    pub wait: Option<Duration>,
    /// End with an error when the port goes away, instead of waiting for it to return
    #[arg(long)]
    pub no_reconnect: bool,
    /// Show the port's bytes as they come: no addresses annotated, no defmt frames decoded
    #[arg(long)]
    pub raw: bool,
}

impl MonitorFlags {
    /// The options given on the command line, by name, for "needs --monitor".
    pub fn given(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let flags = [
            (self.baud.is_some(), "--baud"),
            (self.timestamps, "--timestamps"),
            (self.log.is_some(), "--log"),
            (!matches!(self.eol, EolArg::Lf), "--eol"),
            (self.duration.is_some(), "--duration"),
            (self.wait.is_some(), "--wait"),
            (self.no_reconnect, "--no-reconnect"),
            (self.raw, "--raw"),
        ];
        for (set, name) in flags {
            if set {
                out.push(name);
            }
        }
        out
    }

    /// The monitor's options for `port`: `baud` unless --baud says otherwise, waiting `wait`
    /// unless --wait says otherwise.
    pub fn options(
        &self,
        port: String,
        baud: u32,
        reset: Vec<ResetStep>,
        wait: Duration,
    ) -> Result<MonitorOptions> {
        let baud = self.baud.unwrap_or(baud);
        if baud == 0 {
            return Err(Failure::new(Kind::Usage, "--baud must be above zero")
                .hint(
                    "serial consoles run at 9600, 57600 or 115200 baud; the board's is the default",
                )
                .into());
        }
        Ok(MonitorOptions {
            port,
            baud,
            timestamps: self.timestamps,
            log: self.log.clone(),
            eol: self.eol.into(),
            reset,
            duration: self.duration,
            wait: self.wait.unwrap_or(wait),
            reconnect: !self.no_reconnect,
            decode: None,
        })
    }

    /// What the monitor decodes with: the firmware `elf` (checked against `board`, its source
    /// paths shown relative to `project`), unless --raw.
    pub fn decode(
        &self,
        elf: Option<PathBuf>,
        board: Option<&Board>,
        project: Option<PathBuf>,
    ) -> Option<Decode> {
        if self.raw {
            return None;
        }
        Some(Decode {
            elf: elf?,
            board: board.cloned(),
            project,
            rtt: false,
        })
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EolArg {
    Cr,
    Lf,
    Crlf,
}

impl From<EolArg> for Eol {
    fn from(e: EolArg) -> Eol {
        match e {
            EolArg::Cr => Eol::Cr,
            EolArg::Lf => Eol::Lf,
            EolArg::Crlf => Eol::CrLf,
        }
    }
}

/// The monitor of a board whose firmware logs over RTT through its debug probe (the `cortex-m`
/// family): probe-rs reads the channel, nixflash decodes it with `elf` (the firmware running
/// there). The serial port's options (--baud, --eol, --wait, --no-reconnect) are refused.
pub fn rtt(
    board: &Board,
    way: crate::flash::probe::Way,
    flags: &MonitorFlags,
    elf: Option<PathBuf>,
    project: Option<PathBuf>,
    flake: &crate::tool::Flake,
) -> Result<()> {
    let serial_only = [
        (flags.baud.is_some(), "--baud"),
        (!matches!(flags.eol, EolArg::Lf), "--eol"),
        (flags.wait.is_some(), "--wait"),
        (flags.no_reconnect, "--no-reconnect"),
    ];
    if let Some((_, flag)) = serial_only.iter().find(|(set, _)| *set) {
        return Err(Failure::new(
            Kind::Usage,
            format!(
                "{flag} is an option of a serial port, and the {}'s log comes over RTT through \
                 its debug probe",
                board.name
            ),
        )
        .hint(format!("leave {flag} out"))
        .into());
    }
    let Some(elf) = elf else {
        return Err(Failure::new(
            Kind::FirmwareMissing,
            format!(
                "the {}'s log comes over RTT, which probe-rs finds with the firmware's ELF, and \
                 there is none here",
                board.name
            ),
        )
        .hint("run `nixflash build` (the monitor then reads result/bin/), or pass --elf <PATH>")
        .into());
    };
    let probe_rs = crate::flash::probe::find_probe_rs(way, flake, &super::Terminal)?;
    let decode = flags
        .decode(Some(elf.clone()), Some(board), project)
        .map(|mut d| {
            d.rtt = true;
            d
        });
    let opts = crate::monitor::rtt::RttOptions {
        board,
        probe_rs: &probe_rs,
        elf,
        view: crate::monitor::rtt::View {
            decode,
            timestamps: flags.timestamps,
            log: flags.log.clone(),
            duration: flags.duration,
        },
    };
    crate::monitor::rtt::monitor(&opts, super::terminal::console())
}

pub fn run(a: Args) -> Result<u8> {
    let ctx = super::context(match &a.board {
        Some(b) => super::Needs::Board(b),
        None => super::Needs::ProjectBoard,
    })?;
    let board = board(&ctx, a.board.as_deref())?;
    // The project's own port and speed ([package.metadata.nixflash]), where the flags say none.
    let project = match ctx.root {
        Some(_) => Some(ctx.manifest()?),
        None => None,
    };
    let kept_port = project.and_then(|m| m.port.clone());
    let baud = match (a.monitor.baud.or(project.and_then(|m| m.baud)), board) {
        (Some(b), _) => b,
        (None, Some(b)) => b.monitor.baud,
        (None, None) => {
            return Err(Failure::new(
                Kind::BoardNeeded,
                "no baud rate: no --baud, no --board, and no project with a board here",
            )
            .hint(
                "pass --baud (e.g. --baud 115200), or --board <id> to use the board's \
                 (`nixflash boards` lists them)",
            )
            .into())
        }
    };
    if baud == 0 {
        // Said before a port is looked for.
        a.monitor
            .options(String::new(), baud, Vec::new(), Duration::ZERO)?;
    }
    let port = a.port.clone().or(kept_port);
    // The firmware: --elf, else the last build's in a project.
    let built = project.map(|m| {
        m.root
            .join("result/bin")
            .join(format!("{}.elf", m.firmware_bin()))
    });
    let elf = a.elf.clone().or(built.filter(|p| p.is_file()));
    if let (None, Some(b)) = (&port, board) {
        if b.family().flasher.through_probe() {
            let flake = crate::tool::Flake::of(&ctx, None);
            let root = project.map(|m| m.root.clone());
            let way = crate::flash::probe::way_or_error(b)?;
            rtt(b, way, &a.monitor, elf, root, &flake)?;
            return Ok(0);
        }
    }
    let port =
        match (&port, board) {
            (_, Some(b)) => super::pick_port(port.as_deref(), b, &ctx.db)?,
            (Some(p), None) => p.clone(),
            (None, None) => {
                let ports = serial::list_ports()?;
                let seen = if ports.is_empty() {
                    " no serial ports at all".to_string()
                } else {
                    serial::ports::port_lines(&ports, &ctx.db)
                };
                return Err(Failure::new(Kind::BoardNeeded, format!(
                "which serial port? no --port, no --board, and no project with a board here\n  \
                 seen:{seen}"
            ))
            .hint(
                "pass --port <PORT>, or --board <id> so that nixflash can recognise the board's \
                 port by its USB id",
            )
            .into());
            }
        };
    let reset = board.map_or_else(
        || reset::WITHOUT_A_BOARD.to_vec(),
        |b| reset::steps_for(b, &port),
    );
    let mut opts = a.monitor.options(port, baud, reset, Duration::ZERO)?;
    opts.decode = a
        .monitor
        .decode(elf, board, project.map(|m| m.root.clone()));
    monitor::monitor(&opts, super::terminal::console())?;
    Ok(0)
}

/// The board from `--board`, else from the project's Cargo.toml, else none.
fn board<'c>(ctx: &'c Context, flag: Option<&str>) -> Result<Option<&'c Board>> {
    if let Some(name) = flag {
        // PlatformIO's `-b` is the speed; here it is the board.
        if ctx.db.find(name).is_none() && name.parse::<u32>().is_ok() {
            return Err(Failure::new(
                Kind::Usage,
                format!("`{name}` is a speed, and -b (--board) names the board"),
            )
            .hint(format!(
                "the speed is --baud: `nixflash monitor --baud {name}`"
            ))
            .hint("-b takes a board id or alias (`nixflash boards` lists them)")
            .into());
        }
        return Ok(Some(ctx.db.get(name)?));
    }
    match ctx.manifest() {
        Ok(m) if m.board.is_some() => ctx.board().map(Some),
        _ => Ok(None),
    }
}
