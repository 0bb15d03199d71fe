//! Probe access on machines made of folders: rules files written into temporary udev folders,
//! groups and NixOS given.

use std::fs;

use super::*;
use crate::board::Database;
use crate::doctor::Status;

fn machine(dirs: &[&Path], gids: &[u32], groups: &[(&str, u32)]) -> Machine {
    Machine {
        dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
        root: false,
        gids: gids.to_vec(),
        groups: groups.iter().map(|(n, g)| (n.to_string(), *g)).collect(),
        nixos: false,
    }
}

#[test]
fn the_rules_are_written_from_the_probe_table() {
    let db = Database::builtin().unwrap();
    let probes = crate::serial::probes::known(&db);
    let rules = udev_rules(&probes);
    for line in [
        r#"ATTRS{idVendor}=="0483", ATTRS{idProduct}=="3748", MODE="660", GROUP="plugdev", TAG+="uaccess""#,
        r#"ATTRS{idVendor}=="0483", ATTRS{idProduct}=="374b", MODE="660", GROUP="plugdev", TAG+="uaccess""#,
        r#"ATTRS{idVendor}=="0483", ATTRS{idProduct}=="3753", MODE="660", GROUP="plugdev", TAG+="uaccess""#,
        r#"ATTRS{idVendor}=="1366", MODE="660", GROUP="plugdev", TAG+="uaccess""#,
        r#"ATTRS{idVendor}=="0d28", ATTRS{idProduct}=="0204", MODE="660", GROUP="plugdev", TAG+="uaccess""#,
        r#"ATTRS{idVendor}=="2e8a", ATTRS{idProduct}=="000c", MODE="660", GROUP="plugdev", TAG+="uaccess""#,
        "# ST-LINK/V2-1: on Nucleo boards",
    ] {
        assert!(
            rules.lines().any(|l| l == line),
            "{line} missing from:\n{rules}"
        );
    }
    let rule_lines = rules.lines().filter(|l| l.starts_with("ATTRS")).count();
    assert_eq!(rule_lines, probes.len());
    assert!(rules.contains(RULES_FILE));
    // The rules installed cover every probe, with plugdev there and the user in it: all ✓.
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("69-nixflash-probes.rules"), &rules).unwrap();
    let checks = checks(&probes, &machine(&[tmp.path()], &[46], &[("plugdev", 46)]));
    assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:?}");
    assert!(
        checks[0].what.contains("69-nixflash-probes.rules"),
        "{checks:?}"
    );
    assert_eq!(checks[1].what, "debug probes: you are in the plugdev group");
}

#[test]
fn missing_rules_fail_with_the_rules_to_write_or_the_nixos_line() {
    let db = Database::builtin().unwrap();
    let probes = crate::serial::probes::known(&db);
    let tmp = tempfile::tempdir().unwrap();
    let nowhere = Path::new("/nonexistent");
    // No rule at all: ✗, the fix pipes `--udev-rules` into the rules file and reloads udev.
    let m = machine(&[tmp.path(), nowhere], &[], &[("plugdev", 46)]);
    let none = rules_check(&probes, &m);
    assert_eq!(none.status, Status::Fail, "{none:?}");
    assert!(
        none.what.starts_with(
            "debug probes: no udev rule lets you open ST-LINK/V2, ST-LINK/V2-1, STLINK-V3, SEGGER \
             J-Link, DAPLink (CMSIS-DAP), Raspberry Pi Debug Probe: probe-rs cannot reach them"
        ),
        "{none:?}"
    );
    let fix = none.fix.unwrap();
    assert!(
        fix.contains(
            "`nixflash doctor --udev-rules | sudo tee /etc/udev/rules.d/69-nixflash-probes.rules`"
        ),
        "{fix}"
    );
    assert!(
        fix.contains("sudo udevadm control --reload && sudo udevadm trigger"),
        "{fix}"
    );
    // NixOS: the package whose rules to add.
    let nixos = Machine {
        nixos: true,
        ..m.clone()
    };
    let fix = rules_check(&probes, &nixos).fix.unwrap();
    assert!(
        fix.contains("services.udev.packages = [ pkgs.probe-rs-tools ];"),
        "{fix}"
    );
    // A comment, a rule for another product, one without access: none covers.
    fs::write(
        tmp.path().join("50-other.rules"),
        "# ATTRS{idVendor}==\"0483\", TAG+=\"uaccess\"\n\
         ATTRS{idVendor}==\"0483\", ATTRS{idProduct}==\"5740\", TAG+=\"uaccess\"\n\
         ATTRS{idVendor}==\"0d28\", ATTRS{idProduct}==\"0204\", ENV{ID_MM_DEVICE_IGNORE}=\"1\"\n",
    )
    .unwrap();
    assert_eq!(rules_check(&probes, &m).status, Status::Fail);
    // Rules for some (ST's whole vendor, a J-Link product, the RP2 family's vendor rule): the
    // rest is worth knowing, by name.
    fs::write(
        tmp.path().join("60-some.rules"),
        "SUBSYSTEM==\"usb\", ATTRS{idVendor}==\"0483\", MODE=\"0666\"\n\
         ATTRS{idVendor} == \"1366\", ATTRS{idProduct}==\"1015\", TAG+=\"uaccess\"\n\
         SUBSYSTEM==\"usb\", ATTRS{idVendor}==\"2e8a\", TAG+=\"uaccess\"\n",
    )
    .unwrap();
    let some = rules_check(&probes, &m);
    assert_eq!(some.status, Status::Warn, "{some:?}");
    assert!(
        some.what
            .contains("no udev rule lets you open DAPLink (CMSIS-DAP) 0d28:0204: probe-rs"),
        "{some:?}"
    );
    assert!(some.what.contains("60-some.rules"), "{some:?}");
    assert!(!some.what.contains("ST-LINK"), "{some:?}");
    // As root: nothing to fix for this user.
    let root = Machine { root: true, ..m };
    assert_eq!(rules_check(&probes, &root).status, Status::Ok);
    assert!(group_check(&root).is_none());
}

#[test]
fn the_plugdev_group_must_exist_and_hold_the_user() {
    let tmp = tempfile::tempdir().unwrap();
    let m = machine(&[tmp.path()], &[1000], &[("dialout", 20)]);
    let missing = group_check(&m).unwrap();
    assert_eq!(missing.status, Status::Warn);
    assert!(
        missing.what.contains("there is no plugdev group"),
        "{missing:?}"
    );
    assert!(missing
        .fix
        .unwrap()
        .contains("sudo groupadd --system plugdev && sudo usermod -aG plugdev $USER"),);
    let nixos = Machine {
        nixos: true,
        ..m.clone()
    };
    assert!(group_check(&nixos)
        .unwrap()
        .fix
        .unwrap()
        .contains("users.groups.plugdev = { };"));
    let out = machine(&[tmp.path()], &[1000], &[("plugdev", 46)]);
    let not_in = group_check(&out).unwrap();
    assert_eq!(not_in.status, Status::Warn);
    assert_eq!(
        not_in.fix.as_deref(),
        Some("`sudo usermod -aG plugdev $USER`, then log out and in again")
    );
}
