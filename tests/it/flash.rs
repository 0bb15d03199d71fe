//! `nixflash flash` with real flashers and no boards: a simulated Arduino Uno (tests/sim/sim-uno.c,
//! simavr running Arduino's bootloader, its UART on a pty) receives uploads from the real ravedude
//! and avrdude, then runs the firmware, whose LED period and greeting are checked.
//!
//! Needs: cc, libsimavr-dev (with libelf-dev), avr-gcc, avrdude, Arduino's bootloaders
//! (arduino-core-avr), ravedude (`cargo install ravedude --locked`); Nix and git for the tests
//! that build with the flake (tests/fixtures/project, as tests/build.rs uses it) or take its flasher;
//! espflash, ld.lld and ../shared/tools/firmware-env.sh for the ESP32-C3 test. Tests whose tools
//! are missing say SKIPPED and why on stderr.
//!
//! The uploaded firmware is the rendered Uno project compiled with cargo (arduino-hal from the
//! avr-hal bundle in ../shared/fixtures); without ../shared it is tests/fixtures/firmware.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{self, compile};

use crate::common::process::{collect, lossy, run_bounded, text, Spawned};
use crate::common::sim::{measured_half_period, ravedude_missing, sim_missing, SimUno, SIM_LOCK};
use crate::common::{nixflash, on_path, repo, skip, tmp};

/// `nixflash new <name> --board <board> --no-git` in a fresh temporary folder (outside this
/// repository, so that Nix sees a plain folder and not a git checkout).
fn new_project(name: &str, board: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("nixflash-flash-test-")
        .tempdir()
        .unwrap();
    let o = run_bounded(
        nixflash()
            .args(["new", name, "--board", board, "--no-git"])
            .current_dir(dir.path()),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "nixflash new failed: {:?}", text(&o));
    let root = dir.path().join(name);
    (dir, root)
}

// ---------------------------------------------------------------------------------------------
// The firmware.

/// A firmware ELF for the Uno and what it does.
struct Firmware {
    elf: PathBuf,
    /// Time between two PB5 changes, in seconds.
    half_period: f64,
    greeting: String,
    what: String,
}

/// The rendered Uno project compiled with cargo (arduino-hal from the avr-hal bundle in
/// ../shared/fixtures); without ../shared, tests/fixtures/firmware/blink.c compiled with avr-gcc.
/// Built once per test run.
fn firmware() -> &'static Firmware {
    static FW: OnceLock<Firmware> = OnceLock::new();
    match common::offline::avr_hal_git().and_then(|_| common::offline::firmware_env()) {
        Ok(_) => FW.get_or_init(rust_firmware),
        Err(why) => {
            skip(
                "uploading the rendered arduino-hal project",
                &format!("{why}; uploading the avr-gcc fixture tests/fixtures/firmware/blink.c"),
            );
            blink_firmware()
        }
    }
}

/// tests/fixtures/firmware/blink.c compiled with avr-gcc, once per test run.
fn blink_firmware() -> &'static Firmware {
    static FW: OnceLock<Firmware> = OnceLock::new();
    FW.get_or_init(c_firmware)
}

fn c_firmware() -> Firmware {
    let elf = tmp().join("blink.elf");
    let o = run_bounded(
        Command::new("avr-gcc")
            .args([
                "-mmcu=atmega328p",
                "-DF_CPU=16000000UL",
                "-DBLINK_HALF_PERIOD_MS=250",
                "-Os",
                "-Wall",
                "-o",
            ])
            .arg(&elf)
            .arg(repo().join("tests/fixtures/firmware/blink.c")),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "avr-gcc failed: {:?}", text(&o));
    Firmware {
        elf,
        half_period: 0.250,
        greeting: "Hello from the nixflash test firmware!".into(),
        what: "the avr-gcc fixture blink.c".into(),
    }
}

