//! Debug probes plugged in: the USB devices whose id is a probe's in the families' `probes` lists
//! (an ST-LINK/V2 has no serial port, so they are found by listing USB devices, not ports), each
//! with the boards whose usb.ids have its id. Listing is [`list_usb`] (nusb: sysfs on Linux);
//! naming what was listed is [`found_probes`], a pure function tested on tables.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::board::probe::{self, Probe};
use crate::board::{Board, Database, UsbId};

use super::ports::UsbInfo;

/// A USB device as the system lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbDevice {
    #[serde(flatten)]
    pub usb: UsbInfo,
    /// The bus it is on (`"1"`, or the system's name for it) and its address there.
    pub bus: String,
    pub address: u8,
}

/// A debug probe that is plugged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundProbe {
    /// What it is, from the probe table.
    pub probe: Probe,
    pub device: UsbDevice,
    /// Ids of the boards whose usb.ids have the probe's USB id.
    pub boards: Vec<String>,
}

/// Every probe the board database knows, family after family.
pub fn known(db: &Database) -> Vec<&Probe> {
    db.families().flat_map(|f| f.probes.iter()).collect()
}

/// The probe a device with USB id `id` is, if it is one.
pub fn classify(db: &Database, id: UsbId) -> Option<&Probe> {
    db.families().find_map(|f| probe::classify(&f.probes, id))
}

/// The boards whose usb.ids include one of the probe's ids.
pub fn boards_using<'a>(db: &'a Database, p: &Probe) -> Vec<&'a Board> {
    db.boards()
        .filter(|b| b.usb.ids.iter().any(|id| p.id.matches(*id)))
        .collect()
}

/// The devices of `devices` that are debug probes, named, with their boards.
pub fn found_probes(db: &Database, devices: &[UsbDevice]) -> Vec<FoundProbe> {
    devices
        .iter()
        .filter_map(|d| {
            let p = classify(db, d.usb.id)?;
            Some(FoundProbe {
                probe: p.clone(),
                device: d.clone(),
                boards: boards_using(db, p).iter().map(|b| b.id.clone()).collect(),
            })
        })
        .collect()
}

/// Every USB device plugged in, by bus and address. On Linux nusb reads sysfs; a system without
/// /sys/bus/usb (a container) has none.
pub fn list_usb() -> Result<Vec<UsbDevice>> {
    if cfg!(target_os = "linux") && !Path::new("/sys/bus/usb/devices").is_dir() {
        return Ok(Vec::new());
    }
    use nusb::MaybeFuture;
    let found = nusb::list_devices()
        .wait()
        .context("cannot list the USB devices")?;
    let mut devices: Vec<UsbDevice> = found
        .map(|d| UsbDevice {
            usb: UsbInfo {
                id: UsbId {
                    vid: d.vendor_id(),
                    pid: d.product_id(),
                },
                manufacturer: d.manufacturer_string().map(str::to_string),
                product: d.product_string().map(str::to_string),
                serial_number: d.serial_number().map(str::to_string),
            },
            bus: d.bus_id().to_string(),
            address: d.device_address(),
        })
        .collect();
    devices.sort_by(|a, b| (&a.bus, a.address).cmp(&(&b.bus, b.address)));
    Ok(devices)
}

/// The probes plugged in now.
pub fn list_probes(db: &Database) -> Result<Vec<FoundProbe>> {
    Ok(found_probes(db, &list_usb()?))
}

