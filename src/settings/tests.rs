use std::ffi::OsString;
use std::path::Path;

use super::partitions::{self, Region};
use super::*;
use crate::error::{Kind, Report};

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn env(list: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    list.iter().map(|(k, v)| (k.into(), v.into())).collect()
}

fn error(e: anyhow::Error) -> Report {
    let r = Report::of(&e);
    assert!(!r.error.contains('\n'), "not one line: {r:?}");
    r
}

#[test]
fn the_region_is_the_documented_format() {
    let s = gather(&flags(&["ssid=Home", "password=p=w ü"]), env(&[]), None).unwrap();
    let r = encode(&s).unwrap();
    assert_eq!(r.len(), 4096);
    let payload = "password=p=w ü\nssid=Home\n";
    assert_eq!(&r[0..4], b"NXFS");
    assert_eq!(&r[4..6], &[1, 0]);
    assert_eq!(&r[6..8], &(payload.len() as u16).to_le_bytes());
    // zlib's CRC-32 of the payload, computed independently of crc32fast (bitwise).
    let mut crc = 0xFFFF_FFFFu32;
    for b in payload.bytes() {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    assert_eq!(&r[8..12], &(!crc).to_le_bytes());
    assert_eq!(&r[12..12 + payload.len()], payload.as_bytes());
    assert!(r[12 + payload.len()..].iter().all(|b| *b == 0xFF));
    assert_eq!(
        decode(&r).unwrap(),
        [
            ("password".to_string(), "p=w ü".to_string()),
            ("ssid".to_string(), "Home".to_string())
        ]
    );
    // No settings at all: a valid, empty region (not an erased one).
    let empty = encode(&Settings::default()).unwrap();
    assert_eq!(&empty[..12], b"NXFS\x01\x00\x00\x00\x00\x00\x00\x00");
    assert_eq!(decode(&empty).unwrap(), []);
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(FILE),
        "ssid = \"from-file\"\nurl = \"http://file/\"\nname = \"file\"\n",
    )
    .unwrap();
    let s = gather(
        &flags(&["ssid=from-flag"]),
        env(&[
            ("NIXFLASH_SET_SSID", "from-env"),
            ("NIXFLASH_SET_URL", "http://env/"),
            ("PATH", "/bin"),
        ]),
        Some(dir.path()),
    )
    .unwrap();
    assert_eq!(s.get("ssid"), Some("from-flag"));
    assert_eq!(s.get("url"), Some("http://env/"));
    assert_eq!(s.get("name"), Some("file"));
    assert_eq!(s.entries.len(), 3);
    assert_eq!(
        s.entries["url"].origin,
        Origin::Env("NIXFLASH_SET_URL".into())
    );
    let said = s.describe();
    assert_eq!(
        said,
        "name (settings.toml), ssid (--set), url ($NIXFLASH_SET_URL)"
    );
    // No file: nothing from it, and no error.
    let none = gather(&[], env(&[]), Some(Path::new("/nonexistent"))).unwrap();
    assert!(none.is_empty());
}