/// The project `nixflash new fw --board uno` renders, compiled by cargo with Debian's rustc
/// (tests/it/common/compile.rs, in the target folder the all-boards test shares).
fn rust_firmware() -> Firmware {
    let work = tmp().join("uno-rust-fixture");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let db = nixflash::board::Database::builtin().unwrap();
    let project = compile::render(&work, "fw", "uno").unwrap_or_else(|e| panic!("{e}"));
    let built = compile::compile(db.get("uno").unwrap(), &project, "fw")
        .unwrap_or_else(|e| panic!("compiling the rendered Uno project: {e}"));
    Firmware {
        elf: built.elf,
        half_period: 0.500,
        greeting: "Hello from fw on the Arduino Uno!".into(),
        what: "the rendered Uno project (arduino-hal)".into(),
    }
}

/// Flashes `fw` with `nixflash flash --no-build --elf ... --port <pty>` run in `project` with
/// `path` as PATH, then checks the LED period and the greeting. Returns nixflash's stderr.
fn flash_and_check(project: &Path, path: &std::ffi::OsStr, limit: Duration) -> String {
    let fw = firmware();
    let mut sim = SimUno::start();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--no-build", "--elf"])
            .arg(&fw.elf)
            .args(["--port", &sim.pty])
            .current_dir(project)
            .env("PATH", path),
        limit,
    );
    let done = Instant::now();
    let (stdout, stderr) = text(&o);
    assert!(
        o.status.success(),
        "nixflash flash failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        o.status
    );
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("bytes of flash verified"),
        "avrdude did not verify the upload:\n{all}"
    );
    assert!(
        !all.contains("Console"),
        "ravedude opened its console:\n{all}"
    );
    let want = format!("-P {} {}", sim.pty, fw.elf.display());
    assert!(
        stderr.contains("Running: CARGO_MANIFEST_DIR=") && stderr.contains(&want),
        "the ravedude command line is not shown:\n{stderr}"
    );
    let half = measured_half_period(&mut sim, done, &fw.what, fw.half_period);
    assert!(
        (half - fw.half_period).abs() < 0.005 * fw.half_period,
        "PB5 toggles every {half} s, but {} toggles it every {} s",
        fw.what,
        fw.half_period
    );
    // nixflash's own monitor receives the greeting the firmware printed after the upload.
    let m = run_bounded(
        nixflash()
            .args(["monitor", "--port", &sim.pty, "--duration", "3"])
            .current_dir(project)
            .stdin(std::process::Stdio::null()),
        Duration::from_secs(30),
    );
    let (mon_out, mon_err) = text(&m);
    assert!(m.status.success(), "nixflash monitor failed:\n{mon_err}");
    assert!(
        mon_out.contains(&fw.greeting),
        "nixflash monitor did not show the greeting {:?}; it showed {mon_out:?}\n{mon_err}",
        fw.greeting
    );
    stderr
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn ravedude_from_path_uploads_to_a_simulated_uno() {
    let name = "ravedude_from_path_uploads_to_a_simulated_uno";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(name, &why);
    }
    let _serial = SIM_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (_dir, project) = new_project("fw", "uno");
    let path = std::env::var_os("PATH").unwrap();
    let stderr = flash_and_check(&project, &path, Duration::from_secs(180));
    let ravedude = which::which("ravedude").unwrap();
    let flasher = stderr
        .lines()
        .find(|l| l.starts_with("Flasher: "))
        .unwrap_or_default();
    assert!(
        flasher.starts_with("Flasher: ravedude ")
            && flasher.ends_with(&format!("({}, from PATH)", ravedude.display())),
        "nixflash does not say which ravedude it uses:\n{stderr}"
    );
    eprintln!(
        "ravedude command: {}",
        stderr
            .lines()
            .find(|l| l.starts_with("Running: "))
            .unwrap_or("")
    );
}

