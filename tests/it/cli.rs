//! The command line as a whole, through the real binary: help with examples for every command,
//! shell completions, colour only on a terminal, a quiet end on a closed pipe, the board filter,
//! and `new` asking for the board.

use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{self, pty::Pty};
use crate::new::{nixflash, tree};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nixflash"));
    c.env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .env("TERM", "xterm-256color");
    c
}

/// The subcommands `nixflash <words> --help` lists (`help` left out).
fn subcommands(words: &[&str]) -> Vec<String> {
    let o = bin().args(words).arg("--help").output().unwrap();
    let help = String::from_utf8(o.stdout).unwrap();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The subcommands `nixflash --help` lists (`help` left out).
fn commands() -> Vec<String> {
    subcommands(&[])
}

/// Every command and every subcommand of one (`boards show`).
#[test]
fn every_command_s_help_has_examples() {
    let commands = commands();
    assert!(commands.len() >= 10, "{commands:?}");
    let mut all: Vec<String> = Vec::new();
    for c in &commands {
        all.push(c.clone());
        for sub in subcommands(&[c.as_str()]) {
            all.push(format!("{c} {sub}"));
        }
    }
    assert!(all.iter().any(|c| c == "boards show"), "{all:?}");
    for c in all {
        let words: Vec<&str> = c.split(' ').collect();
        let o = bin().args(&words).arg("--help").output().unwrap();
        let help = String::from_utf8(o.stdout).unwrap();
        assert!(o.status.success(), "{c} --help");
        let examples = help
            .split_once("Examples")
            .and_then(|(_, e)| e.split_once(":\n"))
            .unwrap_or_else(|| panic!("`nixflash {c} --help` has no examples:\n{help}"))
            .1;
        assert!(
            examples
                .lines()
                .next()
                .is_some_and(|l| l.trim_start().starts_with("nixflash ")
                    || l.trim_start().starts_with("cargo new")),
            "`nixflash {c} --help` examples do not start with a command:\n{examples}"
        );
    }
}

/// Bash's completion of the real script: subcommands, board-independent flags and shells.
#[test]
fn completions_complete_in_a_real_bash() {
    if !common::on_path("bash") {
        return common::skip("completions_complete_in_a_real_bash", "no bash on PATH");
    }
    let complete = |words: &str| -> String {
        let script = format!(
            "source <('{bin}' completions bash)\nCOMP_WORDS=({words})\nCOMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
             COMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
             _nixflash nixflash \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            bin = env!("CARGO_BIN_EXE_nixflash")
        );
        let o = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &script])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let subcommands = complete("nixflash b");
    assert_eq!(
        subcommands.lines().collect::<Vec<_>>(),
        ["boards", "build"],
        "{subcommands}"
    );
    let flags = complete("nixflash flash --mon");
    assert_eq!(flags.trim(), "--monitor", "{flags}");
    let shells = complete("nixflash completions f");
    assert_eq!(shells.trim(), "fish", "{shells}");
}

#[test]
fn completions_for_every_shell_name_every_command() {
    let commands = commands();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = bin().args(["completions", shell]).output().unwrap();
        assert!(o.status.success(), "{shell}");
        let script = String::from_utf8(o.stdout).unwrap();
        for c in &commands {
            assert!(script.contains(c.as_str()), "{shell}: no `{c}`");
        }
    }
    if common::on_path("zsh") {
        let tmp = tempfile::tempdir().unwrap();
        let o = bin().args(["completions", "zsh"]).output().unwrap();
        fs::write(tmp.path().join("_nixflash"), o.stdout).unwrap();
        let check = Command::new("zsh")
            .args(["-n", &tmp.path().join("_nixflash").display().to_string()])
            .output()
            .unwrap();
        assert!(check.status.success(), "zsh -n: {check:?}");
    }
    let o = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("[possible values: bash, elvish, fish, powershell, zsh]"),
        "{err}"
    );
}