#[test]
fn bad_keys_and_values_are_one_line_each() {
    let bad = |f: &[&str]| error(gather(&flags(f), env(&[]), None).unwrap_err());
    let e = bad(&["ssid"]);
    assert!(e.error.contains("has no `=`"), "{e:?}");
    assert_eq!(e.kind, Kind::Setting);
    let e = bad(&["=x"]);
    assert!(
        e.error.contains("the setting key `` (from --set) is empty"),
        "{e:?}"
    );
    let e = bad(&["Wifi=x"]);
    assert!(e.error.contains("holds `W`"), "{e:?}");
    let e = bad(&["wi-fi=x"]);
    assert!(e.error.contains("holds `-`"), "{e:?}");
    let e = bad(&[&format!("{}=x", "k".repeat(33))]);
    assert!(e.error.contains("33 characters long"), "{e:?}");
    let e = bad(&["password=two\nlines"]);
    assert!(
        e.error
            .contains("the value of `password` (from --set) holds a newline"),
        "{e:?}"
    );
    assert!(!e.error.contains("two"), "the value is shown: {e:?}");
    assert!(bad(&["p=a\rb"]).error.contains("a carriage return"));
    assert!(bad(&["p=a\0b"]).error.contains("a NUL byte"));
    let e = bad(&["ssid=a", "ssid=b"]);
    assert!(e.error.contains("given twice"), "{e:?}");
    // A key with `=` can only come from the file (or the environment's lowercased names).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE), "\"wifi=pass\" = \"x\"\n").unwrap();
    let e = error(gather(&[], env(&[]), Some(dir.path())).unwrap_err());
    assert!(e.error.contains("the setting key `wifi=pass`"), "{e:?}");
    assert!(e.error.contains("holds `=`"), "{e:?}");
    std::fs::write(dir.path().join(FILE), "port = 8080\n").unwrap();
    let e = error(gather(&[], env(&[]), Some(dir.path())).unwrap_err());
    assert!(e.error.contains("`port` is not a string"), "{e:?}");
    assert_eq!(e.kind, Kind::Setting);
    let e = error(gather(&[], env(&[("NIXFLASH_SET_WI-FI", "x")]), None).unwrap_err());
    assert!(e.error.contains("(from $NIXFLASH_SET_WI-FI)"), "{e:?}");
}

#[test]
fn a_payload_too_large_is_refused() {
    // 4084 bytes fit exactly: `k=` + value + newline.
    let fits = format!("k={}", "v".repeat(MAX_PAYLOAD - 3));
    let s = gather(&flags(&[&fits]), env(&[]), None).unwrap();
    let r = encode(&s).unwrap();
    assert_eq!(decode(&r).unwrap()[0].1.len(), MAX_PAYLOAD - 3);
    let over = format!("k={}", "v".repeat(MAX_PAYLOAD - 2));
    let s = gather(&flags(&[&over, "ssid=x"]), env(&[]), None).unwrap();
    let e = error(encode(&s).unwrap_err());
    assert_eq!(
        e.error,
        "the settings take 4092 bytes, more than the 4084 the settings region holds"
    );
    assert!(e.hints[0].contains("the largest is `k`"), "{e:?}");
    assert_eq!(e.kind, Kind::Setting);
}

#[test]
fn decode_refuses_what_the_firmware_refuses() {
    let s = gather(&flags(&["ssid=x"]), env(&[]), None).unwrap();
    let good = encode(&s).unwrap();
    assert_eq!(decode(&[0xFF; SIZE]).unwrap_err(), "erased: no settings");
    let mut bad = good.clone();
    bad[13] ^= 1;
    assert_eq!(decode(&bad).unwrap_err(), "bad checksum");
    let mut bad = good.clone();
    bad[4] = 2;
    assert_eq!(decode(&bad).unwrap_err(), "version 2");
    let mut bad = good;
    bad[6..8].copy_from_slice(&5000u16.to_le_bytes());
    assert_eq!(decode(&bad).unwrap_err(), "length 5000");
}

#[test]
fn place_extends_an_image_with_erased_flash() {
    let mut image = vec![1u8; 10];
    place(&mut image, 4, &[7, 7]);
    assert_eq!(image, [1, 1, 1, 1, 7, 7, 1, 1, 1, 1]);
    place(&mut image, 16, &[9]);
    assert_eq!(image.len(), 17);
    assert_eq!(&image[10..16], &[0xFF; 6]);
    assert_eq!(image[16], 9);
}