/// With no ravedude on PATH, the flake's `packages.<system>.flasher` is realised with Nix and used.
/// The project's flake is replaced by one whose flasher needs nothing from nixpkgs (unreachable
/// here): it copies the real ravedude (put in the flake's folder, as Nix's builders may not read
/// the user's home) into the store and links the real avrdude and avr-gcc.
#[test]
fn flake_flasher_is_used_when_path_has_no_ravedude() {
    let name = "flake_flasher_is_used_when_path_has_no_ravedude";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(name, &why);
    }
    if !on_path("nix") {
        return skip(name, "nix is not on PATH (../shared/tools/install-nix.sh)");
    }
    let ravedude = which::which("ravedude").unwrap();
    let avrdude = which::which("avrdude").unwrap();
    let avr_gcc = which::which("avr-gcc").unwrap();
    let nix = which::which("nix").unwrap();
    // PATH without ravedude: nix, avrdude and avr-gcc stay reachable.
    let mut dirs: Vec<PathBuf> = Vec::new();
    for p in [&nix, &avrdude, &avr_gcc] {
        let d = p.parent().unwrap().to_path_buf();
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs.push("/bin".into());
    let path = std::env::join_paths(&dirs).unwrap();
    if which::which_in("ravedude", Some(&path), "/").is_ok() {
        return skip(
            name,
            "ravedude is installed next to nix/avrdude, so PATH cannot leave it out",
        );
    }
    let _serial = SIM_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (_dir, project) = new_project("fw", "uno");
    let system = format!("{}-linux", std::env::consts::ARCH);
    std::fs::copy(&ravedude, project.join("ravedude-for-test")).unwrap();
    std::fs::write(
        project.join("flake.nix"),
        format!(
            r#"{{
  outputs = {{ self }}: {{
    packages.{system}.flasher = derivation {{
      name = "nixflash-test-flasher";
      system = "{system}";
      builder = "/bin/sh";
      args = [ "-c" "PATH=/usr/bin:/bin; mkdir -p $out/bin && cp ${{./ravedude-for-test}} $out/bin/ravedude && ln -s {avrdude} $out/bin/avrdude && ln -s {avr_gcc} $out/bin/avr-gcc" ];
    }};
  }};
}}
"#,
            avrdude = avrdude.display(),
            avr_gcc = avr_gcc.display(),
        ),
    )
    .unwrap();
    let stderr = flash_and_check(&project, &path, Duration::from_secs(300));
    assert!(
        stderr.contains("ravedude on PATH cannot be used (ravedude is not on PATH)"),
        "{stderr}"
    );
    let flasher = stderr
        .lines()
        .find(|l| l.starts_with("Flasher: "))
        .unwrap_or_default();
    assert!(
        flasher.starts_with("Flasher: ravedude ")
            && flasher.contains("/nix/store/")
            && flasher.contains("-nixflash-test-flasher/bin/ravedude")
            && flasher.ends_with("pinned by the project's flake.nix)"),
        "{stderr}"
    );
    eprintln!("{flasher}");
}

/// The nix command that builds the flake's flasher gets what follows `--`: a flag Nix does not
/// know makes it fail, and the failure says so.
#[test]
fn the_flasher_build_gets_the_arguments_after_dashdash() {
    let name = "the_flasher_build_gets_the_arguments_after_dashdash";
    for tool in ["nix", "avr-gcc"] {
        if !on_path(tool) {
            return skip(name, &format!("{tool} is not on PATH"));
        }
    }
    let fw = blink_firmware();
    let (dir, project) = new_project("fw", "uno");
    // No ravedude on PATH: only nix.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(which::which("nix").unwrap(), bin.join("nix")).unwrap();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--no-build", "--elf"])
            .arg(&fw.elf)
            .args(["--port", "/dev/null", "--", "--nixflash-test-no-such-flag"])
            .current_dir(&project)
            .env("PATH", &bin),
        Duration::from_secs(120),
    );
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("building the one") && stderr.contains("(nix build .#flasher)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unrecognised flag '--nixflash-test-no-such-flag'"),
        "nix did not get the argument:\n{stderr}"
    );
}

