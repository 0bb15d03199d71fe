//! Serial ports: finding the board's port, opening it with errors that say what to do, and
//! nixflash's own serial monitor (the same for every board).
//!
//! Port choice is a pure function over a list of [`PortInfo`] ([`choose_port`]), so it is tested
//! on tables; [`pick_port`] adds the listing, the "using ..." line and the interactive question.
//! The monitor ([`monitor`]) is used by `nixflash monitor` and by `nixflash flash --monitor`.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serialport::{SerialPort, SerialPortType};

use crate::board::{Board, Database, Family, UsbId};

// ----------------------------------------------------------------------------------------------
// Ports
// ----------------------------------------------------------------------------------------------

/// What kind of device a serial port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortKind {
    Usb,
    Pci,
    Bluetooth,
    Other,
}

/// The USB side of a USB serial port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbInfo {
    pub id: UsbId,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub serial_number: Option<String>,
}

/// One serial port as the system lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortInfo {
    /// The device path, e.g. `/dev/ttyACM0`.
    pub name: String,
    pub kind: PortKind,
    pub usb: Option<UsbInfo>,
}

impl PortInfo {
    /// A USB port (for tables of test data and for callers that know a port).
    pub fn usb(name: &str, id: &str, manufacturer: Option<&str>, product: Option<&str>) -> Self {
        PortInfo {
            name: name.to_string(),
            kind: PortKind::Usb,
            usb: Some(UsbInfo {
                id: id.parse().expect("a USB id written vvvv:pppp"),
                manufacturer: manufacturer.map(str::to_string),
                product: product.map(str::to_string),
                serial_number: None,
            }),
        }
    }

    /// A port that is not on USB (a built-in UART, a Bluetooth link).
    pub fn other(name: &str) -> Self {
        PortInfo {
            name: name.to_string(),
            kind: PortKind::Other,
            usb: None,
        }
    }

    /// The port's USB id, if it is on USB.
    pub fn usb_id(&self) -> Option<UsbId> {
        self.usb.as_ref().map(|u| u.id)
    }
}

/// USB-serial bridge chips found on clone boards (and on some genuine ones), by USB id.
pub const BRIDGE_CHIPS: &[(UsbId, &str)] = &[
    (
        UsbId {
            vid: 0x1a86,
            pid: 0x7523,
        },
        "CH340",
    ),
    (
        UsbId {
            vid: 0x1a86,
            pid: 0x55d3,
        },
        "CH343",
    ),
    (
        UsbId {
            vid: 0x10c4,
            pid: 0xea60,
        },
        "CP210x",
    ),
    (
        UsbId {
            vid: 0x0403,
            pid: 0x6001,
        },
        "FTDI FT232R",
    ),
];

/// The bridge chip with this USB id, if it is one of [`BRIDGE_CHIPS`].
pub fn bridge_chip(id: UsbId) -> Option<&'static str> {
    BRIDGE_CHIPS.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// Every serial port the system knows, sorted by name. On Linux this reads sysfs (serialport's
/// path without libudev); USB vendor and product ids, manufacturer, product and serial number
/// come from the USB device's sysfs attributes.
pub fn list_ports() -> Result<Vec<PortInfo>> {
    // serialport panics when /sys/class/tty is missing (some containers): treat it as no ports.
    if cfg!(target_os = "linux") && !Path::new("/sys/class/tty").is_dir() {
        return Ok(Vec::new());
    }
    let found = serialport::available_ports().context("cannot list the serial ports")?;
    let mut ports: Vec<PortInfo> = found
        .into_iter()
        .map(|p| {
            let (kind, usb) = match p.port_type {
                SerialPortType::UsbPort(u) => (
                    PortKind::Usb,
                    Some(UsbInfo {
                        id: UsbId {
                            vid: u.vid,
                            pid: u.pid,
                        },
                        manufacturer: u.manufacturer,
                        product: u.product,
                        serial_number: u.serial_number,
                    }),
                ),
                SerialPortType::PciPort => (PortKind::Pci, None),
                SerialPortType::BluetoothPort => (PortKind::Bluetooth, None),
                SerialPortType::Unknown => (PortKind::Other, None),
            };
            PortInfo {
                name: p.port_name,
                kind,
                usb,
            }
        })
        .collect();
    ports.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ports)
}

/// One line about a port: its USB id, manufacturer, product and bridge chip.
pub fn describe(p: &PortInfo) -> String {
    let Some(u) = &p.usb else {
        return match p.kind {
            PortKind::Pci => "(PCI, not USB)".to_string(),
            PortKind::Bluetooth => "(Bluetooth, not USB)".to_string(),
            _ => "(not USB)".to_string(),
        };
    };
    let mut s = u.id.to_string();
    for part in [&u.manufacturer, &u.product].into_iter().flatten() {
        s.push(' ');
        s.push_str(part);
    }
    if let Some(chip) = bridge_chip(u.id) {
        s.push_str(&format!(" ({chip} USB-serial chip)"));
    }
    s
}

/// The boards in `db` whose USB ids include `id`.
pub fn boards_for(db: &Database, id: UsbId) -> Vec<&Board> {
    db.boards().filter(|b| b.usb.ids.contains(&id)).collect()
}

/// The ports whose USB id is in the board's list, in the order given.
pub fn matching_ports<'a>(ports: &'a [PortInfo], board: &Board) -> Vec<&'a PortInfo> {
    ports
        .iter()
        .filter(|p| p.usb_id().is_some_and(|id| board.usb.ids.contains(&id)))
        .collect()
}

/// The outcome of [`choose_port`] when it is not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortChoice {
    /// `--port` was given: it is used as it is, without looking at the list.
    Given(String),
    /// Exactly one port has one of the board's USB ids.
    Matched(PortInfo),
    /// Several ports do: the user has to say which (`--port`, or a question on a terminal).
    Several(Vec<PortInfo>),
}

