//! Every board in the database, rendered by `nixflash new` and compiled with the real compiler
//! (tests/it/common/compile.rs knows how, per family): the firmware is an ELF of the family's
//! machine that fits the board's memory. Then, by what the family's data says it has:
//! - a simulator (AVR: simavr; the micro:bit v1: QEMU), through `nixflash sim`: the greeting
//!   arrives on the board's console UART and the LED toggles at the blinky's period, at the
//!   board's clock (QEMU: the median interval on the host's clock, within 2 %);
//! - espflash as its flasher (ESP32): `espflash save-image --chip <the board's chip>` makes an app
//!   image of it;
//! - a Cortex-M board of the `cortex-m` family: its vector table is at the start of the board's
//!   flash and its reset vector is the ELF's entry point, a Thumb address in that flash.
//!
//! A board added to `boards/` is covered without touching this file; one of a family that
//! compile.rs does not know how to compile fails the test, naming the match arm to add.
//!
//! The boards are split into [`SHARDS`] tests that the test runner can run at the same time, by
//! family: a family's projects compile into one target folder (compile.rs), one at a time, so its
//! boards are in one shard, one compile set after the other (the same target, CPU and flags:
//! `core` and the HAL compiled once, each further board only its own crate). Families are
//! spread over the shards by how many compile sets they have; a shard may have none.
//!
//! Needs the firmware tools from `../shared/tools/install-firmware-tools.sh` (Debian's rustc with
//! the std source, ld.lld, avr-gcc, simavr), the avr-hal bundle in ../shared/fixtures, and
//! espflash and qemu-system-arm on PATH. Each board's blinky is compiled once per run
//! (compile::board_blinky), for any test that runs it too.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nixflash::board::{Board, Database, FlashMethod};

use crate::common::process::{run_bounded, text};
use crate::common::{self, compile, on_path};

const TEST: &str = "every_board_renders_compiles_and_runs";

/// How many tests the boards are split into.
const SHARDS: usize = 3;

#[test]
fn every_board_renders_compiles_and_runs_1_of_3() {
    shard(0);
}

#[test]
fn every_board_renders_compiles_and_runs_2_of_3() {
    shard(1);
}

#[test]
fn every_board_renders_compiles_and_runs_3_of_3() {
    shard(2);
}

#[test]
fn cortex_m_boards_name_their_probe_rs_chip_and_target() {
    let db = Database::builtin().unwrap();
    let ids: Vec<&str> = db.boards().map(|b| b.id.as_str()).collect();
    // Issue 21 asks for at least 31 boards: 23, and the 8 Cortex-M boards.
    assert_eq!(ids.len(), 31, "{ids:?}");
    assert_eq!(db.get("microbit").unwrap().id, "microbit-v2");
    assert_eq!(db.get("blackpill").unwrap().id, "blackpill-f411ce");
    let want = [
        (
            "blackpill-f411ce",
            "STM32F411CEUx",
            "thumbv7em-none-eabihf",
            "stm32f411",
        ),
        (
            "nucleo-f411re",
            "STM32F411RETx",
            "thumbv7em-none-eabihf",
            "stm32f411",
        ),
        (
            "nucleo-f401re",
            "STM32F401RETx",
            "thumbv7em-none-eabihf",
            "stm32f401",
        ),
        (
            "nucleo-f446re",
            "STM32F446RETx",
            "thumbv7em-none-eabihf",
            "stm32f446",
        ),
        ("bluepill", "STM32F103C8", "thumbv7m-none-eabi", "stm32f103"),
        (
            "nrf52840-dk",
            "nRF52840_xxAA",
            "thumbv7em-none-eabihf",
            "nrf52840",
        ),
        (
            "microbit-v2",
            "nRF52833_xxAA",
            "thumbv7em-none-eabihf",
            "nrf52833",
        ),
        (
            "microbit-v1",
            "nRF51822_xxAA",
            "thumbv6m-none-eabi",
            "nrf51822",
        ),
    ];
    for (id, chip, target, lock) in want {
        let b = db.get(id).unwrap();
        assert_eq!(b.family_id, "cortex-m", "{id}");
        assert_eq!(b.flash.chip.as_deref(), Some(chip), "{id}");
        assert_eq!(b.rust.target, target, "{id}");
        assert_eq!(b.fill(&b.family().files.lock, &[]).unwrap(), lock, "{id}");
        assert!(
            !b.monitor.usb_console,
            "{id}: its log is RTT, not a serial console"
        );
    }
    let v2 = db.get("microbit-v2").unwrap();
    assert_eq!(
        (v2.hal.led.as_str(), v2.hal.led_sink.as_deref()),
        ("p0_21", Some("p0_28"))
    );
    let v1 = db.get("microbit-v1").unwrap();
    assert_eq!(
        (v1.hal.led.as_str(), v1.hal.led_sink.as_deref()),
        ("p0_13", Some("p0_04"))
    );
    assert_eq!(db.get("nucleo-f411re").unwrap().hal.led_sink, None);
}