#[test]
fn no_flasher_anywhere_names_both_ways_to_get_one() {
    let name = "no_flasher_anywhere_names_both_ways_to_get_one";
    if !on_path("avr-gcc") {
        return skip(
            name,
            "avr-gcc is not on PATH (it builds the firmware fixture)",
        );
    }
    let fw = firmware();
    let (dir, project) = new_project("fw", "uno");
    let empty = dir.path().join("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--no-build", "--elf"])
            .arg(&fw.elf)
            // The flasher is looked for before anything is opened: any existing file will do.
            .args(["--port", "/dev/null"])
            .current_dir(&project)
            .env("PATH", &empty),
        Duration::from_secs(60),
    );
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: no usable ravedude: ravedude is not on PATH, and Nix is not installed"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: install it with `cargo install ravedude --locked`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: or install Nix (https://nixos.org/download)"),
        "{stderr}"
    );
}

/// As an unprivileged user, flashing through a port it may not open says which group to join.
#[test]
fn permission_denied_on_the_port_says_which_group_to_join() {
    let name = "permission_denied_on_the_port_says_which_group_to_join";
    if let Some(why) = sim_missing() {
        return skip(name, &why);
    }
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" || !on_path("setpriv") {
        return skip(
            name,
            "it needs root and setpriv to run nixflash as `nobody` (as root every port opens)",
        );
    }
    let fw = firmware();
    let (dir, project) = new_project("fw", "uno");
    let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.path(), perms).unwrap();
    let sim = SimUno::start();
    // Like a USB serial port on Debian (root:dialout, 0660), when this machine has the group.
    let dialout = std::fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("dialout:"));
    if dialout {
        for (tool, arg) in [("chgrp", "dialout"), ("chmod", "0660")] {
            let s = Command::new(tool).arg(arg).arg(&sim.pty).status().unwrap();
            assert!(s.success(), "{tool} {arg} {} failed", sim.pty);
        }
    }
    let o = run_bounded(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_nixflash"))
            .args(["flash", "--no-build", "--elf"])
            .arg(&fw.elf)
            .args(["--port", &sim.pty])
            .current_dir(&project)
            .env("HOME", "/nonexistent"),
        Duration::from_secs(60),
    );
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: permission denied opening serial port {}",
            sim.pty
        )),
        "{stderr}"
    );
    for want in [
        "sudo usermod -aG dialout $USER",
        "`uucp`",
        "log out and in again",
    ] {
        assert!(stderr.contains(want), "no {want:?} in:\n{stderr}");
    }
    if dialout {
        assert!(
            stderr.contains("(it belongs to group `dialout`)"),
            "{stderr}"
        );
    }
}

