//! `nixflash ports`: the serial ports, their USB ids and the boards they may be; and the debug
//! probes plugged in (found on USB: an ST-LINK/V2 has no serial port).

use crate::board::Database;
use crate::serial::probes::{self, FoundProbe};
use crate::serial::{self, PortInfo};
use anyhow::Result;
use serde::Serialize;

/// List the serial ports and debug probes, with their USB ids and the boards they may be
#[derive(clap::Args)]
#[command(
    after_help = "A board is listed when the port's USB id is in its usb.ids. \
    USB-serial chips found on clone boards (CH340, CH343, CP210x, FTDI) match many boards.\n\n\
    Debug probes (ST-LINK, SEGGER J-Link, CMSIS-DAP/DAPLink, Raspberry Pi Debug Probe) are found \
    on USB, with or without a serial port, and listed after the ports; that none is plugged in is \
    said with --probes or in a Cortex-M project. The JSON is {\"ports\": [...], \"probes\": [...]}.\n\n\
    Examples:\n  nixflash ports\n  nixflash ports --probes\n  nixflash ports --json"
)]
pub struct Args {
    /// Print JSON for tools instead of a table
    #[arg(long)]
    json: bool,
    /// List only the debug probes, and say so when none is plugged in
    #[arg(long)]
    probes: bool,
}

#[derive(Serialize)]
struct JsonPort<'a> {
    #[serde(flatten)]
    port: &'a PortInfo,
    /// The USB-serial chip, when it is one found on clone boards.
    chip: Option<&'a str>,
    /// Ids of the boards that have this USB id.
    boards: Vec<&'a str>,
}

#[derive(Serialize)]
struct Json<'a> {
    ports: Vec<JsonPort<'a>>,
    probes: &'a [FoundProbe],
}

pub fn run(args: Args) -> Result<u8> {
    let json = args.json;
    super::answer_failure(json, list(args))
}

fn list(args: Args) -> Result<u8> {
    let ctx = super::context(super::Needs::Nothing)?;
    let db = &ctx.db;
    let ports = serial::list_ports()?;
    // In a Cortex-M project, the probe is how the board is reached: say when none is there.
    let cortex_m = ctx.board().is_ok_and(|b| !b.family().probes.is_empty());
    // USB devices that cannot be listed fail the command only for who asked about probes.
    let found = match probes::list_probes(db) {
        Err(e) if args.probes || cortex_m => return Err(e),
        listed => listed.unwrap_or_default(),
    };
    if args.json {
        let ports = ports.iter().map(|p| json_port(p, db)).collect();
        let j = Json {
            ports,
            probes: &found,
        };
        super::outln!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(0);
    }
    let mut out = String::new();
    if !args.probes {
        out = table(&ports, db, !found.is_empty());
    }
    if !found.is_empty() || args.probes || cortex_m {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&probe_table(&found, db));
    }
    super::outp!("{out}");
    Ok(0)
}

/// The debug probes plugged in, or one line saying there is none.
fn probe_table(found: &[FoundProbe], db: &Database) -> String {
    if found.is_empty() {
        return format!(
            "No debug probe found ({}). `nixflash doctor` checks that you may use one.\n",
            probes::kinds(db)
        );
    }
    let mut rows = vec![[
        "DEBUG PROBE".to_string(),
        "USB ID".to_string(),
        "BUS:ADDR".to_string(),
        "SERIAL".to_string(),
        "BOARDS".to_string(),
    ]];
    for p in found {
        let d = &p.device;
        let boards = if p.boards.is_empty() {
            "-".to_string()
        } else {
            p.boards.join(", ")
        };
        rows.push([
            p.probe.title(),
            d.usb.id.to_string(),
            format!("{}:{}", d.bus, d.address),
            d.usb.serial_number.clone().unwrap_or_else(|| "-".into()),
            boards,
        ]);
    }
    super::columns(&rows)
}

fn json_port<'a>(p: &'a PortInfo, db: &'a Database) -> JsonPort<'a> {
    JsonPort {
        port: p,
        chip: p.usb_id().and_then(|id| db.bridge_chip(id)),
        boards: p
            .usb_id()
            .map(|id| {
                serial::boards_for(db, id)
                    .into_iter()
                    .map(|b| b.id.as_str())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn table(ports: &[PortInfo], db: &Database, probes: bool) -> String {
    if ports.is_empty() && probes {
        // A probe without a serial port (an ST-LINK/V2) is how its board is reached.
        return "No serial ports found.\n".to_string();
    }
    if ports.is_empty() {
        return "No serial ports found.\n\
                Plug the board in; if no port appears, try another USB cable (many only carry \
                power). On Linux, `sudo dmesg -w` shows what the kernel sees while you plug it in.\n"
            .to_string();
    }
    let mut rows = vec![[
        "PORT".to_string(),
        "USB ID".to_string(),
        "MANUFACTURER".to_string(),
        "PRODUCT".to_string(),
        "BOARDS".to_string(),
    ]];
    for p in ports {
        let j = json_port(p, db);
        let (id, manufacturer, product) = match &p.usb {
            Some(u) => (
                u.id.to_string(),
                u.manufacturer.clone().unwrap_or_else(|| "-".into()),
                u.product.clone().unwrap_or_else(|| "-".into()),
            ),
            None => ("-".into(), "-".into(), "(not USB)".into()),
        };
        let mut boards = if j.boards.is_empty() {
            "-".to_string()
        } else {
            j.boards.join(", ")
        };
        if let Some(chip) = j.chip {
            boards = format!("{boards} ({chip} chip: any board with one)");
        }
        rows.push([p.name.clone(), id, manufacturer, product, boards]);
    }
    let mut out = super::columns(&rows);
    out.push_str("\nWatch one: nixflash monitor --port <PORT> (in a project, the board's port is found by itself)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serial::ports::UsbInfo;
    use crate::serial::probes::UsbDevice;

    /// A Nucleo's ST-LINK/V2-1 and a J-Link without a serial number, as the table shows them.
    #[test]
    fn the_probe_table_names_each_probe_and_its_boards() {
        let db = Database::builtin().unwrap();
        let device = |id: &str, serial: Option<&str>, address| UsbDevice {
            usb: UsbInfo {
                id: id.parse().unwrap(),
                manufacturer: Some("STMicroelectronics".into()),
                product: None,
                serial_number: serial.map(str::to_string),
            },
            bus: "3".into(),
            address,
        };
        let devices = [
            device("0483:374b", Some("066DFF485671"), 12),
            device("1a86:7523", None, 13),
            device("1366:0105", None, 14),
        ];
        let found = probes::found_probes(&db, &devices);
        let text = probe_table(&found, &db);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("DEBUG PROBE "), "{text}");
        fn cells(l: &str) -> Vec<&str> {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        }
        assert_eq!(
            cells(lines[1]),
            [
                "ST-LINK/V2-1 (on Nucleo boards)",
                "0483:374b",
                "3:12",
                "066DFF485671",
                "nucleo-f401re, nucleo-f411re, nucleo-f446re"
            ],
            "{text}"
        );
        assert_eq!(
            cells(lines[2]),
            [
                "SEGGER J-Link (or the J-Link OB on Nordic's DKs)",
                "1366:0105",
                "3:14",
                "-",
                "nrf52840-dk"
            ],
            "{text}"
        );
        // No serial port besides: only that line, no advice about cables.
        assert_eq!(table(&[], &db, true), "No serial ports found.\n");
        assert!(table(&[], &db, false).contains("another USB cable"));
    }
}
