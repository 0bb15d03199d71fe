//! `nixflash monitor` on real pseudo-terminals: the test holds the master side of a pty (the
//! "board") and the monitor opens the slave side as its serial port (`common::pty`). Every wait
//! is bounded, and a monitor still running when a test ends is killed.

use std::fs::File;
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use crate::common::pty::{lflag, nixflash, path, Monitor, Pty};

#[test]
fn bytes_flow_both_ways_and_sigterm_ends_cleanly() {
    let mut board = Pty::new();
    let port = board.path.clone();
    let mut m = Monitor::spawn(
        &["--port", path(&port), "--baud", "115200", "--eol", "crlf"],
        Stdio::piped(),
    );
    m.wait_stderr("--- Connected to");
    assert!(m.stderr().contains("at 115200 baud"), "{}", m.stderr());

    board.write(b"hello from the board\r\n");
    m.wait_stdout(b"hello from the board\r\n");

    // A pipe's newlines become --eol; other bytes, control bytes too, pass as they are.
    m.type_in(b"ping\n\x12\x03x\n");
    let got = board.read_until(b"x\r\n");
    assert_eq!(got, b"ping\r\n\x12\x03x\r\n");

    // The end of stdin does not end the session.
    drop(m.stdin.take());
    thread::sleep(Duration::from_millis(300));
    assert!(m.child.try_wait().unwrap().is_none(), "{}", m.stderr());
    board.write(b"still here\n");
    m.wait_stdout(b"still here\n");

    m.signal(libc::SIGTERM);
    let status = m.wait_exit();
    assert!(status.success(), "{status:?}\n{}", m.stderr());
    let err = m.stderr();
    assert!(
        err.contains("--- Monitor closed (terminated): 33 bytes received, 11 sent"),
        "{err}"
    );
    assert_eq!(m.stdout(), b"hello from the board\r\nstill here\n");
}

#[test]
fn sigint_ends_the_session() {
    let mut board = Pty::new();
    let mut m = Monitor::spawn(
        &["--port", path(&board.path.clone()), "--baud", "9600"],
        Stdio::null(),
    );
    m.wait_stderr("--- Connected to");
    board.write(b"x\n");
    m.wait_stdout(b"x\n");
    m.signal(libc::SIGINT);
    let status = m.wait_exit();
    assert!(status.success(), "{status:?}\n{}", m.stderr());
    assert!(
        m.stderr().contains("Monitor closed (interrupted)"),
        "{}",
        m.stderr()
    );
}

#[test]
fn timestamps_and_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    std::fs::write(&log, "earlier run\n").unwrap();
    let mut board = Pty::new();
    let mut m = Monitor::spawn(
        &[
            "--port",
            path(&board.path.clone()),
            "--baud",
            "57600",
            "--timestamps",
            "--log",
            path(&log),
        ],
        Stdio::null(),
    );
    m.wait_stderr("--- Connected to");
    board.write(b"first line\r\nsecond ");
    m.wait_stdout(b"second ");
    thread::sleep(Duration::from_millis(100));
    board.write(b"half\r\n\xff\n");
    m.wait_stdout(b"\\xff\n");
    m.signal(libc::SIGTERM);
    assert!(m.wait_exit().success(), "{}", m.stderr());

    let shown = String::from_utf8(m.stdout()).unwrap();
    let lines: Vec<&str> = shown.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 3, "{shown:?}");
    for (line, text) in lines
        .iter()
        .zip(["first line\r\n", "second half\r\n", "\\xff\n"])
    {
        // [HH:MM:SS.mmm] then the text, the stamp once per line even when it came in two reads.
        let (stamp, rest) = line.split_at(15);
        let b = stamp.as_bytes();
        assert_eq!(
            (b[0], b[3], b[6], b[9], b[13], b[14]),
            (b'[', b':', b':', b'.', b']', b' '),
            "{line:?}"
        );
        for i in [1, 2, 4, 5, 7, 8, 10, 11, 12] {
            assert!(b[i].is_ascii_digit(), "{line:?}");
        }
        assert_eq!(rest, text);
    }
    // The log gets what was shown, after what it had.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged, format!("earlier run\n{shown}"));
}

