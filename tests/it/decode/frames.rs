//! defmt frames, encoded here by the `defmt` crate's own encoder from the table of the firmware
//! `nixflash new --log defmt` makes, are decoded; cut frames are said; --raw shows the bytes.

use std::process::Stdio;
use std::thread;
use std::time::Duration;

use object::{Object, ObjectSection, ObjectSymbol};

use super::{annotations, close, monitor};
use crate::common::firmware::{build, line_of, Kind};
use crate::common::pty::{path, Monitor, Pty};
use crate::common::skip;

/// The index of a log string in the firmware's defmt table: the address of its symbol in the
/// `.defmt` section, whose name says the string and its tag as JSON.
pub(super) fn defmt_index(elf: &object::File<'_>, tag: &str, data: &str) -> u16 {
    let section = elf
        .section_by_name(".defmt")
        .expect("no .defmt section")
        .index();
    let found: Vec<u64> = elf
        .symbols()
        .filter(|s| s.section_index() == Some(section))
        .filter(|s| {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(s.name().unwrap_or("")) else {
                return false;
            };
            json["tag"] == tag && json["data"] == data
        })
        .map(|s| s.address())
        .collect();
    assert_eq!(found.len(), 1, "{tag} {data:?} in the table: {found:?}");
    u16::try_from(found[0]).unwrap()
}

/// One log call as the firmware's defmt sends it through esp-println's `defmt-espflash`: the
/// frame start `0xFF 0x00`, then the frame (the string's index, then its arguments) encoded by
/// the `defmt` crate's own rzCOBS encoder. `args` are the arguments as defmt writes them.
fn frame(encoder: &mut defmt::Encoder, index: u16, args: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, 0x00];
    out.extend(super::rtt::frame(encoder, index, args));
    out
}