/// Runs `cmd` with its stdout a pipe whose reading end is already closed: every write fails.
fn with_closed_stdout(cmd: &mut Command) -> (Option<i32>, String) {
    let mut fds = [0; 2];
    // SAFETY: pipe fills two descriptors this function then owns.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fresh descriptors from pipe(), each owned once.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped());
    let mut p = common::process::Spawned::new(cmd);
    let (err, t_err) = common::process::collect(p.child.stderr.take().unwrap());
    let status = p
        .wait_for(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("{} did not end", p.shown));
    t_err.join().unwrap();
    (status.code(), common::process::lossy(&err))
}

/// `nixflash boards --json | head -1` and the like: every command that writes to stdout ends
/// quietly when nobody reads it, with no panic and no "Broken pipe" message.
#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join(".cfg");
    let cargo_pkg = tmp.path().join("pkg");
    fs::create_dir_all(cargo_pkg.join("src")).unwrap();
    fs::write(
        cargo_pkg.join("Cargo.toml"),
        "[package]\nname = \"pkg\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    let made = tmp.path().join("made");
    let elf = common::fixtures().join("project/firmware.elf");
    // With the exit code each must end with; None: the code of the same command run normally
    // (doctor's depends on this machine).
    let mut runs: Vec<(Vec<&str>, &Path, Option<i32>)> = vec![
        (vec!["--help"], tmp.path(), Some(0)),
        (vec!["boards"], tmp.path(), Some(0)),
        (vec!["boards", "--json"], tmp.path(), Some(0)),
        (vec!["boards", "esp"], tmp.path(), Some(0)),
        (vec!["boards", "show", "uno", "--toml"], tmp.path(), Some(0)),
        (vec!["ports"], tmp.path(), Some(0)),
        (vec!["ports", "--json"], tmp.path(), Some(0)),
        (vec!["completions", "bash"], tmp.path(), Some(0)),
        (vec!["doctor"], tmp.path(), None),
        (vec!["doctor", "--json"], tmp.path(), None),
        (
            vec!["new", "made", "--board", "uno", "--no-git"],
            tmp.path(),
            Some(0),
        ),
        (
            vec!["init", "--board", "uno", "--no-git"],
            &cargo_pkg,
            Some(0),
        ),
        // Outside a project these fail, and say so on stderr; build --json also on stdout.
        (vec!["build", "--json"], tmp.path(), Some(1)),
        (vec!["update"], tmp.path(), Some(1)),
        (vec!["flash", "--no-build"], tmp.path(), Some(1)),
    ];
    // In the project `new` made above: the fixture firmware in simavr, its report on stdout.
    if common::on_path("simavr") {
        let sim = [
            "sim",
            "--elf",
            elf.to_str().unwrap(),
            "--duration",
            "0.5",
            "--json",
        ];
        runs.push((sim.to_vec(), &made, Some(0)));
    } else {
        common::skip(
            "a_closed_pipe_ends_every_command_quietly (sim)",
            "simavr is not on PATH",
        );
    }
    for (args, dir, want) in runs {
        let mut c = bin();
        c.args(&args).current_dir(dir).env("XDG_CONFIG_HOME", &cfg);
        let want = want.or_else(|| {
            let mut normal = bin();
            normal
                .args(&args)
                .current_dir(dir)
                .env("XDG_CONFIG_HOME", &cfg);
            common::process::run_bounded(&mut normal, Duration::from_secs(60))
                .status
                .code()
        });
        let (code, stderr) = with_closed_stdout(&mut c);
        assert_eq!(code, want, "nixflash {args:?}: {stderr}");
        for bad in ["panicked", "Broken pipe", "os error 32"] {
            assert!(!stderr.contains(bad), "nixflash {args:?}: {stderr}");
        }
    }
    assert!(tmp.path().join("made/flake.nix").exists());
    assert!(cargo_pkg.join("flake.nix").exists());

    // The monitor: the board talks, nobody reads the monitor's output; it stops without noise.
    let mut board = Pty::new();
    let mut c = bin();
    c.args(["monitor", "--baud", "9600", "--duration", "3", "--port"])
        .arg(&board.path)
        .current_dir(tmp.path());
    board.write(b"hello\r\n");
    let (code, stderr) = with_closed_stdout(&mut c);
    assert!(code == Some(0), "monitor: {code:?} {stderr}");
    for bad in ["panicked", "Broken pipe", "os error 32"] {
        assert!(!stderr.contains(bad), "monitor: {stderr}");
    }
}