#[test]
fn bytes_that_are_not_utf8_are_escaped() {
    let mut board = Pty::new();
    let mut m = Monitor::spawn(
        &["--port", path(&board.path.clone()), "--baud", "9600"],
        Stdio::null(),
    );
    m.wait_stderr("--- Connected to");
    // "€" cut between two writes is put back together; a lone lead byte that nothing follows
    // is shown escaped once the port is quiet.
    board.write(b"ok \xff\xfe caf\xc3\xa9 \xe2\x82");
    thread::sleep(Duration::from_millis(100));
    board.write(b"\xac\n\x00tail \xe2");
    m.wait_stdout(b"tail \\xe2");
    m.signal(libc::SIGTERM);
    assert!(m.wait_exit().success(), "{}", m.stderr());
    assert_eq!(
        String::from_utf8(m.stdout()).unwrap(),
        "ok \\xff\\xfe café €\n\0tail \\xe2"
    );
}

#[test]
fn reconnects_when_the_port_vanishes_and_returns() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyTEST");
    let mut board = Pty::new();
    std::os::unix::fs::symlink(&board.path, &link).unwrap();
    let mut m = Monitor::spawn(&["--port", path(&link), "--baud", "115200"], Stdio::piped());
    m.wait_stderr("--- Connected to");
    board.write(b"before\n");
    m.wait_stdout(b"before\n");

    // Unplug: the device node goes, the other end closes.
    std::fs::remove_file(&link).unwrap();
    drop(board);
    m.wait_stderr("went away");
    m.type_in(b"lost\n");
    m.wait_stderr("Not connected");
    thread::sleep(Duration::from_millis(400));
    assert!(m.child.try_wait().unwrap().is_none(), "{}", m.stderr());

    // Replug: a new device under the same name.
    let mut board = Pty::new();
    std::os::unix::fs::symlink(&board.path, &link).unwrap();
    m.wait_stderr("--- Reconnected to");
    board.write(b"after\n");
    m.wait_stdout(b"after\n");
    m.type_in(b"typed\n");
    assert_eq!(board.read_until(b"typed\n"), b"typed\n");

    m.signal(libc::SIGTERM);
    assert!(m.wait_exit().success(), "{}", m.stderr());
    assert_eq!(m.stdout(), b"before\nafter\n");
    assert!(m.stderr().contains("1 reconnects"), "{}", m.stderr());
}

#[test]
fn no_reconnect_ends_with_an_error_when_the_port_vanishes() {
    let board = Pty::new();
    let mut m = Monitor::spawn(
        &[
            "--port",
            path(&board.path.clone()),
            "--baud",
            "9600",
            "--no-reconnect",
        ],
        Stdio::null(),
    );
    m.wait_stderr("--- Connected to");
    drop(board);
    let status = m.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", m.stderr());
    assert!(m.stderr().contains("went away"), "{}", m.stderr());
    assert!(m.stderr().contains("hint: "), "{}", m.stderr());
}

#[test]
fn waits_for_a_port_that_appears_later() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyLATE");
    let mut m = Monitor::spawn(
        &["--port", path(&link), "--baud", "9600", "--wait", "30"],
        Stdio::null(),
    );
    m.wait_stderr("--- Waiting up to 30.0 s for");
    let mut board = Pty::new();
    std::os::unix::fs::symlink(&board.path, &link).unwrap();
    m.wait_stderr("--- Connected to");
    board.write(b"late\n");
    m.wait_stdout(b"late\n");
    m.signal(libc::SIGTERM);
    assert!(m.wait_exit().success(), "{}", m.stderr());
}

#[test]
fn duration_ends_the_session() {
    let board = Pty::new();
    let mut m = Monitor::spawn(
        &[
            "--port",
            path(&board.path.clone()),
            "--baud",
            "9600",
            "--duration",
            "0.5",
        ],
        Stdio::null(),
    );
    let status = m.wait_exit();
    assert!(status.success(), "{}", m.stderr());
    assert!(
        m.stderr().contains("Monitor closed (time is up)"),
        "{}",
        m.stderr()
    );
}

