//! `nixflash monitor`: nixflash's own serial monitor.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use nixflash::board::Board;
use nixflash::serial::{self, Eol, MonitorOptions, Reset};

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
    Examples:\n  nixflash monitor                         in a project: its board's port and baud\n  \
    nixflash monitor --board uno --timestamps --log run.log\n  \
    nixflash monitor --port /dev/ttyUSB0 --baud 115200 --eol crlf\n  \
    printf 'status\\n' | nixflash monitor --port /dev/ttyACM0 --baud 9600 --duration 5"
)]
pub struct Args {
    /// Serial port (default: the one port with one of the board's USB ids)
    #[arg(long, short)]
    pub port: Option<String>,
    /// Baud rate (default: the board's, from the board database)
    #[arg(long)]
    pub baud: Option<u32>,
    /// Board id or alias (default: `board` in [package.metadata.nixflash] of the project's Cargo.toml)
    #[arg(long, short)]
    pub board: Option<String>,
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
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<Duration>,
    /// Wait up to this many seconds for the port to appear
    #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "0")]
    pub wait: Duration,
    /// End with an error when the port goes away, instead of waiting for it to return
    #[arg(long)]
    pub no_reconnect: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
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

/// Seconds, as a whole or decimal number.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("`{s}` is not a number of seconds (e.g. 5 or 0.5)")),
    }
}

pub fn run(a: Args) -> Result<u8> {
    let board = board(a.board.as_deref())?;
    let baud = match (a.baud, &board) {
        (Some(b), _) => b,
        (None, Some(b)) => b.monitor.baud,
        (None, None) => bail!(
            "no baud rate: no --baud, no --board, and no project with a board here\n\
             hint: pass --baud (e.g. --baud 115200), or --board <id> to use the board's \
             (`nixflash boards` lists them)"
        ),
    };
    if baud == 0 {
        bail!("--baud must be above zero");
    }
    let port =
        match (&a.port, &board) {
            (_, Some(b)) => serial::pick_port(a.port.as_deref(), b)?,
            (Some(p), None) => p.clone(),
            (None, None) => {
                let ports = serial::list_ports()?;
                let seen: String = ports
                    .iter()
                    .map(|p| format!("\n    {}  {}", p.name, serial::describe(p)))
                    .collect();
                bail!(
                "which serial port? no --port, no --board, and no project with a board here\n  \
                 seen:{}\nhint: pass --port <PORT>, or --board <id> so that nixflash can \
                 recognise the board's port by its USB id",
                if seen.is_empty() { " no serial ports at all".to_string() } else { seen }
            )
            }
        };
    let opts = MonitorOptions {
        port,
        baud,
        timestamps: a.timestamps,
        log: a.log,
        eol: a.eol.into(),
        reset: board.as_ref().map_or(Reset::DtrPulse, Reset::for_board),
        duration: a.duration,
        wait: a.wait,
        reconnect: !a.no_reconnect,
    };
    serial::monitor(&opts)?;
    Ok(0)
}

/// The board from `--board`, else from the project's Cargo.toml, else none.
fn board(flag: Option<&str>) -> Result<Option<Board>> {
    let db = super::database()?;
    if let Some(name) = flag {
        return Ok(Some(db.get(name)?.clone()));
    }
    let Ok(cwd) = std::env::current_dir() else {
        return Ok(None);
    };
    let Ok(root) = nixflash::manifest::find_root(&cwd) else {
        return Ok(None);
    };
    let manifest = nixflash::manifest::read_toml(&root)?;
    match manifest.board {
        Some(id) => {
            let b = db.get(&id).map_err(|e| {
                e.context(format!(
                    "{} names board `{id}` in [package.metadata.nixflash]",
                    root.join("Cargo.toml").display()
                ))
            })?;
            Ok(Some(b.clone()))
        }
        None => Ok(None),
    }
}