/// A `{=str}` argument as defmt writes it: its length (u32, little-endian), then its bytes.
pub(super) fn str_arg(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

/// The firmware of `nixflash new --board esp32c3 --log defmt`, its log calls encoded as it
/// encodes them, through a pty: the monitor prints level, message and source line, with
/// --timestamps and into --log like any line; text between frames stays text.
#[test]
fn defmt_frames_of_the_template_firmware_are_decoded() {
    let built = match build(Kind::Esp32c3Defmt) {
        Ok(b) => b,
        Err(why) => return skip("defmt_frames_of_the_template_firmware_are_decoded", &why),
    };
    let main_rs = built.project.join("src/main.rs");
    let greeting = "Hello from fw on the ESP32-C3-DevKitM-1!";
    let at_hello = line_of(&main_rs, &format!("defmt::info!(\"{greeting}\")"));
    let at_level = line_of(&main_rs, "defmt::info!(\"GPIO8 is {=str}\", level)");
    let data = std::fs::read(&built.elf).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let hello = defmt_index(&elf, "defmt_info", greeting);
    let level = defmt_index(&elf, "defmt_info", "GPIO8 is {=str}");

    let log = built.project.join("../defmt-test.log");
    let _ = std::fs::remove_file(&log);
    let (mut pty, m) = monitor(
        "esp32c3",
        &built.project,
        &[
            "--elf",
            path(&built.elf),
            "--timestamps",
            "--log",
            path(&log),
        ],
    );
    m.wait_stderr(&format!(
        "--- Decoding with {}: addresses in its code are shown as functions and source lines; \
         defmt frames are decoded\n",
        built.elf.display()
    ));

    // As after a boot: the encoder's first frame carries an extra separator.
    let mut enc = defmt::Encoder::new();
    let mut stream = frame(&mut enc, hello, &[]);
    stream.extend_from_slice(b"text between frames\r\n");
    stream.extend(frame(&mut enc, level, &str_arg("high")));
    stream.extend(frame(&mut enc, level, &str_arg("low")));
    // A frame seen before (the monitor remembers its line).
    stream.extend(frame(&mut enc, level, &str_arg("high")));
    // Through the pty in pieces that cut frames anywhere.
    for piece in stream.chunks(5) {
        pty.write(piece);
    }
    let want = [
        format!("INFO  {greeting} (src/main.rs:{at_hello})\n"),
        "text between frames\r\n".to_string(),
        format!("INFO  GPIO8 is high (src/main.rs:{at_level})\n"),
        format!("INFO  GPIO8 is low (src/main.rs:{at_level})\n"),
        format!("INFO  GPIO8 is high (src/main.rs:{at_level})\n"),
    ];
    m.wait_stdout(format!("{}[", want[3]).as_bytes());
    m.wait_stdout(format!("] {}", want[4]).as_bytes());
    let out = close(m);
    let lines: Vec<&str> = out.split_inclusive('\n').collect();
    assert_eq!(lines.len(), want.len(), "{out}");
    for (line, want) in lines.iter().zip(&want) {
        // [HH:MM:SS.mmm] before each line.
        let (stamp, rest) = line.split_at(15);
        assert!(stamp.starts_with('[') && stamp.ends_with("] "), "{line:?}");
        assert_eq!(rest, want);
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap(), out);
}

/// A frame cut short (a reset while it was sent), or one cut by the next frame's start: each is
/// said in one status line, and what follows is decoded. --raw shows the bytes as they come.
#[test]
fn cut_defmt_frames_are_said_and_raw_shows_the_bytes() {
    let built = match build(Kind::Esp32c3Defmt) {
        Ok(b) => b,
        Err(why) => return skip("cut_defmt_frames_are_said_and_raw_shows_the_bytes", &why),
    };
    let data = std::fs::read(&built.elf).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let level = defmt_index(&elf, "defmt_info", "GPIO8 is {=str}");
    let mut enc = defmt::Encoder::new();
    let _ = frame(&mut enc, level, &[]);
    let whole = frame(&mut enc, level, &str_arg("high"));
    let half = &whole[..whole.len() / 2];

    let (mut pty, m) = monitor("esp32c3", &built.project, &["--elf", path(&built.elf)]);
    pty.write(half);
    thread::sleep(Duration::from_millis(600));
    m.wait_stderr("--- a defmt frame was cut short (");
    pty.write(b"after the reset\n");
    pty.write(half);
    pty.write(&whole);
    m.wait_stderr("--- a defmt frame (");
    m.wait_stdout(b"INFO  GPIO8 is high (src/main.rs:");
    assert!(m
        .stderr()
        .contains("does not decode with this firmware's table"));
    let out = close(m);
    assert!(
        out.starts_with("after the reset\nINFO  GPIO8 is high"),
        "{out}"
    );

    // In a project the last build's ELF is the default; --raw turns decoding off.
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("Cargo.toml"),
        "[package]\nname = \"fw\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [package.metadata.nixflash]\nboard = \"esp32c3\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(project.path().join("result/bin")).unwrap();
    std::fs::copy(&built.elf, project.path().join("result/bin/fw.elf")).unwrap();
    for raw in [false, true] {
        let pty = Pty::new();
        let mut args = vec!["--port", path(&pty.path)];
        if raw {
            args.push("--raw");
        }
        let home = tempfile::tempdir().unwrap();
        let m = Monitor::spawn_in(&args, Stdio::null(), project.path().to_path_buf(), home);
        let mut pty = pty;
        m.wait_stderr("--- Connected to");
        pty.write(&whole);
        pty.write(b"\n");
        if raw {
            m.wait_stdout(b"\\xff\x00");
            let err = m.stderr();
            assert!(!err.contains("Decoding with"), "{err}");
            let out = close(m);
            assert!(out.starts_with("\\xff\x00"), "{out:?}");
            assert!(!out.contains("INFO"), "{out:?}");
        } else {
            m.wait_stderr("--- Decoding with result/bin/fw.elf: ");
            m.wait_stdout(b"INFO  GPIO8 is high");
            close(m);
        }
    }
}

/// The index of the one entry with this tag and string (`""` has several: any will do).
fn any_index(elf: &object::File<'_>, tag: &str, data: &str) -> u16 {
    let section = elf.section_by_name(".defmt").unwrap().index();
    elf.symbols()
        .filter(|s| s.section_index() == Some(section))
        .find(|s| {
            serde_json::from_str::<serde_json::Value>(s.name().unwrap_or(""))
                .is_ok_and(|j| j["tag"] == tag && j["data"] == data)
        })
        .map(|s| u16::try_from(s.address()).unwrap())
        .unwrap_or_else(|| panic!("no {tag} {data:?} in the table"))
}

/// A panic in the defmt firmware: esp-backtrace (feature `defmt`, with the frame pointers the
/// template forces) sends its report as defmt frames, from the firmware's own table. The
/// backtrace's addresses, decoded from the frames, are annotated like text ones.
#[test]
fn a_defmt_panic_backtrace_is_decoded_and_its_addresses_annotated() {
    let built = match build(Kind::Esp32c3Defmt) {
        Ok(b) => b,
        Err(why) => {
            return skip(
                "a_defmt_panic_backtrace_is_decoded_and_its_addresses_annotated",
                &why,
            )
        }
    };
    let data = std::fs::read(&built.elf).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let main = elf
        .symbols()
        .find(|s| s.name() == Ok("main"))
        .map(|s| s.address())
        .expect("no main");
    let error = |s: &str| any_index(&elf, "defmt_error", s);
    let mut enc = defmt::Encoder::new();
    let mut stream = Vec::new();
    stream.extend(frame(&mut enc, error(""), &[]));
    stream.extend(frame(
        &mut enc,
        error("====================== PANIC ======================"),
        &[],
    ));
    // `println!("{}", info)`: a PanicInfo, formatted by defmt as `panicked at {}` around its
    // location, `{=str}:{=u32}:{=u32}`.
    let mut info = any_index(&elf, "defmt_write", "panicked at {}")
        .to_le_bytes()
        .to_vec();
    info.extend(any_index(&elf, "defmt_write", "{=str}:{=u32}:{=u32}").to_le_bytes());
    info.extend(str_arg("src/main.rs"));
    info.extend(24u32.to_le_bytes());
    info.extend(9u32.to_le_bytes());
    stream.extend(frame(&mut enc, error("{}"), &info));
    stream.extend(frame(&mut enc, error("Backtrace:"), &[]));
    // `println!("0x{:x}", frame.program_counter())`: a usize, formatted by its own entry.
    let mut pc = any_index(&elf, "defmt_prim", "{=usize}")
        .to_le_bytes()
        .to_vec();
    pc.extend((main as u32).to_le_bytes());
    stream.extend(frame(&mut enc, error("0x{:x}"), &pc));

    let (mut pty, m) = monitor("esp32c3", &built.project, &["--elf", path(&built.elf)]);
    pty.write(&stream);
    let a = format!("0x{main:08x}");
    m.wait_stdout(format!("\n{a} - ").as_bytes());
    let out = close(m);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ERROR  ("), "{out}");
    assert!(
        lines[1].starts_with("ERROR ====================== PANIC ====================== ("),
        "{out}"
    );
    assert!(
        lines[2].starts_with("ERROR panicked at src/main.rs:24:9 ("),
        "{out}"
    );
    assert!(lines[3].starts_with("ERROR Backtrace: ("), "{out}");
    let pc_line = format!("ERROR {a} (");
    assert!(lines[4].starts_with(&pc_line), "{out}");
    for l in &lines[..5] {
        // Placed in esp-backtrace's own source.
        assert!(l.contains("esp-backtrace-0.20.") && l.ends_with(')'), "{l}");
    }
    let blocks = annotations(&lines[5..].join("\n"));
    assert_eq!(blocks.len(), 1, "{out}");
    assert_eq!(blocks[0].0, a);
    let outer = blocks[0].1.last().unwrap();
    assert!(outer.contains(" at src/main.rs:"), "{out}");
}
