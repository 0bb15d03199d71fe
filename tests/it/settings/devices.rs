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
    if !on_path("espflash") {
        return skip(
            test,
            "espflash is not on PATH (cargo install espflash --locked)",
        );
    }
    let (_dir, root) = project("esp32c3", true);
    std::fs::write(
        root.join("settings.toml"),
        "ssid = \"Workshop\"\nname = \"lamp\"\n\n[device.\"5A3F\"]\nname = \"teacher-{serial}\"\n",
    )
    .unwrap();
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
