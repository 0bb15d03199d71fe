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