#[test]
fn flash_without_a_build_or_port_says_what_to_pass() {
    let (_dir, project) = new_project("fw", "uno");
    let run = |args: &[&str]| {
        let o = run_bounded(
            nixflash().arg("flash").args(args).current_dir(&project),
            Duration::from_secs(60),
        );
        assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
        text(&o).1
    };
    // No firmware is said before any port is looked for (this project has none).
    let e = run(&["--no-build"]);
    assert!(e.contains("there is no firmware to flash: "), "{e}");
    assert!(
        !e.contains("serial port"),
        "a port was looked for first:\n{e}"
    );
    let e = run(&["--no-build", "--port", "/dev/null"]);
    assert!(
        e.contains("there is no firmware to flash: ")
            && e.contains("fw/result/bin/fw.elf does not exist")
            && e.contains("hint: run `nixflash build` first")
            && e.contains("hint: to flash another ELF, pass --elf <path>"),
        "{e}"
    );
    let e = run(&["--elf", "missing.elf", "--port", "/dev/null"]);
    assert!(e.contains("the firmware missing.elf does not exist"), "{e}");
    let e = run(&["--elf", "Cargo.toml", "--port", "/dev/null"]);
    assert!(e.contains("Cargo.toml is not an ELF file"), "{e}");
    // No --port and no port with one of the board's USB ids: a project board that inherits the
    // Uno with a USB id no device has, so that a board plugged into this machine changes nothing.
    std::fs::create_dir_all(project.join("boards")).unwrap();
    std::fs::write(
        project.join("boards/no-such-uno.toml"),
        "inherit = \"uno\"\nid = \"no-such-uno\"\nname = \"Test Uno\"\naliases = []\n\
         [usb]\nids = [\"f0f0:0f0f\"]\n",
    )
    .unwrap();
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        manifest.replace("board = \"uno\"", "board = \"no-such-uno\""),
    )
    .unwrap();
    let e = run(&["--elf", "Cargo.toml"]);
    assert!(
        e.contains("no serial port found for the Test Uno (no-such-uno)")
            && e.contains("expected a USB id of the board's:\n    f0f0:0f0f"),
        "{e}"
    );
    std::fs::write(project.join("Cargo.toml"), manifest).unwrap();
    let e = run(&[
        "--elf",
        "Cargo.toml",
        "--port",
        "/dev/nixflash-no-such-port",
    ]);
    assert!(
        e.contains("serial port /dev/nixflash-no-such-port does not exist"),
        "{e}"
    );
}

/// A project's Ravedude.toml that is not TOML: flash stops before ravedude runs, and says how to
/// get a good one back.
#[test]
fn a_malformed_ravedude_toml_is_named_with_the_fix() {
    let name = "a_malformed_ravedude_toml_is_named_with_the_fix";
    if let Some(why) = ravedude_missing() {
        return skip(name, &why);
    }
    if !on_path("avr-gcc") {
        return skip(
            name,
            "avr-gcc is not on PATH (it builds the firmware fixture)",
        );
    }
    let fw = blink_firmware();
    let (_dir, project) = new_project("fw", "uno");
    std::fs::write(project.join("Ravedude.toml"), "[general\nboard = \"uno\"\n").unwrap();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--no-build", "--elf"])
            .arg(&fw.elf)
            .args(["--port", "/dev/null"])
            .current_dir(&project),
        Duration::from_secs(60),
    );
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Ravedude.toml: invalid TOML"), "{stderr}");
    assert!(
        stderr.contains("hint: fix it, or delete it: nixflash makes one from the board"),
        "{stderr}"
    );
    assert!(!stderr.contains("Running: "), "ravedude ran:\n{stderr}");
}

#[test]
fn avr_firmware_is_refused_for_an_esp32_board() {
    let name = "avr_firmware_is_refused_for_an_esp32_board";
    if !on_path("avr-gcc") {
        return skip(
            name,
            "avr-gcc is not on PATH (it builds the firmware fixture)",
        );
    }
    let fw = firmware();
    let (_dir, project) = new_project("c3", "esp32c3");
    let o = run_bounded(
        nixflash()
            .args(["flash", "--elf"])
            .arg(&fw.elf)
            .args(["--port", "/dev/null"])
            .current_dir(&project),
        Duration::from_secs(60),
    );
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not RISC-V firmware (ELF machine 83), but the ESP32-C3-DevKitM-1 needs RISC-V firmware"),
        "{stderr}"
    );
}

