//! `nixflash flash` with espflash: the rendered ESP32-C3 project (`common::firmware`) is an image
//! espflash accepts, and flash runs espflash as it should.

use std::process::Command;
use std::time::Duration;

use crate::common::firmware::{build, Built, Kind};
use crate::common::process::{run_bounded, text};
use crate::common::pty::Pty;
use crate::common::{nixflash, on_path, skip, tmp};

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
    let Built { project, elf, .. } = match build(Kind::Esp32c3) {
        Ok(b) => b,
        Err(why) => return skip(name, &why),
    };
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
    let pty = Pty::new();
    let port = pty.path.to_str().unwrap();
    let espflash = which::which("espflash").unwrap();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--elf"])
            .arg(&elf)
            .args(["--port", port])
            .current_dir(&project),
        Duration::from_secs(120),
    );
    let (stdout, stderr) = text(&o);
    let line = format!(
        "Running {} flash --chip esp32c3 --port {} --baud 921600 {}",
        espflash.display(),
        port,
        elf.display()
    );
    assert!(stderr.contains(&line), "no `{line}` in:\n{stderr}");
    assert!(
        stderr.contains("Flasher espflash ") && stderr.contains("from PATH)"),
        "{stderr}"
    );
    let direct = run_bounded(
        Command::new(&espflash)
            .args([
                "flash", "--chip", "esp32c3", "--port", port, "--baud", "921600",
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
        !o.status.success() && stderr.contains(port),
        "espflash did not refuse the pty:\n{stdout}{stderr}"
    );
    eprintln!("espflash command: {}", line.trim_start_matches("Running "));
}
