//! What `nixflash flash` refuses before anything is uploaded, and how it says so: a port it may
//! not open, no firmware or no port, a broken Ravedude.toml, firmware for another processor.

use std::process::Command;
use std::time::Duration;

use super::{blink_firmware, firmware, new_project};
use crate::common::process::{run_bounded, text};
use crate::common::sim::{ravedude_missing, sim_missing, SimUno};
use crate::common::{nixflash, on_path, skip};

/// As an unprivileged user, flashing through a port it may not open says which group to join.
#[test]
fn permission_denied_on_the_port_says_which_group_to_join() {
    let name = "permission_denied_on_the_port_says_which_group_to_join";
    if let Some(why) = sim_missing() {
        return skip(name, &why);
    }
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" || !on_path("setpriv") {
        return skip(
            name,
            "it needs root and setpriv to run nixflash as `nobody` (as root every port opens)",
        );
    }
    let fw = firmware();
    let (dir, project) = new_project("fw", "uno");
    let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.path(), perms).unwrap();
    let sim = SimUno::start();
    // Like a USB serial port on Debian (root:dialout, 0660), when this machine has the group.
    let dialout = std::fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("dialout:"));
    if dialout {
        for (tool, arg) in [("chgrp", "dialout"), ("chmod", "0660")] {
            let s = Command::new(tool).arg(arg).arg(&sim.pty).status().unwrap();
            assert!(s.success(), "{tool} {arg} {} failed", sim.pty);
        }
    }
    let o = run_bounded(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_nixflash"))
            .args(["flash", "--no-build", "--elf"])
            .arg(&fw.elf)
            .args(["--port", &sim.pty])
            .current_dir(&project)
            .env("HOME", "/nonexistent"),
        Duration::from_secs(60),
    );
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: permission denied opening serial port {}",
            sim.pty
        )),
        "{stderr}"
    );
    for want in [
        "sudo usermod -aG dialout $USER",
        "`uucp`",
        "log out and in again",
    ] {
        assert!(stderr.contains(want), "no {want:?} in:\n{stderr}");
    }
    if dialout {
        assert!(
            stderr.contains("(it belongs to group `dialout`)"),
            "{stderr}"
        );
    }
}

#[test]
fn flash_without_a_build_or_port_says_what_to_pass() {
    let (_dir, project) = new_project("fw", "uno");
    let run = |args: &[&str]| {
        let o = run_bounded(
            nixflash().arg("flash").args(args).current_dir(&project),
            Duration::from_secs(60),
        );
        assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
        text(&o).1
    };
    // No firmware is said before any port is looked for (this project has none).
    let e = run(&["--no-build"]);
    assert!(e.contains("there is no firmware to flash: "), "{e}");
    assert!(
        !e.contains("serial port"),
        "a port was looked for first:\n{e}"
    );
    let e = run(&["--no-build", "--port", "/dev/null"]);
    assert!(
        e.contains("there is no firmware to flash: ")
            && e.contains("fw/result/bin/fw.elf does not exist")
            && e.contains("hint: run `nixflash build` first")
            && e.contains("hint: to flash another ELF, pass --elf <path>"),
        "{e}"
    );
    let e = run(&["--elf", "missing.elf", "--port", "/dev/null"]);
    assert!(e.contains("the firmware missing.elf does not exist"), "{e}");
    let e = run(&["--elf", "Cargo.toml", "--port", "/dev/null"]);
    assert!(e.contains("Cargo.toml is not an ELF file"), "{e}");
    // No --port and no port with one of the board's USB ids: a project board that inherits the
    // Uno with a USB id no device has, so that a board plugged into this machine changes nothing.
    std::fs::create_dir_all(project.join("boards")).unwrap();
    std::fs::write(
        project.join("boards/no-such-uno.toml"),
        "inherit = \"uno\"\nid = \"no-such-uno\"\nname = \"Test Uno\"\naliases = []\n\
         [flash]\nboard = \"uno\"\n[usb]\nids = [\"f0f0:0f0f\"]\n",
    )
    .unwrap();
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        manifest.replace("board = \"uno\"", "board = \"no-such-uno\""),
    )
    .unwrap();
    let e = run(&["--elf", "Cargo.toml"]);
    assert!(
        e.contains("no serial port found for the Test Uno (no-such-uno)")
            && e.contains("expected a USB id of the board's:\n    f0f0:0f0f"),
        "{e}"
    );
    std::fs::write(project.join("Cargo.toml"), manifest).unwrap();
    let e = run(&[
        "--elf",
        "Cargo.toml",
        "--port",
        "/dev/nixflash-no-such-port",
    ]);
    assert!(
        e.contains("serial port /dev/nixflash-no-such-port does not exist"),
        "{e}"
    );
}

/// A project's Ravedude.toml that is not TOML: flash stops before ravedude runs, and says how to
/// get a good one back.
#[test]
fn a_malformed_ravedude_toml_is_named_with_the_fix() {
    let name = "a_malformed_ravedude_toml_is_named_with_the_fix";
    if let Some(why) = ravedude_missing() {
        return skip(name, &why);
    }
    if !on_path("avr-gcc") {
        return skip(
            name,
            "avr-gcc is not on PATH (it builds the firmware fixture)",
        );
    }
    let fw = blink_firmware();
    let (_dir, project) = new_project("fw", "uno");
    std::fs::write(project.join("Ravedude.toml"), "[general\nboard = \"uno\"\n").unwrap();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--no-build", "--elf"])
            .arg(&fw.elf)
            .args(["--port", "/dev/null"])
            .current_dir(&project),
        Duration::from_secs(60),
    );
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Ravedude.toml: invalid TOML"), "{stderr}");
    assert!(
        stderr.contains("hint: fix it, or delete it: nixflash makes one from the board"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Running CARGO_MANIFEST_DIR"),
        "ravedude ran:\n{stderr}"
    );
}