/// Chooses the board's port from `ports` (pure: no I/O). `--port` wins; otherwise the ports whose
/// USB id is in `board.usb.ids`. None of them is an error that lists what was seen, what was
/// expected (bridge chips named) and what to do.
pub fn choose_port(
    requested: Option<&str>,
    ports: &[PortInfo],
    board: &Board,
) -> Result<PortChoice> {
    if let Some(p) = requested {
        return Ok(PortChoice::Given(p.to_string()));
    }
    let matched = matching_ports(ports, board);
    match matched.len() {
        0 => Err(no_port_error(ports, board)),
        1 => Ok(PortChoice::Matched(matched[0].clone())),
        _ => Ok(PortChoice::Several(matched.into_iter().cloned().collect())),
    }
}

fn port_lines(ports: &[PortInfo]) -> String {
    let width = ports.iter().map(|p| p.name.len()).max().unwrap_or(0);
    ports
        .iter()
        .map(|p| format!("    {:<width$}  {}\n", p.name, describe(p)))
        .collect()
}

fn no_port_error(ports: &[PortInfo], board: &Board) -> anyhow::Error {
    let mut msg = format!(
        "no serial port found for the {} ({})\n",
        board.name, board.id
    );
    if ports.is_empty() {
        msg.push_str("  seen: no serial ports at all\n");
    } else {
        msg.push_str("  seen:\n");
        msg.push_str(&port_lines(ports));
    }
    msg.push_str("  expected a USB id of the board's:\n   ");
    for id in &board.usb.ids {
        match bridge_chip(*id) {
            Some(chip) => write!(msg, " {id} ({chip})").unwrap(),
            None => write!(msg, " {id}").unwrap(),
        }
    }
    msg.push('\n');
    let usb: Vec<&PortInfo> = ports.iter().filter(|p| p.usb.is_some()).collect();
    if usb.is_empty() {
        msg.push_str(
            "hint: plug the board in; if no port appears, try another USB cable (many only carry \
             power); on Linux `sudo dmesg -w` shows what the kernel sees while you plug it in\n",
        );
    }
    for p in &usb {
        let id = p.usb_id().expect("filtered on usb");
        if let Some(chip) = bridge_chip(id) {
            writeln!(
                msg,
                "hint: {} has a {chip} USB-serial chip ({id}), common on clone boards: if it is \
                 your board, pass `--port {}`, or add \"{id}\" to usb.ids in a board file of your \
                 own (start from `nixflash boards show {} --toml`)",
                p.name, p.name, board.id
            )
            .unwrap();
        }
    }
    if usb
        .iter()
        .any(|p| bridge_chip(p.usb_id().unwrap()).is_none())
    {
        msg.push_str("hint: if one of the ports seen is your board, pass `--port <PORT>`\n");
    }
    msg.push_str("hint: `nixflash ports` lists the ports and the boards they may be");
    anyhow::anyhow!(msg)
}

/// The error for [`PortChoice::Several`] when nobody can be asked.
pub fn several_ports_error(ports: &[PortInfo], board: &Board) -> anyhow::Error {
    anyhow::anyhow!(
        "several serial ports may be the {} ({}):\n{}hint: say which with `--port`, e.g. `--port {}`",
        board.name,
        board.id,
        port_lines(ports),
        ports.first().map_or("<PORT>", |p| p.name.as_str())
    )
}

/// The port to use for `board`: `requested` (`--port`) if given, else the one port with one of
/// the board's USB ids ("using ..." is said on stderr). With several, the user is asked on a
/// terminal (stdin and stderr both terminals), and told to pass `--port` otherwise.
pub fn pick_port(requested: Option<&str>, board: &Board) -> Result<String> {
    if let Some(p) = requested {
        return Ok(p.to_string());
    }
    let ports = list_ports()?;
    match choose_port(None, &ports, board)? {
        PortChoice::Given(p) => Ok(p),
        PortChoice::Matched(p) => {
            eprintln!("Using {} ({}) for the {}", p.name, describe(&p), board.name);
            Ok(p.name)
        }
        PortChoice::Several(list) => {
            if io::stdin().is_terminal() && io::stderr().is_terminal() {
                ask_port(&list, board)
            } else {
                Err(several_ports_error(&list, board))
            }
        }
    }
}

fn ask_port(list: &[PortInfo], board: &Board) -> Result<String> {
    eprintln!("Several serial ports may be the {}:", board.name);
    for (i, p) in list.iter().enumerate() {
        eprintln!("  {}) {}  {}", i + 1, p.name, describe(p));
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
        _ => bail!(
            "`{answer}` is not one of 1-{}\nhint: or say which with `--port`",
            list.len()
        ),
    }
}

// ----------------------------------------------------------------------------------------------
// Opening a port
// ----------------------------------------------------------------------------------------------

/// How long one read of the port waits before the monitor looks at its keyboard queue again.
const READ_TIMEOUT: Duration = Duration::from_millis(20);

/// How long the port must be quiet before the start of a UTF-8 sequence that has not been
/// completed is shown escaped (long enough for the next byte even at 300 baud).
const QUIET: Duration = Duration::from_millis(250);

fn try_open(path: &str, baud: u32) -> serialport::Result<Box<dyn SerialPort>> {
    serialport::new(path, baud)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .timeout(READ_TIMEOUT)
        .open()
}

fn is_not_found(e: &serialport::Error) -> bool {
    e.kind() == serialport::ErrorKind::Io(io::ErrorKind::NotFound)
}

