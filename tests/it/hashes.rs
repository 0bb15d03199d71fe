//! The firmware's hashes (issue 22): what `sim`, `image` (and `build`, `flash`) print is what
//! `sha256sum` says of the ELF, of `objcopy -O binary --gap-fill 0xff`'s output (AVR, Cortex-M,
//! RP2) or of `espflash save-image`'s app image (ESP32), and of the file `image` wrote. Real
//! firmware (compiled blinkies, avr-gcc), the real objcopy, espflash and sha256sum.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::firmware::{build, Built, Kind};
use crate::common::process::{run_bounded, text};
use crate::common::{nixflash, on_path, skip};

/// `sha256sum`'s hash of the file at `path`.
fn sha256sum(path: &Path) -> String {
    let o = run_bounded(Command::new("sha256sum").arg(path), Duration::from_secs(30));
    assert!(o.status.success(), "sha256sum: {:?}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    out.split_whitespace().next().unwrap().to_string()
}

/// The tools a test needs on PATH, or false after [`skip`].
fn have(test: &str, tools: &[(&str, &str)]) -> bool {
    for (tool, install) in tools {
        if !on_path(tool) {
            skip(test, &format!("{tool} is not on PATH ({install})"));
            return false;
        }
    }
    true
}

const SHA256SUM: (&str, &str) = ("sha256sum", "coreutils");
const AVR_OBJCOPY: (&str, &str) = ("avr-objcopy", "apt install binutils-avr");
const LLVM_OBJCOPY: (&str, &str) = ("llvm-objcopy", "apt install llvm");
const ESPFLASH: (&str, &str) = ("espflash", "cargo install espflash --locked");

/// `objcopy -O binary` of `elf` into `dir`, with the extra `args`: the file it wrote.
fn objcopy(objcopy: &str, args: &[&str], elf: &Path, dir: &Path) -> PathBuf {
    let out = dir.join(format!(
        "{}.{objcopy}.bin",
        elf.file_stem().unwrap().to_string_lossy()
    ));
    let o = run_bounded(
        Command::new(objcopy)
            .args(["-O", "binary"])
            .args(args)
            .arg(elf)
            .arg(&out),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{objcopy}: {:?}", text(&o));
    out
}

/// The firmware's flash image as nixflash makes it.
fn flash_bytes(elf: &Path, board: &str) -> Vec<u8> {
    let db = nixflash::board::Database::builtin().unwrap();
    let family = db.get(board).unwrap().family();
    nixflash::firmware::hash::flash_bytes(&std::fs::read(elf).unwrap(), family)
        .unwrap()
        .1
}

fn firmware(test: &str, kind: Kind) -> Option<Built> {
    match build(kind) {
        Ok(b) => Some(b),
        Err(why) => {
            skip(test, &why);
            None
        }
    }
}

/// The flash image of real firmware is objcopy's binary: avr-gcc's ELF with a gap in flash and
/// bytes for the EEPROM (`avr-objcopy -O binary --gap-fill 0xff -R .eeprom`), the Uno blinky's,
/// and the Pico's and micro:bit v2's (`llvm-objcopy -O binary`; Debian's llvm-objcopy 14 has no
/// `--gap-fill`, and their flash bytes have no gaps, which the equality shows).
#[test]
fn the_flash_image_is_objcopy_s_binary() {
    let test = "the_flash_image_is_objcopy_s_binary";
    if !have(test, &[AVR_OBJCOPY, LLVM_OBJCOPY]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = "char ee[4] __attribute__((section(\".eeprom\"))) = {1, 2, 3, 4};\n\
                  const char far[8] __attribute__((used, section(\".far\"))) = \"far away\";\n\
                  int main(void) { for (;;) {} }\n";
    let Some(far) = avr_gcc(
        test,
        dir.path(),
        source,
        &["-Wl,--section-start=.far=0x1000"],
    ) else {
        return;
    };
    let avr = ["--gap-fill", "0xff", "-R", ".eeprom"];
    let bytes = flash_bytes(&far, "uno");
    assert_eq!(
        bytes.len(),
        0x1008,
        "from 0 to the end of .far, the EEPROM left out"
    );
    assert_eq!(&bytes[0x1000..], b"far away");
    assert_eq!(bytes[0xFFF], 0xFF, "the gap before .far is 0xff");
    let want = std::fs::read(objcopy("avr-objcopy", &avr, &far, dir.path())).unwrap();
    assert!(
        bytes == want,
        "not avr-objcopy's binary of {}",
        far.display()
    );

    let Some(uno) = firmware(test, Kind::Uno) else {
        return;
    };
    let want = std::fs::read(objcopy("avr-objcopy", &avr, &uno.elf, dir.path())).unwrap();
    assert!(flash_bytes(&uno.elf, "uno") == want, "the Uno blinky");
    for kind in [Kind::Pico, Kind::MicrobitV2] {
        let Some(fw) = firmware(test, kind) else {
            return;
        };
        let want = std::fs::read(objcopy("llvm-objcopy", &[], &fw.elf, dir.path())).unwrap();
        assert!(flash_bytes(&fw.elf, &fw.board) == want, "{kind:?}");
    }
}

/// avr-gcc's ELF of `source` for the ATmega328P, linked with `ld_args`.
fn avr_gcc(test: &str, dir: &Path, source: &str, ld_args: &[&str]) -> Option<PathBuf> {
    if !have(test, &[("avr-gcc", "apt install gcc-avr avr-libc")]) {
        return None;
    }
    let c = dir.join("far.c");
    std::fs::write(&c, source).unwrap();
    let elf = dir.join("far.elf");
    let o = run_bounded(
        Command::new("avr-gcc")
            .args(["-mmcu=atmega328p", "-Os"])
            .args(ld_args)
            .arg("-o")
            .arg(&elf)
            .arg(&c),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "avr-gcc: {:?}", text(&o));
    Some(elf)
}

/// `nixflash <args>` in `dir`, with `cache` as XDG_CACHE_HOME.
fn run(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    let mut cmd = nixflash();
    cmd.current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join(".cfg"))
        .env("XDG_CACHE_HOME", cache)
        .env("NO_COLOR", "1")
        .args(args);
    run_bounded(&mut cmd, Duration::from_secs(180))
}

/// The `SHA-256` lines of stderr, without the verb: `<hex>  <what>`.
fn hash_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("SHA-256 "))
        .map(str::to_string)
        .collect()
}