/// Every board is in exactly one shard, and the boards of a family in the same one.
#[test]
fn the_shards_cover_every_board_once() {
    let db = Database::builtin().unwrap();
    let all: Vec<&Board> = db.boards().collect();
    assert!(all.len() >= 20, "only {} boards", all.len());
    let shards = shards(&all);
    assert_eq!(shards.len(), SHARDS);
    let mut seen: Vec<&str> = shards.iter().flatten().map(|b| b.id.as_str()).collect();
    seen.sort();
    let mut ids: Vec<&str> = all.iter().map(|b| b.id.as_str()).collect();
    ids.sort();
    assert_eq!(seen, ids);
    for (i, shard) in shards.iter().enumerate() {
        for other in shards.iter().skip(i + 1) {
            for b in shard {
                assert!(
                    other.iter().all(|o| o.family().id != b.family().id),
                    "the {} family is in two shards",
                    b.family().id
                );
            }
        }
    }
}

/// A board's compile set: its target, CPU and chip (whose HAL feature its family's templates
/// name).
fn set(b: &Board) -> (String, String, String) {
    (
        b.rust.target.clone(),
        b.rust.target_cpu.clone().unwrap_or_default(),
        b.chip.clone(),
    )
}

/// The boards split into [`SHARDS`] lists: the families, most compile sets first, each to the
/// shard with the fewest compile sets so far.
fn shards<'b>(boards: &[&'b Board]) -> Vec<Vec<&'b Board>> {
    let mut families: BTreeMap<&str, Vec<&Board>> = BTreeMap::new();
    for b in boards {
        families.entry(b.family().id.as_str()).or_default().push(b);
    }
    let sets = |members: &Vec<&Board>| {
        let mut sets: Vec<_> = members.iter().map(|b| set(b)).collect();
        sets.sort();
        sets.dedup();
        sets.len()
    };
    let mut families: Vec<_> = families.into_values().collect();
    families.sort_by_key(|m| std::cmp::Reverse(sets(m)));
    let mut shards: Vec<(usize, Vec<&Board>)> = vec![(0, Vec::new()); SHARDS];
    for members in families {
        let lightest = shards.iter_mut().min_by_key(|(w, _)| *w).unwrap();
        lightest.0 += sets(&members);
        lightest.1.extend(members);
    }
    shards.into_iter().map(|(_, b)| b).collect()
}

/// Renders, compiles and checks the boards of shard `index`.
fn shard(index: usize) {
    let db = Database::builtin().unwrap();
    let all: Vec<&Board> = db.boards().collect();
    // Every board's family must be one this test can compile, before anything is compiled: a
    // board this test cannot compile fails it, on any machine.
    let recipes: Vec<_> = all.iter().map(|b| compile::recipe(b)).collect();
    let unknown: Vec<&str> = recipes
        .iter()
        .filter_map(|r| r.as_ref().err().map(String::as_str))
        .collect();
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
    for r in recipes.iter().flatten() {
        if let Some(why) = compile::missing(r) {
            return common::skip(TEST, &why);
        }
    }
    let mut boards = shards(&all).swap_remove(index);
    if boards.is_empty() {
        common::measured(&format!(
            "boards shard {} of {SHARDS}: no family of its own (fewer families than shards)",
            index + 1
        ));
        return;
    }
    // Boards of a compile set one after the other.
    boards.sort_by_key(|b| (set(b), b.id.clone()));

    let start = Instant::now();
    let mut failed = Vec::new();
    for b in &boards {
        if let Err(why) = check_board(b) {
            failed.push(format!("{}: {why}", b.id));
        }
    }
    let ids: Vec<&str> = boards.iter().map(|b| b.id.as_str()).collect();
    common::measured(&format!(
        "boards shard {} of {SHARDS} ({}) rendered, compiled and checked in {:.0} s",
        index + 1,
        ids.join(", "),
        start.elapsed().as_secs_f64()
    ));
    assert!(
        failed.is_empty(),
        "{} of {} boards failed:\n\n{}",
        failed.len(),
        boards.len(),
        failed.join("\n\n")
    );
}