/// Opens `path` at `baud` (8N1, no flow control, exclusive), with errors that say what to do:
/// a missing port, permission denied (join `dialout`), a busy port (and who holds it).
pub fn open_port(path: &str, baud: u32) -> Result<Box<dyn SerialPort>> {
    try_open(path, baud).map_err(|e| explain_open_error(path, &e))
}

fn explain_open_error(path: &str, e: &serialport::Error) -> anyhow::Error {
    use serialport::ErrorKind as K;
    match e.kind() {
        K::Io(io::ErrorKind::NotFound) => anyhow::anyhow!(
            "serial port {path} does not exist\n\
             hint: is the board plugged in? `nixflash ports` lists the serial ports there are"
        ),
        K::Io(io::ErrorKind::PermissionDenied) => {
            let group = device_group(Path::new(path));
            let owner = match &group {
                Some(g) => format!(" (it belongs to group `{g}`)"),
                None => String::new(),
            };
            let g = group
                .filter(|g| g != "root")
                .unwrap_or_else(|| "dialout".into());
            anyhow::anyhow!(
                "permission denied opening serial port {path}{owner}\n\
                 hint: add yourself to group `{g}`: `sudo usermod -aG {g} $USER`, then log out and \
                 in again (serial ports belong to `dialout` on Debian and Ubuntu, `uucp` on Arch)\n\
                 hint: on NixOS: users.users.<you>.extraGroups = [ \"dialout\" ];"
            )
        }
        K::NoDevice => {
            let holders = port_holders(Path::new(path));
            let who = if holders.is_empty() {
                format!(
                    "\nhint: which program holds it could not be found (other users' processes \
                     are hidden unless you are root); `fuser -v {path}` may tell"
                )
            } else {
                let list: Vec<String> = holders
                    .iter()
                    .map(|h| format!("{} (pid {})", h.command, h.pid))
                    .collect();
                format!("\n  held by: {}", list.join(", "))
            };
            anyhow::anyhow!(
                "serial port {path} is busy: another program has it open{who}\n\
                 hint: close that program (another serial monitor, a flasher, an IDE) and try again"
            )
        }
        K::Unknown if e.description.contains("Inappropriate ioctl") => anyhow::anyhow!(
            "{path} is not a serial port ({})\nhint: `nixflash ports` lists the serial ports",
            e.description
        ),
        _ => anyhow::anyhow!("cannot open serial port {path}: {}", e.description),
    }
}

/// The name of the group that owns a device file.
fn device_group(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        group_name(std::fs::metadata(path).ok()?.gid())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The system's groups, name and id, from /etc/group (empty where there is none).
pub fn system_groups() -> Vec<(String, u32)> {
    let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _ = f.next();
            Some((name.to_string(), f.next()?.parse().ok()?))
        })
        .collect()
}

/// The name of group `gid`.
pub fn group_name(gid: u32) -> Option<String> {
    system_groups()
        .into_iter()
        .find_map(|(name, id)| (id == gid).then_some(name))
}

/// A process that has a file open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

/// The processes (other than this one) that have `path` open, found through `/proc/*/fd`
/// (Linux; only the processes this user may inspect). Empty elsewhere.
pub fn port_holders(path: &Path) -> Vec<Holder> {
    let Ok(target) = path.canonicalize() else {
        return Vec::new();
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == target))
        {
            let command = std::fs::read_to_string(entry.path().join("comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into());
            found.push(Holder { pid, command });
        }
    }
    found.sort_by_key(|h| h.pid);
    found
}

// ----------------------------------------------------------------------------------------------
// The monitor
// ----------------------------------------------------------------------------------------------

/// What Enter sends to the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eol {
    Cr,
    Lf,
    CrLf,
}

impl Eol {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Eol::Cr => b"\r",
            Eol::Lf => b"\n",
            Eol::CrLf => b"\r\n",
        }
    }
}

/// How Ctrl-R resets the board through the port's modem lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// Arduino style: DTR (and RTS) dropped, then raised; the falling edge through the board's
    /// capacitor pulses RESET.
    DtrPulse,
    /// Espressif style: RTS held for 100 ms (EN low) with DTR off (GPIO0/GPIO9 high, so the chip
    /// boots the firmware, not the ROM loader).
    RtsPulse,
}

impl Reset {
    /// The reset that suits a board's family.
    pub fn for_board(board: &Board) -> Reset {
        match board.family {
            Family::Avr => Reset::DtrPulse,
            Family::EspRiscv => Reset::RtsPulse,
        }
    }

    fn run(self, port: &mut dyn SerialPort) -> serialport::Result<()> {
        match self {
            Reset::DtrPulse => {
                port.write_data_terminal_ready(false)?;
                port.write_request_to_send(false)?;
                thread::sleep(Duration::from_millis(100));
                port.write_data_terminal_ready(true)?;
                port.write_request_to_send(true)?;
            }
            Reset::RtsPulse => {
                port.write_data_terminal_ready(false)?;
                port.write_request_to_send(true)?;
                thread::sleep(Duration::from_millis(100));
                port.write_request_to_send(false)?;
            }
        }
        Ok(())
    }
}

/// Everything [`monitor`] needs.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// The port's path (a symlink such as /dev/serial/by-id/... is fine, and survives replugs).
    pub port: String,
    pub baud: u32,
    /// Prefix every line from the board with the local time, `[HH:MM:SS.mmm] `.
    pub timestamps: bool,
    /// Append what is shown (port output, timestamps included) to this file.
    pub log: Option<PathBuf>,
    /// What Enter sends (on a terminal: the Enter key; from a pipe: each `\n`).
    pub eol: Eol,
    /// What Ctrl-R does.
    pub reset: Reset,
    /// End the session after this long (for scripts and tests).
    pub duration: Option<Duration>,
    /// Wait this long for the port to appear before giving up (e.g. right after flashing, while
    /// a native-USB board comes back).
    pub wait: Duration,
    /// When the port vanishes, wait for it to return (true) or end with an error (false).
    pub reconnect: bool,
}