#[test]
fn the_partition_table_gives_the_settings_region() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(partitions::FILE);
    assert_eq!(partitions::settings_region(&path).unwrap(), None);
    std::fs::write(
        &path,
        "# Name,   Type, SubType, Offset,  Size,     Flags\n\
         nvs,      data, nvs,     0x9000,  0x4000,\n\
         phy_init, data, phy,     0xd000,  4K,\n\
         settings, data, 0x99,    0xe000,  0x1000,\n\
         factory,  app,  factory, 0x10000, 0x1f0000,\n",
    )
    .unwrap();
    let table = partitions::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
    assert_eq!(table.len(), 4);
    assert_eq!(table[1].size, 0x1000);
    assert_eq!(table[3].offset, Some(0x10000));
    assert_eq!(
        partitions::settings_region(&path).unwrap(),
        Some(Region {
            offset: 0xe000,
            size: 0x1000
        })
    );
    std::fs::write(&path, "nvs, data, nvs, 0x9000, 0x4000,\n").unwrap();
    assert_eq!(partitions::settings_region(&path).unwrap(), None);
    std::fs::write(&path, "settings, data, 0x99, 0xe000, 0x800,\n").unwrap();
    let e = error(partitions::settings_region(&path).unwrap_err());
    assert!(e.error.contains("cannot hold the 4096-byte"), "{e:?}");
    assert_eq!(e.kind, Kind::PartitionTable);
    std::fs::write(&path, "settings, data, 0x99, 0xe0x0, 0x1000,\n").unwrap();
    let e = error(partitions::settings_region(&path).unwrap_err());
    assert!(
        e.error
            .ends_with("partitions.csv:1: the offset `0xe0x0` is not a number"),
        "{e:?}"
    );
}

/// A project folder whose settings.toml is `text`.
fn with_file(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE), text).unwrap();
    dir
}

fn board(index: usize, serial: Option<&str>) -> Device {
    Device {
        index,
        port: format!("/dev/ttyUSB{}", index - 1),
        serial: serial.map(str::to_string),
    }
}

const FLEET: &str = "ssid = \"Workshop\"\nname = \"desk-{index}\"\n\n\
    [device.\"A1\"]\nname = \"teacher\"\ncal = \"7\"\n\n\
    [device.\"B2\"]\ncal = \"9-{serial}\"\n";

#[test]
fn the_file_has_defaults_and_a_section_per_device() {
    let dir = with_file(FLEET);
    let path = dir.path().join(FILE);
    let f = file::read(&path).unwrap().unwrap();
    assert_eq!(
        f.defaults,
        [
            ("ssid".to_string(), "Workshop".to_string()),
            ("name".to_string(), "desk-{index}".to_string())
        ]
    );
    assert_eq!(f.sections.len(), 2);
    assert_eq!(f.sections[0].serial, "A1");
    assert_eq!(f.sections[0].at, (4, 9));
    assert_eq!(f.sections[1].entries, [("cal".into(), "9-{serial}".into())]);
    // Today's flat files are the same as before; `device = "…"` is the setting `device`.
    let dir = with_file("ssid = \"x\"\ndevice = \"lamp\"\n");
    let s = gather(&[], env(&[]), Some(dir.path())).unwrap();
    assert_eq!(s.describe(), "device (settings.toml), ssid (settings.toml)");
    // Inline tables and dotted keys are the same sections.
    let dir = with_file("device.C3 = { name = \"x\" }\n");
    let g = gather_all(&[], env(&[]), Some(dir.path())).unwrap();
    let (each, _) = per_device(&g, &[board(1, Some("C3"))], SIZE).unwrap();
    assert_eq!(each[0].settings.get("name"), Some("x"));
}

#[test]
fn each_device_gets_flags_then_env_then_its_section_then_the_defaults() {
    let dir = with_file(FLEET);
    let g = gather_all(
        &flags(&["ssid=Lab"]),
        env(&[("NIXFLASH_SET_URL", "http://{serial}/")]),
        Some(dir.path()),
    )
    .unwrap();
    let boards = [board(1, Some("A1")), board(2, Some("B2"))];
    let (each, warnings) = per_device(&g, &boards, SIZE).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let get = |i: usize, k: &str| each[i].settings.get(k).unwrap().to_string();
    assert_eq!(get(0, "ssid"), "Lab");
    assert_eq!(get(0, "name"), "teacher");
    assert_eq!(get(0, "cal"), "7");
    assert_eq!(get(0, "url"), "http://A1/");
    assert_eq!(get(1, "name"), "desk-2");
    assert_eq!(get(1, "cal"), "9-B2");
    assert_eq!(
        each[0].settings.describe(),
        "cal (settings.toml [device.\"A1\"]), name (settings.toml [device.\"A1\"]), ssid \
         (--set), url ($NIXFLASH_SET_URL)"
    );
    assert_eq!(each[1].device, boards[1]);
    assert_eq!(
        decode(&each[1].region).unwrap()[1],
        ("name".into(), "desk-2".into())
    );
    // --set wins over a device's section, and fills in each board's placeholders.
    let g = gather_all(
        &flags(&["name=n{index}-{serial}"]),
        env(&[]),
        Some(dir.path()),
    )
    .unwrap();
    let (each, _) = per_device(&g, &boards, SIZE).unwrap();
    assert_eq!(each[0].settings.get("name"), Some("n1-A1"));
    assert_eq!(each[1].settings.get("name"), Some("n2-B2"));
    assert_eq!(each[1].settings.entries["name"].origin, Origin::Flag);
}

