//! The monitor reads the firmware: real ELFs compiled here (`common::firmware`), the board's
//! output sent through a real pty (`common::pty`). Addresses in esp-backtrace's panic text and in
//! register dumps become functions and source lines; defmt frames, encoded here by the `defmt`
//! crate's own encoder from the firmware's table, are decoded; bad input is said in one status
//! line and the monitor goes on.

use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use object::{Object, ObjectSection, ObjectSymbol};

use crate::common::firmware::{build, line_of, Built, Kind};
use crate::common::pty::{path, Monitor, Pty};
use crate::common::{fixtures, skip};

/// A monitor on a new pty for `board`, run in `cwd`, with these extra arguments.
fn monitor(board: &str, cwd: &Path, args: &[&str]) -> (Pty, Monitor) {
    let pty = Pty::new();
    let mut all = vec!["--port", path(&pty.path), "--board", board];
    all.extend_from_slice(args);
    let home = tempfile::tempdir().unwrap();
    let m = Monitor::spawn_in(&all, Stdio::null(), cwd.to_path_buf(), home);
    m.wait_stderr("--- Connected to");
    (pty, m)
}

/// Ends the monitor with SIGTERM; it must end cleanly. Returns stdout.
fn close(mut m: Monitor) -> String {
    m.signal(libc::SIGTERM);
    let status = m.wait_exit();
    assert!(status.success(), "{status:?}\n{}", m.stderr());
    String::from_utf8(m.stdout()).unwrap()
}

/// The address and size of the function symbol that demangles to `name`.
fn function(elf: &object::File<'_>, name: &str) -> (u64, u64) {
    let found: Vec<(u64, u64)> = elf
        .symbols()
        .filter(|s| {
            s.name()
                .is_ok_and(|n| format!("{:#}", rustc_demangle::demangle(n)) == name)
        })
        .map(|s| (s.address(), s.size()))
        .collect();
    assert_eq!(found.len(), 1, "symbol {name}: {found:?}");
    found[0]
}

/// The annotations in the monitor's output, in order: each address and its frames, innermost
/// first (`fw::checksum at src/main.rs:12`).
fn annotations(out: &str) -> Vec<(String, Vec<String>)> {
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    for line in out.lines() {
        if let Some(outer) = line.strip_prefix("    inlined into ") {
            found.last_mut().expect(line).1.push(outer.to_string());
        } else if let Some((address, frame)) = line.split_once(" - ") {
            if address.starts_with("0x") && !address.contains(' ') {
                found.push((address.to_string(), vec![frame.to_string()]));
            }
        }
    }
    found
}