impl MonitorOptions {
    /// Options with the defaults of `nixflash monitor`: no timestamps, no log, Enter sends LF,
    /// DTR reset, no time limit, no wait, reconnect.
    pub fn new(port: impl Into<String>, baud: u32) -> Self {
        MonitorOptions {
            port: port.into(),
            baud,
            timestamps: false,
            log: None,
            eol: Eol::Lf,
            reset: Reset::DtrPulse,
            duration: None,
            wait: Duration::ZERO,
            reconnect: true,
        }
    }
}

/// Why a monitor session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorEnd {
    /// Ctrl-] or Ctrl-C typed on the terminal.
    Quit,
    /// SIGINT (Ctrl-C when the terminal is not in raw mode).
    Interrupted,
    /// SIGTERM.
    Terminated,
    /// `duration` elapsed.
    Duration,
    /// Standard output was closed (e.g. `nixflash monitor | head`).
    OutputClosed,
}

/// What happened in a monitor session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorReport {
    pub end: MonitorEnd,
    /// Bytes read from the port.
    pub received: u64,
    /// Bytes written to the port.
    pub sent: u64,
    /// How many times the port vanished and came back.
    pub reconnects: u32,
}

/// Runs the serial monitor until the user quits, a signal, or `duration`.
///
/// Port bytes go to stdout (text that is not UTF-8 shown escaped, e.g. `\xff`), status lines
/// (starting with `--- `) to stderr.
///
/// - stdin a terminal: raw mode (restored on every exit); keys go to the board as typed, Enter
///   as `eol`; Ctrl-] or Ctrl-C quits, Ctrl-R resets the board.
/// - stdin not a terminal (pipe, file, /dev/null): no raw mode; its bytes are forwarded as they
///   are, each `\n` as `eol`; its end does not end the session: SIGINT, SIGTERM or `duration` do.
///
/// When the port vanishes (USB unplug) it waits for the same path to return and goes on.
pub fn monitor(opts: &MonitorOptions) -> Result<MonitorReport> {
    crate::interrupt::install();
    let _term = SigtermGuard::install();
    let started = Instant::now();
    let stdin_tty = io::stdin().is_terminal();

    let port = open_waiting(opts)?;

    let log = match &opts.log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open the log file {}", p.display()))?,
        ),
        None => None,
    };

    let raw = if stdin_tty {
        Some(RawMode::enable().context("cannot put the terminal in raw mode")?)
    } else {
        None
    };
    let mut out = Output {
        fmt: LineFormatter::new(opts.timestamps),
        log,
        log_path: opts.log.clone(),
        crlf: raw.is_some() && io::stdout().is_terminal(),
        last_cr: false,
        raw: raw.is_some(),
    };
    if opts.timestamps {
        init_local_time();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let input = spawn_input(stdin_tty, opts.eol, tx, stop.clone());

    let keys = if stdin_tty {
        "Ctrl-] or Ctrl-C quits, Ctrl-R resets the board"
    } else {
        "stdin is not a terminal: its bytes are sent; SIGINT or SIGTERM ends"
    };
    out.status(&format!(
        "Connected to {} at {} baud ({keys})",
        opts.port, opts.baud
    ));

    let result = run_session(opts, port, &mut out, &rx, started);
    stop.store(true, Ordering::SeqCst);
    let _ = input.join();
    if let Ok(r) = &result {
        let why = match r.end {
            MonitorEnd::Quit => "quit",
            MonitorEnd::Interrupted => "interrupted",
            MonitorEnd::Terminated => "terminated",
            MonitorEnd::Duration => "time is up",
            MonitorEnd::OutputClosed => "output closed",
        };
        let tail = out.fmt.flush();
        let _ = out.emit(&tail);
        out.status(&format!(
            "Monitor closed ({why}): {} bytes received, {} sent, {} reconnects",
            r.received, r.sent, r.reconnects
        ));
    }
    drop(raw);
    result
}