/// Renders, compiles and checks one board's firmware.
fn check_board(b: &Board) -> Result<(), String> {
    let compile::BoardBlinky {
        project,
        compiled: built,
    } = compile::board_blinky(b)?;
    let machine = compile::elf_machine(&built.elf)?;
    let family = b.family();
    if machine != family.elf_machine {
        return Err(format!(
            "the ELF's machine is {machine}, not the {} family's {}",
            family.id, family.elf_machine
        ));
    }
    let size =
        nixflash::firmware::size::analyze_file(&built.elf, b).map_err(|e| format!("{e:#}"))?;
    if !size.fits() {
        return Err(format!(
            "the blinky does not fit: flash {} of {} bytes, RAM {} of {}",
            size.flash.used, size.flash.total, size.ram.used, size.ram.total
        ));
    }
    common::measured(&format!(
        "{} ({}): compiled in {:.1} s ({:.1} s of CPU); flash {} of {} bytes, RAM {} of {} bytes",
        b.id,
        b.chip,
        built.took.as_secs_f64(),
        built.cpu.as_secs_f64(),
        size.flash.used,
        size.flash.total,
        size.ram.used,
        size.ram.total
    ));
    if let Some(origin) = boot_flash(b) {
        vector_table(b, &built.elf, origin)?;
    }
    if b.simulator().is_some() {
        simulate(b, &project, &built.elf)?;
    }
    if let FlashMethod::Espflash(_) = family.flasher {
        app_image(b, &built.elf)?;
    }
    Ok(())
}

/// Where a Cortex-M chip of the `cortex-m` family boots from: the start of its flash, where the
/// core reads the vector table at reset (the vendors' memory maps: an STM32's flash at 0x0800_0000,
/// aliased at 0 when it boots from flash; an nRF5's at 0).
fn boot_flash(b: &Board) -> Option<u64> {
    match b.family().id.as_str() {
        "cortex-m" if b.chip.starts_with("stm32") => Some(0x0800_0000),
        "cortex-m" => Some(0),
        _ => None,
    }
}

/// The ELF's vector table is at `origin`, the start of the board's flash, and fits in it; its
/// reset vector is the ELF's entry point, a Thumb address inside the board's flash.
fn vector_table(b: &Board, elf: &Path, origin: u64) -> Result<(), String> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(elf).map_err(|e| e.to_string())?;
    let file = object::File::parse(&*data).map_err(|e| e.to_string())?;
    let flash = origin..origin + b.memory.flash;
    let table = file
        .section_by_name(".vector_table")
        .ok_or("the ELF has no .vector_table")?;
    let end = table.address() + table.size();
    if table.address() != origin || end > flash.end {
        return Err(format!(
            "the vector table is at {:#x}..{end:#x}, not at the start of the flash {flash:#x?}",
            table.address()
        ));
    }
    let words = table.data().map_err(|e| e.to_string())?;
    let reset = u32::from_le_bytes(words[4..8].try_into().unwrap()) as u64;
    let entry = file.entry();
    if reset != entry || entry & 1 == 0 || !flash.contains(&(entry & !1)) {
        return Err(format!(
            "the entry point {entry:#x} (reset vector {reset:#x}) is not a Thumb address in the \
             flash {flash:#x?}"
        ));
    }
    common::measured(&format!(
        "{}: vector table at {:#x}, entry point {entry:#x}, in the flash {flash:#x?}",
        b.id,
        table.address()
    ));
    Ok(())
}