/// The rendered ESP32-C3 project, compiled with cargo, is an image espflash accepts.
#[test]
fn espflash_makes_an_image_of_the_rendered_esp32c3_project() {
    let name = "espflash_makes_an_image_of_the_rendered_esp32c3_project";
    if !on_path("espflash") {
        return skip(
            name,
            "espflash is not on PATH (cargo install espflash --locked)",
        );
    }
    if let Err(why) = common::offline::firmware_env() {
        return skip(name, &why);
    }
    let (project, elf) = c3_firmware();
    let image = tmp().join("c3.bin");
    let _ = std::fs::remove_file(&image);
    let o = run_bounded(
        Command::new("espflash")
            .args(["save-image", "--chip", "esp32c3"])
            .arg(&elf)
            .arg(&image),
        Duration::from_secs(120),
    );
    assert!(
        o.status.success(),
        "espflash save-image failed: {:?}",
        text(&o)
    );
    let size = std::fs::metadata(&image).unwrap().len();
    assert!(size > 1024, "the image is only {size} bytes");
    eprintln!("espflash save-image --chip esp32c3: a {size}-byte image");

    // `nixflash flash` runs espflash with the board's chip and flash baud, the ELF last, and
    // exits with espflash's code. A pty is no ESP32: espflash refuses it, and says so.
    let pty = Pty::open();
    let espflash = which::which("espflash").unwrap();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--elf"])
            .arg(&elf)
            .args(["--port", &pty.name])
            .current_dir(&project),
        Duration::from_secs(120),
    );
    let (stdout, stderr) = text(&o);
    let line = format!(
        "Running: {} flash --chip esp32c3 --port {} --baud 921600 {}",
        espflash.display(),
        pty.name,
        elf.display()
    );
    assert!(stderr.contains(&line), "no `{line}` in:\n{stderr}");
    assert!(
        stderr.contains("Flasher: espflash ") && stderr.contains("from PATH)"),
        "{stderr}"
    );
    let direct = run_bounded(
        Command::new(&espflash)
            .args([
                "flash", "--chip", "esp32c3", "--port", &pty.name, "--baud", "921600",
            ])
            .arg(&elf),
        Duration::from_secs(120),
    );
    let (_, direct_err) = text(&direct);
    assert_eq!(
        o.status.code(),
        direct.status.code(),
        "nixflash's exit code is not espflash's\nnixflash:\n{stdout}{stderr}\nespflash:\n{direct_err}"
    );
    assert!(
        !o.status.success() && stderr.contains(&pty.name),
        "espflash did not refuse the pty:\n{stdout}{stderr}"
    );
    eprintln!("espflash command: {}", line.trim_start_matches("Running: "));
}

/// A pseudo-terminal: a serial port with nothing on the other end.
struct Pty {
    name: String,
    fds: [libc::c_int; 2],
}

impl Pty {
    fn open() -> Pty {
        let (mut master, mut slave) = (0, 0);
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: openpty writes two fds and a NUL-terminated name of at most 128 bytes here.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                name.as_mut_ptr(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: `name` is NUL-terminated by openpty.
        let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
        Pty {
            name: name.to_string_lossy().into_owned(),
            fds: [master, slave],
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        for fd in self.fds {
            // SAFETY: the fds were opened by openpty and are closed once.
            unsafe { libc::close(fd) };
        }
    }
}

/// The project `nixflash new c3 --board esp32c3 --no-git` renders and the ELF cargo compiles of it
/// (tests/it/common/compile.rs, in the target folder the all-boards test shares).
fn c3_firmware() -> (PathBuf, PathBuf) {
    let work = tmp().join("c3-fixture");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let db = nixflash::board::Database::builtin().unwrap();
    let project = compile::render(&work, "c3", "esp32c3").unwrap_or_else(|e| panic!("{e}"));
    let built = compile::compile(db.get("esp32c3").unwrap(), &project, "c3")
        .unwrap_or_else(|e| panic!("compiling the rendered ESP32-C3 project: {e}"));
    (project, built.elf)
}

// ---------------------------------------------------------------------------------------------
// `nixflash flash` building with Nix, and `--monitor`.

/// The fixture flake of tests/build.rs (tests/fixtures/project: package `fixture`, board "uno",
/// derivations that run /bin/sh and need no nixpkgs) in a temporary folder, set up as
/// tests/build.rs does (its stand-in rust-overlay next to it, a nonce so that Nix really builds,
/// a git repository with everything committed), with `elf` as the firmware.elf its flake installs
/// as bin/fixture.elf.
fn nix_fixture_project(elf: &Path) -> (tempfile::TempDir, PathBuf) {
    let f = common::NixFixture::new("nixflash-flash-nix-test-");
    let manifest = std::fs::read_to_string(f.dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("name = \"fixture\"") && manifest.contains("board = \"uno\""),
        "the fixture is no longer the Uno package `fixture`:\n{manifest}"
    );
    std::fs::copy(elf, f.dir.join("firmware.elf")).unwrap();
    f.commit_all();
    (f.tmp, f.dir)
}

/// `.text + .data` of `elf` by `avr-size -A`: the flash the size report must show.
fn avr_size_flash(elf: &Path) -> u64 {
    let o = run_bounded(
        Command::new("avr-size").arg("-A").arg(elf),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "avr-size failed: {:?}", text(&o));
    text(&o)
        .0
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?;
            let size: u64 = f.next()?.parse().ok()?;
            [".text", ".data"].contains(&name).then_some(size)
        })
        .sum()
}

