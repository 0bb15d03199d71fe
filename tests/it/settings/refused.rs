//! What `nixflash flash --set` and `nixflash image` refuse: one line each, exit non-zero, before
//! anything is built, written or flashed (no flasher runs, no image appears).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{project, refused};
use crate::common::nixflash;
use crate::common::process::run_bounded;

/// `nixflash <cmd> --no-build <args>` in `root`, with `env` and no NIXFLASH_SET_* of this
/// machine's.
pub(super) fn run(
    root: &Path,
    cmd: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut c: Command = nixflash();
    c.arg(cmd).arg("--no-build").args(args).current_dir(root);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("NIXFLASH_SET_")) {
        c.env_remove(k);
    }
    c.envs(env.iter().copied());
    run_bounded(&mut c, Duration::from_secs(60))
}

/// Arguments, environment variables, and what the one error line says.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

/// `image <args>` and `flash --port /dev/null <args>` are both refused, saying `says`.
pub(super) fn both(root: &Path, args: &[&str], env: &[(&str, &str)], says: &str) {
    refused(&run(root, "image", args, env), says);
    let flash = [&["--port", "/dev/null"], args].concat();
    refused(&run(root, "flash", &flash, env), says);
}

#[test]
fn settings_that_cannot_be_written_are_refused_before_anything_is_built() {
    let (_dir, root) = project("esp32c3", true);
    let big = format!("big={}", "x".repeat(4090));
    let cases: &[Case] = &[
        (&["--set", "ssid"], &[], "`--set ssid` has no `=`"),
        (
            &["--set", "=x"],
            &[],
            "the setting key `` (from --set) is empty",
        ),
        (
            &["--set", "SSID=x"],
            &[],
            "the setting key `SSID` (from --set) holds `S`",
        ),
        (&["--set", "wi-fi=x"], &[], "holds `-`"),
        (
            &["--set", "password=two\nlines"],
            &[],
            "the value of `password` (from --set) holds a newline",
        ),
        (&["--set", "password=a\rb"], &[], "holds a carriage return"),
        (
            &["--set", &big],
            &[],
            "the settings take 4095 bytes, more than the 4084 the settings region holds",
        ),
        (
            &[],
            &[("NIXFLASH_SET_PASSWORD", "a\nb")],
            "the value of `password` (from $NIXFLASH_SET_PASSWORD) holds a newline",
        ),
        (
            &[],
            &[("NIXFLASH_SET_WI-FI", "x")],
            "the setting key `wi-fi` (from $NIXFLASH_SET_WI-FI) holds `-`",
        ),
    ];
    for (args, env, says) in cases {
        both(&root, args, env, says);
    }
    // A key with `=` comes only from settings.toml (--set splits at the first `=`).
    std::fs::write(root.join("settings.toml"), "\"wifi=pass\" = \"x\"\n").unwrap();
    both(&root, &[], &[], "the setting key `wifi=pass` (from ");
    std::fs::write(root.join("settings.toml"), "ssid = \"a\\nb\"\n").unwrap();
    let o = run(&root, "image", &[], &[]);
    refused(&o, "the value of `ssid` (from ");
    // Nothing was written.
    let images: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "bin"))
        .collect();
    assert!(images.is_empty(), "{images:?}");
}

#[test]
fn set_for_firmware_without_a_settings_region_is_refused() {
    // An ESP32 project made without `-o wifi`: no partition table.
    let (_dir, root) = project("esp32c3", false);
    both(
        &root,
        &["--set", "ssid=x"],
        &[],
        "--set: this firmware has no settings region (the project has no ",
    );
    // A partition table without a `settings` partition.
    std::fs::write(
        root.join("partitions.csv"),
        "nvs, data, nvs, 0x9000, 0x6000,\nfactory, app, factory, 0x10000, 0x1f0000,\n",
    )
    .unwrap();
    let o = run(
        &root,
        "flash",
        &["--port", "/dev/null", "--set", "ssid=x"],
        &[],
    );
    refused(&o, "partitions.csv has no `settings` partition)");

    // AVR and RP2 boards keep their region at a fixed place, of the board's size: what does not
    // fit is refused in one line, before anything is built.
    let long = format!("name={}", "x".repeat(600));
    for (board, room) in [("uno", 500), ("pico", 4084)] {
        let (_dir, root) = project(board, false);
        let long = if board == "uno" {
            long.clone()
        } else {
            format!("name={}", "x".repeat(4100))
        };
        for cmd in ["flash", "image"] {
            let args: &[&str] = match cmd {
                "flash" => &["--port", "/dev/null", "--set", &long],
                _ => &["--set", &long],
            };
            let o = run(&root, cmd, args, &[]);
            refused(
                &o,
                &format!("bytes, more than the {room} the settings region holds"),
            );
        }
    }
}