/// The blinky's half period in seconds: the `delay_ms(<ms>)` of the rendered src/main.rs.
fn blink_interval(project: &Path) -> Result<f64, String> {
    let main = std::fs::read_to_string(project.join("src/main.rs")).map_err(|e| e.to_string())?;
    let ms = main
        .split("delay_ms(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.trim().parse::<f64>().ok())
        .ok_or("src/main.rs has no delay_ms(<ms>)")?;
    Ok(ms / 1e3)
}

/// Runs the firmware with `nixflash sim --elf ... --expect <greeting> --json` for four blinks.
fn simulate(b: &Board, project: &Path, elf: &Path) -> Result<(), String> {
    let sim = b
        .sim
        .as_ref()
        .ok_or("the family has a simulator, the board no `sim`")?;
    let tool = b.simulator().ok_or("no simulator")?;
    let program = tool.tool.as_str();
    if !on_path(program) {
        common::skip(
            TEST,
            &format!("{program} is not on PATH ({})", tool.install),
        );
        return Ok(());
    }
    let listed = run_bounded(
        Command::new(program).args(&tool.list_args),
        Duration::from_secs(30),
    );
    let (out, err) = text(&listed);
    if !format!("{out}{err}")
        .split_whitespace()
        .any(|c| c == sim.listed())
    {
        common::skip(
            TEST,
            &format!("this {program} cannot simulate the {}", sim.listed()),
        );
        return Ok(());
    }
    let interval = blink_interval(project)?;
    let name = project.file_name().unwrap().to_string_lossy();
    let greeting = format!("Hello from {name} on the {}!", b.name);
    let duration = 4.0 * interval + 0.2;
    // QEMU runs in real time: no other simulation at the same time (crate::sim's lock).
    let _one = (b.sim.as_ref().and_then(|s| s.machine.as_ref())).map(|_| crate::sim::one_sim());
    let o = run_bounded(
        common::nixflash_realtime()
            .args(["sim", "--json", "--elf"])
            .arg(elf)
            .args(["--expect", &greeting, "--duration", &duration.to_string()])
            .current_dir(project)
            .env("XDG_CONFIG_HOME", project.join(".no-user-config")),
        Duration::from_secs(180),
    );
    let (out, err) = text(&o);
    if !o.status.success() {
        return Err(format!("nixflash sim failed:\n{err}"));
    }
    let r: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("nixflash sim --json: {e}: {out}"))?;
    let clock = b.clock.ok_or("no clock")?;
    if r["clock_hz"].as_u64() != Some(clock) || r["mcu"].as_str() != Some(sim.mcu.as_str()) {
        return Err(format!("simulated the wrong chip or clock: {r}"));
    }
    if r["end"] != "duration" || !r["uart"]["text"].as_str().unwrap_or("").contains(&greeting) {
        return Err(format!("the greeting did not arrive on {}: {r}", sim.uart));
    }
    // simavr's clock is the simulated CPU's: its LED's steady interval is exact. QEMU runs the
    // machine in real time, and the times are the host's clock, which the host's scheduling moves
    // by a few ms: the median interval, within 2 %.
    let wall = r["clock"] == "wall";
    let (every, changes, within) = if wall {
        let median = r["led"]["median_interval_seconds"].as_f64().unwrap_or(0.0);
        (median, r["led"]["changes"].as_u64().unwrap_or(0), 0.02)
    } else {
        let steady = &r["led"]["steady"];
        let every = steady["interval_seconds"].as_f64().unwrap_or(0.0);
        (every, steady["changes"].as_u64().unwrap_or(0), 0.005)
    };
    // arduino-hal's delay_ms counts cycles of the clock it was built for: at any other clock
    // than the board's, the period would be off by the ratio.
    if changes < 3 || (every - interval).abs() > within * interval {
        return Err(format!(
            "{} ({}) does not toggle every {interval} s at {clock} Hz: {}",
            sim.led, b.hal.led, r["led"]
        ));
    }
    common::measured(&format!(
        "{} in {program} at {} MHz: the greeting on {} at {:.1} ms, {} toggles {changes} times \
         every {:.2} ms{}",
        b.id,
        clock as f64 / 1e6,
        sim.uart,
        r["expect"][0]["seen_at_seconds"]
            .as_f64()
            .unwrap_or(f64::NAN)
            * 1e3,
        sim.led,
        every * 1e3,
        if wall {
            " (the median interval, on the host's clock)"
        } else {
            ""
        }
    ));
    Ok(())
}

/// `espflash save-image --chip <flash.chip>`: an ESP-IDF app image (magic byte 0xE9).
fn app_image(b: &Board, elf: &Path) -> Result<(), String> {
    if !on_path("espflash") {
        common::skip(
            TEST,
            "espflash is not on PATH (cargo install espflash --locked)",
        );
        return Ok(());
    }
    let chip = b.flash.chip.as_deref().ok_or("no flash.chip")?;
    let image = elf.with_extension("bin");
    let o = run_bounded(
        Command::new("espflash")
            .args(["save-image", "--chip", chip])
            .arg(elf)
            .arg(&image),
        Duration::from_secs(120),
    );
    let (_, err) = text(&o);
    let bytes = std::fs::read(&image).unwrap_or_default();
    if !o.status.success() || bytes.first() != Some(&0xE9) {
        return Err(format!("espflash save-image --chip {chip} failed:\n{err}"));
    }
    common::measured(&format!(
        "{}: espflash save-image --chip {chip} made a {}-byte app image",
        b.id,
        bytes.len()
    ));
    Ok(())
}
