//! Generated projects BUILT by real Nix: `nixflash new`, then `nixflash build -- <args>` with the
//! arguments of ../shared/tools/nix-offline, which lets real Nix run the project's own flake.nix
//! with the real crane and nixpkgs logic here, only the downloads (stdenv bootstrap, the Rust
//! toolchain, a few tools) stood in for by the host's programs. Each project has a name of its
//! own, so Nix really builds its dependencies and firmware instead of finding them in the store.
//!
//! These take minutes, so they have this binary to themselves, and run one at a time (each build
//! uses every core, and the flash test's simulated Uno runs in real time). They need Nix, the
//! firmware tools (../shared/tools/install-*.sh), ravedude, espflash, simavr, flip-link and
//! elf2uf2-rs; without them they say SKIPPED, and in CI they fail. The Raspberry Pi Pico's build
//! is in nix_build/rp2.rs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

#[path = "it/common/mod.rs"]
mod common;
#[path = "nix_build/rp2.rs"]
mod rp2;
#[path = "nix_build/sim.rs"]
mod sim;

use common::offline::{nix_offline, NixOffline};
use common::process::{collect, lossy, run_bounded, text, Spawned};
use common::sim::{measured_half_period, ravedude_missing, sim_lock, sim_missing, SimUno};
use common::{on_path, skip};

/// A generated project in a temporary folder.
struct Project {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    name: String,
}

/// `nixflash new <prefix>-<nonce> --board <board>`, a git repository with every file added.
fn new_project(off: &NixOffline, prefix: &str, board: &str) -> Project {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // A letter first: Nix takes a name part that starts with a digit for the version.
    let name = format!("{prefix}-t{:x}", nonce & 0xffff_ffff);
    let tmp = tempfile::Builder::new()
        .prefix("nixflash-nix-build-")
        .tempdir()
        .unwrap();
    let o = run_bounded(
        off.nixflash(tmp.path())
            .args(["new", &name, "--board", board]),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "nixflash new: {:?}", text(&o));
    Project {
        dir: tmp.path().join(&name),
        _tmp: tmp,
        name,
    }
}

/// Runs a nixflash or nix command to its end (at most 25 minutes) and returns its output,
/// failing with the whole output when it does not succeed.
fn run_ok(cmd: &mut Command, what: &str) -> (String, String, Duration) {
    let started = Instant::now();
    let o = run_bounded(cmd, Duration::from_secs(1500));
    let took = started.elapsed();
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "{what} failed ({})\n--- stdout\n{out}\n--- stderr\n{err}",
        o.status
    );
    (out, err, took)
}

/// `nixflash build [extra] -- <nix-offline's arguments>` in the project.
fn nixflash_build(off: &NixOffline, p: &Project, extra: &[&str]) -> (String, String, Duration) {
    run_ok(
        off.nixflash(&p.dir)
            .arg("build")
            .args(extra)
            .arg("--")
            .args(&off.override_args),
        &format!("nixflash build {} of {}", extra.join(" "), p.name),
    )
}

/// The derivations a nix log says it will build.
fn built_derivations(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut listing = false;
    for line in log.lines() {
        if line.starts_with("these ") && line.contains(" derivations will be built:")
            || line == "this derivation will be built:"
        {
            listing = true;
        } else if listing && line.starts_with("  /nix/store/") {
            out.push(line.trim().to_string());
        } else {
            listing = false;
        }
    }
    out
}