/// The first open: errors are explained; a missing port is waited for up to `opts.wait`.
fn open_waiting(opts: &MonitorOptions) -> Result<Box<dyn SerialPort>> {
    let deadline = Instant::now() + opts.wait;
    let mut said = false;
    loop {
        match try_open(&opts.port, opts.baud) {
            Ok(p) => return Ok(p),
            Err(e) if is_not_found(&e) && Instant::now() < deadline => {
                if !said {
                    eprintln!(
                        "--- Waiting up to {:.1} s for {} to appear",
                        opts.wait.as_secs_f64(),
                        opts.port
                    );
                    said = true;
                }
                crate::interrupt::check()?;
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(explain_open_error(&opts.port, &e)),
        }
    }
}

type Port = Box<dyn SerialPort>;

fn run_session(
    opts: &MonitorOptions,
    first: Port,
    out: &mut Output,
    rx: &mpsc::Receiver<Input>,
    started: Instant,
) -> Result<MonitorReport> {
    let deadline = opts.duration.map(|d| started + d);
    let mut report = MonitorReport {
        end: MonitorEnd::Quit,
        received: 0,
        sent: 0,
        reconnects: 0,
    };
    // None while the port is away (closed, so that the device can come back under its name).
    let mut port: Option<Port> = Some(first);
    let mut buf = [0u8; 4096];
    let mut last_try = Instant::now();
    let mut last_data = Instant::now();
    let mut last_wait_error = String::new();
    let mut said_dropped = false;
    let end = 'session: loop {
        if crate::interrupt::interrupted() {
            break MonitorEnd::Interrupted;
        }
        if TERMINATED.load(Ordering::SeqCst) {
            break MonitorEnd::Terminated;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break MonitorEnd::Duration;
        }
        while let Ok(input) = rx.try_recv() {
            match input {
                Input::Quit => break 'session MonitorEnd::Quit,
                Input::Reset => match port.as_mut() {
                    Some(p) => match opts.reset.run(p.as_mut()) {
                        Ok(()) => out.status(&format!("Reset the board ({:?})", opts.reset)),
                        Err(e) => out.status(&format!(
                            "Could not reset the board: {} (this port has no DTR/RTS lines, \
                             e.g. a pty)",
                            e.description
                        )),
                    },
                    None => out.status("Cannot reset: the port is away"),
                },
                Input::Bytes(b) => {
                    match port.as_mut() {
                        Some(p) => match p.write_all(&b).and_then(|_| p.flush()) {
                            Ok(()) => report.sent += b.len() as u64,
                            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                                out.status("Could not send: the port does not take data")
                            }
                            Err(e) => {
                                port = None;
                                gone(opts, out, &e)?;
                                last_try = Instant::now();
                            }
                        },
                        None => {
                            if !said_dropped {
                                out.status("Not connected: what is typed is dropped until the port returns");
                                said_dropped = true;
                            }
                        }
                    }
                }
            }
        }
        match port.as_mut() {
            Some(p) => match p.read(&mut buf) {
                Ok(0) => {
                    port = None;
                    gone(opts, out, &io::Error::from(io::ErrorKind::UnexpectedEof))?;
                    last_try = Instant::now();
                }
                Ok(n) => {
                    last_data = Instant::now();
                    report.received += n as u64;
                    let text = out.fmt.feed(&buf[..n]);
                    if out.emit(&text)? {
                        break MonitorEnd::OutputClosed;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut
                            | io::ErrorKind::WouldBlock
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if last_data.elapsed() >= QUIET {
                        let text = out.fmt.flush();
                        if out.emit(&text)? {
                            break MonitorEnd::OutputClosed;
                        }
                    }
                }
                Err(e) => {
                    port = None;
                    gone(opts, out, &e)?;
                    last_try = Instant::now();
                }
            },
            None => {
                thread::sleep(Duration::from_millis(50));
                if last_try.elapsed() >= Duration::from_millis(200) {
                    last_try = Instant::now();
                    match try_open(&opts.port, opts.baud) {
                        Ok(p) => {
                            port = Some(p);
                            report.reconnects += 1;
                            said_dropped = false;
                            last_wait_error.clear();
                            out.status(&format!("Reconnected to {}", opts.port));
                        }
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => {
                            // Right after a replug udev may not have set the permissions yet:
                            // say what is wrong once, and keep trying.
                            if e.description != last_wait_error {
                                out.status(&format!("Still waiting: {}", e.description));
                                last_wait_error = e.description.clone();
                            }
                        }
                    }
                }
            }
        }
    };
    report.end = end;
    Ok(report)
}

/// The port went away: say so, or end with an error when reconnecting is off.
fn gone(opts: &MonitorOptions, out: &mut Output, e: &io::Error) -> Result<()> {
    let tail = out.fmt.flush();
    out.emit(&tail)?;
    if !opts.reconnect {
        bail!(
            "serial port {} went away ({e})\nhint: check the cable; without --no-reconnect the \
             monitor waits for the port to return",
            opts.port
        );
    }
    out.status(&format!(
        "Port {} went away ({e}); waiting for it to return (replug the board, or quit)",
        opts.port
    ));
    Ok(())
}

/// Where the port's text goes: stdout (CR added before LF on a raw terminal) and the log file.
struct Output {
    fmt: LineFormatter,
    log: Option<File>,
    log_path: Option<PathBuf>,
    crlf: bool,
    last_cr: bool,
    raw: bool,
}

impl Output {
    /// Writes text; `Ok(true)` when stdout has been closed.
    fn emit(&mut self, text: &str) -> Result<bool> {
        if text.is_empty() {
            return Ok(false);
        }
        if let Some(log) = &mut self.log {
            log.write_all(text.as_bytes()).with_context(|| {
                format!(
                    "cannot write the log file {}",
                    self.log_path.as_deref().unwrap_or(Path::new("?")).display()
                )
            })?;
        }
        let shown = if self.crlf {
            let mut s = String::with_capacity(text.len() + 8);
            for c in text.chars() {
                if c == '\n' && !self.last_cr {
                    s.push('\r');
                }
                self.last_cr = c == '\r';
                s.push(c);
            }
            s
        } else {
            text.to_string()
        };
        let mut stdout = io::stdout().lock();
        match stdout
            .write_all(shown.as_bytes())
            .and_then(|_| stdout.flush())
        {
            Ok(()) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(true),
            Err(e) => Err(e).context("cannot write to standard output"),
        }
    }

    /// A status line on stderr, on a line of its own.
    fn status(&mut self, msg: &str) {
        let nl = if self.raw { "\r\n" } else { "\n" };
        let lead = if !self.fmt.at_line_start && io::stdout().is_terminal() {
            nl
        } else {
            ""
        };
        let mut err = io::stderr().lock();
        let _ = write!(err, "{lead}--- {msg}{nl}");
        let _ = err.flush();
    }
}

/// Turns port bytes into text: bytes that are not UTF-8 escaped as `\xNN` (a sequence cut
/// between two reads is kept until the next one), lines optionally prefixed with the time.
#[derive(Debug)]
pub struct LineFormatter {
    timestamps: bool,
    at_line_start: bool,
    pending: Vec<u8>,
    clock: fn() -> String,
}

impl LineFormatter {
    /// A formatter; with `timestamps`, lines start with the local time `[HH:MM:SS.mmm] `.
    pub fn new(timestamps: bool) -> Self {
        LineFormatter {
            timestamps,
            at_line_start: true,
            pending: Vec::new(),
            clock: local_clock,
        }
    }

