//! Tests of option resolution against the built-in families.

use super::*;
use crate::board::Database;

fn flags(board: &Board, args: &[&str]) -> Result<Resolved> {
    let wishes: Vec<Wish> = args.iter().map(|a| Wish::flag(a)).collect();
    resolve(board, &wishes)
}

/// The refusal's message; every refusal is of kind `option`.
fn error(board: &Board, args: &[&str]) -> String {
    let e = flags(board, args).unwrap_err();
    assert_eq!(
        crate::error::Report::of(&e).kind,
        crate::error::Kind::Option
    );
    e.to_string()
}

#[test]
fn requirements_are_turned_on_and_said() {
    let db = Database::builtin().unwrap();
    let c3 = db.get("esp32c3").unwrap();
    let r = flags(c3, &["wifi"]).unwrap();
    assert_eq!(r.choices["wifi"], "on");
    assert_eq!(r.choices["async"], "embassy");
    assert_eq!(r.choices["alloc"], "on");
    assert_eq!(r.choices["log"], "println");
    assert_eq!(
        r.notes,
        ["wifi=on needs alloc=on and async=embassy: turned on"]
    );
    // Asked for already: nothing to say.
    let r = flags(c3, &["wifi=on", "async=embassy", "alloc=on"]).unwrap();
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    // Defaults for everything, wifi included, on a chip without Wi-Fi.
    let h2 = db.get("esp32h2").unwrap();
    assert_eq!(flags(h2, &[]).unwrap().choices["wifi"], "off");
}

#[test]
fn bad_wishes_are_one_line_each() {
    let db = Database::builtin().unwrap();
    let (c3, h2, uno) = (
        db.get("esp32c3").unwrap(),
        db.get("esp32h2").unwrap(),
        db.get("uno").unwrap(),
    );
    assert_eq!(
        error(c3, &["wifi", "async=none"]),
        "`-o async=none` contradicts `-o wifi`: wifi=on needs async=embassy, not async=none"
    );
    assert_eq!(
        error(c3, &["log=defmt", "log=println"]),
        "`-o log=defmt` and `-o log=println` contradict each other: choose one"
    );
    assert_eq!(
        error(c3, &["bluetooth"]),
        "`-o bluetooth`: the ESP32-C3-DevKitM-1 has no option `bluetooth`; its options are \
         alloc, async, log, wifi"
    );
    assert_eq!(
        error(c3, &["log=rtt"]),
        "`-o log=rtt` is not a choice for the ESP32-C3-DevKitM-1: log (how the firmware logs) \
         is one of defmt, println (default println)"
    );
    assert_eq!(
        error(c3, &["log"]),
        "`-o log` needs a choice: -o log=defmt or -o log=println"
    );
    let e = error(h2, &["wifi"]);
    assert!(
        e.starts_with(
            "`-o wifi`: the ESP32-H2-DevKitM-1 (chip esp32h2) has no wifi (a Wi-Fi station): \
             only esp32c2, esp32c3, esp32c6 chips do; the boards that have it: "
        ),
        "{e}"
    );
    assert!(
        e.contains("esp32c3-devkitm-1") && !e.contains("esp32h2-devkitm-1"),
        "{e}"
    );
    assert_eq!(
        error(uno, &["log=defmt"]),
        "`-o log=defmt`: the Arduino Uno (family `avr`) has no options: drop -o"
    );
    for e in [error(c3, &["wifi", "async=none"]), error(h2, &["wifi"])] {
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn a_flag_wins_over_a_recorded_choice() {
    let db = Database::builtin().unwrap();
    let c3 = db.get("esp32c3").unwrap();
    let r = resolve(
        c3,
        &[Wish::recorded("log", "defmt"), Wish::flag("log=println")],
    )
    .unwrap();
    assert_eq!(r.choices["log"], "println");
    // A recorded Wi-Fi project asked for no executor: refused, naming both.
    let e = resolve(
        c3,
        &[
            Wish::recorded("wifi", "on"),
            Wish::recorded("async", "embassy"),
            Wish::recorded("alloc", "on"),
            Wish::flag("async=none"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "`-o async=none` contradicts the project's `wifi = \"on\"` (in Cargo.toml): wifi=on \
         needs async=embassy, not async=none"
    );
}

#[test]
fn combinations_meet_every_requirement() {
    let db = Database::builtin().unwrap();
    let c3 = combinations(db.get("esp32c3").unwrap());
    // log × async × alloc, and wifi=on with async=embassy and alloc=on (× log).
    assert_eq!(c3.len(), 2 * 2 * 2 + 2, "{c3:?}");
    assert!(c3
        .iter()
        .all(|c| c["wifi"] == "off" || (c["async"] == "embassy" && c["alloc"] == "on")));
    assert_eq!(combinations(db.get("esp32h2").unwrap()).len(), 8);
    assert_eq!(combinations(db.get("pico").unwrap()).len(), 2);
    let uno = combinations(db.get("uno").unwrap());
    assert_eq!(uno.len(), 1);
    assert!(uno[0].is_empty());
    assert!(completions().contains(&"wifi=on".to_string()));
}

#[test]
fn choice_files_render_only_when_chosen() {
    let mut family = Database::builtin()
        .unwrap()
        .get("esp32c3")
        .unwrap()
        .family()
        .clone();
    let wifi = family.options.get_mut("wifi").unwrap();
    wifi.choices.get_mut("on").unwrap().files = vec!["src/wifi.rs".into()];
    let mut choices: BTreeMap<String, String> = family
        .options
        .iter()
        .map(|(n, o)| (n.clone(), o.default.clone()))
        .collect();
    assert!(!renders(&family, &choices, "src/wifi.rs"));
    assert!(renders(&family, &choices, "src/main.rs"));
    choices.insert("wifi".into(), "on".into());
    assert!(renders(&family, &choices, "src/wifi.rs"));
}