#[test]
fn placeholders_are_filled_in_and_braces_kept() {
    let g = gather_all(
        &flags(&[
            "a={index}",
            "b={{index}",
            "c={\"k\": 1}",
            "d={}{",
            "e=x{serial}y",
        ]),
        env(&[]),
        None,
    )
    .unwrap();
    let (each, _) = per_device(&g, &[board(3, Some("S/N 9"))], SIZE).unwrap();
    let s = &each[0].settings;
    assert_eq!(s.get("a"), Some("3"));
    assert_eq!(s.get("b"), Some("{index}"));
    assert_eq!(s.get("c"), Some("{\"k\": 1}"));
    assert_eq!(s.get("d"), Some("{}{"));
    assert_eq!(s.get("e"), Some("xS/N 9y"));
    // No placeholder: one board's settings are the same as `gather`'s.
    let g = gather_all(&flags(&["b={{x}"]), env(&[]), None).unwrap();
    assert_eq!(g.single().unwrap().get("b"), Some("{{x}"));
}

#[test]
fn what_cannot_be_filled_in_is_refused_in_one_line() {
    let one = |f: &[&str]| gather_all(&flags(f), env(&[]), None).and_then(|g| g.single());
    for (set, name) in [
        ("name=desk-{index}", "index"),
        ("url=http://{serial}/", "serial"),
    ] {
        let e = error(one(&[set]).unwrap_err());
        assert_eq!(e.kind, Kind::Setting);
        let key = set.split('=').next().unwrap();
        assert_eq!(
            e.error,
            format!(
                "the value of `{key}` (from --set) holds `{{{name}}}`, which a flash of several \
                 boards fills in for each, but this writes one board's settings"
            )
        );
    }
    // A value --set overrides is not written, so its placeholder does not matter.
    let dir = with_file("name = \"desk-{index}\"\n");
    let g = gather_all(&flags(&["name=lamp"]), env(&[]), Some(dir.path())).unwrap();
    assert_eq!(g.single().unwrap().get("name"), Some("lamp"));
    // An unknown placeholder, from any source, even one that loses.
    let dir = with_file("name = \"desk-{foo}\"\n");
    let e = error(gather_all(&flags(&["name=x"]), env(&[]), Some(dir.path())).unwrap_err());
    assert!(e.error.starts_with("the value of `name` (from "), "{e:?}");
    assert!(
        e.error.ends_with(
            "settings.toml) holds `{foo}`, which is no placeholder: the placeholders are \
             {index} (the board's number, 1, 2, … in port order) and {serial} (its USB serial \
             number)"
        ),
        "{e:?}"
    );
    // {serial} for a board without one.
    let g = gather_all(&flags(&["name={serial}"]), env(&[]), None).unwrap();
    let e = error(per_device(&g, &[board(1, Some("A1")), board(2, None)], SIZE).unwrap_err());
    assert_eq!(
        e.error,
        "the value of `name` (from --set) holds `{serial}`, but the board on /dev/ttyUSB1 (no \
         USB serial number) has none"
    );
    // Two boards with one serial number, when `{serial}` or a section must tell them apart.
    let same = [board(1, Some("0001")), board(2, Some("0001"))];
    let e = error(per_device(&g, &same, SIZE).unwrap_err());
    assert!(e
        .error
        .contains("have the same USB serial number 0001, and `{serial}`"));
    let plain = gather_all(&flags(&["name=desk-{index}"]), env(&[]), None).unwrap();
    assert_eq!(
        per_device(&plain, &same, SIZE).unwrap().0[1]
            .settings
            .get("name"),
        Some("desk-2")
    );
    // Too much once filled in.
    let long = "s".repeat(MAX_PAYLOAD);
    let g = gather_all(&flags(&["k=x{serial}"]), env(&[]), None).unwrap();
    let e = error(per_device(&g, &[board(1, Some(&long))], SIZE).unwrap_err());
    assert!(
        e.error
            .starts_with("the board on /dev/ttyUSB0 (serial number sss"),
        "{e:?}"
    );
    assert!(
        e.error
            .ends_with("more than the 4084 the settings region holds"),
        "{e:?}"
    );
}