#[test]
fn avr_firmware_is_refused_for_an_esp32_board() {
    let name = "avr_firmware_is_refused_for_an_esp32_board";
    if !on_path("avr-gcc") {
        return skip(
            name,
            "avr-gcc is not on PATH (it builds the firmware fixture)",
        );
    }
    let fw = firmware();
    let (_dir, project) = new_project("c3", "esp32c3");
    let o = run_bounded(
        nixflash()
            .args(["flash", "--elf"])
            .arg(&fw.elf)
            .args(["--port", "/dev/null"])
            .current_dir(&project),
        Duration::from_secs(60),
    );
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not RISC-V firmware (ELF machine 83), but the ESP32-C3-DevKitM-1 needs RISC-V firmware"),
        "{stderr}"
    );
}

/// A port that another program holds open (here a real `nixflash monitor`) is refused before
/// any flasher runs: the monitor would swallow the bootloader's replies. The error names the
/// process and says what to do.
#[test]
fn a_port_held_by_a_monitor_is_refused_before_the_flasher_runs() {
    use crate::common::pty::{path, Monitor, Pty};
    let board = Pty::new();
    let port = path(&board.path).to_string();
    let monitor = Monitor::spawn(
        &["--port", &port, "--baud", "115200"],
        std::process::Stdio::null(),
    );
    monitor.wait_stderr("Connected to");
    let elf = crate::common::fixtures().join("project/firmware.elf");
    let (_dir, project) = new_project("fw", "uno");
    let o = run_bounded(
        nixflash()
            .args(["flash", "--no-build", "--elf"])
            .arg(&elf)
            .args(["--port", &port])
            .current_dir(&project),
        Duration::from_secs(120),
    );
    let (_, e) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&format!(
            "serial port {port} is busy: another program has it open"
        )) && e.contains(&format!("held by: nixflash (pid {})", monitor.child.id())),
        "{e}"
    );
    assert!(
        e.contains("hint: quit the monitor")
            && e.contains("`nixflash flash --monitor` flashes, then opens the monitor"),
        "{e}"
    );
    for ran in ["Flasher:", "Running:", "avrdude"] {
        assert!(
            !e.contains(ran),
            "a flasher ran although the port was busy:\n{e}"
        );
    }
}

/// `flash --no-build` with sources changed since the last build warns that it flashes that
/// build, as the monitor warns about its annotations; a build newer than the sources does not.
#[test]
fn no_build_warns_about_firmware_older_than_its_sources() {
    let (_dir, project) = new_project("fw", "uno");
    let fixture = crate::common::fixtures().join("project/firmware.elf");
    let out = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(out.path().join("bin")).unwrap();
    std::fs::copy(&fixture, out.path().join("bin/fw.elf")).unwrap();
    let flash = || {
        let o = run_bounded(
            nixflash()
                .args([
                    "flash",
                    "--no-build",
                    "--port",
                    "/dev/nixflash-no-such-port",
                ])
                .current_dir(&project),
            Duration::from_secs(60),
        );
        let (_, e) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(
            e.contains("/dev/nixflash-no-such-port does not exist"),
            "{e}"
        );
        e
    };
    // Built after the sources were written: no warning.
    std::os::unix::fs::symlink(out.path(), project.join("result")).unwrap();
    let e = flash();
    assert!(!e.contains("older than"), "{e}");
    // src/main.rs edited since: the warning, before the port is looked for.
    std::thread::sleep(Duration::from_millis(20));
    let main = project.join("src/main.rs");
    let text_of_main = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, text_of_main + "\n").unwrap();
    let e = flash();
    assert!(
        e.contains(
            "Warning result/bin/fw.elf is older than src/main.rs (changed since that build): \
             you flash the last build, without that change"
        ) && e.contains("drop --no-build to build first"),
        "{e}"
    );
    assert!(
        e.find("older than") < e.find("does not exist"),
        "the warning comes after the port:\n{e}"
    );
}

/// `port` in [package.metadata.nixflash] is where flash goes without --port; --port wins.
#[test]
fn the_port_comes_from_the_project_unless_given() {
    let (_dir, project) = new_project("fw", "uno");
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        manifest.replace(
            "board = \"uno\"",
            "board = \"uno\"\nport = \"/dev/nixflash-kept-port\"",
        ),
    )
    .unwrap();
    let elf = crate::common::fixtures().join("project/firmware.elf");
    let flash = |more: &[&str]| {
        let o = run_bounded(
            nixflash()
                .args(["flash", "--elf"])
                .arg(&elf)
                .args(more)
                .current_dir(&project),
            Duration::from_secs(60),
        );
        assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
        text(&o).1
    };
    let e = flash(&[]);
    assert!(
        e.contains("serial port /dev/nixflash-kept-port does not exist"),
        "{e}"
    );
    let e = flash(&["--port", "/dev/nixflash-given-port"]);
    assert!(
        e.contains("serial port /dev/nixflash-given-port does not exist"),
        "{e}"
    );
}
