//! Input and timing for bench/monitor.sh: what a board sends when the monitor has its ELF, and how
//! long an annotated line takes to appear.
//!
//!     cargo run --release --example monitor-bench -- addresses <elf> <bytes>  > stream
//!     cargo run --release --example monitor-bench -- defmt <elf> <bytes>      > stream
//!     cargo run --release --example monitor-bench -- latency <nixflash> <elf> <board> [samples]
//!
//! `addresses` writes esp-backtrace's lines (`Backtrace:`, one address a line) and register
//! dumps (`MEPC : 0x… RA : 0x… SP : 0x…`) whose code addresses are taken from every function
//! of the ELF (so that lookups are not all cached), with a plain line now and then; `defmt`
//! writes frames of the ELF's own defmt table, encoded by the `defmt` crate's encoder as
//! esp-println's `defmt-espflash` sends them, with a text line now and then. Both say on stderr
//! how many annotations or decoded lines the monitor must show (`expect=N`).
//!
//! `latency` runs `nixflash monitor` on a pty of its own and, with the port idle before each,
//! sends one line with a code address at a time: the time from the write to the annotation on
//! the monitor's stdout, for the first line (the first lookup after loading), for new addresses,
//! for an address seen before, and for a defmt frame.

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a[..] {
        ["addresses", elf, bytes] => addresses(&std::fs::read(elf)?, bytes.parse()?),
        ["defmt", elf, bytes] => frames(&std::fs::read(elf)?, bytes.parse()?),
        ["latency", nixflash, elf, board] => latency(nixflash, elf, board, 200),
        ["latency", nixflash, elf, board, n] => latency(nixflash, elf, board, n.parse()?),
        _ => bail!("usage: see the top of examples/monitor-bench.rs"),
    }
}

/// Code addresses of the ELF: for each function (largest first, at most `max`), its start and
/// an instruction in its middle.
fn code_addresses(data: &[u8], max: usize) -> Result<Vec<u64>> {
    let elf = object::File::parse(data)?;
    let code: Vec<(u64, u64)> = elf
        .sections()
        .filter(|s| s.kind() == SectionKind::Text && s.size() > 0)
        .map(|s| (s.address(), s.address() + s.size()))
        .collect();
    let mut functions: Vec<(u64, u64)> = elf
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() >= 4)
        .filter(|s| code.iter().any(|(a, b)| (*a..*b).contains(&s.address())))
        .map(|s| (s.size(), s.address()))
        .collect();
    functions.sort_unstable_by(|x, y| y.cmp(x));
    functions.dedup_by_key(|f| f.1);
    let mut out = Vec::new();
    for (size, start) in functions.into_iter().take(max / 2) {
        out.push(start);
        out.push(start + ((size / 2) & !1));
    }
    if out.is_empty() {
        bail!("the ELF has no function symbols in its code");
    }
    Ok(out)
}

fn addresses(data: &[u8], bytes: usize) -> Result<()> {
    let code = code_addresses(data, 4096)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut written, mut expect, mut i, mut n) = (0, 0u64, 0usize, 0u64);
    let mut next = || {
        i += 1;
        code[i % code.len()]
    };
    while written < bytes {
        let mut block = String::from("Backtrace:\r\n\r\n");
        for _ in 0..4 {
            block.push_str(&format!("0x{:08x}\r\n", next()));
        }
        let (pc, ra) = (next(), next());
        block.push_str(&format!(
            "MEPC    : 0x{pc:08x}  RA      : 0x{ra:08x}  SP      : 0x3fc8{:04x}\r\n",
            n % 0x10000
        ));
        expect += 4 + if pc == ra { 1 } else { 2 };
        block.push_str(&format!("heap free {n} bytes, no address on this line\r\n"));
        n += 1;
        written += block.len();
        out.write_all(block.as_bytes())?;
    }
    out.flush()?;
    eprintln!("expect={expect}");
    Ok(())
}

/// The entries of the ELF's defmt table the stream uses: log calls without arguments, or with
/// one `{=str}`: (index, whether it takes the string).
fn table(data: &[u8]) -> Result<Vec<(u16, bool)>> {
    let elf = object::File::parse(data)?;
    let section = elf
        .section_by_name(".defmt")
        .context("the ELF has no .defmt section")?
        .index();
    let mut out = Vec::new();
    for s in elf.symbols() {
        if s.section_index() != Some(section) {
            continue;
        }
        let Ok(json) = serde_json::from_str::<serde_json::Value>(s.name().unwrap_or("")) else {
            continue;
        };
        let (Some(tag), Some(text)) = (json["tag"].as_str(), json["data"].as_str()) else {
            continue;
        };
        if !["defmt_info", "defmt_warn", "defmt_error"].contains(&tag) {
            continue;
        }
        let params = text.matches('{').count();
        if params == 0 || (params == 1 && text.contains("{=str}")) {
            out.push((u16::try_from(s.address())?, params == 1));
        }
    }
    if out.is_empty() {
        bail!("no log call in the defmt table without arguments or with one {{=str}}");
    }
    Ok(out)
}

/// One frame as esp-println's `defmt-espflash` sends it: `0xFF 0x00`, then the rzCOBS frame.
fn frame(encoder: &mut defmt::Encoder, index: u16, arg: Option<&str>) -> Vec<u8> {
    let mut raw = index.to_le_bytes().to_vec();
    if let Some(s) = arg {
        raw.extend((s.len() as u32).to_le_bytes());
        raw.extend_from_slice(s.as_bytes());
    }
    let mut out = vec![0xFF, 0x00];
    encoder.start_frame(|b| out.extend_from_slice(b));
    encoder.write(&raw, |b| out.extend_from_slice(b));
    encoder.end_frame(|b| out.extend_from_slice(b));
    out
}