#[test]
fn a_board_without_a_value_other_boards_sections_give_is_refused() {
    let dir =
        with_file("name = \"desk-{index}\"\n[device.A1]\ncal = \"7\"\n[device.B2]\ncal = \"8\"\n");
    let g = gather_all(&[], env(&[]), Some(dir.path())).unwrap();
    for lacking in [board(2, Some("C3")), board(2, None)] {
        let e = error(per_device(&g, &[board(1, Some("A1")), lacking.clone()], SIZE).unwrap_err());
        assert_eq!(e.kind, Kind::Setting);
        assert_eq!(
            e.error,
            format!(
                "{lacking} has no `cal`: the settings file gives it only in the sections \
                 [device.\"A1\"], [device.\"B2\"]"
            )
        );
        assert_eq!(
            lacking.serial.is_some(),
            e.hints[0].contains("under [device.\"C3\"]")
        );
    }
    // A default (or --set) gives it to every board.
    let g = gather_all(&flags(&["cal=0"]), env(&[]), Some(dir.path())).unwrap();
    let (each, _) = per_device(&g, &[board(1, Some("A1")), board(2, None)], SIZE).unwrap();
    assert_eq!(each[1].settings.get("cal"), Some("0"));
}

#[test]
fn a_section_for_a_board_not_connected_is_a_warning() {
    let dir = with_file(FLEET);
    let g = gather_all(&flags(&["cal=1"]), env(&[]), Some(dir.path())).unwrap();
    let (each, warnings) = per_device(&g, &[board(1, Some("B2"))], SIZE).unwrap();
    assert_eq!(each.len(), 1);
    let path = dir.path().join(FILE);
    assert_eq!(
        warnings,
        [Warning::UnknownSerial {
            serial: "A1".into(),
            file: path.clone(),
            at: (4, 9)
        }]
    );
    assert_eq!(
        warnings[0].to_string(),
        format!(
            "{}:4:9: no board being flashed has the serial number in [device.\"A1\"]: its \
             settings are not written",
            path.display()
        )
    );
}

#[test]
fn a_malformed_file_is_said_with_its_line_and_column() {
    let cases = [
        ("ssid = \"x\"\nname = desk\n", "2:8: invalid TOML: "),
        (
            "ssid = \"x\"\n[device.A1]\ncal = 7\n",
            "3:1: `device.\"A1\".cal` is not a string but an integer",
        ),
        (
            "[device]\nA1 = \"x\"\n",
            "2:1: `device.\"A1\"` is not a table but a string",
        ),
        (
            "port = 8080\n",
            "1:1: `port` is not a string but an integer",
        ),
        (
            "[device.\"\"]\nname = \"x\"\n",
            "1:9: a device section with an empty serial number",
        ),
    ];
    for (text, says) in cases {
        let dir = with_file(text);
        let e = error(gather_all(&[], env(&[]), Some(dir.path())).unwrap_err());
        assert_eq!(e.kind, Kind::Setting);
        let want = format!("{}:{says}", dir.path().join(FILE).display());
        assert!(e.error.starts_with(&want), "{text:?}: {e:?}, not {want}");
    }
    // Keys and values of sections are checked as the others are.
    let dir = with_file("[device.A1]\nWifi = \"x\"\n");
    let e = error(gather_all(&[], env(&[]), Some(dir.path())).unwrap_err());
    assert!(e.error.contains("the setting key `Wifi` (from "), "{e:?}");
    assert!(
        e.error.contains("settings.toml [device.\"A1\"]) holds `W`"),
        "{e:?}"
    );
}