/// What the probe table covers, for a line that says none was found: "ST-LINK/V2, ST-LINK/V2-1,
/// …" without repeats.
pub fn kinds(db: &Database) -> String {
    let mut names: Vec<&str> = Vec::new();
    for p in known(db) {
        if !names.contains(&p.name.as_str()) {
            names.push(&p.name);
        }
    }
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, serial: Option<&str>) -> UsbDevice {
        UsbDevice {
            usb: UsbInfo {
                id: id.parse().unwrap(),
                manufacturer: None,
                product: None,
                serial_number: serial.map(str::to_string),
            },
            bus: "1".into(),
            address: 7,
        }
    }

    /// Every VID:PID of the issue is the probe it should be, with the boards that use it; other
    /// devices (a CH340, an ST device that is no probe, the Pico's boot ROM) are not probes.
    #[test]
    fn usb_ids_are_classified_as_probes() {
        let db = Database::builtin().unwrap();
        let table: &[(&str, Option<&str>, &[&str])] = &[
            (
                "0483:3748",
                Some("ST-LINK/V2"),
                &["blackpill-f411ce", "bluepill"],
            ),
            (
                "0483:374b",
                Some("ST-LINK/V2-1"),
                &["nucleo-f401re", "nucleo-f411re", "nucleo-f446re"],
            ),
            ("0483:3752", Some("ST-LINK/V2-1"), &[]),
            ("0483:374e", Some("STLINK-V3"), &[]),
            ("0483:374f", Some("STLINK-V3"), &[]),
            ("0483:3753", Some("STLINK-V3"), &[]),
            ("1366:1015", Some("SEGGER J-Link"), &["nrf52840-dk"]),
            ("1366:1051", Some("SEGGER J-Link"), &["nrf52840-dk"]),
            ("1366:0101", Some("SEGGER J-Link"), &["nrf52840-dk"]),
            (
                "0d28:0204",
                Some("DAPLink (CMSIS-DAP)"),
                &["microbit-v1", "microbit-v2"],
            ),
            ("2e8a:000c", Some("Raspberry Pi Debug Probe"), &[]),
            ("0483:5740", None, &[]),
            ("1a86:7523", None, &[]),
            ("2e8a:0003", None, &[]),
            ("0d28:0205", None, &[]),
        ];
        for (id, name, boards) in table {
            let found = found_probes(&db, &[device(id, Some("066D"))]);
            match name {
                None => assert!(found.is_empty(), "{id}: {found:?}"),
                Some(name) => {
                    assert_eq!(found.len(), 1, "{id}");
                    assert_eq!(&found[0].probe.name, name, "{id}");
                    let mut got = found[0].boards.clone();
                    got.sort();
                    assert_eq!(got, *boards, "{id}");
                    assert_eq!(found[0].device.usb.serial_number.as_deref(), Some("066D"));
                }
            }
        }
        let v21 = classify(&db, "0483:374b".parse().unwrap()).unwrap();
        assert_eq!(v21.title(), "ST-LINK/V2-1 (on Nucleo boards)");
        assert!(kinds(&db).starts_with("ST-LINK/V2, ST-LINK/V2-1, STLINK-V3, SEGGER J-Link"));
    }

    #[test]
    fn a_probe_table_that_claims_an_id_twice_or_is_malformed_is_refused() {
        let p = |id: &str| Probe {
            id: id.parse().unwrap(),
            name: "X".into(),
            about: "y".into(),
        };
        assert!(probe::check(&[p("0483:3748"), p("0483:374b"), p("1366:*")]).is_ok());
        let e = probe::check(&[p("1366:1015"), p("1366:*")]).unwrap_err();
        assert!(e.to_string().contains("claim the same USB ids"), "{e}");
        assert!(probe::check(&[p("0483:3748"), p("0483:3748")]).is_err());
        for bad in ["1366", "1366:", "13666:*", "xyzw:0001", "0483:37"] {
            assert!(bad.parse::<probe::ProbeId>().is_err(), "{bad}");
        }
        assert_eq!(p("1366:*").id.to_string(), "1366:*");
        // At load: the family file with a probe that claims a J-Link's id again is refused.
        let text = include_str!("../../boards/families/cortex-m.toml");
        assert!(crate::board::Family::parse("cortex-m", text, "f").is_ok());
        let twice = text.replace("\"2e8a:000c\"", "\"1366:0101\"");
        let e = crate::board::Family::parse("cortex-m", &twice, "f").unwrap_err();
        assert!(
            format!("{e:#}").contains("1366:* (SEGGER J-Link) and 1366:0101"),
            "{e:#}"
        );
        let bad = text.replace("\"2e8a:000c\"", "\"2e8a\"");
        let e = crate::board::Family::parse("cortex-m", &bad, "f").unwrap_err();
        assert!(
            format!("{e:#}").contains("is not a probe's USB id"),
            "{e:#}"
        );
    }

    #[test]
    fn listing_usb_devices_works_here() {
        // This machine's USB devices (none in a container without /sys/bus/usb): listing them
        // must not fail, and every probe found is one of the table's.
        let db = Database::builtin().unwrap();
        let devices = list_usb().unwrap();
        for p in found_probes(&db, &devices) {
            assert!(known(&db).contains(&&p.probe), "{p:?}");
        }
    }
}