/// stdin a terminal: raw mode while it runs (restored after), Enter sends --eol, Ctrl-R tries a
/// reset (a pty has no DTR/RTS, so it says it could not), Ctrl-] and Ctrl-C quit.
#[test]
fn raw_terminal_keys() {
    for quit in [b"\x1d", b"\x03"] {
        let mut board = Pty::new();
        let mut term = Pty::new();
        let tty = File::options()
            .read(true)
            .write(true)
            .open(&term.path)
            .unwrap();
        let before = lflag(&tty);
        assert_ne!(before & libc::ICANON, 0, "a new pty starts cooked");
        let mut m = Monitor::spawn(
            &[
                "--port",
                path(&board.path.clone()),
                "--baud",
                "9600",
                "--eol",
                "crlf",
            ],
            Stdio::from(tty.try_clone().unwrap()),
        );
        m.wait_stderr("Ctrl-] or Ctrl-C quits, Ctrl-R resets the board");
        let flags = lflag(&tty);
        assert_eq!(
            flags & (libc::ICANON | libc::ECHO | libc::ISIG),
            0,
            "raw mode is on"
        );

        term.write(b"hi\r");
        assert_eq!(board.read_until(b"hi\r\n"), b"hi\r\n");
        board.write(b"hello\r\n");
        m.wait_stdout(b"hello\r\n");
        term.write(b"\x12");
        m.wait_stderr("--- Could not reset the board");
        term.write(quit);
        let status = m.wait_exit();
        assert!(status.success(), "{status:?}\n{}", m.stderr());
        assert!(
            m.stderr().contains("Monitor closed (quit)"),
            "{}",
            m.stderr()
        );
        assert_eq!(lflag(&tty), before, "the terminal is as it was");
    }
}

#[test]
fn a_missing_port_says_so() {
    let mut m = Monitor::spawn(
        &["--port", "/dev/nixflash-no-such-port", "--baud", "9600"],
        Stdio::null(),
    );
    assert_eq!(m.wait_exit().code(), Some(1));
    let err = m.stderr();
    assert!(
        err.contains("error: serial port /dev/nixflash-no-such-port does not exist"),
        "{err}"
    );
    assert!(
        err.contains("hint: is the board plugged in? `nixflash ports`"),
        "{err}"
    );
}

#[test]
fn a_busy_port_names_the_process_that_holds_it() {
    let board = Pty::new();
    // This test process holds the port the way another serial program would (TIOCEXCL + flock).
    let _held = serialport::new(path(&board.path), 9600).open().unwrap();
    let mut m = Monitor::spawn(
        &["--port", path(&board.path.clone()), "--baud", "9600"],
        Stdio::null(),
    );
    assert_eq!(m.wait_exit().code(), Some(1));
    let err = m.stderr();
    assert!(
        err.contains("is busy: another program has it open"),
        "{err}"
    );
    assert!(
        err.contains(&format!("(pid {})", std::process::id())),
        "{err}"
    );
    assert!(err.contains("hint: close that program"), "{err}");
}

/// A port the user may not open: as root the monitor runs as `nobody`; otherwise the pty is
/// made unreadable (its owner then gets EACCES too).
#[test]
fn permission_denied_says_to_join_dialout() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let board = Pty::new();
    std::fs::set_permissions(&board.path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = nixflash(
        &["monitor", "--port", path(&board.path), "--baud", "9600"],
        home.path(),
        home.path(),
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // SAFETY: setgid/setuid between fork and exec touch no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "error: permission denied opening serial port {}",
            board.path.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("`dialout` on Debian, Ubuntu and Fedora, `uucp` on Arch"),
        "{err}"
    );
    assert!(err.contains("then log out and in again"), "{err}");
}

#[test]
fn without_board_or_baud_it_asks_for_them() {
    let board = Pty::new();
    let mut m = Monitor::spawn(&["--port", path(&board.path.clone())], Stdio::null());
    assert_eq!(m.wait_exit().code(), Some(1));
    let err = m.stderr();
    assert!(err.contains("error: no baud rate"), "{err}");
    assert!(err.contains("hint: pass --baud"), "{err}");

    let mut m = Monitor::spawn(&["--baud", "9600"], Stdio::null());
    assert_eq!(m.wait_exit().code(), Some(1));
    let err = m.stderr();
    assert!(err.contains("error: which serial port?"), "{err}");
    assert!(
        err.contains("hint: pass --port <PORT>, or --board <id>"),
        "{err}"
    );
}

#[test]
fn a_baud_of_zero_is_refused() {
    let board = Pty::new();
    let mut m = Monitor::spawn(
        &["--port", path(&board.path.clone()), "--baud", "0"],
        Stdio::null(),
    );
    assert_eq!(m.wait_exit().code(), Some(1));
    let err = m.stderr();
    assert!(err.contains("error: --baud must be above zero"), "{err}");
    assert!(err.contains("hint: serial consoles run at"), "{err}");
}

