//! `nixflash ports` on this machine's real ports (often none on USB: then the shape is what can
//! be checked, and the test says so), and `--port` taking a pty that is on no list.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn nixflash(args: &[&str]) -> (Output, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nixflash"))
        .args(args)
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out, home)
}

#[test]
fn ports_json_is_a_list_of_ports() {
    let (out, _home) = nixflash(&["ports", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let list = v.as_array().expect("a JSON array");
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
    let (json, _h) = nixflash(&["ports", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let (out, _h) = nixflash(&["ports"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let list = v.as_array().unwrap();
    if list.is_empty() {
        assert!(text.starts_with("No serial ports found."), "{text}");
    } else {
        assert!(text.starts_with("PORT "), "{text}");
        for p in list {
            assert!(text.contains(p["name"].as_str().unwrap()), "{text}");
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
