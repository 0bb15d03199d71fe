//! The firmware's side of the settings region, templates/common/src/settings.rs.jinja as the
//! ESP32's src/settings.rs renders it, run for real on this machine: compiled as `#![no_std]` with
//! no dependencies, then inside a small host program that reads regions nixflash encoded
//! (nixflash::settings::encode) and prints what `settings::parse` and `Settings::get` give, which
//! must be exactly what was written. The AVR and RP2 readers are the same code over other bytes:
//! their firmware runs with regions in the emulators ([`super::firmware`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nixflash::settings::{encode, gather, MAX_PAYLOAD, SIZE};

use crate::common::process::{run_bounded, text};
use crate::common::{measured, on_path, skip, tmp};

/// The host program: `reader <region file> <key>...` prints `key="value"` (Rust's escaping) or
/// `key absent` per key, or `error <Debug>: <Display>`.
const MAIN: &str = r#"mod settings;
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let region = std::fs::read(&args[0]).unwrap();
    assert_eq!(settings::SIZE, 4096);
    assert_eq!(settings::PARTITION, "settings");
    match settings::parse(&region) {
        Ok(s) => {
            for k in &args[1..] {
                match s.get(k) {
                    Some(v) => println!("{k}={v:?}"),
                    None => println!("{k} absent"),
                }
            }
        }
        Err(e) => println!("error {e:?}: {e} / {}", e.describe()),
    }
}
"#;

fn rustc(args: &[&str], dir: &Path) {
    let o = run_bounded(
        Command::new("rustc").args(args).current_dir(dir),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "rustc {args:?}: {:?}", text(&o));
}

/// The template compiled into the host program (once per test).
fn reader(test: &str) -> Option<PathBuf> {
    if !on_path("rustc") {
        skip(test, "rustc is not on PATH");
        return None;
    }
    let source = esp_reader();
    let dir = tmp().join("settings-reader");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("settings.rs"), &source).unwrap();
    // no_std, no dependencies, no warnings.
    fs::write(
        dir.join("lib.rs"),
        "#![no_std]\n#![deny(warnings)]\npub mod settings;\n",
    )
    .unwrap();
    rustc(
        &["--edition", "2021", "--crate-type", "rlib", "-O", "lib.rs"],
        &dir,
    );
    fs::write(dir.join("main.rs"), MAIN).unwrap();
    rustc(
        &[
            "--edition",
            "2021",
            "-D",
            "warnings",
            "-O",
            "main.rs",
            "-o",
            "reader",
        ],
        &dir,
    );
    Some(dir.join("reader"))
}

/// src/settings.rs of an ESP32-C3 Wi-Fi project: templates/common/src/settings.rs.jinja as
/// templates/esp-riscv/src/settings.rs.jinja extends it.
fn esp_reader() -> String {
    use nixflash::render::{render_sources, Project};
    let db = nixflash::board::Database::builtin().unwrap();
    let project = Project::new("fw")
        .with_option("wifi", "on")
        .with_option("async", "embassy")
        .with_option("alloc", "on");
    render_sources(db.get("esp32c3").unwrap(), &project)
        .unwrap()
        .into_iter()
        .find(|f| f.path == Path::new("src/settings.rs"))
        .expect("the Wi-Fi project has src/settings.rs")
        .contents
}

fn read(reader: &Path, region: &[u8], keys: &[&str]) -> String {
    let file = reader.with_file_name("region.bin");
    fs::write(&file, region).unwrap();
    let o = Command::new(reader).arg(&file).args(keys).output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

fn encoded(sets: &[&str]) -> Vec<u8> {
    let flags: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    encode(&gather(&flags, Vec::new(), None).unwrap()).unwrap()
}

#[test]
fn the_firmware_reads_back_exactly_what_nixflash_wrote() {
    let test = "the_firmware_reads_back_exactly_what_nixflash_wrote";
    let started = Instant::now();
    let Some(reader) = reader(test) else { return };
    let region = encoded(&[
        "ssid=My Home \"Net\" #2",
        "password=p=ss wörd;,\t\\x",
        "password2=other",
        "url=http://example.com/a?b=c&d=e",
        "name=",
    ]);
    let keys = [
        "ssid",
        "password",
        "password2",
        "pass",
        "url",
        "name",
        "nam",
        "absent",
    ];
    assert_eq!(
        read(&reader, &region, &keys),
        "ssid=\"My Home \\\"Net\\\" #2\"\n\
         password=\"p=ss wörd;,\\t\\\\x\"\n\
         password2=\"other\"\n\
         pass absent\n\
         url=\"http://example.com/a?b=c&d=e\"\n\
         name=\"\"\n\
         nam absent\n\
         absent absent\n"
    );

    // The largest payload the region holds.
    let value = "v".repeat(MAX_PAYLOAD - "password=\n".len());
    let full = encoded(&[&format!("password={value}")]);
    assert_eq!(
        read(&reader, &full, &["password"]),
        format!("password={value:?}\n")
    );
    // No settings given: a valid region without any.
    assert_eq!(read(&reader, &encoded(&[]), &["ssid"]), "ssid absent\n");

    // Erased flash, and regions the firmware must refuse.
    let says = |region: &[u8]| read(&reader, region, &["ssid"]);
    assert_eq!(
        says(&[0xFF; SIZE]),
        "error Empty: no settings have been written to this board / no settings have been \
         written to this board\n"
    );
    let good = encoded(&["ssid=Home"]);
    let mut bad = good.clone();
    bad[12 + 5] ^= 0x20; // ssid=home
    assert!(
        says(&bad).starts_with("error BadChecksum: "),
        "{}",
        says(&bad)
    );
    let mut bad = good.clone();
    bad[8] ^= 1;
    assert!(says(&bad).starts_with("error BadChecksum: "));
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(says(&bad).starts_with("error BadMagic: "));
    let mut bad = good.clone();
    bad[4] = 2;
    assert!(says(&bad).contains("error BadVersion(2): ") && says(&bad).contains("(version 2)"));
    let mut bad = good.clone();
    bad[6..8].copy_from_slice(&4085u16.to_le_bytes());
    assert!(
        says(&bad).starts_with("error BadLength(4085): "),
        "{}",
        says(&bad)
    );
    // A region shorter than its header, as a short read would give.
    assert!(says(&good[..8]).starts_with("error BadLength(0)"));
    measured(&format!(
        "the firmware's settings reader compiled and checked in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}
