//! The Uno blinky `nixflash new` makes: its greeting, its LED every 500 ms, `--expect`, `--vcd`
//! and Ctrl-C.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{json, led_interval, led_lines, one_sim, ready, sim};
use crate::common::firmware::Kind;
use crate::common::nixflash;
use crate::common::process::{collect, lossy, text, Spawned};

#[test]
fn uno_blinky_greets_and_blinks_every_500_ms() {
    let test = "uno_blinky_greets_and_blinks_every_500_ms";
    let Some(uno) = ready(test, Kind::Uno) else {
        return;
    };
    let elf = uno.elf.to_str().unwrap();
    let o = sim(
        &uno.project,
        &[
            "--elf",
            elf,
            "--expect",
            "Hello from",
            "--duration",
            "3",
            "--timestamps",
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    // The greeting, stamped with the simulated time at which it began (the firmware sends it
    // first thing).
    let greeting = out
        .lines()
        .find(|l| l.contains("Hello from fw on the Arduino Uno!"))
        .unwrap_or_else(|| panic!("no greeting on stdout:\n{out}\n{err}"));
    assert!(greeting.starts_with("[  0.000"), "{greeting}");
    assert!(
        err.contains("Simulator simavr (") && err.contains(", from PATH)"),
        "{err}"
    );
    // Each change said while they are few: the pin becomes an output (low) right after the
    // greeting, turns on, then toggles every 500 ms.
    let said = led_lines(&err);
    assert!(said.len() >= 4, "{err}");
    assert_eq!(
        said.iter().map(|(on, _)| *on).collect::<Vec<_>>()[..4],
        [false, true, false, true],
        "{err}"
    );
    assert!(said[1].1 < 20.0, "the LED came on late: {err}");
    for pair in said[1..].windows(2) {
        assert!((pair[1].1 - pair[0].1 - 500.0).abs() < 2.5, "{err}");
    }
    assert!(
        err.contains("--- LED blinking: a change every 499.8 ms (a period of 999.7 ms)"),
        "{err}"
    );
    assert!(
        err.contains("--- LED changed 7 times; steadily every 499.8 ms"),
        "{err}"
    );
    assert!(
        err.contains("--- Expected \"Hello from\": sent at"),
        "{err}"
    );
    assert!(
        err.contains("--- Simulated 3.000 s of simulated time in "),
        "{err}"
    );

    // The same as a report: the bytes sent, the LED's rhythm, how fast it ran.
    let o = sim(&uno.project, &["--elf", elf, "--duration", "3", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let r = json(&o);
    assert_eq!(r["end"], "duration");
    assert_eq!(r["mcu"], "atmega328p");
    assert_eq!(r["clock_hz"], 16_000_000);
    assert_eq!(r["simulated_seconds"], 3.0);
    assert_eq!(
        r["uart"]["text"], "Hello from fw on the Arduino Uno!\r\n",
        "{r}"
    );
    let (interval, changes) = led_interval(&r, "uno");
    assert_eq!(changes, 7, "{r}");
    crate::common::measured(&format!(
        "the Uno blinky in simavr: LED every {:.4} ms, {:.2} simulated seconds per wall \
         second",
        interval * 1e3,
        r["speed"].as_f64().unwrap()
    ));
}

#[test]
fn an_expected_text_that_never_comes_exits_1_and_names_it() {
    let test = "an_expected_text_that_never_comes_exits_1_and_names_it";
    let Some(uno) = ready(test, Kind::Uno) else {
        return;
    };
    let o = sim(
        &uno.project,
        &[
            "--elf",
            uno.elf.to_str().unwrap(),
            "--duration",
            "1",
            "--expect",
            "Hello from",
            "--expect",
            "Goodbye",
            "--json",
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    // --json: the report says what failed, as the error does; the console goes to stderr.
    let j = json(&o);
    assert_eq!(
        (&j["ok"], &j["kind"]),
        (&false.into(), &"expect-unmet".into())
    );
    assert_eq!(j["expect"][1]["seen_at_seconds"], serde_json::Value::Null);
    assert!(err.contains("Hello from fw"), "{err}");
    assert!(
        err.contains(
            "error: the firmware never sent \"Goodbye\" on USART0 in 1.000 s of simulated time"
        ),
        "{err}"
    );
    assert!(
        err.contains("--- Expected \"Hello from\": sent at"),
        "{err}"
    );
    assert!(err.contains("hint: a longer --duration"), "{err}");

    // With --expect and no --duration, the run ends as soon as the text has come.
    let started = Instant::now();
    let o = sim(
        &uno.project,
        &["--elf", uno.elf.to_str().unwrap(), "--expect", "Uno!"],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let err = text(&o).1;
    assert!(
        err.contains("Every expected text appeared: stopped"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// The changes of the VCD signal named `name`: (time in ns, value), with a parser of its own.
fn vcd_changes(vcd: &str, name: &str) -> Vec<(u64, String)> {
    let mut unit = 0;
    let mut code = None;
    let mut time = 0;
    let mut out = Vec::new();
    for line in vcd.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["$timescale", ts, "$end"] => unit = ts.trim_end_matches("ns").parse().unwrap(),
            ["$var", "wire", _, c, n, "$end"] if *n == name => code = Some(c.to_string()),
            [t] if t.starts_with('#') => time = t[1..].parse::<u64>().unwrap() * unit,
            [v, c] if Some(c.to_string()) == code => out.push((time, v.to_string())),
            [v] if code
                .as_deref()
                .is_some_and(|c| v.len() > c.len() && v.ends_with(c)) =>
            {
                out.push((time, v[..v.len() - 1].to_string()))
            }
            _ => {}
        }
    }
    assert!(code.is_some(), "no signal {name} in the VCD:\n{vcd}");
    out
}

#[test]
fn vcd_trace_has_the_led_edges_500_ms_apart_and_the_bytes_sent() {
    let test = "vcd_trace_has_the_led_edges_500_ms_apart_and_the_bytes_sent";
    let Some(uno) = ready(test, Kind::Uno) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("blink.vcd");
    let o = sim(
        &uno.project,
        &[
            "--elf",
            uno.elf.to_str().unwrap(),
            "--duration",
            "4",
            "--vcd",
            trace.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let vcd = std::fs::read_to_string(&trace).unwrap();
    let led: Vec<(u64, String)> = vcd_changes(&vcd, "LED_PB5")
        .into_iter()
        .filter(|(_, v)| v == "0" || v == "1")
        .collect();
    // Low when it becomes an output, then a toggle every 500 ms.
    let toggles = &led[1..];
    assert!(toggles.len() >= 8, "{led:?}");
    for pair in toggles.windows(2) {
        let gap = (pair[1].0 - pair[0].0) as f64 / 1e9;
        assert!(
            (gap - 0.5).abs() < 0.0025,
            "LED edges {gap} s apart: {led:?}"
        );
        assert_ne!(pair[0].1, pair[1].1, "{led:?}");
    }
    // The serial bytes, one change each (z between them).
    let bytes: Vec<u8> = vcd_changes(&vcd, "USART0_TX")
        .into_iter()
        .filter_map(|(_, v)| u8::from_str_radix(v.trim_start_matches('b'), 2).ok())
        .collect();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "Hello from fw on the Arduino Uno!\r\n"
    );
    assert!(
        vcd.trim_end().ends_with("#4000000000"),
        "the trace ends at 4 s"
    );
}

#[test]
fn until_ctrl_c_the_run_ends_with_what_it_saw() {
    let test = "until_ctrl_c_the_run_ends_with_what_it_saw";
    let Some(uno) = ready(test, Kind::Uno) else {
        return;
    };
    let _one = one_sim();
    let mut run = Spawned::new(
        nixflash()
            .current_dir(&uno.project)
            .env("XDG_CONFIG_HOME", uno.project.join(".cfg"))
            .args(["sim", "--elf", uno.elf.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let (out, t_out) = collect(run.child.stdout.take().unwrap());
    let (err, t_err) = collect(run.child.stderr.take().unwrap());
    let started = Instant::now();
    while !lossy(&err).contains("LED blinking") {
        assert!(
            run.try_wait().is_none(),
            "nixflash sim ended by itself: {}",
            lossy(&err)
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no steady blink within 60 s: {}",
            lossy(&err)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ctrl-C reaches nixflash (as `kill -INT` does: to nixflash alone): it stops simavr and
    // says what it saw.
    run.signal(libc::SIGINT);
    let status = run
        .wait_for(Duration::from_secs(20))
        .expect("nixflash sim did not end after SIGINT");
    let (_, _) = (t_out.join(), t_err.join());
    let (out, err) = (lossy(&out), lossy(&err));
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(out.contains("Hello from fw on the Arduino Uno!"), "{out}");
    assert!(err.contains("--- Stopped after at least "), "{err}");
    assert!(err.contains("steadily every 499.8 ms"), "{err}");
}

/// A project made for a user's board (`inherit = "uno"`) runs in the simulator on a machine
/// without the user's board files: the project carries its board in boards/. The firmware is the
/// Uno blinky's, which is what such a project compiles to.
#[test]
fn a_user_board_s_project_simulates_without_the_user_s_board_files() {
    let test = "a_user_board_s_project_simulates_without_the_user_s_board_files";
    let Some(uno) = ready(test, Kind::Uno) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("cfg");
    std::fs::create_dir_all(cfg.join("nixflash/boards")).unwrap();
    std::fs::write(
        cfg.join("nixflash/boards/myuno.toml"),
        "inherit = \"uno\"\nid = \"myuno\"\nname = \"My Uno\"\n",
    )
    .unwrap();
    let o = nixflash()
        .args(["new", "fw", "--board", "myuno", "--no-git"])
        .current_dir(tmp.path())
        .env("XDG_CONFIG_HOME", &cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    std::fs::remove_dir_all(&cfg).unwrap();
    let project = tmp.path().join("fw");
    // `sim` gives the project's folder an empty XDG_CONFIG_HOME of its own.
    let o = sim(
        &project,
        &[
            "--elf",
            uno.elf.to_str().unwrap(),
            "--expect",
            "Hello from",
            "--duration",
            "2",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let r = json(&o);
    assert_eq!(r["board"], "myuno", "{r}");
    assert_eq!(r["mcu"], "atmega328p", "{r}");
    led_interval(&r, "myuno");
}
