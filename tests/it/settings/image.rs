//! `nixflash image` and `flash --set` with the rendered ESP32-C3 project's ELF (compiled with
//! cargo, `common::firmware`), the Wi-Fi project's partition table and the real espflash: the
//! image's layout, the settings only inside the settings partition, and the exact espflash
//! command lines `flash` runs (a pty is no ESP32: espflash refuses it, and nixflash exits with
//! espflash's code).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nixflash::settings::decode;

use super::set_table;
use crate::common::firmware::{build, Built, Kind};
use crate::common::process::{run_bounded, text};
use crate::common::pty::Pty;
use crate::common::{self, copy_dir, measured, nixflash, on_path, skip};

const SETTINGS: std::ops::Range<usize> = 0xe000..0xf000;

/// The ESP32-C3 ELF and a copy of its project with the Wi-Fi partition table, or None after
/// [`skip`].
fn wifi_project(test: &str) -> Option<(tempfile::TempDir, std::path::PathBuf, std::path::PathBuf)> {
    if !on_path("espflash") {
        skip(
            test,
            "espflash is not on PATH (cargo install espflash --locked)",
        );
        return None;
    }
    let Built { project, elf, .. } = match build(Kind::Esp32c3) {
        Ok(b) => b,
        Err(why) => {
            skip(test, &why);
            return None;
        }
    };
    let dir = tempfile::Builder::new()
        .prefix("nixflash-image-test-")
        .tempdir()
        .unwrap();
    let root = dir.path().join("fw");
    copy_dir(&project, &root);
    set_table(&root, true);
    Some((dir, root, elf))
}

fn image(root: &Path, elf: &Path, out: &str, set: &[String]) -> (Vec<u8>, String) {
    let mut cmd = nixflash();
    cmd.args(["image", "--elf"]).arg(elf).args(["-o", out]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let o = run_bounded(cmd.current_dir(root), Duration::from_secs(120));
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "nixflash image:\n{stdout}{stderr}");
    (fs::read(root.join(out)).unwrap(), stderr)
}

/// The entries of an ESP-IDF partition table (32 bytes each, magic AA 50): label, type,
/// subtype, offset, size.
fn partitions(table: &[u8]) -> Vec<(String, u8, u8, u32, u32)> {
    table
        .chunks(32)
        .take_while(|e| e[..2] == [0xAA, 0x50])
        .map(|e| {
            let word = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().unwrap());
            let label = String::from_utf8_lossy(&e[12..28])
                .trim_end_matches('\0')
                .to_string();
            (label, e[2], e[3], word(4), word(8))
        })
        .collect()
}

#[test]
fn image_puts_the_settings_only_inside_the_settings_partition() {
    let test = "image_puts_the_settings_only_inside_the_settings_partition";
    let Some((_dir, root, elf)) = wifi_project(test) else {
        return;
    };
    let (one, two) = (common::random_hex(), common::random_hex());
    let started = Instant::now();
    let set = |pw: &str| vec!["ssid=TestNet".to_string(), format!("password={pw}")];
    let (a, said) = image(&root, &elf, "a.bin", &set(&one));
    let took = started.elapsed();
    let (b, _) = image(&root, &elf, "b.bin", &set(&two));
    let (none, said_none) = image(&root, &elf, "none.bin", &[]);

    // Bootloader at 0, the partition table at 0x8000 with the settings partition, the app at
    // 0x10000 (ESP image headers start with 0xE9).
    assert_eq!(a[0], 0xE9, "no bootloader image at 0");
    // Its header names the board's 4 MiB of flash (the high nibble of byte 3: 2 = 4 MiB).
    assert_eq!(a[3] >> 4, 2, "the bootloader's flash size is not 4 MiB");
    assert_eq!(a[0x10000], 0xE9, "no app image at 0x10000");
    let table = partitions(&a[0x8000..0x8C00]);
    let labels: Vec<&str> = table.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        labels,
        ["nvs", "phy_init", "settings", "factory"],
        "{table:?}"
    );
    assert_eq!(table[2], ("settings".into(), 1, 0x06, 0xe000, 0x1000));
    assert_eq!(table[3], ("factory".into(), 0, 0, 0x10000, 0x1f0000));

    // The password is in the settings partition and nowhere else: not in the ELF, not in what
    // nixflash says.
    let at = common::find_all(&a, one.as_bytes());
    assert_eq!(at.len(), 1, "the password is at {at:x?}");
    assert!(SETTINGS.contains(&at[0]), "the password is at {:#x}", at[0]);
    assert!(common::find_all(&fs::read(&elf).unwrap(), one.as_bytes()).is_empty());
    assert!(!said.contains(&one), "{said}");
    assert_eq!(
        decode(&a[SETTINGS]).unwrap(),
        [
            ("password".to_string(), one.clone()),
            ("ssid".to_string(), "TestNet".to_string())
        ]
    );
    let line = format!(
        "Wrote {} ({} bytes from flash offset 0: bootloader, partition table, app and settings \
         (password (--set), ssid (--set)) at 0xe000; its SHA-256 above includes the \
         settings).",
        root.join("a.bin").display(),
        a.len()
    );
    assert!(said.contains(&line), "no `{line}` in:\n{said}");

    // Two passwords: the same size, different only inside the settings partition.
    assert_eq!(a.len(), b.len());
    let differ: Vec<usize> = (0..a.len()).filter(|i| a[*i] != b[*i]).collect();
    assert!(!differ.is_empty());
    assert!(
        differ.iter().all(|i| SETTINGS.contains(i)),
        "the images differ outside the settings partition: {:#x?}",
        differ.iter().find(|i| !SETTINGS.contains(i))
    );
    // No settings: the region stays erased (the firmware says so), the rest is the same.
    assert!(none[SETTINGS].iter().all(|b| *b == 0xFF));
    assert!(
        said_none.contains("the settings region at 0xe000 is erased"),
        "{said_none}"
    );
    assert_eq!(none.len(), a.len());
    assert!((0..a.len()).all(|i| SETTINGS.contains(&i) || a[i] == none[i]));
    // A project without a settings partition (made without `-o wifi`): espflash's own table.
    set_table(&root, false);
    let (plain, said) = image(&root, &elf, "plain.bin", &[]);
    assert!(
        said.contains("bytes from flash offset 0: bootloader, partition table and app)."),
        "{said}"
    );
    // Settings from the environment are not for this firmware: said, not refused.
    let o = run_bounded(
        nixflash()
            .args(["image", "--elf"])
            .arg(&elf)
            .args(["-o", "env.bin"])
            .env("NIXFLASH_SET_SSID", "x")
            .current_dir(&root),
        Duration::from_secs(120),
    );
    let (_, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "not writing the settings ssid ($NIXFLASH_SET_SSID): this firmware has no settings \
             region"
        ),
        "{stderr}"
    );
    assert_eq!(fs::read(root.join("env.bin")).unwrap(), plain);
    let labels: Vec<String> = partitions(&plain[0x8000..0x8C00])
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(labels, ["nvs", "phy_init", "factory"]);
    measured(&format!(
        "nixflash image of the ESP32-C3 blinky with settings: {} bytes in {:.2} s",
        a.len(),
        took.as_secs_f64()
    ));
}

