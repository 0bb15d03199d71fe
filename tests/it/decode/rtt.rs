//! The monitor of a Cortex-M board reads its firmware's RTT channel as probe-rs passes it on:
//! the micro:bit v2 blinky (compiled here with the real compiler) logs through defmt-rtt, whose
//! frames are encoded here by the `defmt` crate's own encoder from that firmware's table, written
//! out as probe-rs writes a channel it does not decode (`0x48` for each byte, the copy of the ELF
//! it gets has no defmt table), in chunks cut anywhere, and fed to the monitor's RTT session
//! (`nixflash::monitor::rtt::watch`) as the reader of probe-rs's output does: level, message and
//! source line come out, an address in a message is annotated with its function, probe-rs's own
//! lines are status lines. The end-to-end path with the real probe-rs and no probe attached is in
//! tests/it/flash/probe.rs.

use std::io::Write;
use std::sync::{mpsc, Arc, Mutex};

use object::{Object, ObjectSymbol};

use super::frames::{defmt_index, str_arg};
use crate::common::firmware::{build, line_of, Kind};
use crate::common::skip;
use nixflash::monitor::rtt::{watch, View};
use nixflash::monitor::Decode;
use nixflash::monitor::MonitorEnd;

/// What the session writes, kept.
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<u8>>>);

impl Write for Kept {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Kept {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// One log call as defmt-rtt writes it into the channel: the frame (the string's index, then its
/// arguments) encoded by the `defmt` crate's own rzCOBS encoder, which ends it with a zero.
pub(super) fn frame(encoder: &mut defmt::Encoder, index: u16, args: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut raw = index.to_le_bytes().to_vec();
    raw.extend_from_slice(args);
    encoder.start_frame(|b| out.extend_from_slice(b));
    encoder.write(&raw, |b| out.extend_from_slice(b));
    encoder.end_frame(|b| out.extend_from_slice(b));
    out
}

/// The defmt table's one `defmt_info` string that `pick` takes.
fn info_string(elf: &object::File<'_>, pick: impl Fn(&str) -> bool) -> String {
    let found: Vec<String> = elf
        .symbols()
        .filter_map(|s| serde_json::from_str::<serde_json::Value>(s.name().ok()?).ok())
        .filter(|j| j["tag"] == "defmt_info")
        .filter_map(|j| j["data"].as_str().map(str::to_string))
        .filter(|d| pick(d))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn rtt_frames_from_probe_rs_are_decoded_with_levels_places_and_addresses() {
    let test = "rtt_frames_from_probe_rs_are_decoded_with_levels_places_and_addresses";
    let built = match build(Kind::MicrobitV2) {
        Ok(b) => b,
        Err(why) => return skip(test, &why),
    };
    let data = std::fs::read(&built.elf).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    hidden_table(&data);
    let greeting = info_string(&elf, |d| d.starts_with("Hello from "));
    let led = info_string(&elf, |d| d.ends_with(" is {=str}"));
    let main = elf
        .symbols()
        .find(|s| s.name().is_ok_and(|n| n.contains("__cortex_m_rt_main")))
        .expect("the firmware's main");
    // An address inside it (Thumb: the symbol's lowest bit is set).
    let address = format!("{:#010x}", (main.address() & !1) + 4);

    let mut encoder = defmt::Encoder::new();
    let mut channel = frame(
        &mut encoder,
        defmt_index(&elf, "defmt_info", &greeting),
        &[],
    );
    let led_index = defmt_index(&elf, "defmt_info", &led);
    channel.extend(frame(&mut encoder, led_index, &str_arg("high")));
    channel.extend(frame(&mut encoder, led_index, &str_arg(&address)));
    // probe-rs's output: each byte as `0x48`, one line of its own between them.
    let mut text: String = channel.iter().map(|b| format!("{b:#04x}")).collect();
    text.insert_str(text.len() / 2, "\nWARN probe-rs said something\n");

    let (tx, rx) = mpsc::channel();
    for chunk in text.as_bytes().chunks(7) {
        tx.send(chunk.to_vec()).unwrap();
    }
    drop(tx);
    let (out, err) = (Kept::default(), Kept::default());
    let console = nixflash::report::Console {
        out: Box::new(out.clone()),
        err: Box::new(err.clone()),
        out_is_terminal: false,
        err_is_terminal: false,
    };
    let view = View {
        decode: Some(Decode {
            elf: built.elf.clone(),
            board: None,
            project: Some(built.project.clone()),
            rtt: true,
        }),
        timestamps: false,
        log: None,
        duration: None,
    };
    let (end, received) = watch(&view, rx, "Reading", console).unwrap();
    let (out, err) = (out.text(), err.text());
    assert_eq!(end, MonitorEnd::SourceEnded, "{err}");
    assert_eq!(received, channel.len() as u64);

    let main_rs = built.project.join("src/main.rs");
    let hello = line_of(&main_rs, "defmt::info!(\"Hello from");
    let toggled = line_of(&main_rs, " is {=str}\", level)");
    let led_name = led.trim_end_matches(" is {=str}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        [
            format!(
                "INFO  {} (src/main.rs:{hello})",
                greeting.replace("{{", "{").replace("}}", "}")
            ),
            format!("INFO  {led_name} is high (src/main.rs:{toggled})"),
            format!("INFO  {led_name} is {address} (src/main.rs:{toggled})"),
        ],
        "{out}\n{err}"
    );
    // The address is annotated with the function it is in.
    let krate = built
        .project
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace('-', "_");
    assert!(
        out.contains(&format!(
            "{address} - {krate}::__cortex_m_rt_main at src/main.rs:"
        )),
        "{out}"
    );
    assert!(
        err.contains("--- probe-rs: WARN probe-rs said something"),
        "{err}"
    );
    assert!(err.contains("defmt frames are decoded"), "{err}");
}

/// The copy of the ELF probe-rs gets has no defmt table that defmt-decoder (which probe-rs
/// decodes with) finds, and the same bytes: only two names changed.
fn hidden_table(data: &[u8]) {
    use object::ObjectSection;
    let hidden = nixflash::firmware::section::without_defmt_table(data)
        .unwrap()
        .expect("a defmt table to hide");
    assert!(defmt_decoder::Table::parse(data).unwrap().is_some());
    assert!(defmt_decoder::Table::parse(&hidden).unwrap().is_none());
    assert_eq!(hidden.len(), data.len());
    let differ = hidden.iter().zip(data).filter(|(a, b)| a != b).count();
    assert!(differ <= 10, "{differ} bytes changed");
    let (before, after) = (
        object::File::parse(data).unwrap(),
        object::File::parse(&*hidden).unwrap(),
    );
    let table = before.section_by_name(".defmt").unwrap().data().unwrap();
    assert_eq!(
        after.section_by_name(".nodef").unwrap().data().unwrap(),
        table
    );
}