/// The crates cargo compiled in the derivation named `pname` (its `pname> Compiling ...` lines).
fn compiled_crates(log: &str, pname: &str) -> Vec<String> {
    let prefix = format!("{pname}> ");
    log.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| l.trim_start().strip_prefix("Compiling "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The flash and RAM bytes of nixflash's `Size flash N B / ..., RAM M B / ...` line.
fn size_line(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Size flash "))
        .unwrap_or_else(|| panic!("no `Size flash` line:\n{stderr}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    // flash <used> B / <total> B (<pct> %), RAM <used> B / <total> B (<pct> %)
    (numbers[0], numbers[2])
}

/// `.text + .data` and `.data + .bss + .noinit` of an AVR ELF, by `avr-size -A`.
fn avr_size(elf: &Path) -> (u64, u64) {
    let o = run_bounded(
        Command::new("avr-size").arg("-A").arg(elf),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "avr-size: {:?}", text(&o));
    let mut s = std::collections::HashMap::new();
    for l in text(&o).0.lines() {
        let mut f = l.split_whitespace();
        if let (Some(name), Some(Ok(size))) = (f.next(), f.next().map(str::parse::<u64>)) {
            s.insert(name.to_string(), size);
        }
    }
    let get = |n: &str| s.get(n).copied().unwrap_or(0);
    (
        get(".text") + get(".data"),
        get(".data") + get(".bss") + get(".noinit"),
    )
}

/// Edits src/main.rs (a new greeting) and checks that the rebuild is exactly one derivation,
/// the firmware, in which cargo compiles only the project's own crate. Returns how long it took.
fn rebuild_after_an_edit(off: &NixOffline, p: &Project) -> Duration {
    let main = p.dir.join("src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    let edited = source.replacen("Hello from ", "Hello again from ", 1);
    assert_ne!(edited, source, "src/main.rs has no greeting to edit");
    fs::write(&main, edited).unwrap();
    let (_, log, took) = nixflash_build(off, p, &[]);
    let built = built_derivations(&log);
    assert_eq!(
        built.len(),
        1,
        "after an edit of src/main.rs, Nix built {built:?}, not only the firmware\n{log}"
    );
    assert!(
        built[0].ends_with(&format!("-{}-0.1.0.drv", p.name)),
        "the one derivation rebuilt is not the firmware: {built:?}"
    );
    let compiled = compiled_crates(&log, &p.name);
    assert_eq!(
        compiled,
        vec![p.name.clone()],
        "the firmware's derivation compiled more than the project's own crate:\n{log}"
    );
    common::measured(&format!(
        "{} rebuilt after an edit of src/main.rs in {:.1} s (one derivation, one crate)",
        p.name,
        took.as_secs_f64()
    ));
    took
}

/// `nix flake check` with every output evaluated and every check built (the firmware, rustfmt,
/// clippy; for AVR boards the simulator and the run in it): what the generated CI workflow runs.
fn flake_check(off: &NixOffline, p: &Project, avr: bool) -> Duration {
    let (_, log, took) = run_ok(
        off.nix(&p.dir)
            .args(["flake", "check", "--print-build-logs"])
            .args(&off.override_args),
        &format!("nix flake check of {}", p.name),
    );
    for output in [
        "packages.x86_64-linux.default",
        "packages.x86_64-linux.flash",
        "apps.x86_64-linux.default",
        "devShells.x86_64-linux.default",
        "checks.x86_64-linux.firmware",
        "checks.x86_64-linux.fmt",
        "checks.x86_64-linux.clippy",
        "formatter.x86_64-linux",
    ] {
        assert!(
            log.contains(output),
            "nix flake check did not check {output}:\n{log}"
        );
    }
    if avr {
        for output in ["packages.x86_64-linux.simulator", "checks.x86_64-linux.sim"] {
            assert!(
                log.contains(output),
                "nix flake check did not check {output}:\n{log}"
            );
        }
        // checks.sim ran the firmware in simavr, which showed what it sent.
        let greeting = format!("{}-sim> ", p.name);
        assert!(
            log.lines().any(|l| l.starts_with(&greeting)
                && l.contains(&format!("Hello from {} on the Arduino Uno!", p.name))),
            "checks.sim did not run the firmware in simavr:\n{log}"
        );
    }
    common::measured(&format!(
        "nix flake check of {} (firmware, fmt, clippy{}) in {:.1} s",
        p.name,
        if avr { ", sim" } else { "" },
        took.as_secs_f64()
    ));
    took
}

/// Builds one check with nix and returns whether it passed, with its log.
fn check_passes(off: &NixOffline, p: &Project, check: &str) -> (bool, String) {
    let o = run_bounded(
        off.nix(&p.dir)
            .args(["build", "--no-link", "--print-build-logs"])
            .arg(format!(".#checks.x86_64-linux.{check}"))
            .args(&off.override_args),
        Duration::from_secs(1200),
    );
    (o.status.success(), text(&o).1)
}

fn git_add(p: &Project, file: &str) {
    common::git(&p.dir, &["add", file]);
}

/// What a test needs besides nix-offline, or why it cannot run.
fn ready(test: &str, tools: &[&str]) -> Option<&'static NixOffline> {
    for tool in tools {
        if !on_path(tool) {
            skip(test, &format!("{tool} is not on PATH"));
            return None;
        }
    }
    match nix_offline() {
        Ok(off) => Some(off),
        Err(why) => {
            skip(test, &why);
            None
        }
    }
}

#[test]
fn uno_builds_from_scratch_flashes_and_rebuilds_only_the_firmware() {
    let test = "uno_builds_from_scratch_flashes_and_rebuilds_only_the_firmware";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(test, &why);
    }
    let Some(off) = ready(test, &["git", "avr-size"]) else {
        return;
    };

    let p = new_project(off, "uno", "uno");

    // From scratch: nixflash makes the std lock from the (stand-in) toolchain's rust-src, then
    // Nix builds the dependencies and the firmware.
    assert!(!p.dir.join("nix/std-Cargo.lock").exists());
    let (_, log, took) = nixflash_build(off, &p, &[]);
    common::measured(&format!(
        "{} built from scratch (std lock, deps, firmware) in {:.1} s",
        p.name,
        took.as_secs_f64()
    ));
    assert!(
        log.contains("Updated nix/std-Cargo.lock to the standard library's lock"),
        "nixflash did not create the std lock:\n{log}"
    );
    let std_lock = fs::read(p.dir.join("nix/std-Cargo.lock")).unwrap();
    assert_eq!(
        std_lock,
        fs::read("/usr/lib/rustlib/src/rust/library/Cargo.lock").unwrap(),
        "nix/std-Cargo.lock is not the lock of the toolchain's rust-src (nix-offline's toolchain \
         is Debian's rustc, whose rust-src this is)"
    );
    let tracked = common::git(&p.dir, &["ls-files", "nix"]);
    assert!(
        tracked.contains("nix/std-Cargo.lock") && tracked.contains("nix/std-Cargo.lock.source"),
        "the std lock is not git-added: {tracked}"
    );
    let built = built_derivations(&log);
    for drv in [
        format!("-{}-deps-0.1.0.drv", p.name),
        format!("-{}-0.1.0.drv", p.name),
    ] {
        assert!(
            built.iter().any(|d| d.ends_with(&drv)),
            "Nix did not build *{drv}: {built:?}"
        );
    }
    let elf = p.dir.join(format!("result/bin/{}.elf", p.name));
    assert!(elf.is_file(), "no {}:\n{log}", elf.display());
    let (flash, ram) = size_line(&log);
    assert_eq!(
        (flash, ram),
        avr_size(&elf),
        "the size report disagrees with avr-size"
    );
    common::measured(&format!(
        "{} is {flash} B of flash and {ram} B of RAM",
        p.name
    ));

    // Built again, as JSON: nothing new to build, the std lock left alone.
    let (json, log, _) = nixflash_build(off, &p, &["--json"]);
    assert!(
        built_derivations(&log).is_empty(),
        "a second build built something:\n{log}"
    );
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(j["std_lock"]["state"], "unchanged", "{json}");
    assert_eq!(j["size"]["flash"]["used"], flash);

    // Flash the simulated Uno with the same arguments: nothing is built, real ravedude uploads,
    // nixflash's monitor shows the greeting, and the board blinks.
    let _sim_lock = sim_lock();
    let mut sim = SimUno::start();
    let mut flash = Spawned::new(
        off.nixflash(&p.dir)
            .args(["flash", "--port", &sim.pty, "--monitor", "--"])
            .args(&off.override_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let (out, t_out) = collect(flash.child.stdout.take().unwrap());
    let (err, t_err) = collect(flash.child.stderr.take().unwrap());
    let greeting = format!("Hello from {} on the Arduino Uno!", p.name);
    let started = Instant::now();
    while !lossy(&out).contains(&greeting) {
        if let Some(status) = flash.try_wait() {
            panic!(
                "nixflash flash ended ({status}) before the greeting\n{}\n{}",
                lossy(&out),
                lossy(&err)
            );
        }
        if started.elapsed() > Duration::from_secs(300) {
            flash.kill_group();
            panic!(
                "no greeting {greeting:?} within 300 s\n{}\n{}",
                lossy(&out),
                lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let done = Instant::now();
    flash.signal(libc::SIGINT);
    let status = flash
        .wait_for(Duration::from_secs(20))
        .expect("nixflash flash --monitor did not end after SIGINT");
    let (_, _) = (t_out.join(), t_err.join());
    let log = lossy(&err);
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        built_derivations(&log).is_empty(),
        "flash built something although the build was done:\n{log}"
    );
    let running = log
        .lines()
        .find(|l| l.starts_with("Running: "))
        .unwrap_or_else(|| panic!("flash shows no ravedude command:\n{log}"));
    assert!(
        running.contains(&format!(" -P {} /nix/store/", sim.pty))
            && running.ends_with(&format!("/bin/{}.elf", p.name)),
        "ravedude was not given the built ELF: {running}"
    );
    assert!(log.contains("bytes of flash verified"), "{log}");
    let half = measured_half_period(&mut sim, done, &p.name, 0.5);
    assert!(
        (half - 0.5).abs() < 0.0025,
        "PB5 toggles every {half} s, not every 500 ms"
    );
    drop(sim);
    drop(_sim_lock);

    // An edit of src/main.rs rebuilds the firmware alone, and only its own crate in it.
    let main = p.dir.join("src/main.rs");
    let good = fs::read_to_string(&main).unwrap();
    rebuild_after_an_edit(off, &p);
    // Back to the greeting that checks.sim expects (tests/nix_build/sim.rs fails it).
    fs::write(&main, &good).unwrap();
    git_add(&p, "src/main.rs");

    // The flake's checks pass on the generated project...
    flake_check(off, &p, true);
    // ...and catch a formatting error...
    fs::write(&main, good.replacen("fn main() -> ! {", "fn main()->!{", 1)).unwrap();
    git_add(&p, "src/main.rs");
    let (ok, log) = check_passes(off, &p, "fmt");
    assert!(
        !ok,
        "checks.fmt passed a badly formatted src/main.rs:\n{log}"
    );
    assert!(log.contains("Diff in"), "{log}");
    // ...and a clippy warning (an unused variable).
    let unused = good.replacen(
        "let dp = arduino_hal::Peripherals::take().unwrap();",
        "let dp = arduino_hal::Peripherals::take().unwrap();\n    let unused = 1;",
        1,
    );
    assert_ne!(unused, good);
    fs::write(&main, unused).unwrap();
    git_add(&p, "src/main.rs");
    let (ok, log) = check_passes(off, &p, "clippy");
    assert!(!ok, "checks.clippy passed an unused variable:\n{log}");
    assert!(log.contains("unused variable"), "{log}");
}

/// An ESP32 board: built from scratch, its ELF accepted by `espflash save-image`, its size report
/// counting only loaded sections, and a rebuild after an edit of src/ compiling only the
/// project's crate. With `checks`, `nix flake check` too.
fn esp_board(test: &str, board: &str, chip: &str, checks: bool) {
    let Some(off) = ready(test, &["git", "espflash"]) else {
        return;
    };

    let p = new_project(off, chip, board);
    let (json, log, took) = nixflash_build(off, &p, &["--json"]);
    common::measured(&format!(
        "{} ({board}) built from scratch in {:.1} s",
        p.name,
        took.as_secs_f64()
    ));
    let built = built_derivations(&log);
    assert!(
        built
            .iter()
            .any(|d| d.ends_with(&format!("-{}-deps-0.1.0.drv", p.name))),
        "{built:?}"
    );
    assert!(
        !p.dir.join("nix/std-Cargo.lock").exists(),
        "an ESP build needs no std lock"
    );
    let elf = p.dir.join(format!("result/bin/{}.elf", p.name));

    // espflash turns it into an app image.
    let image = p.dir.join("app.bin");
    let (_, err, _) = run_ok(
        Command::new("espflash")
            .args(["save-image", "--chip", chip])
            .arg(&elf)
            .arg(&image),
        "espflash save-image",
    );
    let bytes = fs::read(&image).unwrap();
    assert_eq!(bytes.first(), Some(&0xE9), "not an ESP app image:\n{err}");

    // The size report counts the sections that are loaded, read independently here: every
    // counted section occupies memory (SHF_ALLOC), none is debug data or a stack reservation,
    // and flash is the bytes of the allocated sections that have contents.
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    let counted: Vec<&str> = j["size"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let data = fs::read(&elf).unwrap();
    let file = object::File::parse(&*data).unwrap();
    use object::{Object, ObjectSection, SectionFlags, SectionKind};
    let mut loaded = 0u64;
    for s in file.sections() {
        let SectionFlags::Elf { sh_flags } = s.flags() else {
            continue;
        };
        let alloc = sh_flags & u64::from(object::elf::SHF_ALLOC) != 0;
        let name = s.name().unwrap();
        if counted.contains(&name) {
            assert!(alloc, "{name} is counted but not loaded");
        }
        if alloc && s.kind() != SectionKind::UninitializedData {
            loaded += s.size();
        }
    }
    for name in &counted {
        assert!(
            !name.starts_with(".debug") && !name.starts_with(".stack") && !name.contains("dummy"),
            "{name} is counted"
        );
    }
    let flash = j["size"]["flash"]["used"].as_u64().unwrap();
    assert_eq!(flash, loaded, "flash is not the loaded sections' bytes");
    assert!(
        flash * 2 < data.len() as u64,
        "flash {flash} B is not much less than the ELF's {} B (debug info counted?)",
        data.len()
    );
    common::measured(&format!(
        "{} is {flash} B of flash, {} B of RAM; app image {} B",
        p.name,
        j["size"]["ram"]["used"],
        bytes.len()
    ));

    rebuild_after_an_edit(off, &p);
    if checks {
        flake_check(off, &p, false);
    }
}

#[test]
fn esp32c3_builds_from_scratch_and_rebuilds_only_the_firmware() {
    esp_board(
        "esp32c3_builds_from_scratch_and_rebuilds_only_the_firmware",
        "esp32c3",
        "esp32c3",
        true,
    );
}

#[test]
fn esp32c6_builds_from_scratch_and_rebuilds_only_the_firmware() {
    esp_board(
        "esp32c6_builds_from_scratch_and_rebuilds_only_the_firmware",
        "esp32c6",
        "esp32c6",
        false,
    );
}

/// `nixflash update` moves pins on purpose and says old -> new; the std lock follows.
#[test]
fn update_moves_the_pins_and_says_what_moved() {
    let test = "update_moves_the_pins_and_says_what_moved";
    let Some(off) = ready(test, &["git"]) else {
        return;
    };

    let p = new_project(off, "upd", "uno");
    let before = fs::read_to_string(p.dir.join("flake.lock")).unwrap();
    // nix-offline's inputs, this time written into flake.lock (no --no-write-lock-file).
    let args: Vec<&String> = off
        .override_args
        .iter()
        .filter(|a| *a != "--no-write-lock-file")
        .collect();
    let crane = args[args.iter().position(|a| *a == "crane").unwrap() + 1].clone();
    let (_, log, _) = run_ok(
        off.nixflash(&p.dir)
            .args(["update", "crane", "--"])
            .args(&args),
        "nixflash update crane",
    );
    let after = fs::read_to_string(p.dir.join("flake.lock")).unwrap();
    assert_ne!(before, after, "flake.lock did not change:\n{log}");
    assert!(
        log.contains(&format!("Moved crane 2c71e19 (2026-08-03) → {crane}")),
        "update did not say how crane moved:\n{log}"
    );
    for input in [
        "nixpkgs 104240a (2026-08-03) → path:",
        "rust-overlay fd2ebb9 (2026-08-22) → path:",
    ] {
        assert!(log.contains(input), "update did not say `{input}`:\n{log}");
    }
    assert!(
        log.contains("Updated nix/std-Cargo.lock"),
        "update did not make the std lock:\n{log}"
    );
    assert!(p.dir.join("nix/std-Cargo.lock").is_file());
}
