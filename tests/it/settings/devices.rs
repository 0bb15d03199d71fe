//! Per-device settings through the real binary: the settings file's `[device."<serial>"]`
//! sections beside its defaults, `{index}` and `{serial}`, which a single-board `flash` or
//! `image` refuses in one line, and a malformed file said with its file:line:col. Nothing is
//! compiled: the refusals come before the firmware, and the image is of the ESP32-C3 fixture
//! ELF (tests/fixtures/elf/), made by the real espflash.

use std::time::Duration;

use nixflash::settings::decode;

use super::refused::{both, run};
use super::{project, refused};
use crate::common::process::{run_bounded, text};
use crate::common::pty::Pty;
use crate::common::{fixtures, nixflash, on_path, skip};

#[test]
fn a_single_board_refuses_index_and_serial_and_says_where_the_file_is_wrong() {
    let (_dir, root) = project("esp32c3", true);
    let one = "which a flash of several boards fills in for each, but this writes one board's \
               settings";
    both(
        &root,
        &["--set", "name=desk-{index}"],
        &[],
        &format!("the value of `name` (from --set) holds `{{index}}`, {one}"),
    );
    both(
        &root,
        &[],
        &[("NIXFLASH_SET_URL", "http://{serial}/")],
        &format!("the value of `url` (from $NIXFLASH_SET_URL) holds `{{serial}}`, {one}"),
    );
    both(
        &root,
        &["--set", "name=desk-{foo}"],
        &[],
        "holds `{foo}`, which is no placeholder: the placeholders are {index}",
    );
    let file = root.join("settings.toml");
    std::fs::write(&file, "ssid = \"Workshop\"\nname = \"desk-{index}\"\n").unwrap();
    both(
        &root,
        &[],
        &[],
        &format!(
            "the value of `name` (from {}) holds `{{index}}`",
            file.display()
        ),
    );
    // --set gives this board its own name: the file's `{index}` is not written.
    let o = run(
        &root,
        "flash",
        &["--port", "/dev/null", "--set", "name=a"],
        &[],
    );
    let (_, stderr) = text(&o);
    assert!(!stderr.contains("{index}"), "{stderr}");

    let malformed: &[(&str, &str)] = &[
        (
            "ssid = \"x\"\nname = desk\n",
            "settings.toml:2:8: invalid TOML: ",
        ),
        (
            "ssid = \"x\"\n\n[device.\"5A3F\"]\ncal = 7\n",
            "settings.toml:4:1: `device.\"5A3F\".cal` is not a string but an integer",
        ),
    ];
    for (text, says) in malformed {
        std::fs::write(&file, text).unwrap();
        both(&root, &[], &[], says);
    }
}

/// `image` of one board takes `--set` and the file's top-level settings as before; the file's
/// device sections, which only a flash of several boards uses, change nothing.
#[test]
fn an_image_of_one_board_takes_the_defaults_of_a_file_with_device_sections() {
    let test = "an_image_of_one_board_takes_the_defaults_of_a_file_with_device_sections";
    let Some((_dir, root)) = esp_project_with_settings(
        test,
        "ssid = \"Workshop\"\nname = \"lamp\"\n\n[device.\"5A3F\"]\nname = \"teacher-{serial}\"\n",
    ) else {
        return;
    };
    let elf = fixtures().join("elf/esp32c3-blinky.elf");
    let mut cmd = nixflash();
    cmd.args(["image", "--board", "esp32c3", "-o", "one.bin", "--elf"])
        .arg(&elf)
        .args(["--set", "url=http://x/"])
        .current_dir(&root);
    let o = run_bounded(&mut cmd, Duration::from_secs(120));
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "nixflash image:\n{stdout}{stderr}");
    assert!(
        stderr.contains(
            "Note not writing settings.toml's sections for the boards 5A3F: one board's settings \
             are its top-level lines"
        ),
        "{stderr}"
    );
    let image = std::fs::read(root.join("one.bin")).unwrap();
    assert_eq!(
        decode(&image[0xe000..0xf000]).unwrap(),
        [
            ("name".to_string(), "lamp".to_string()),
            ("ssid".to_string(), "Workshop".to_string()),
            ("url".to_string(), "http://x/".to_string())
        ]
    );
    // The refusals say nothing was written.
    let o = run(
        &root,
        "image",
        &["--set", "n={index}", "-o", "two.bin"],
        &[],
    );
    refused(&o, "holds `{index}`");
    assert!(!root.join("two.bin").exists());
}

/// `flash --port A --port B --set name=desk-{index}` on ESP32-C3 boards: each board gets an image
/// of its own, made by the real espflash with its settings, and written with `write-bin` to its
/// port; a section of settings.toml for a board that is not being flashed is a warning. Two ptys
/// stand in for the boards: espflash cannot talk to them, so both fail after their images are
/// made, which the summary and the exit code say.
#[test]
fn several_boards_each_get_an_image_with_their_own_settings() {
    let test = "several_boards_each_get_an_image_with_their_own_settings";
    let Some((_dir, root)) = esp_project_with_settings(
        test,
        "ssid = \"Workshop\"\n\n[device.\"5A3F\"]\nname = \"teacher\"\n",
    ) else {
        return;
    };
    let (a, b) = (Pty::new(), Pty::new());
    let (a, b) = (a.path.to_str().unwrap(), b.path.to_str().unwrap());
    let elf = fixtures().join("elf/esp32c3-blinky.elf");
    let mut cmd = nixflash();
    cmd.args(["flash", "--board", "esp32c3", "--elf"])
        .arg(&elf)
        .args(["--port", a, "--port", b, "--set", "name=desk-{index}"])
        .current_dir(&root);
    let o = run_bounded(&mut cmd, Duration::from_secs(180));
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("no board being flashed has the serial number in [device.\"5A3F\"]"),
        "{stderr}"
    );
    for port in [a, b] {
        let settings = format!("Settings {port}: name (--set), ssid (settings.toml) at 0xe000");
        assert!(stderr.contains(&settings), "no `{settings}` in:\n{stderr}");
    }
    // Each board's flasher wrote its own image (`board-<n>.bin`) from offset 0.
    for (n, port) in [(1, a), (2, b)] {
        let write = format!("write-bin --chip esp32c3 --port {port} --baud 921600 0x0 ");
        let image = format!("board-{n}.bin");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&write) && l.trim_end().ends_with(&image)),
            "no `{write}…{image}` in:\n{stderr}"
        );
    }
    assert!(stderr.contains("2 of 2 boards failed"), "{stderr}");
}

/// An ESP32-C3 project with a settings partition and `settings` as its settings.toml, or None
/// after [`skip`] when espflash (which makes the images) is not on PATH.
fn esp_project_with_settings(
    test: &str,
    settings: &str,
) -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    if !on_path("espflash") {
        skip(
            test,
            "espflash is not on PATH (cargo install espflash --locked)",
        );
        return None;
    }
    let (dir, root) = project("esp32c3", true);
    std::fs::write(root.join("settings.toml"), settings).unwrap();
    Some((dir, root))
}
