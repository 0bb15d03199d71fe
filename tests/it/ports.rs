//! `nixflash ports` on this machine's real ports and USB devices (often none on USB: then the shape
//! is what can be checked, and the test says so), and `--port` taking a pty that is on no list.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn nixflash(args: &[&str]) -> (Output, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let out = nixflash_in(home.path(), home.path(), args);
    (out, home)
}

/// nixflash with `args`, run in `dir` with `home` as HOME (and its .config).
fn nixflash_in(home: &std::path::Path, dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nixflash"))
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `ports --json`: `{"ports": [...], "probes": [...]}`.
fn ports_json() -> serde_json::Value {
    let (out, _home) = nixflash(&["ports", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["ports", "probes"], "{v}");
    v
}

#[test]
fn ports_json_is_a_list_of_ports() {
    let v = ports_json();
    let list = v["ports"].as_array().expect("a JSON array");
    let boards: Vec<String> = {
        let (out, _h) = nixflash(&["boards", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut usb = 0;
    for p in list {
        let o = p.as_object().expect("each port an object");
        let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["boards", "chip", "kind", "name", "usb"], "{p}");
        assert!(
            p["name"].as_str().is_some_and(|n| n.starts_with('/')),
            "{p}"
        );
        let kind = p["kind"].as_str().unwrap();
        assert!(["usb", "pci", "bluetooth", "other"].contains(&kind), "{p}");
        for b in p["boards"].as_array().unwrap() {
            assert!(boards.contains(&b.as_str().unwrap().to_string()), "{p}");
        }
        if kind == "usb" {
            usb += 1;
            let id = p["usb"]["id"].as_str().unwrap();
            assert_eq!(id.len(), 9, "{p}");
            assert!(p["usb"]["manufacturer"].is_string() || p["usb"]["manufacturer"].is_null());
            assert!(p["usb"]["product"].is_string() || p["usb"]["product"].is_null());
        } else {
            assert!(p["usb"].is_null(), "{p}");
            assert!(p["boards"].as_array().unwrap().is_empty(), "{p}");
        }
    }
    if usb == 0 {
        eprintln!(
            "NOTE: this machine has {} serial port(s) and none on USB: the USB fields were \
             checked on data only (unit test serial::tests::ports_json_shape)",
            list.len()
        );
    }
}

#[test]
fn ports_table_lists_every_port() {
    let v = ports_json();
    let (out, _h) = nixflash(&["ports"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let list = v["ports"].as_array().unwrap();
    let probes = v["probes"].as_array().unwrap();
    if probes.is_empty() {
        // Outside a Cortex-M project, a serial-port user hears nothing of probes.
        assert!(!text.to_lowercase().contains("probe"), "{text}");
    }
    if list.is_empty() {
        assert!(text.starts_with("No serial ports found."), "{text}");
    } else {
        assert!(text.starts_with("PORT "), "{text}");
        for p in list {
            assert!(text.contains(p["name"].as_str().unwrap()), "{text}");
        }
    }
}

/// The debug probes on USB: in the JSON (each a probe of the table, with its boards), in the table
/// after the ports, and with `--probes` or in a Cortex-M project one line when there is none (as
/// on a machine without a probe, which the test says).
#[test]
fn ports_lists_debug_probes_or_says_there_is_none() {
    let v = ports_json();
    let probes = v["probes"].as_array().unwrap();
    for p in probes {
        assert!(p["probe"]["name"].is_string(), "{p}");
        assert_eq!(p["probe"]["id"].as_str().unwrap().len(), 9, "{p}");
        assert!(
            p["device"]["bus"].is_string() && p["device"]["address"].is_u64(),
            "{p}"
        );
        assert!(p["boards"].is_array(), "{p}");
    }
    let (out, home) = nixflash(&["ports", "--probes"]);
    assert!(out.status.success());
    let only = String::from_utf8(out.stdout).unwrap();
    assert!(
        !only.contains("PORT "),
        "--probes lists only probes: {only}"
    );
    // A Cortex-M project: the probe section comes after the ports, even with no probe.
    let new = nixflash_in(
        home.path(),
        home.path(),
        &["new", "blinky", "--board", "nucleo-f446re", "--no-git"],
    );
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
    let in_project = nixflash_in(home.path(), &home.path().join("blinky"), &["ports"]);
    let text = String::from_utf8(in_project.stdout).unwrap();
    if probes.is_empty() {
        let none = "No debug probe found (ST-LINK/V2, ST-LINK/V2-1, STLINK-V3, SEGGER J-Link, \
                    DAPLink (CMSIS-DAP), Raspberry Pi Debug Probe). `nixflash doctor` checks \
                    that you may use one.\n";
        assert_eq!(only, none);
        assert!(text.ends_with(none), "{text}");
        assert_eq!(
            text.lines()
                .filter(|l| l.to_lowercase().contains("probe"))
                .count(),
            1,
            "one line about probes: {text}"
        );
        eprintln!("NOTE: no debug probe on this machine: the probe table was checked on data only (unit test serial::probes::tests)");
    } else {
        assert!(only.starts_with("DEBUG PROBE "), "{only}");
        assert!(text.contains("\nDEBUG PROBE "), "{text}");
        for p in probes {
            assert!(
                only.contains(p["probe"]["name"].as_str().unwrap()),
                "{only}"
            );
        }
    }
}

/// `--port` wins: a pty, which no port list shows and which has no USB id, is taken even with
/// `--board uno`, whose port would otherwise be looked for by USB id.
#[test]
fn a_pty_given_by_port_is_accepted_by_monitor() {
    // SAFETY: plain libc calls on a descriptor this test owns.
    let (_master, path) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(fd >= 0);
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        let path = PathBuf::from(CStr::from_ptr(name.as_ptr()).to_str().unwrap());
        (File::from_raw_fd(fd), path)
    };
    let (json, _h) = nixflash(&["ports", "--json"]);
    let listed = String::from_utf8(json.stdout).unwrap();
    assert!(
        !listed.contains(&format!("\"{}\"", path.display())),
        "{listed}"
    );
    let (out, _h) = nixflash(&[
        "monitor",
        "--board",
        "uno",
        "--port",
        path.to_str().unwrap(),
        "--duration",
        "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "--- Connected to {} at 57600 baud",
            path.display()
        )),
        "{err}"
    );
    assert!(!err.contains("Using "), "no port was looked up: {err}");
}
