//! Tests of [`super`]: reading the flashers' output, choosing and refusing ports.
use super::*;
use crate::board::Database;
use crate::error::Report;

fn watched(out: &[u8]) -> (Vec<(String, Option<u8>)>, Option<String>) {
    let seen = Mutex::new(Vec::new());
    let mut w = Watch::default();
    // In pieces, as a pipe gives them.
    for chunk in out.chunks(7) {
        w.feed(chunk, &|s, p| seen.lock().unwrap().push((s.to_string(), p)));
    }
    w.feed(b"\n", &|_, _| {});
    (seen.into_inner().unwrap(), w.why())
}

#[test]
fn avrdude_s_output_gives_stages_and_percentages() {
    let out = b"Programming fw.elf => /dev/pts/3\n\
        avrdude OS error: ioctl(\"TIOCMGET\"): Inappropriate ioctl for device\n\
        avrdude: AVR device initialized and ready to accept instructions\n\n\
        Reading | ################################################## | 100% 0.00s\n\n\
        avrdude: writing 1024 bytes flash ...\n\nWriting | ########\
        ########################################## | 100% 0.50s\n\n\
        avrdude: 1024 bytes of flash written\n\
        avrdude: verifying flash memory against fw.elf:\n\n\
        Reading | ################################################## | 100% 0.40s\n\n\
        avrdude: 1024 bytes of flash verified\n";
    let (seen, _) = watched(out);
    let stages: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    assert!(
        stages.starts_with(&["connecting", "connected", "writing"]),
        "{seen:?}"
    );
    assert!(seen.contains(&("writing".into(), Some(2))), "{seen:?}");
    assert!(seen.contains(&("writing".into(), Some(100))), "{seen:?}");
    assert!(seen.contains(&("verifying".into(), Some(50))), "{seen:?}");
    assert_eq!(seen.last().unwrap().0, "verified");
    // Each percentage once, rising.
    let writing: Vec<u8> = seen
        .iter()
        .filter(|(s, p)| s == "writing" && p.is_some())
        .map(|(_, p)| p.unwrap())
        .collect();
    assert_eq!(writing, (1..=50).map(|h| h * 2).collect::<Vec<u8>>());
}

#[test]
fn espflash_s_output_gives_stages() {
    let out = b"[2026-12-02T17:00:00Z INFO ] Connecting...\n\
        Chip type:         esp32c3 (revision v0.4)\n\
        [2026-12-02T17:00:01Z INFO ] Flashing has completed!\n";
    let (seen, _) = watched(out);
    let stages: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(stages, ["connecting", "connected", "done"]);
}

#[test]
fn why_it_failed_is_avrdude_s_error_line() {
    let out = b"avrdude: writing flash (1024 bytes):\nWriting | ####\n\
        avrdude: stk500_recv(): programmer is not responding\n\
        avrdude: stk500_paged_write(): error: timeout\n\
        avrdude OS error: ioctl(\"TIOCMGET\"): Inappropriate ioctl for device\n\
        Error: avrdude exited with status 1\n";
    let (_, why) = watched(out);
    assert_eq!(
        why.as_deref(),
        Some("avrdude: stk500_paged_write(): error: timeout")
    );
    let (_, why) = watched(b"something\nlast words\n");
    assert_eq!(why.as_deref(), Some("last words"));
    assert_eq!(percent_in("[00:00:01] 120/360 33% 0x1000"), Some(33));
    assert_eq!(percent_in("no number %"), None);
}

#[test]
fn targets_are_refused_before_anything_is_flashed() {
    let db = Database::builtin().unwrap();
    let uno = db.get("uno").unwrap();
    let mut a = PortInfo::usb("/dev/ttyACM0", "2341:0043", Some("Arduino"), None);
    a.usb.as_mut().unwrap().serial_number = Some("A1".into());
    let b = PortInfo::usb("/dev/ttyACM1", "2341:0043", Some("Arduino"), None);
    let other = PortInfo::usb("/dev/ttyUSB0", "303a:1001", None, None);
    let listed = [a, b, other.clone()];
    let all = targets(&[], true, &listed, uno, &db).unwrap();
    assert_eq!(
        all,
        [
            Target {
                port: "/dev/ttyACM0".into(),
                serial: Some("A1".into())
            },
            Target {
                port: "/dev/ttyACM1".into(),
                serial: None
            },
        ]
    );
    let given = ["/dev/ttyACM0".to_string(), "/dev/pts/9".to_string()];
    let t = targets(&given, false, &listed, uno, &db).unwrap();
    assert_eq!(t[0].serial.as_deref(), Some("A1"));
    assert_eq!(t[1].serial, None);
    let err = |r: Result<Vec<Target>>| Report::of(&r.unwrap_err());
    let e = err(targets(&given, true, &listed, uno, &db));
    assert!(e.error.contains("cannot be given with --port"), "{e:?}");
    let twice = ["/dev/ttyACM0".to_string(), "/dev/ttyACM0".to_string()];
    let e = err(targets(&twice, false, &listed, uno, &db));
    assert!(e.error.contains("/dev/ttyACM0 is given twice"), "{e:?}");
    let e = err(targets(&[], true, &[other], uno, &db));
    assert!(e.error.contains("no serial port found"), "{e:?}");
    assert!(e.error.contains("/dev/ttyUSB0"), "{e:?}");
}