#[test]
fn board_and_baud_come_from_the_project() {
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("fw");
    std::fs::create_dir_all(project.join("src/deep")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"fw\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [package.metadata.nixflash]\nboard = \"esp32c3\"\n",
    )
    .unwrap();
    let board = Pty::new();
    // From a folder inside the project: the ESP32-C3's 115200 baud.
    let mut m = Monitor::spawn_in(
        &["--port", path(&board.path), "--duration", "0.3"],
        Stdio::null(),
        project.join("src/deep"),
        home,
    );
    assert!(m.wait_exit().success(), "{}", m.stderr());
    assert!(m.stderr().contains("at 115200 baud"), "{}", m.stderr());

    // --baud wins over the board's.
    let home = tempfile::tempdir().unwrap();
    let mut m = Monitor::spawn_in(
        &[
            "--port",
            path(&board.path),
            "--baud",
            "300",
            "--duration",
            "0.3",
        ],
        Stdio::null(),
        project.clone(),
        home,
    );
    assert!(m.wait_exit().success(), "{}", m.stderr());
    assert!(m.stderr().contains("at 300 baud"), "{}", m.stderr());

    // A board the database does not know is an error that names the file.
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"fw\"\nversion = \"0.1.0\"\n\n[package.metadata.nixflash]\nboard = \"unoo\"\n",
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut m = Monitor::spawn_in(
        &["--port", path(&board.path)],
        Stdio::null(),
        project.clone(),
        home,
    );
    assert_eq!(m.wait_exit().code(), Some(1));
    let err = m.stderr();
    assert!(
        err.contains("names board `unoo` in [package.metadata.nixflash]"),
        "{err}"
    );
    assert!(err.contains("did you mean `uno`"), "{err}");
}

/// `-b 115200`, PlatformIO's habit for the speed, is the board here: said plainly, with the flag
/// that sets the speed, not as an unknown board.
#[test]
fn a_speed_given_to_b_says_that_b_is_the_board_and_baud_the_speed() {
    let board = Pty::new();
    for flag in ["-b", "--board"] {
        let mut m = Monitor::spawn(
            &["--port", path(&board.path), flag, "115200"],
            Stdio::null(),
        );
        assert_eq!(m.wait_exit().code(), Some(1));
        let err = m.stderr();
        assert!(
            err.contains("error: `115200` is a speed, and -b (--board) names the board"),
            "{err}"
        );
        assert!(
            err.contains("hint: the speed is --baud: `nixflash monitor --baud 115200`"),
            "{err}"
        );
        assert!(!err.contains("unknown board"), "{err}");
    }
}

/// A project keeps its port and speed in [package.metadata.nixflash] (`port`, `baud`), as
/// PlatformIO's `monitor_port`/`monitor_speed` do; the command line wins over both.
#[test]
fn port_and_baud_come_from_the_project_and_the_command_line_wins() {
    let board = Pty::new();
    let other = Pty::new();
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("fw");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"fw\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [package.metadata.nixflash]\nboard = \"esp32c3\"\nport = \"{}\"\nbaud = 300\n",
            board.path.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let home = tempfile::tempdir().unwrap();
        let mut all = args.to_vec();
        all.extend(["--duration", "0.3"]);
        let mut m = Monitor::spawn_in(&all, Stdio::null(), project.clone(), home);
        assert!(m.wait_exit().success(), "{}", m.stderr());
        m.stderr()
    };
    let err = run(&[]);
    assert!(
        err.contains(&format!(
            "Connected to {} at 300 baud",
            board.path.display()
        )),
        "{err}"
    );
    let err = run(&["--baud", "9600", "--port", path(&other.path)]);
    assert!(
        err.contains(&format!(
            "Connected to {} at 9600 baud",
            other.path.display()
        )),
        "{err}"
    );

    // A speed that is not a number is an error that names the file and the key.
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        manifest.replace("baud = 300", "baud = \"fast\""),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut m = Monitor::spawn_in(&[], Stdio::null(), project.clone(), home);
    assert_eq!(m.wait_exit().code(), Some(1));
    let err = m.stderr();
    assert!(
        err.contains(
            "fw/Cargo.toml: `baud` in [package.metadata.nixflash] must be a whole number of baud"
        ),
        "{err}"
    );
}