/// Colour on a terminal; none in a pipe or with NO_COLOR.
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let tmp = tempfile::tempdir().unwrap();
    let on_terminal = |no_color: bool| -> String {
        let mut pty = Pty::new();
        let mut c = bin();
        c.args(["boards", "show", "unoo"])
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .stdout(pty.slave())
            .stderr(pty.slave());
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let status = c.status().unwrap();
        drop(c);
        assert_eq!(status.code(), Some(1));
        String::from_utf8_lossy(&pty.read_all(Duration::from_secs(5))).into_owned()
    };
    let coloured = on_terminal(false);
    assert!(coloured.contains("unknown board `unoo`"), "{coloured:?}");
    assert!(
        coloured.contains("\u{1b}["),
        "no colour on a terminal: {coloured:?}"
    );
    let plain = on_terminal(true);
    assert!(plain.contains("unknown board `unoo`"), "{plain:?}");
    assert!(!plain.contains('\u{1b}'), "colour with NO_COLOR: {plain:?}");
    let o = bin()
        .args(["boards", "show", "unoo"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let piped = String::from_utf8(o.stderr).unwrap();
    assert!(
        piped.starts_with("error: unknown board `unoo`"),
        "{piped:?}"
    );
    assert!(!piped.contains('\u{1b}'), "colour in a pipe: {piped:?}");
}

/// `nixflash boards <filter>`, like `pio boards <filter>`: by id, alias, name, chip or family.
#[test]
fn boards_filter_by_id_alias_name_chip_or_family() {
    let tmp = tempfile::tempdir().unwrap();
    let ids = |filter: &str| -> Vec<String> {
        let o = nixflash(tmp.path())
            .args(["boards", filter, "--json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{filter}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("uno"), ["uno"]);
    // Every ESP32 board, and nothing else (the list grows with the database).
    let db = nixflash::board::Database::builtin().unwrap();
    let of_family = |family: &str| -> Vec<String> {
        let mut v: Vec<String> = db
            .boards()
            .filter(|b| b.family().id == family)
            .map(|b| b.id.clone())
            .collect();
        v.sort();
        v
    };
    let mut esp = ids("ESP32");
    esp.sort();
    assert_eq!(esp, of_family("esp-riscv"), "by name");
    assert!(esp.contains(&"esp32c6-devkitc-1".to_string()), "{esp:?}");
    assert_eq!(ids("arduino-mega2560"), ["mega2560"], "by alias");
    let mut u4 = ids("atmega32u4");
    u4.sort();
    assert_eq!(u4, ["leonardo", "micro", "promicro"], "by chip");
    assert_eq!(ids("Leonardo"), ["leonardo"], "by name");
    let mut rp2 = ids("rp2");
    rp2.sort();
    assert_eq!(rp2, of_family("rp2"), "by family");
    let avr = ids("avr");
    assert!(
        avr.len() >= 5 && avr.contains(&"nano".to_string()),
        "{avr:?}"
    );
    let table = nixflash(tmp.path())
        .args(["boards", "esp32c6"])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("BOARD "), "{table}");
    assert!(
        table.contains("esp32c6-devkitc-1") && !table.contains("uno"),
        "{table}"
    );
    let o = nixflash(tmp.path())
        .args(["boards", "zzz"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("no board's id, alias, name, chip or family has `zzz`")
            && err.contains("hint: `nixflash boards` lists every board"),
        "{err}"
    );
}

/// `nixflash new <path>` without --board: a list and an error when nobody can answer, a question
/// on a terminal.
#[test]
fn new_without_a_board_asks_on_a_terminal_and_lists_them_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let o = nixflash(tmp.path()).args(["new", "lamp"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.starts_with("error: which board? pass --board <id>"),
        "{err}"
    );
    assert!(
        err.contains("  uno ") && err.contains("  esp32c3-devkitm-1 "),
        "{err}"
    );
    assert!(
        err.contains("hint: for example: nixflash new blinky --board uno"),
        "{err}"
    );
    assert!(tree(tmp.path()).is_empty(), "{:?}", tree(tmp.path()));

    for (answer, board) in [("uno\n", "uno"), ("zzz\n", ""), ("", "")] {
        let mut pty = Pty::new();
        let mut child = bin()
            .args(["new", "lamp", "--no-git"])
            .current_dir(tmp.path())
            .env("XDG_CONFIG_HOME", tmp.path().join(".cfg"))
            .stdin(pty.slave())
            .stdout(pty.slave())
            .stderr(pty.slave())
            .spawn()
            .unwrap();
        let asked = String::from_utf8_lossy(&pty.read_until(b"Number or id [1-")).into_owned();
        assert!(asked.contains("Which board is the project for?"), "{asked}");
        assert!(asked.contains("Arduino Uno"), "{asked}");
        if answer.is_empty() {
            // Ctrl-D: no answer.
            pty.write(b"\x04");
        } else {
            pty.write(answer.as_bytes());
        }
        let status = child.wait().unwrap();
        let rest = String::from_utf8_lossy(&pty.read_all(Duration::from_secs(5))).into_owned();
        if board.is_empty() {
            assert_eq!(status.code(), Some(1), "{answer:?}: {rest}");
            assert!(rest.contains("error:"), "{rest}");
            assert!(!tmp.path().join("lamp").exists(), "{rest}");
        } else {
            assert!(status.success(), "{rest}");
            assert!(
                rest.contains("Created lamp for the Arduino Uno (uno)"),
                "{rest}"
            );
            let manifest = fs::read_to_string(tmp.path().join("lamp/Cargo.toml")).unwrap();
            assert!(manifest.contains("board = \"uno\""), "{manifest}");
            fs::remove_dir_all(tmp.path().join("lamp")).unwrap();
        }
    }
}

/// Every flag that takes seconds (`sim --duration`, `monitor --duration` and `--wait`, the same
/// two of `flash --monitor`) takes a finite, non-negative number below a year, and says so
/// when given anything else: a usage error, never a panic.
#[test]
fn every_seconds_flag_refuses_what_is_not_a_sane_number_of_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let flags: [&[&str]; 6] = [
        &["sim", "--duration"],
        &["monitor", "--baud", "9600", "--duration"],
        &["monitor", "--baud", "9600", "--wait"],
        &["flash", "--monitor", "--duration"],
        &["flash", "--monitor", "--wait"],
        &["sim", "--no-build", "--duration"],
    ];
    for flag in flags {
        for (value, why) in [
            ("99999999999999999999", "more than a year"),
            ("31536001", "more than a year"),
            ("1e300", "more than a year"),
            ("inf", "more than a year"),
            ("NaN", "not a number of seconds"),
            ("-1", "not a number of seconds"),
            ("five", "not a number of seconds"),
        ] {
            let (name, before) = flag.split_last().unwrap();
            // `--duration=-1`: `-1` alone would be taken for a flag.
            let o = common::process::run_bounded(
                bin()
                    .args(before)
                    .arg(format!("{name}={value}"))
                    .current_dir(tmp.path()),
                Duration::from_secs(30),
            );
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{flag:?} {value}: {err}");
            assert!(!err.contains("panicked"), "{flag:?} {value}: {err}");
            assert!(
                err.contains(&format!("invalid value '{value}' for '{name} <SECS>'"))
                    && err.contains(why),
                "{flag:?} {value}: {err}"
            );
        }
    }
    // A year to the second is still a duration; here it fails later, for want of a project.
    let o = common::process::run_bounded(
        bin()
            .args(["sim", "--duration", "31536000"])
            .current_dir(tmp.path()),
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("invalid value"), "{err}");
}
