//! Which ELF the monitor reads (--elf, or in a project the last build's), and what it says about
//! one it cannot use or one older than the sources.

use std::path::Path;
use std::process::Stdio;

use super::{close, monitor};
use crate::common::firmware::{build, Kind};
use crate::common::pty::{path, Monitor, Pty};
use crate::common::{fixtures, skip};

/// A file that is not an ELF, an ELF for another processor than the board's, one stripped of
/// every name, one that cannot be read: each is said in one status line, and the port's output is
/// shown as it comes.
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
            // The fixture has neither a symbol table nor DWARF: no address can be named.
            "esp32c3",
            &riscv,
            format!(
                "--- Not decoding: {} has neither symbols nor debug info (was it stripped?), so \
                 no address can be named; the port's output is shown as it comes\n",
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
        let notices = m
            .stderr()
            .lines()
            .filter(|l| l.contains(" decoding"))
            .count();
        assert_eq!(notices, 1, "{}", m.stderr());
        pty.write(b"0x42000020 0x0150\n");
        m.wait_stdout(b"0x42000020 0x0150\n");
        assert_eq!(close(m), "0x42000020 0x0150\n");
    }
}

/// In a project the last build's ELF (result/bin/<name>.elf) is read by default. When a source
/// file is newer than that build (the `result` link's time: files in the Nix store all have the
/// same), it is used with a warning.
#[test]
fn the_last_build_is_the_default_and_a_stale_one_is_said() {
    let built = match build(Kind::Esp32c3) {
        Ok(b) => b,
        Err(why) => {
            return skip(
                "the_last_build_is_the_default_and_a_stale_one_is_said",
                &why,
            )
        }
    };
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
    std::fs::copy(&built.elf, store.join("bin/fw.elf")).unwrap();
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
    m.wait_stderr(&format!(
        "--- Decoding with {}: addresses in its code are shown as functions and source lines\n",
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