    /// The same with another clock (for tests of the layout).
    pub fn with_clock(timestamps: bool, clock: fn() -> String) -> Self {
        LineFormatter {
            clock,
            ..LineFormatter::new(timestamps)
        }
    }

    /// The text for these bytes (an incomplete UTF-8 sequence at the end is held back).
    pub fn feed(&mut self, bytes: &[u8]) -> String {
        let mut data = std::mem::take(&mut self.pending);
        data.extend_from_slice(bytes);
        let mut decoded = String::new();
        let mut rest: &[u8] = &data;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    decoded.push_str(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    decoded.push_str(std::str::from_utf8(good).expect("checked valid"));
                    match e.error_len() {
                        Some(n) => {
                            for b in &bad[..n] {
                                write!(decoded, "\\x{b:02x}").unwrap();
                            }
                            rest = &bad[n..];
                        }
                        None => {
                            self.pending = bad.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        self.lines(&decoded)
    }

    /// Text for bytes held back (escaped): called when the port has been quiet.
    pub fn flush(&mut self) -> String {
        if self.pending.is_empty() {
            return String::new();
        }
        let mut s = String::new();
        for b in std::mem::take(&mut self.pending) {
            write!(s, "\\x{b:02x}").unwrap();
        }
        self.lines(&s)
    }

    fn lines(&mut self, text: &str) -> String {
        if !self.timestamps {
            if let Some(c) = text.chars().last() {
                self.at_line_start = c == '\n';
            }
            return text.to_string();
        }
        let mut s = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            if self.at_line_start {
                s.push_str(&(self.clock)());
                self.at_line_start = false;
            }
            s.push(c);
            if c == '\n' {
                self.at_line_start = true;
            }
        }
        s
    }
}

fn init_local_time() {
    #[cfg(unix)]
    {
        extern "C" {
            fn tzset();
        }
        // SAFETY: tzset reads TZ and /etc/localtime; called before any other thread formats time.
        unsafe { tzset() };
    }
}

/// `[HH:MM:SS.mmm] ` in local time (UTC where the zone is unknown).
fn local_clock() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (h, m, s) = local_hms(now.as_secs());
    format!("[{h:02}:{m:02}:{s:02}.{:03}] ", now.subsec_millis())
}

#[cfg(unix)]
fn local_hms(secs: u64) -> (i32, i32, i32) {
    let t = secs as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which is a plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return utc_hms(secs);
    }
    (tm.tm_hour, tm.tm_min, tm.tm_sec)
}

#[cfg(not(unix))]
fn local_hms(secs: u64) -> (i32, i32, i32) {
    utc_hms(secs)
}

fn utc_hms(secs: u64) -> (i32, i32, i32) {
    let d = (secs % 86_400) as i32;
    (d / 3600, d / 60 % 60, d % 60)
}

/// What the keyboard (or stdin) asks of the monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Bytes(Vec<u8>),
    Reset,
    Quit,
}

/// Turns bytes read from stdin into what they mean. On a terminal (raw mode): Ctrl-C (0x03) and
/// Ctrl-] (0x1d) quit, Ctrl-R (0x12) resets, Enter (CR) sends `eol`, the rest is sent as typed.
/// From a pipe: every byte is sent, each `\n` as `eol`.
pub fn translate_input(bytes: &[u8], eol: Eol, terminal: bool) -> Vec<Input> {
    let mut out = Vec::new();
    let mut run = Vec::new();
    let enter = if terminal { b'\r' } else { b'\n' };
    for &b in bytes {
        let special = match b {
            0x03 | 0x1d if terminal => Some(Input::Quit),
            0x12 if terminal => Some(Input::Reset),
            _ => None,
        };
        match special {
            Some(s) => {
                if !run.is_empty() {
                    out.push(Input::Bytes(std::mem::take(&mut run)));
                }
                let quit = s == Input::Quit;
                out.push(s);
                if quit {
                    return out;
                }
            }
            None if b == enter => run.extend_from_slice(eol.bytes()),
            None => run.push(b),
        }
    }
    if !run.is_empty() {
        out.push(Input::Bytes(run));
    }
    out
}

/// Reads stdin in a thread (polling, so that it ends when `stop` is set) and sends what it means.
fn spawn_input(
    terminal: bool,
    eol: Eol,
    tx: mpsc::Sender<Input>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while !stop.load(Ordering::SeqCst) {
            match read_stdin(&mut buf, Duration::from_millis(100)) {
                StdinRead::Data(n) => {
                    for input in translate_input(&buf[..n], eol, terminal) {
                        if tx.send(input).is_err() {
                            return;
                        }
                    }
                }
                StdinRead::Nothing => {}
                // The end of stdin does not end the session (see `monitor`).
                StdinRead::End => return,
            }
        }
    })
}

enum StdinRead {
    Data(usize),
    Nothing,
    End,
}

#[cfg(unix)]
fn read_stdin(buf: &mut [u8], wait: Duration) -> StdinRead {
    let mut fds = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; read into a buffer of the given length.
    let ready = unsafe { libc::poll(&mut fds, 1, wait.as_millis() as libc::c_int) };
    if ready < 0 {
        return if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            StdinRead::Nothing
        } else {
            StdinRead::End
        };
    }
    if ready == 0 {
        return StdinRead::Nothing;
    }
    if fds.revents & libc::POLLNVAL != 0 {
        return StdinRead::End;
    }
    let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
    match n {
        n if n > 0 => StdinRead::Data(n as usize),
        0 => StdinRead::End,
        _ if matches!(
            io::Error::last_os_error().kind(),
            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
        ) =>
        {
            StdinRead::Nothing
        }
        _ => StdinRead::End,
    }
}