/// Sends every address of a fixture function (`fw::checksum`, with `fw::rotate` inlined into
/// it), then a crash report with some of them, the way firmware prints them, and checks what the
/// monitor says about each: its function and source line, and the functions it is inlined
/// into, innermost first. Addresses outside the code and lines without any stay as they are.
fn addresses_become_functions_and_lines(
    built: &Built,
    board: &str,
    hex: fn(u64) -> String,
    report: fn(&str, &str, &str) -> String,
) {
    let main_rs = built.project.join("src/main.rs");
    let at_checksum = line_of(&main_rs, "// @checksum");
    let at_call = line_of(&main_rs, "// @call-rotate");
    let at_rotate = line_of(&main_rs, "// @rotate");
    let data = std::fs::read(&built.elf).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let (checksum, size) = function(&elf, "fw::checksum");
    // An address that is no code: the start of RAM data.
    let ram = elf
        .section_by_name(".data")
        .or_else(|| elf.section_by_name(".bss"))
        .map(|s| s.address())
        .unwrap();

    let (mut pty, m) = monitor(board, &built.project, &["--elf", path(&built.elf)]);
    m.wait_stderr(&format!(
        "--- Decoding with {}: addresses in its code are shown as functions and source lines\n",
        built.elf.display()
    ));

    // Every instruction of checksum (RISC-V's compressed ones are 2 bytes, AVR's all 2 or 4).
    let sweep: Vec<String> = (checksum..checksum + size).step_by(2).map(hex).collect();
    pty.write(format!("{}\r\n", sweep.join("\r\n")).as_bytes());
    let last = sweep.last().unwrap();
    m.wait_stdout(format!("{last}\r\n{last} - ").as_bytes());
    // Each address's lines come right after its own line.
    let out = String::from_utf8(m.stdout()).unwrap();
    let found = annotations(&out);
    assert_eq!(
        found.iter().map(|f| &f.0).collect::<Vec<_>>(),
        sweep.iter().collect::<Vec<_>>(),
        "{out}"
    );
    let body = at_checksum..=at_checksum + 6;
    for (address, frames) in &found {
        // The outermost frame is checksum, on a line of its body (or on none: code the
        // compiler made up has line 0 in DWARF, which is shown as no line).
        let outer = frames.last().unwrap();
        if outer != "fw::checksum" {
            let line: u32 = outer
                .strip_prefix("fw::checksum at src/main.rs:")
                .unwrap_or_else(|| panic!("{address} is not in fw::checksum: {frames:?}"))
                .parse()
                .unwrap();
            assert!(body.contains(&line), "{address}: {frames:?}");
        }
        assert!(
            format!("\n{out}").contains(&format!("\n{address}\r\n{address} - {}\n", frames[0])),
            "{address} is not annotated right after its line:\n{out}"
        );
    }
    let rotate = [
        format!("fw::rotate at src/main.rs:{at_rotate}"),
        format!("fw::checksum at src/main.rs:{at_call}"),
    ];
    assert!(
        found.iter().any(|(_, f)| f.windows(2).any(|w| w == rotate)),
        "no address shows fw::rotate inlined into fw::checksum at line {at_call}:\n{out}"
    );

    // A crash report with two of these addresses, one that is RAM.
    let (a, b) = (&sweep[1], &sweep[sweep.len() / 2]);
    let crash = report(a, b, &hex(ram));
    pty.write(crash.as_bytes());
    pty.write(b"no address here\n");
    m.wait_stdout(b"no address here\n");
    let out = close(m);
    let after = &out[out.find(&crash[..20]).unwrap()..];
    let blocks = annotations(after);
    let order: Vec<&str> = blocks.iter().map(|b| b.0.as_str()).collect();
    let mut want = Vec::new();
    for line in crash.lines() {
        want.extend(
            [a, b]
                .into_iter()
                .filter(|x| line.contains(x.as_str()))
                .map(|x| x.as_str()),
        );
    }
    assert_eq!(order, want, "{after}");
    for (address, frames) in &blocks {
        let same = &found.iter().find(|f| &f.0 == address).unwrap().1;
        assert_eq!(frames, same, "{address}");
    }
    assert!(after.ends_with("no address here\n"), "{after}");
    assert!(!after.contains(&format!("{} - ", hex(ram))), "{after}");
}

#[test]
fn esp32c3_backtrace_addresses_become_functions_and_lines() {
    let built = match build(Kind::Esp32c3Addresses) {
        Ok(b) => b,
        Err(why) => {
            return skip(
                "esp32c3_backtrace_addresses_become_functions_and_lines",
                &why,
            )
        }
    };
    // esp-backtrace 0.20's panic text (its format strings, with frame pointers), esp-hal 1.2's
    // exception line, and an ESP-IDF-style register dump.
    addresses_become_functions_and_lines(
        &built,
        "esp32c3",
        |a| format!("0x{a:08x}"),
        |a, b, ram| {
            format!(
                "\n====================== PANIC ======================\n\
                 panicked at src/main.rs:31:5:\nchecksum mismatch\n\nBacktrace:\n\n{a}\n{b}\n\n\n\n\
                 [ProCpu] Exception 'Illegal instruction (2)' mepc={a}, mtval=0x00000000\n\
                 MEPC    : {a}  RA      : {b}  SP      : {ram}\n"
            )
        },
    );
}

#[test]
fn uno_addresses_become_functions_and_lines() {
    let built = match build(Kind::UnoAddresses) {
        Ok(b) => b,
        Err(why) => return skip("uno_addresses_become_functions_and_lines", &why),
    };
    // AVR program addresses as avr-objdump shows them (bytes), from a panic handler that
    // prints where it was called from.
    addresses_become_functions_and_lines(
        &built,
        "uno",
        |a| format!("0x{a:04x}"),
        |a, b, ram| format!("panicked at src/main.rs:31:5\r\nPC {a} caller {b} SP {ram}\r\n"),
    );
}

#[test]
fn an_elf_that_cannot_be_used_is_said_and_the_monitor_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not firmware\n").unwrap();
    let riscv = fixtures().join("elf/esp32c3-blinky.elf");
    let missing = dir.path().join("missing.elf");
    for (board, elf, said) in [
        (
            "esp32c3",
            &text,
            // Paths under the current folder are shown relative to it.
            "--- Not decoding: notes.txt is not an ELF file; the port's output is shown as it \
             comes\n"
                .to_string(),
        ),
        (
            "uno",
            &riscv,
            format!(
                "--- Not decoding: {} is RISC-V firmware (ELF machine 243), but the Arduino Uno \
                 runs AVR firmware; the port's output is shown as it comes\n",
                riscv.display()
            ),
        ),
        (
            "esp32c3",
            &missing,
            "--- Not decoding: cannot read missing.elf (".to_string(),
        ),
    ] {
        let (mut pty, m) = monitor(board, dir.path(), &["--elf", path(elf)]);
        m.wait_stderr(&said);
        pty.write(b"0x42000020 0x0150\n");
        m.wait_stdout(b"0x42000020 0x0150\n");
        assert_eq!(close(m), "0x42000020 0x0150\n");
    }
}