/// `nixflash flash --port <pty>` with neither --no-build nor --elf: the firmware is built by real
/// Nix from the fixture flake (its ELF is blink.c's), then uploaded by the real ravedude to the
/// simulated Uno, where it blinks.
#[test]
fn flash_builds_with_nix_then_uploads_to_a_simulated_uno() {
    let name = "flash_builds_with_nix_then_uploads_to_a_simulated_uno";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(name, &why);
    }
    for (tool, install) in [
        ("nix", "../shared/tools/install-nix.sh"),
        ("git", "apt install git"),
    ] {
        if !on_path(tool) {
            return skip(name, &format!("{tool} is not on PATH ({install})"));
        }
    }
    let fw = blink_firmware();
    let (_tmp, project) = nix_fixture_project(&fw.elf);
    let _serial = SIM_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut sim = SimUno::start();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--port", &sim.pty])
            .current_dir(&project),
        Duration::from_secs(170),
    );
    let done = Instant::now();
    let (stdout, stderr) = text(&o);
    assert!(
        o.status.success(),
        "nixflash flash failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        o.status
    );

    // Nix built it: the build's own line, the builder's output, the size report.
    assert!(
        stderr.contains("Building fixture for the Arduino Uno with nix…")
            && stderr.contains("fixture> installing the firmware"),
        "nix did not build the firmware:\n{stderr}"
    );
    let size = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("Size flash ") && l.contains(" B / 32256 B ("))
        .unwrap_or_else(|| panic!("no `Size flash … B / 32256 B` line:\n{stderr}"));
    if on_path("avr-size") {
        let want = format!("Size flash {} B / 32256 B (", avr_size_flash(&fw.elf));
        assert!(size.contains(&want), "`{size}` is not `{want}…`");
    }

    // The `result` link points at what was built, which is the fixture's ELF, and that is what
    // ravedude got.
    let out = std::fs::read_link(project.join("result"))
        .unwrap_or_else(|e| panic!("no result link in {}: {e}\n{stderr}", project.display()));
    assert!(out.starts_with("/nix/store/"), "{}", out.display());
    let built = out.join("bin/fixture.elf");
    assert_eq!(
        std::fs::read(&built).unwrap(),
        std::fs::read(&fw.elf).unwrap(),
        "the built ELF is not the fixture's"
    );
    let want = format!("-P {} {}", sim.pty, built.display());
    assert!(
        stderr.contains("Running: CARGO_MANIFEST_DIR=") && stderr.contains(&want),
        "ravedude was not run on the built ELF (`{want}`):\n{stderr}"
    );

    // avrdude verified the upload, and the board runs the firmware.
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("bytes of flash verified"),
        "avrdude did not verify the upload:\n{all}"
    );
    assert!(
        stderr.contains(&format!(
            "Flashed {} to the Arduino Uno on {}.",
            built.display(),
            sim.pty
        )),
        "{stderr}"
    );
    let half = measured_half_period(&mut sim, done, &fw.what, fw.half_period);
    assert!(
        (half - fw.half_period).abs() < 0.005 * fw.half_period,
        "PB5 toggles every {half} s, but {} toggles it every {} s",
        fw.what,
        fw.half_period
    );
}

