//! Addresses in the board's output become functions and source lines: every instruction of a
//! fixture function, esp-backtrace's panic text, register dumps, on real ESP32-C3 and Uno ELFs.

use object::{Object, ObjectSection, ObjectSymbol};

use super::{annotations, close, monitor};
use crate::common::firmware::{build, line_of, Built, Kind};
use crate::common::pty::path;
use crate::common::skip;

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

/// `[HH:MM:SS.mmm] ` at the start of every line of `out` (else a panic), and `out` without them.
fn unstamped(out: &str) -> String {
    out.split_inclusive('\n')
        .map(|line| {
            let b = line.as_bytes();
            let stamped = b.len() >= 15
                && (b[0], b[3], b[6], b[9], b[13], b[14]) == (b'[', b':', b':', b'.', b']', b' ');
            assert!(stamped, "a line without its time: {line:?}\n{out}");
            &line[15..]
        })
        .collect()
}

/// --timestamps and --log apply to what the monitor adds as to the board's own lines: each
/// annotation and inlined frame starts with the time, and the log file holds what stdout shows.
#[test]
fn annotations_are_stamped_and_logged_like_the_board_s_lines() {
    let name = "annotations_are_stamped_and_logged_like_the_board_s_lines";
    let built = match build(Kind::Esp32c3Addresses) {
        Ok(b) => b,
        Err(why) => return skip(name, &why),
    };
    let data = std::fs::read(&built.elf).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let (checksum, size) = function(&elf, "fw::checksum");
    let sweep: Vec<String> = (checksum..checksum + size)
        .step_by(2)
        .map(|a| format!("0x{a:08x}"))
        .collect();
    let log = built.project.join("../annotations-test.log");
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
    // As esp-backtrace prints a backtrace, in pieces that cut lines anywhere.
    let text = format!("Backtrace:\r\n\r\n{}\r\nafter\r\n", sweep.join("\r\n"));
    for piece in text.as_bytes().chunks(7) {
        pty.write(piece);
    }
    m.wait_stdout(b"] after\r\n");
    let out = close(m);
    let plain = unstamped(&out);
    let found = annotations(&plain);
    assert_eq!(
        found.iter().map(|f| &f.0).collect::<Vec<_>>(),
        sweep.iter().collect::<Vec<_>>(),
        "{out}"
    );
    assert!(
        found.iter().any(|(_, frames)| frames.len() > 1),
        "no inlined frame among the annotations:\n{out}"
    );
    assert!(plain.starts_with("Backtrace:\r\n\r\n"), "{out}");
    assert!(plain.ends_with("\nafter\r\n"), "{out}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), out);
}
