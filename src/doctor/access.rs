//! Access to the board over USB (Linux): the serial ports, and a udev rule for the USB devices of
//! a family's chip (the RP2 boot ROM that picotool talks to).

use std::path::{Path, PathBuf};

use super::Check;
use crate::board::family::UsbVendor;
use crate::board::Board;
use crate::serial::access;

/// Serial ports, and USB access to the chip's boot ROM for a family with a USB vendor (Linux).
pub(super) fn port_checks(board: Option<&Board>, add: &mut impl FnMut(Check)) {
    for c in serial_checks() {
        add(c);
    }
    if let Some((f, vendor)) =
        board.and_then(|b| Some((b.family(), b.family().usb_vendor.as_ref()?)))
    {
        let dirs: Vec<&Path> = RULE_DIRS.iter().map(Path::new).collect();
        add(udev_check(&f.id, vendor, &dirs));
    }
}

/// Whether this process runs as root, and its group ids (from /proc/self/status).
pub(super) fn user() -> (bool, Vec<u32>) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| {
                v.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut gids = field("Groups:");
    gids.extend(field("Gid:").get(1));
    (field("Uid:").get(1) == Some(&0), gids)
}

/// Where udev reads rules from: the admin's, the runtime's, the packages'.
pub(super) const RULE_DIRS: [&str; 4] = [
    "/etc/udev/rules.d",
    "/run/udev/rules.d",
    "/lib/udev/rules.d",
    "/usr/lib/udev/rules.d",
];

/// Can this user open serial ports? Root can; others need the group of the port (dialout on
/// Debian/Ubuntu/Fedora, uucp on Arch).
fn serial_checks() -> Vec<Check> {
    let (root, gids) = user();
    if root {
        return vec![Check::ok("serial ports: running as root")];
    }
    let groups = access::system_groups();
    let ports = usb_serial_ports();
    if !ports.is_empty() {
        use std::os::unix::fs::MetadataExt;
        return ports
            .iter()
            .filter_map(|port| {
                let meta = std::fs::metadata(port).ok()?;
                let others_rw = meta.mode() & 0o006 == 0o006;
                Some(if others_rw || gids.contains(&meta.gid()) {
                    Check::ok(format!("serial port {} can be opened", port.display()))
                } else {
                    let g =
                        access::group_name(meta.gid()).unwrap_or_else(|| meta.gid().to_string());
                    Check::fail(
                        format!(
                            "serial port {} belongs to group {g}, which you are not in",
                            port.display()
                        ),
                        access::join_group(&g),
                    )
                })
            })
            .collect();
    }
    let known: Vec<&(String, u32)> = ["dialout", "uucp"]
        .iter()
        .filter_map(|name| groups.iter().find(|(n, _)| n == name))
        .collect();
    vec![if known.is_empty() {
        Check::ok(
            "serial ports: no dialout/uucp group here (udev rules decide; none is plugged in)",
        )
    } else if let Some((name, _)) = known.iter().find(|(_, g)| gids.contains(g)) {
        Check::ok(format!("serial ports: you are in the {name} group"))
    } else {
        let name = &known[0].0;
        Check::fail(
            format!("serial ports: you are not in the {name} group, which owns them"),
            access::join_group(name),
        )
    }]
}

/// The udev rule that lets a logged-in user reach a vendor's USB devices.
pub fn udev_rule(vendor: &UsbVendor) -> String {
    format!(
        r#"SUBSYSTEM=="usb", ATTRS{{idVendor}}=="{}", TAG+="uaccess""#,
        vendor.id
    )
}

/// Whether a udev rule in `dirs` gives access to the USB devices of the family's `vendor` (RP2:
/// Raspberry Pi's, 2e8a): what picotool needs to talk to the boot ROM without root. The boot
/// drive needs none.
fn udev_check(family: &str, vendor: &UsbVendor, dirs: &[&Path]) -> Check {
    let (id, who) = (&vendor.id, &vendor.name);
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let rule = text.lines().find(|l| {
                !l.trim_start().starts_with('#')
                    && l.to_ascii_lowercase().contains(&format!("\"{id}\""))
            });
            if rule.is_some() {
                return Check::ok(format!(
                    "udev: {} has a rule for {who}'s USB devices ({id})",
                    f.display()
                ));
            }
        }
    }
    Check::warn(
        format!(
            "udev: no rule gives you access to {who}'s USB devices (vendor {id}): copying onto the \
             boot drive works, picotool needs root"
        ),
        format!(
            "echo '{}' | sudo tee /etc/udev/rules.d/60-{family}.rules && sudo udevadm control \
             --reload && sudo udevadm trigger",
            udev_rule(vendor)
        ),
    )
}

/// USB serial ports present now (the device files of USB-serial bridges and CDC-ACM boards).
fn usb_serial_ports() -> Vec<PathBuf> {
    let mut ports: Vec<PathBuf> = std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("ttyUSB") || n.starts_with("ttyACM"))
                })
                .collect()
        })
        .unwrap_or_default();
    ports.sort();
    ports
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn the_rp2_udev_rule_is_found_or_given_as_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let db = crate::board::Database::load(None).unwrap();
        let rp2 = db.families().find(|f| f.id == "rp2").unwrap();
        let vendor = rp2.usb_vendor.as_ref().unwrap();
        let udev_check = |dirs: &[&Path]| udev_check("rp2", vendor, dirs);
        let none = udev_check(&[tmp.path(), Path::new("/nonexistent")]);
        assert_eq!(none.status, Status::Warn);
        let fix = none.fix.unwrap();
        assert!(fix.contains(r#"'SUBSYSTEM=="usb", ATTRS{idVendor}=="2e8a", TAG+="uaccess"'"#));
        assert!(fix.contains("/etc/udev/rules.d/60-rp2.rules"), "{fix}");
        std::fs::write(
            tmp.path().join("50-other.rules"),
            "# ATTRS{idVendor}==\"2e8a\" in a comment\n",
        )
        .unwrap();
        assert_eq!(udev_check(&[tmp.path()]).status, Status::Warn);
        std::fs::write(tmp.path().join("60-picotool.rules"), udev_rule(vendor)).unwrap();
        let found = udev_check(&[tmp.path()]);
        assert_eq!(found.status, Status::Ok);
        assert!(found.what.contains("60-picotool.rules"), "{found:?}");
    }
}