/// The ELF's line checks with `sha256sum -c` as it is printed.
fn checks_with_sha256sum(line: &str, dir: &Path) {
    let list = dir.join("SHA256SUMS");
    std::fs::write(&list, format!("{line}\n")).unwrap();
    let o = run_bounded(
        Command::new("sha256sum")
            .arg("-c")
            .arg(&list)
            .current_dir(dir),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "sha256sum -c {line:?}: {:?}", text(&o));
}

/// `nixflash sim` of the Uno blinky prints the ELF's hash and the flash image's, as sha256sum
/// says them of the ELF and of avr-objcopy's binary, and `--json` carries both.
#[test]
fn sim_prints_the_hashes_of_the_elf_and_of_the_flash_image() {
    let test = "sim_prints_the_hashes_of_the_elf_and_of_the_flash_image";
    if !have(
        test,
        &[SHA256SUM, AVR_OBJCOPY, ("simavr", "apt install simavr")],
    ) {
        return;
    }
    let Some(uno) = firmware(test, Kind::Uno) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let elf = uno.elf.to_str().unwrap();
    let o = {
        let _one = crate::sim::one_sim();
        run(
            &uno.project,
            dir.path(),
            &["sim", "--elf", elf, "--duration", "0.3", "--json"],
        )
    };
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let bin = objcopy(
        "avr-objcopy",
        &["--gap-fill", "0xff", "-R", ".eeprom"],
        &uno.elf,
        dir.path(),
    );
    let (elf_hash, image_hash) = (sha256sum(&uno.elf), sha256sum(&bin));
    let size = std::fs::metadata(&bin).unwrap().len();
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["sha256"]["elf"], elf_hash.as_str(), "{out}");
    assert_eq!(j["sha256"]["image"], image_hash.as_str(), "{out}");
    assert_eq!(j["sha256"]["image_size"], size, "{out}");
    let lines = hash_lines(&err);
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(lines[0], format!("{elf_hash}  {elf}"), "{err}");
    assert_eq!(
        lines[1],
        format!(
            "{image_hash}  flash image, {size} bytes: the ELF's flash bytes from 0x0, gaps \
             0xff (`objcopy -O binary --gap-fill 0xff`)"
        ),
        "{err}"
    );
    checks_with_sha256sum(&lines[0], dir.path());
}

