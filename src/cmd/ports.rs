//! `nixflash ports`: the serial ports, their USB ids and the boards they may be.

use crate::board::Database;
use crate::serial::{self, PortInfo};
use anyhow::Result;
use serde::Serialize;

/// List the serial ports, with their USB ids and the boards they may be
#[derive(clap::Args)]
#[command(
    after_help = "A board is listed when the port's USB id is in its usb.ids. \
    USB-serial chips found on clone boards (CH340, CH343, CP210x, FTDI) match many boards.\n\n\
    Examples:\n  nixflash ports\n  nixflash ports --json"
)]
pub struct Args {
    /// Print JSON for tools instead of a table
    #[arg(long)]
    json: bool,
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

pub fn run(args: Args) -> Result<u8> {
    let json = args.json;
    super::answer_failure(json, list(args))
}

fn list(args: Args) -> Result<u8> {
    let ctx = super::context(super::Needs::Nothing)?;
    let db = &ctx.db;
    let ports = serial::list_ports()?;
    if args.json {
        let list: Vec<JsonPort> = ports.iter().map(|p| json_port(p, db)).collect();
        super::outln!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        super::outp!("{}", table(&ports, db));
    }
    Ok(0)
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

fn table(ports: &[PortInfo], db: &Database) -> String {
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