#[cfg(not(unix))]
fn read_stdin(buf: &mut [u8], _wait: Duration) -> StdinRead {
    match io::stdin().read(buf) {
        Ok(0) | Err(_) => StdinRead::End,
        Ok(n) => StdinRead::Data(n),
    }
}

/// Raw mode on the terminal for as long as it lives.
struct RawMode;

impl RawMode {
    fn enable() -> io::Result<RawMode> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

static TERMINATED: AtomicBool = AtomicBool::new(false);

/// SIGTERM ends the session cleanly (terminal restored) while the monitor runs; the previous
/// handler comes back afterwards.
struct SigtermGuard {
    #[cfg(unix)]
    old: libc::sigaction,
}

#[cfg(unix)]
extern "C" fn on_sigterm(_: libc::c_int) {
    TERMINATED.store(true, Ordering::SeqCst);
}

impl SigtermGuard {
    #[cfg(unix)]
    fn install() -> Option<SigtermGuard> {
        TERMINATED.store(false, Ordering::SeqCst);
        // SAFETY: the handler only stores to an atomic; both structs are plain C data.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut new.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGTERM, &new, &mut old) != 0 {
                return None;
            }
            Some(SigtermGuard { old })
        }
    }

    #[cfg(not(unix))]
    fn install() -> Option<SigtermGuard> {
        None
    }
}

