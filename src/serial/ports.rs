//! Finding the board's port: the serial ports the system lists, with their USB ids, and the
//! choice among them for a board (a pure function over a list, so it is tested on tables). Asking
//! the user to choose is the command line's business, not this module's.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serialport::SerialPortType;

use crate::board::{Board, Database, UsbId};
use crate::error::{Failure, Kind};

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
    /// A USB port (for tables of test data).
    #[cfg(test)]
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

    /// A port that is not on USB (a built-in UART, a Bluetooth link), for tables of test data.
    #[cfg(test)]
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
pub fn describe(p: &PortInfo, db: &Database) -> String {
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
    if let Some(chip) = db.bridge_chip(u.id) {
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
    db: &Database,
) -> Result<PortChoice> {
    if let Some(p) = requested {
        return Ok(PortChoice::Given(p.to_string()));
    }
    let matched = matching_ports(ports, board);
    match matched.len() {
        0 => Err(no_port_error(ports, board, db)),
        1 => Ok(PortChoice::Matched(matched[0].clone())),
        _ => Ok(PortChoice::Several(matched.into_iter().cloned().collect())),
    }
}

/// The ports, one per line, as error messages list them.
pub fn port_lines(ports: &[PortInfo], db: &Database) -> String {
    let width = ports.iter().map(|p| p.name.len()).max().unwrap_or(0);
    ports
        .iter()
        .map(|p| format!("\n    {:<width$}  {}", p.name, describe(p, db)))
        .collect()
}

pub fn no_port_error(ports: &[PortInfo], board: &Board, db: &Database) -> anyhow::Error {
    let mut msg = format!("no serial port found for the {} ({})", board.name, board.id);
    if ports.is_empty() {
        msg.push_str("\n  seen: no serial ports at all");
    } else {
        msg.push_str("\n  seen:");
        msg.push_str(&port_lines(ports, db));
    }
    msg.push_str("\n  expected a USB id of the board's:\n   ");
    for id in &board.usb.ids {
        match db.bridge_chip(*id) {
            Some(chip) => write!(msg, " {id} ({chip})").unwrap(),
            None => write!(msg, " {id}").unwrap(),
        }
    }
    let mut f = Failure::new(Kind::PortNotFound, msg);
    let usb: Vec<&PortInfo> = ports.iter().filter(|p| p.usb.is_some()).collect();
    if usb.is_empty() {
        f = f.hint(
            "plug the board in; if no port appears, try another USB cable (many only carry \
             power); on Linux `sudo dmesg -w` shows what the kernel sees while you plug it in",
        );
    }
    for p in &usb {
        let id = p.usb_id().expect("filtered on usb");
        if let Some(chip) = db.bridge_chip(id) {
            f = f.hint(format!(
                "{} has a {chip} USB-serial chip ({id}), common on clone boards: if it is your \
                 board, pass `--port {}`, or add \"{id}\" to usb.ids in a board file of your own \
                 (start from `nixflash boards show {} --toml`)",
                p.name, p.name, board.id
            ));
        }
    }
    if usb
        .iter()
        .any(|p| db.bridge_chip(p.usb_id().unwrap()).is_none())
    {
        f = f.hint("if one of the ports seen is your board, pass `--port <PORT>`");
    }
    f.hint("`nixflash ports` lists the ports and the boards they may be")
        .into()
}

/// The error for [`PortChoice::Several`] when nobody can be asked.
pub fn several_ports_error(ports: &[PortInfo], board: &Board, db: &Database) -> anyhow::Error {
    Failure::new(
        Kind::PortAmbiguous,
        format!(
            "several serial ports may be the {} ({}):{}",
            board.name,
            board.id,
            port_lines(ports, db)
        ),
    )
    .hint(format!(
        "say which with `--port`, e.g. `--port {}`",
        ports.first().map_or("<PORT>", |p| p.name.as_str())
    ))
    .into()
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
        check_port_choices(&db, table);
    }

    /// (board, ports, --port, expected: Ok(names, several?) or Err(fragments))
    type Expect = std::result::Result<(Vec<&'static str>, bool), Vec<&'static str>>;

    /// Chooses a port for each row of `table`, and checks the choice (or the error's fragments
    /// and its hint) against the row's expectation.
    fn check_port_choices(
        db: &Database,
        table: Vec<(&Board, Vec<PortInfo>, Option<&str>, Expect)>,
    ) {
        for (i, (board, ports, req, expect)) in table.into_iter().enumerate() {
            let got = choose_port(req, &ports, board, db);
            match (got, expect) {
                (Ok(c), Ok((want, several))) => {
                    assert_eq!(names(&c), want, "row {i}");
                    assert_eq!(matches!(c, PortChoice::Several(_)), several, "row {i}");
                    if req.is_some() {
                        assert!(matches!(c, PortChoice::Given(_)), "row {i}");
                    }
                }
                (Err(e), Err(frags)) => {
                    let r = crate::error::Report::of(&e);
                    assert_eq!(r.kind, Kind::PortNotFound, "row {i}");
                    let text = r.to_string();
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
        let r = crate::error::Report::of(&several_ports_error(&ports, uno, &db));
        assert_eq!(r.kind, Kind::PortAmbiguous);
        let text = r.to_string();
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
}