fn frames(data: &[u8], bytes: usize) -> Result<()> {
    let entries = table(data)?;
    let mut encoder = defmt::Encoder::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut written, mut expect) = (0, 0u64);
    let mut n = 0u64;
    while written < bytes {
        for (index, takes) in entries.iter().cycle().take(16) {
            // A new string each time: no two frames alike.
            n += 1;
            let word = format!("value {n}");
            let f = frame(&mut encoder, *index, takes.then_some(word.as_str()));
            written += f.len();
            out.write_all(&f)?;
            expect += 1;
        }
        let text = "text between frames, as the bootloader prints it\r\n";
        written += text.len();
        out.write_all(text.as_bytes())?;
    }
    out.flush()?;
    eprintln!("expect={expect}");
    Ok(())
}

/// A pty: the master, written to as the board; the slave's path, the monitor's port.
fn pty() -> Result<(File, String)> {
    // SAFETY: plain libc calls on a descriptor this function owns.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if fd < 0 || libc::grantpt(fd) != 0 || libc::unlockpt(fd) != 0 {
            bail!("no pty: {}", std::io::Error::last_os_error());
        }
        let master = File::from_raw_fd(fd);
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) != 0 {
            bail!("ptsname: {}", std::io::Error::last_os_error());
        }
        let path = CStr::from_ptr(name.as_ptr()).to_str()?.to_string();
        Ok((master, path))
    }
}

/// Everything the monitor has written to stdout, as it arrives, with when it arrived.
struct Stdout {
    rx: mpsc::Receiver<(Instant, Vec<u8>)>,
    seen: Vec<u8>,
}

impl Stdout {
    /// When `want` (after byte `from` of stdout) was complete.
    fn wait(&mut self, from: usize, want: &[u8]) -> Result<Instant> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (at, chunk) = self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .with_context(|| {
                    format!(
                        "no {:?} on the monitor's stdout",
                        String::from_utf8_lossy(want)
                    )
                })?;
            self.seen.extend_from_slice(&chunk);
            if self.seen[from..].windows(want.len()).any(|w| w == want) {
                return Ok(at);
            }
        }
    }
}

fn latency(nixflash: &str, elf_path: &str, board: &str, samples: usize) -> Result<()> {
    let data = std::fs::read(elf_path)?;
    let code = code_addresses(&data, 2 * samples + 2)?;
    let (mut master, port) = pty()?;
    let started = Instant::now();
    let mut child = Command::new(nixflash)
        .args([
            "monitor", "--port", &port, "--board", board, "--elf", elf_path,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {nixflash}"))?;
    let (tx, rx) = mpsc::channel();
    let mut out = child.stdout.take().unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n @ 1..) = out.read(&mut buf) {
            if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    let (etx, erx) = mpsc::channel();
    let mut err = child.stderr.take().unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = err.read(&mut buf) {
            let _ = etx.send((Instant::now(), buf[..n].to_vec()));
        }
    });
    let mut stderr = Stdout {
        rx: erx,
        seen: Vec::new(),
    };
    let result = (|| -> Result<()> {
        let ready = stderr.wait(0, b"--- Decoding with ")?;
        println!(
            "  monitor start to decoding (port opened, ELF read): {:.1} ms",
            (ready - started).as_secs_f64() * 1e3
        );
        let mut stdout = Stdout {
            rx,
            seen: Vec::new(),
        };
        let mut one = |address: u64| -> Result<f64> {
            thread::sleep(Duration::from_millis(20));
            let from = stdout.seen.len();
            let line = format!("0x{address:08x}");
            let t0 = Instant::now();
            master.write_all(format!("{line}\r\n").as_bytes())?;
            // The monitor writes a line and its annotation at once.
            let t1 = stdout.wait(from, format!("{line} - ").as_bytes())?;
            Ok((t1 - t0).as_secs_f64() * 1e3)
        };
        let first = one(code[0])?;
        println!("  first annotated line (the first lookup after loading): {first:.2} ms");
        let mut new: Vec<f64> = code[1..]
            .iter()
            .take(samples)
            .map(|&a| one(a))
            .collect::<Result<_>>()?;
        let mut again: Vec<f64> = code[1..]
            .iter()
            .take(samples.min(50))
            .map(|&a| one(a))
            .collect::<Result<_>>()?;
        println!(
            "  a new address each line ({} lines): {}",
            new.len(),
            stats(&mut new)
        );
        println!(
            "  an address seen before ({} lines): {}",
            again.len(),
            stats(&mut again)
        );
        if let Ok(entries) = table(&data) {
            let mut encoder = defmt::Encoder::new();
            let mut times = Vec::new();
            for (i, (index, takes)) in entries.iter().cycle().take(50).enumerate() {
                thread::sleep(Duration::from_millis(20));
                let from = stdout.seen.len();
                let word = format!("w{i}");
                let f = frame(&mut encoder, *index, takes.then_some(word.as_str()));
                let t0 = Instant::now();
                master.write_all(&f)?;
                let t1 = stdout.wait(from, b"\n")?;
                times.push((t1 - t0).as_secs_f64() * 1e3);
            }
            println!(
                "  a defmt frame to its line ({} frames): {}",
                times.len(),
                stats(&mut times)
            );
        }
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    if result.is_err() {
        eprintln!(
            "monitor's stderr:\n{}",
            String::from_utf8_lossy(&stderr.seen)
        );
    }
    result
}

/// `median a ms, p95 b ms, max c ms`.
fn stats(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        at(0.5),
        at(0.95),
        at(1.0)
    )
}