impl Drop for SigtermGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: restores the handler saved by `install`.
        unsafe {
            libc::sigaction(libc::SIGTERM, &self.old, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Database {
        Database::builtin().unwrap()
    }

    fn names(choice: &PortChoice) -> Vec<&str> {
        match choice {
            PortChoice::Given(p) => vec![p.as_str()],
            PortChoice::Matched(p) => vec![p.name.as_str()],
            PortChoice::Several(l) => l.iter().map(|p| p.name.as_str()).collect(),
        }
    }

    #[test]
    fn port_choice_over_tables() {
        let db = db();
        let uno = db.get("uno").unwrap();
        let c3 = db.get("esp32c3").unwrap();
        let genuine = PortInfo::usb(
            "/dev/ttyACM0",
            "2341:0043",
            Some("Arduino (www.arduino.cc)"),
            None,
        );
        let ch340 = PortInfo::usb("/dev/ttyUSB0", "1a86:7523", Some("QinHeng"), None);
        let ch343 = PortInfo::usb("/dev/ttyACM1", "1a86:55d3", None, Some("USB Single Serial"));
        let jtag = PortInfo::usb("/dev/ttyACM2", "303a:1001", Some("Espressif"), None);
        let builtin = PortInfo::other("/dev/ttyS0");

        // (board, ports, --port, expected: Ok(names, several?) or Err(fragments))
        type Expect = std::result::Result<(Vec<&'static str>, bool), Vec<&'static str>>;
        let table: Vec<(&Board, Vec<PortInfo>, Option<&str>, Expect)> = vec![
            // --port wins, even over a matching port and even when nothing is listed.
            (
                uno,
                vec![genuine.clone()],
                Some("/dev/pts/7"),
                Ok((vec!["/dev/pts/7"], false)),
            ),
            (
                uno,
                vec![],
                Some("/dev/ttyX"),
                Ok((vec!["/dev/ttyX"], false)),
            ),
            // One match among others.
            (
                uno,
                vec![builtin.clone(), genuine.clone(), jtag.clone()],
                None,
                Ok((vec!["/dev/ttyACM0"], false)),
            ),
            (
                uno,
                vec![ch340.clone()],
                None,
                Ok((vec!["/dev/ttyUSB0"], false)),
            ),
            (
                c3,
                vec![genuine.clone(), jtag.clone()],
                None,
                Ok((vec!["/dev/ttyACM2"], false)),
            ),
            // Several, in the listed order.
            (
                uno,
                vec![genuine.clone(), builtin.clone(), ch340.clone()],
                None,
                Ok((vec!["/dev/ttyACM0", "/dev/ttyUSB0"], true)),
            ),
            // None: what was seen and expected, chips named.
            (
                uno,
                vec![],
                None,
                Err(vec![
                    "no serial ports at all",
                    "2341:0043",
                    "1a86:7523 (CH340)",
                    "10c4:ea60 (CP210x)",
                    "0403:6001 (FTDI FT232R)",
                    "another USB cable",
                ]),
            ),
            (
                uno,
                vec![builtin.clone(), ch343.clone()],
                None,
                Err(vec![
                    "/dev/ttyS0",
                    "(not USB)",
                    "/dev/ttyACM1",
                    "1a86:55d3",
                    "CH343 USB-serial chip",
                    "pass `--port /dev/ttyACM1`",
                    "nixflash boards show uno --toml",
                ]),
            ),
            (
                c3,
                vec![genuine.clone()],
                None,
                Err(vec![
                    "ESP32-C3-DevKitM-1",
                    "/dev/ttyACM0",
                    "2341:0043",
                    "303a:1001",
                    "pass `--port <PORT>`",
                ]),
            ),
        ];
        for (i, (board, ports, req, expect)) in table.into_iter().enumerate() {
            let got = choose_port(req, &ports, board);
            match (got, expect) {
                (Ok(c), Ok((want, several))) => {
                    assert_eq!(names(&c), want, "row {i}");
                    assert_eq!(matches!(c, PortChoice::Several(_)), several, "row {i}");
                    if req.is_some() {
                        assert!(matches!(c, PortChoice::Given(_)), "row {i}");
                    }
                }
                (Err(e), Err(frags)) => {
                    let text = e.to_string();
                    for f in frags {
                        assert!(text.contains(f), "row {i}: `{f}` missing from:\n{text}");
                    }
                    assert!(text.contains("\nhint: "), "row {i}: no hint in:\n{text}");
                }
                (got, want) => panic!("row {i}: got {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn several_ports_error_lists_them_and_asks_for_port() {
        let db = db();
        let uno = db.get("uno").unwrap();
        let ports = vec![
            PortInfo::usb("/dev/ttyACM0", "2341:0043", None, None),
            PortInfo::usb("/dev/ttyUSB0", "1a86:7523", None, None),
        ];
        let text = several_ports_error(&ports, uno).to_string();
        assert!(text.contains("/dev/ttyACM0  2341:0043"), "{text}");
        assert!(
            text.contains("/dev/ttyUSB0  1a86:7523 (CH340 USB-serial chip)"),
            "{text}"
        );
        assert!(
            text.contains("hint: say which with `--port`, e.g. `--port /dev/ttyACM0`"),
            "{text}"
        );
    }

    #[test]
    fn boards_for_a_clone_chip_are_many() {
        let db = db();
        let ids = |id: &str| -> Vec<String> {
            boards_for(&db, id.parse().unwrap())
                .iter()
                .map(|b| b.id.clone())
                .collect()
        };
        assert_eq!(ids("2341:0043"), ["uno"]);
        let ch340 = ids("1a86:7523");
        assert!(
            ch340.len() >= 3 && ch340.contains(&"nano".to_string()),
            "{ch340:?}"
        );
        assert!(ids("dead:beef").is_empty());
    }

    fn fixed() -> String {
        "[T] ".to_string()
    }

    #[test]
    fn formatter_escapes_bytes_that_are_not_utf8() {
        let mut f = LineFormatter::with_clock(false, fixed);
        assert_eq!(f.feed(b"ok \xff\xfe caf\xc3\xa9\n"), "ok \\xff\\xfe café\n");
        // A sequence cut between two reads is joined.
        assert_eq!(f.feed(b"\xe2\x82"), "");
        assert_eq!(f.feed(b"\xac!"), "€!");
        // A cut sequence that never completes is escaped when the port goes quiet...
        assert_eq!(f.feed(b"x\xe2\x82"), "x");
        assert_eq!(f.flush(), "\\xe2\\x82");
        assert_eq!(f.flush(), "");
        // ...or when the next byte shows it is broken.
        assert_eq!(f.feed(b"\xe2"), "");
        assert_eq!(f.feed(b"A"), "\\xe2A");
    }

    #[test]
    fn formatter_stamps_each_line_once() {
        let mut f = LineFormatter::with_clock(true, fixed);
        assert_eq!(f.feed(b"one\r\ntw"), "[T] one\r\n[T] tw");
        assert_eq!(f.feed(b"o\n"), "o\n");
        assert_eq!(f.feed(b"\n"), "[T] \n");
        assert_eq!(f.feed(b"\xffz"), "[T] \\xffz");
        let mut plain = LineFormatter::with_clock(false, fixed);
        assert_eq!(plain.feed(b"a\nb\n"), "a\nb\n");
    }

    #[test]
    fn clock_looks_like_a_time() {
        let s = local_clock();
        let b = s.as_bytes();
        assert_eq!(s.len(), 15, "{s}");
        assert_eq!(
            (b[0], b[3], b[6], b[9], b[13], b[14]),
            (b'[', b':', b':', b'.', b']', b' '),
            "{s}"
        );
        assert_eq!(utc_hms(86_400 + 3_600 * 13 + 60 * 5 + 9), (13, 5, 9));
    }

    #[test]
    fn keys_on_a_terminal() {
        use Input::*;
        assert_eq!(
            translate_input(b"hi\r", Eol::CrLf, true),
            [Bytes(b"hi\r\n".to_vec())]
        );
        assert_eq!(
            translate_input(b"a\x12b", Eol::Lf, true),
            [Bytes(b"a".to_vec()), Reset, Bytes(b"b".to_vec())]
        );
        assert_eq!(
            translate_input(b"x\x1dnot sent", Eol::Lf, true),
            [Bytes(b"x".to_vec()), Quit]
        );
        assert_eq!(translate_input(b"\x03", Eol::Lf, true), [Quit]);
        // Arrow keys and other escape sequences go through as typed.
        assert_eq!(
            translate_input(b"\x1b[A\t", Eol::Cr, true),
            [Bytes(b"\x1b[A\t".to_vec())]
        );
    }

    #[test]
    fn bytes_from_a_pipe() {
        use Input::*;
        assert_eq!(
            translate_input(b"hi\nyo\n", Eol::Cr, false),
            [Bytes(b"hi\ryo\r".to_vec())]
        );
        // No key has a meaning: binary data passes.
        assert_eq!(
            translate_input(b"\x03\x12\x1d\r\xff", Eol::CrLf, false),
            [Bytes(b"\x03\x12\x1d\r\xff".to_vec())]
        );
    }

    #[test]
    fn ports_json_shape() {
        let p = PortInfo::usb(
            "/dev/ttyUSB0",
            "1a86:7523",
            Some("QinHeng"),
            Some("USB Serial"),
        );
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["name"], "/dev/ttyUSB0");
        assert_eq!(v["kind"], "usb");
        assert_eq!(v["usb"]["id"], "1a86:7523");
        assert_eq!(v["usb"]["manufacturer"], "QinHeng");
        assert!(v["usb"]["serial_number"].is_null());
        let v = serde_json::to_value(PortInfo::other("/dev/ttyS0")).unwrap();
        assert!(v["usb"].is_null());
        assert_eq!(v["kind"], "other");
    }

    #[test]
    fn reset_follows_the_family() {
        let db = db();
        assert_eq!(Reset::for_board(db.get("uno").unwrap()), Reset::DtrPulse);
        assert_eq!(
            Reset::for_board(db.get("esp32c3").unwrap()),
            Reset::RtsPulse
        );
    }
}