/// `nixflash image` prints the firmware's hashes and the written file's, which says that it
/// holds settings when it does; `--json` gives the same on stdout, and a refusal as JSON.
#[test]
fn image_prints_the_hash_of_the_file_it_wrote() {
    let test = "image_prints_the_hash_of_the_file_it_wrote";
    if !have(test, &[SHA256SUM, AVR_OBJCOPY]) {
        return;
    }
    let Some(uno) = firmware(test, Kind::Uno) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let elf = uno.elf.to_str().unwrap();
    let bin = objcopy(
        "avr-objcopy",
        &["--gap-fill", "0xff", "-R", ".eeprom"],
        &uno.elf,
        dir.path(),
    );
    for (file, set) in [("plain.hex", None), ("desk.hex", Some("name=desk-1"))] {
        let out = dir.path().join(file);
        let mut args = vec!["image", "--elf", elf, "-o", out.to_str().unwrap()];
        args.extend(set.iter().flat_map(|s| ["--set", *s]));
        let o = run(&uno.project, dir.path(), &args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{err}");
        let lines = hash_lines(&err);
        assert_eq!(lines.len(), 3, "{err}");
        assert_eq!(lines[0], format!("{}  {elf}", sha256sum(&uno.elf)), "{err}");
        assert!(lines[1].starts_with(&sha256sum(&bin)), "{err}");
        assert_eq!(
            lines[2],
            format!("{}  {}", sha256sum(&out), out.display()),
            "{err}"
        );
        let with = err.contains("; its SHA-256 above includes the settings).");
        assert_eq!(with, set.is_some(), "{err}");
        checks_with_sha256sum(&lines[2], dir.path());

        // --json says the same on stdout.
        args.push("--json");
        let o = run(&uno.project, dir.path(), &args);
        let (json, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{err}");
        let j: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(j["ok"], true, "{json}");
        assert_eq!(j["file"], out.to_str().unwrap(), "{json}");
        assert_eq!(j["kind"], "intel-hex", "{json}");
        let size = std::fs::metadata(&out).unwrap().len();
        assert_eq!(j["size"], size, "{json}");
        assert_eq!(j["settings_at"].is_u64(), set.is_some(), "{json}");
        assert_eq!(j["sha256"]["file"], sha256sum(&out), "{json}");
        assert_eq!(j["sha256"]["elf"], sha256sum(&uno.elf), "{json}");
        assert_eq!(j["sha256"]["image"], sha256sum(&bin), "{json}");
        assert_eq!(
            j["sha256"]["image_size"],
            std::fs::metadata(&bin).unwrap().len()
        );
    }
    // A refusal is JSON too.
    let o = run(
        &uno.project,
        dir.path(),
        &["image", "--elf", elf, "--set", "nonsense", "--json"],
    );
    let (json, err) = text(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(j["ok"], false, "{json}");
}

/// An ESP32-C3's image hash is that of the app image `espflash save-image` writes (without
/// `--merge`, at the board's 4 MB): the same bytes on every run. In the Wi-Fi project, whose
/// partitions.csv nixflash passes on, too.
#[test]
fn an_esp32c3_image_hash_is_espflash_s_app_image() {
    let test = "an_esp32c3_image_hash_is_espflash_s_app_image";
    if !have(test, &[SHA256SUM, ESPFLASH]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Esp32c3, Kind::Esp32c3Wifi] {
        let Some(fw) = firmware(test, kind) else {
            return;
        };
        let app = |name: &str| {
            let out = dir.path().join(name);
            let o = run_bounded(
                Command::new("espflash")
                    .args(["save-image", "--chip", "esp32c3", "--flash-size", "4mb"])
                    .arg(&fw.elf)
                    .arg(&out),
                Duration::from_secs(60),
            );
            assert!(o.status.success(), "espflash save-image: {:?}", text(&o));
            sha256sum(&out)
        };
        let want = app("app1.bin");
        assert_eq!(
            app("app2.bin"),
            want,
            "espflash's app image differs between runs"
        );
        let out = dir.path().join("merged.bin");
        let elf = fw.elf.to_str().unwrap();
        let o = run(
            &fw.project,
            dir.path(),
            &["image", "--elf", elf, "-o", out.to_str().unwrap()],
        );
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{err}");
        let lines = hash_lines(&err);
        assert_eq!(lines.len(), 3, "{err}");
        assert_eq!(lines[0], format!("{}  {elf}", sha256sum(&fw.elf)), "{err}");
        let size = std::fs::metadata(dir.path().join("app1.bin"))
            .unwrap()
            .len();
        assert_eq!(
            lines[1],
            format!(
                "{want}  flash image, {size} bytes: the app image, as `espflash save-image \
                 --chip esp32c3 --flash-size 4mb fw.elf app.bin` saves it"
            ),
            "{kind:?}: {err}"
        );
        assert_eq!(lines[2], format!("{}  {}", sha256sum(&out), out.display()));
        // The app image's hash is kept (espflash takes a few hundred ms): the next run reads it.
        let kept = kept_hashes(dir.path());
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(fs_text(&kept[0]), format!("{want} {size}\n"));
        let again = |o: &Output| hash_lines(&text(o).1)[1].clone();
        let o = run(
            &fw.project,
            dir.path(),
            &["image", "--elf", elf, "-o", out.to_str().unwrap()],
        );
        assert_eq!(again(&o), lines[1]);
        let other = "0".repeat(64);
        std::fs::write(&kept[0], format!("{other} {size}\n")).unwrap();
        let o = run(
            &fw.project,
            dir.path(),
            &["image", "--elf", elf, "-o", out.to_str().unwrap()],
        );
        assert!(again(&o).starts_with(&other), "the kept hash was not read");
        std::fs::remove_file(&kept[0]).unwrap();
    }
}

/// The app images' hashes kept by runs with `cache` as XDG_CACHE_HOME.
fn kept_hashes(cache: &Path) -> Vec<PathBuf> {
    let dir = cache.join("nixflash/app-images");
    match std::fs::read_dir(&dir) {
        Ok(d) => d.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn fs_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}