#[test]
fn flash_with_settings_writes_the_image_with_espflash_write_bin() {
    let test = "flash_with_settings_writes_the_image_with_espflash_write_bin";
    let Some((_dir, root, elf)) = wifi_project(test) else {
        return;
    };
    let espflash = which::which("espflash").unwrap();
    let pty = Pty::new();
    let port = pty.path.to_str().unwrap();
    let table = root.join("partitions.csv");
    let password = common::random_hex();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--elf"])
            .arg(&elf)
            .args(["--port", port, "--set", "ssid=TestNet"])
            .env("NIXFLASH_SET_PASSWORD", &password)
            .current_dir(&root),
        Duration::from_secs(120),
    );
    let (stdout, stderr) = text(&o);
    assert!(!stderr.contains(&password), "{stderr}");
    let save = format!(
        "Running {} save-image --chip esp32c3 --merge --skip-padding --flash-size 4mb \
         --partition-table {} {} ",
        espflash.display(),
        table.display(),
        elf.display()
    );
    assert!(stderr.contains(&save), "no `{save}` in:\n{stderr}");
    assert!(
        stderr.contains("Settings password ($NIXFLASH_SET_PASSWORD), ssid (--set) at 0xe000"),
        "{stderr}"
    );
    let write = format!(
        "Running {} write-bin --chip esp32c3 --port {port} --baud 921600 0x0 ",
        espflash.display()
    );
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with(&write))
        .unwrap_or_else(|| panic!("no `{write}` in:\n{stderr}"));
    // The image was a temporary file, gone now (it holds the password).
    let image = Path::new(line.rsplit(' ').next().unwrap());
    assert!(image.ends_with("image.bin") && !image.exists(), "{line}");
    let direct_image = root.join("direct.bin");
    fs::write(&direct_image, [0xFFu8; 16]).unwrap();
    let direct = run_bounded(
        Command::new(&espflash)
            .args([
                "write-bin",
                "--chip",
                "esp32c3",
                "--port",
                port,
                "--baud",
                "921600",
                "0x0",
            ])
            .arg(&direct_image),
        Duration::from_secs(120),
    );
    assert_eq!(
        o.status.code(),
        direct.status.code(),
        "nixflash's exit code is not espflash's\n{stdout}{stderr}\nespflash: {:?}",
        text(&direct)
    );
    assert!(!o.status.success() && stderr.contains(port), "{stderr}");

    // Without settings: the app with the project's partition table; the board keeps its settings.
    let o = run_bounded(
        nixflash()
            .args(["flash", "--elf"])
            .arg(&elf)
            .args(["--port", port])
            .current_dir(&root),
        Duration::from_secs(120),
    );
    let (_, stderr) = text(&o);
    let line = format!(
        "Running {} flash --chip esp32c3 --port {port} --baud 921600 --partition-table {} {}",
        espflash.display(),
        table.display(),
        elf.display()
    );
    assert!(stderr.contains(&line), "no `{line}` in:\n{stderr}");
    assert!(
        stderr.contains("none given: the board keeps the settings it has"),
        "{stderr}"
    );
    assert_eq!(o.status.code(), direct.status.code(), "{stderr}");
}