/// `nixflash flash --monitor` opens nixflash's own monitor on the port it flashed through: the
/// greeting the new firmware prints shows on stdout, and SIGINT ends the session with exit code 0.
#[test]
fn flash_monitor_shows_the_greeting_after_flashing() {
    let name = "flash_monitor_shows_the_greeting_after_flashing";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(name, &why);
    }
    let fw = firmware();
    let (_dir, project) = new_project("fw", "uno");
    let _serial = SIM_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let sim = SimUno::start();
    let started = Instant::now();
    let mut p = Spawned::new(
        nixflash()
            .args(["flash", "--no-build", "--elf"])
            .arg(&fw.elf)
            .args(["--port", &sim.pty, "--monitor"])
            .current_dir(&project)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let (out, t_out) = collect(p.child.stdout.take().unwrap());
    let (err, t_err) = collect(p.child.stderr.take().unwrap());

    // Flashing takes ~10 s at the simulated Uno's real-time pace; the greeting follows at once.
    let limit = Duration::from_secs(150);
    loop {
        if lossy(&out).contains(&fw.greeting) {
            break;
        }
        if let Some(status) = p.try_wait() {
            panic!(
                "nixflash ended ({status}) before the greeting showed\nstdout:\n{}\nstderr:\n{}",
                lossy(&out),
                lossy(&err)
            );
        }
        if started.elapsed() > limit {
            p.kill_group();
            panic!(
                "no greeting {:?} on nixflash's stdout within {limit:?}; killed\nstdout:\n{}\n\
                 stderr:\n{}",
                fw.greeting,
                lossy(&out),
                lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // Ctrl-C, as `kill -INT` sends it: the monitor ends cleanly.
    p.signal(libc::SIGINT);
    let Some(status) = p.wait_for(Duration::from_secs(20)) else {
        p.kill_group();
        panic!(
            "nixflash did not end within 20 s of SIGINT; killed\nstdout:\n{}\nstderr:\n{}",
            lossy(&out),
            lossy(&err)
        );
    };
    let (_, _) = (t_out.join(), t_err.join());
    let (stdout, stderr) = (lossy(&out), lossy(&err));
    assert_eq!(
        status.code(),
        Some(0),
        "exit code after SIGINT in the monitor\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(&fw.greeting),
        "the greeting {:?} is not on stdout: {stdout:?}",
        fw.greeting
    );
    // Flashed (and verified) first, then the monitor on the same port, closed by the signal.
    let flashed = stderr
        .find(&format!(
            "Flashed {} to the Arduino Uno on {}.",
            fw.elf.display(),
            sim.pty
        ))
        .unwrap_or_else(|| panic!("no `Flashed …` line:\n{stderr}"));
    let connected = stderr
        .find(&format!("--- Connected to {} at 57600 baud", sim.pty))
        .unwrap_or_else(|| panic!("the monitor did not connect to {}:\n{stderr}", sim.pty));
    assert!(
        flashed < connected,
        "the monitor opened before flashing:\n{stderr}"
    );
    assert!(
        stderr.contains("bytes of flash verified"),
        "avrdude did not verify the upload:\n{stderr}"
    );
    assert!(
        stderr.contains("--- Monitor closed (interrupted)"),
        "the monitor did not say it was interrupted:\n{stderr}"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("error: ")),
        "nixflash reported an error:\n{stderr}"
    );
}