/// The index of a log string in the firmware's defmt table: the address of its symbol in the
/// `.defmt` section, whose name says the string and its tag as JSON.
fn defmt_index(elf: &object::File<'_>, tag: &str, data: &str) -> u16 {
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
    let mut raw = index.to_le_bytes().to_vec();
    raw.extend_from_slice(args);
    encoder.start_frame(|b| out.extend_from_slice(b));
    encoder.write(&raw, |b| out.extend_from_slice(b));
    encoder.end_frame(|b| out.extend_from_slice(b));
    out
}

/// A `{=str}` argument as defmt writes it: its length (u32, little-endian), then its bytes.
fn str_arg(s: &str) -> Vec<u8> {
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
    // Through the pty in pieces that cut frames anywhere.
    for piece in stream.chunks(5) {
        pty.write(piece);
    }
    let want = [
        format!("INFO  {greeting} (src/main.rs:{at_hello})\n"),
        "text between frames\r\n".to_string(),
        format!("INFO  GPIO8 is high (src/main.rs:{at_level})\n"),
        format!("INFO  GPIO8 is low (src/main.rs:{at_level})\n"),
    ];
    m.wait_stdout(want[3].as_bytes());
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

/// In a project the last build's ELF (result/bin/<name>.elf) is read by default. When a source
/// file is newer than that build (the `result` link's time: files in the Nix store all have the
/// same), it is used with a warning.
#[test]
fn the_last_build_is_the_default_and_a_stale_one_is_said() {
    let project = tempfile::tempdir().unwrap();
    let root = project.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"fw\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [package.metadata.nixflash]\nboard = \"esp32c3\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/main.rs"), "// firmware\n").unwrap();
    // As `nix build` leaves it: `result` a link to a store path whose files are from 1970.
    let store = root.join("store-path");
    std::fs::create_dir_all(store.join("bin")).unwrap();
    std::fs::copy(
        fixtures().join("elf/esp32c3-blinky.elf"),
        store.join("bin/fw.elf"),
    )
    .unwrap();
    let touch = |args: &[&str], p: &Path| {
        let ok = std::process::Command::new("touch")
            .args(args)
            .arg(p)
            .status()
            .unwrap()
            .success();
        assert!(ok, "touch {args:?} {}", p.display());
    };
    touch(&["-d", "@1"], &store.join("bin/fw.elf"));
    std::os::unix::fs::symlink(&store, root.join("result")).unwrap();

    // The link is newer than the sources: no warning.
    touch(&["-d", "@1700000000"], &root.join("src/main.rs"));
    touch(&["-d", "@1700000000"], &root.join("Cargo.toml"));
    touch(&["-h", "-d", "@1700000100"], &root.join("result"));
    let pty = Pty::new();
    let home = tempfile::tempdir().unwrap();
    let m = Monitor::spawn_in(
        &["--port", path(&pty.path)],
        Stdio::null(),
        root.join("src"),
        home,
    );
    // The ELF has neither symbols nor DWARF: still a firmware for the board.
    m.wait_stderr(&format!(
        "--- Decoding with {}: addresses in its code are shown as functions (it has no debug \
         info for source lines)\n",
        root.join("result/bin/fw.elf").display()
    ));
    let mut m = m;
    m.signal(libc::SIGTERM);
    assert!(m.wait_exit().success());
    assert!(!m.stderr().contains("Warning"), "{}", m.stderr());
    // An edit after the build.
    touch(&["-d", "@1700000200"], &root.join("src/main.rs"));
    let pty = Pty::new();
    let home = tempfile::tempdir().unwrap();
    let m = Monitor::spawn_in(
        &["--port", path(&pty.path)],
        Stdio::null(),
        root.to_path_buf(),
        home,
    );
    m.wait_stderr(
        "--- Warning: result/bin/fw.elf is older than src/main.rs (changed since that build): \
         the functions and lines shown may be off; `nixflash build` makes a new one\n",
    );
    let err = m.stderr();
    assert!(
        err.contains("--- Decoding with result/bin/fw.elf: "),
        "{err}"
    );
    close(m);
}
