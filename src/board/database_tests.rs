//! Tests of the board database: families, inheritance, and what bad board files get told.

use super::*;
use crate::error::{Kind, Report};

/// The built-in boards and `files`; the first file left out is the error.
pub(super) fn db_with(files: &[(&str, &str)]) -> Result<Database> {
    let mut raw = builtin_raw().unwrap();
    for (name, text) in files {
        raw.push(read_raw(text, name, Source::Project(PathBuf::from(name)))?);
    }
    let db = Database::from_raw(raw, Vec::new())?;
    match db.warnings().iter().find(|w| w.error.is_some()) {
        Some(w) => Err(w.to_error()),
        None => Ok(db),
    }
}

#[test]
fn every_builtin_board_resolves_and_is_named_by_its_file() {
    let db = Database::builtin().unwrap();
    let ids: Vec<&str> = db.boards().map(|b| b.id.as_str()).collect();
    for want in [
        "uno",
        "nano",
        "nano-new",
        "nano168",
        "diecimila",
        "promini-5v",
        "promini-3v3",
        "mega2560",
        "mega1280",
        "leonardo",
        "micro",
        "promicro",
        "esp32c3-devkitm-1",
        "esp32c3-devkitc-02",
        "esp32c3-rust-board",
        "esp32c3-supermini",
        "xiao-esp32c3",
        "esp32c6-devkitc-1",
        "xiao-esp32c6",
        "esp8684-devkitm-1",
        "esp32h2-devkitm-1",
    ] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
    for f in BUILTIN_BOARDS.files() {
        if f.path().extension().is_some_and(|e| e == "toml") {
            let t: toml::Table = toml::from_str(f.contents_utf8().unwrap()).unwrap();
            assert_eq!(
                f.path().file_stem().unwrap().to_str().unwrap(),
                t["id"].as_str().unwrap()
            );
        }
    }
    assert_eq!(db.get("esp32c3").unwrap().id, "esp32c3-devkitm-1");
    assert_eq!(db.get("UNO").unwrap().id, "uno");
}

#[test]
fn families_and_inheritance_fill_in_boards() {
    let db = Database::builtin().unwrap();
    let uno = db.get("uno").unwrap();
    assert_eq!(uno.family().id, "avr");
    assert_eq!(uno.rust.target, "avr-none");
    assert_eq!(uno.rust.target_cpu.as_deref(), Some("atmega328p"));
    assert_eq!(uno.flash.board.as_deref(), Some("uno"));
    assert_eq!(uno.monitor.baud, 57600);
    // nano-new inherits nano, which inherits uno: the uno's LED, the nano's HAL feature and
    // USB ids, its own flash size and ravedude name.
    let nn = db.get("nano-new").unwrap();
    assert_eq!(nn.hal.led, "d13");
    assert_eq!(nn.hal.feature, "arduino-nano");
    assert_eq!(nn.flash.board.as_deref(), Some("nano-new"));
    assert_eq!(nn.memory.flash, 32256);
    assert_eq!(nn.usb.ids, db.get("nano").unwrap().usb.ids);
    let c6 = db.get("esp32c6").unwrap();
    assert_eq!(c6.flash.chip.as_deref(), Some("esp32c6"));
    assert_eq!(c6.hal.feature, "esp32c6");
    assert_eq!(c6.rust.toolchain, "1.96.0");
    // The chips without atomics (C2, C3) are rv32imc, the others rv32imac.
    for (id, chip, target) in [
        ("esp32c2", "esp32c2", "riscv32imc-unknown-none-elf"),
        ("esp32h2", "esp32h2", "riscv32imac-unknown-none-elf"),
        ("xiao-esp32c3", "esp32c3", "riscv32imc-unknown-none-elf"),
        ("xiao-esp32c6", "esp32c6", "riscv32imac-unknown-none-elf"),
    ] {
        let b = db.get(id).unwrap();
        assert_eq!(
            (
                b.chip.as_str(),
                b.rust.target.as_str(),
                b.hal.feature.as_str()
            ),
            (chip, target, chip),
            "{id}"
        );
        assert_eq!(b.flash.chip.as_deref(), Some(chip), "{id}");
    }
    // A board inheriting another takes its chip's settings but names its own LED and USB ids.
    let xiao = db.get("xiao-esp32c6").unwrap();
    assert_eq!(xiao.hal.led, "GPIO15");
    assert_eq!(xiao.usb.ids, ["303a:1001".parse().unwrap()]);
    let micro = db.get("micro").unwrap();
    assert_eq!(micro.hal.feature, "arduino-leonardo");
    assert_eq!(micro.flash.board.as_deref(), Some("micro"));
    assert!(!micro.monitor.usb_console);
}

#[test]
fn a_user_board_can_inherit_a_builtin_one() {
    let db = db_with(&[(
        "my.toml",
        "inherit = \"uno\"\nid = \"my-uno\"\nname = \"My Uno\"\n[monitor]\nbaud = 9600\n",
    )])
    .unwrap();
    let b = db.get("my-uno").unwrap();
    assert_eq!(
        (b.monitor.baud, b.hal.feature.as_str()),
        (9600, "arduino-uno")
    );
    assert_eq!(b.flash.board.as_deref(), Some("my-uno"));
}

#[test]
fn bad_board_files_say_where_and_what() {
    let e = format!(
        "{:#}",
        db_with(&[("my.toml", "inherit = \"uno\"\nid = \"x\"\nname = 5\n")]).unwrap_err()
    );
    assert!(e.contains("my.toml:3:8: invalid board file"), "{e}");
    let e = format!("{:#}", db_with(&[("my.toml", "id = \"x\"\n")]).unwrap_err());
    assert!(e.contains("my.toml: board `x` names no family"), "{e}");
    let e = format!(
        "{:#}",
        db_with(&[(
            "my.toml",
            "inherit = \"uno\"\nid = \"x\"\n[hal]\nbogus = 1\n"
        )])
        .unwrap_err()
    );
    assert!(
        e.contains("my.toml:4:1: invalid board file: unknown field `bogus`"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        db_with(&[(
            "my.toml",
            "inherit = \"uno\"\nid = \"x\"\nfamily = \"pic\"\n"
        )])
        .unwrap_err()
    );
    assert!(
        e.contains("my.toml:3:10: board `x` is of family `pic`"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        db_with(&[("my.toml", "inherit = \"unoo\"\nid = \"x\"\n")]).unwrap_err()
    );
    assert!(
        e.contains("board `x` inherits `unoo`, which is no board's id"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        db_with(&[
            ("a.toml", "inherit = \"b\"\nid = \"a\"\n"),
            ("b.toml", "inherit = \"a\"\nid = \"b\"\n"),
        ])
        .unwrap_err()
    );
    assert!(e.contains("in a circle: a → b → a"), "{e}");
    let e = format!(
        "{:#}",
        db_with(&[(
            "my.toml",
            "inherit = \"uno\"\nid = \"x\"\n[rust]\nbuild-std = false\n"
        )])
        .unwrap_err()
    );
    assert!(
        e.contains("sets `rust.build-std`, which every avr board has as true"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        db_with(&[(
            "my.toml",
            "inherit = \"esp32c3-devkitm-1\"\nid = \"x\"\n[rust]\ntoolchain = \"stable\"\n"
        )])
        .unwrap_err()
    );
    assert!(e.contains("is not an exact toolchain"), "{e}");
}

#[test]
fn closest_names_suggest_real_boards() {
    let db = Database::builtin().unwrap();
    let s = db.closest("unoo");
    assert!(s[0].contains("`uno`"), "{s:?}");
    let s = db.closest("esp32c");
    assert!(s.iter().any(|x| x.contains("esp32c3")), "{s:?}");
    assert!(db.closest("zzzzzzzz").is_empty());
    let e = Report::of(&db.get("unoo").unwrap_err());
    assert_eq!(e.kind, Kind::BoardUnknown);
    assert!(e.hints[0].starts_with("did you mean `uno`"), "{e:?}");
}

#[test]
fn avr_boards_have_what_the_simulator_needs() {
    let db = Database::builtin().unwrap();
    const M16: u64 = 16_000_000;
    for (id, mcu, clock, led, uart, data) in [
        ("uno", "atmega328p", M16, ('B', 5), "USART0", 0xc6),
        ("nano", "atmega328p", M16, ('B', 5), "USART0", 0xc6),
        ("nano-new", "atmega328p", M16, ('B', 5), "USART0", 0xc6),
        ("promini-5v", "atmega328p", M16, ('B', 5), "USART0", 0xc6),
        (
            "promini-3v3",
            "atmega328p",
            8_000_000,
            ('B', 5),
            "USART0",
            0xc6,
        ),
        ("nano168", "atmega168", M16, ('B', 5), "USART0", 0xc6),
        ("diecimila", "atmega168", M16, ('B', 5), "USART0", 0xc6),
        ("mega2560", "atmega2560", M16, ('B', 7), "USART0", 0xc6),
        ("mega1280", "atmega1280", M16, ('B', 7), "USART0", 0xc6),
        ("leonardo", "atmega32u4", M16, ('C', 7), "USART1", 0xce),
        ("micro", "atmega32u4", M16, ('C', 7), "USART1", 0xce),
        ("promicro", "atmega32u4", M16, ('B', 0), "USART1", 0xce),
    ] {
        let b = db.get(id).unwrap();
        let sim = b.sim.as_ref().unwrap_or_else(|| panic!("{id} has no sim"));
        assert_eq!(b.clock, Some(clock), "{id}");
        assert_eq!(sim.mcu, mcu, "{id}");
        assert_eq!(sim.led_pin(), Some(led), "{id}");
        assert_eq!(
            (sim.uart.as_str(), sim.uart_data),
            (uart, Some(data)),
            "{id}"
        );
        // The ATmega32U4's USB port is the chip's own.
        assert_eq!(sim.native_usb, mcu == "atmega32u4", "{id}");
        assert_eq!(
            b.family().simulator.as_ref().unwrap().tool.as_str(),
            "simavr"
        );
        assert_eq!(b.field("sim.mcu").as_deref(), Some(mcu));
    }
    for b in db.boards().filter(|b| b.family().id == "esp-riscv") {
        assert!(
            b.sim.is_none() && b.family().simulator.is_none(),
            "{}",
            b.id
        );
    }
    // QEMU emulates one Cortex-M board, as a machine of its own; the others have no simulator.
    for b in db.boards().filter(|b| b.family().id == "cortex-m") {
        let sim = b.simulator().map(|s| s.tool.as_str());
        if b.id == "microbit-v1" {
            assert_eq!(sim, Some("qemu-system-arm"));
            let spec = b.sim.as_ref().unwrap();
            assert_eq!(spec.machine.as_deref(), Some("microbit"));
            assert_eq!((spec.led_line(), spec.uart.as_str()), (Some(13), "UART0"));
            assert_eq!(
                b.field("sim.gpio-trace").as_deref(),
                Some("nrf51_gpio_update_output_irq")
            );
        } else {
            assert_eq!(sim, None, "{}", b.id);
        }
    }
    // An AVR board file must say what the simulator needs.
    let uno = builtin_source("uno").unwrap();
    let no_clock = uno
        .replace("id = \"uno\"", "id = \"x\"")
        .replace("aliases = [\"arduino-uno\", \"uno-r3\"]", "aliases = []")
        .lines()
        .filter(|l| !l.starts_with("clock"))
        .collect::<Vec<_>>()
        .join("\n");
    let e = format!("{:#}", db_with(&[("x.toml", &no_clock)]).unwrap_err());
    assert!(e.contains("`clock` is not set, and simavr needs it"), "{e}");
    let e = format!(
        "{:#}",
        db_with(&[(
            "my.toml",
            "inherit = \"uno\"\nid = \"x\"\n[sim]\nled = \"d13\"\n"
        )])
        .unwrap_err()
    );
    assert!(e.contains("`sim.led = \"d13\"` is not a pin"), "{e}");
}

/// A folder of board files as the user's (`cfg`) or a project's (`project/boards`), loaded.
fn load_files(user: &[(&str, &str)], project: &[(&str, &str)]) -> (tempfile::TempDir, Database) {
    let tmp = tempfile::tempdir().unwrap();
    let user_dir = tmp.path().join("cfg");
    let project_root = tmp.path().join("project");
    for (dir, files) in [(&user_dir, user), (&project_root.join("boards"), project)] {
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    let db = Database::load_from(Some(&user_dir), Some(&project_root)).unwrap();
    (tmp, db)
}

fn warnings(db: &Database) -> String {
    db.warnings()
        .iter()
        .map(|w| w.message.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_bad_board_file_is_a_warning_unless_its_board_is_needed() {
    let (_tmp, db) = load_files(
        &[
            (
                "myuno.toml",
                "inherit = \"uno\"\nid = \"myuno\"\nname = \"My Uno\"\n",
            ),
            ("garbage.toml", "garbage [\n"),
            ("unrelated.toml", "[package]\nname = \"x\"\n"),
        ],
        &[(
            "broken.toml",
            "inherit = \"uno\"\nid = \"broken\"\naliases = [\"br\"]\nname = 5\n",
        )],
    );
    // Every other board works.
    assert_eq!(db.get("uno").unwrap().id, "uno");
    assert_eq!(db.get("myuno").unwrap().id, "myuno");
    // One warning per bad file, naming it.
    let w = warnings(&db);
    assert_eq!(db.warnings().len(), 3, "{w}");
    assert!(w.contains("garbage.toml:1:9: invalid board file"), "{w}");
    assert!(
        w.contains("unrelated.toml:1:1: invalid board file: missing field `id`"),
        "{w}"
    );
    assert!(w.contains("broken.toml:4:8: invalid board file"), "{w}");
    // A command that needs the board gets the file's error.
    for (name, want) in [
        ("broken", "broken.toml:4:8: invalid board file"),
        ("br", "broken.toml:4:8: invalid board file"),
        ("garbage", "garbage.toml:1:9: invalid board file"),
    ] {
        let e = db.get(name).unwrap_err();
        assert_eq!(Report::of(&e).kind, Kind::BoardFile, "{name}");
        let e = format!("{e:#}");
        assert!(e.contains(want), "{name}: {e}");
    }
    assert!(db.warnings().iter().any(|w| w.about("garbage")));
    // A board that inherits a left-out one is left out, naming that file.
    let (_tmp, db) = load_files(
        &[
            ("base.toml", "base [\n"),
            (
                "child.toml",
                "inherit = \"base\"\nid = \"child\"\nname = \"C\"\n",
            ),
        ],
        &[],
    );
    let e = format!("{:#}", db.get("child").unwrap_err());
    assert!(
        e.contains("child.toml: board `child` inherits `base`, whose file")
            && e.contains("base.toml cannot be used"),
        "{e}"
    );
    assert!(!db.warnings().iter().any(|w| w.about("uno")));
}

#[test]
fn an_empty_board_file_is_a_warning() {
    // `nixflash boards show uno --toml > x.toml` in the board folder: the shell makes x.toml
    // empty before nixflash reads the folder.
    let (_tmp, db) = load_files(&[("x.toml", ""), ("y.toml", "# nothing yet\n")], &[]);
    let w = warnings(&db);
    assert_eq!(db.warnings().len(), 2, "{w}");
    assert!(w.contains("x.toml is empty"), "{w}");
    assert!(w.contains("y.toml is empty"), "{w}");
    assert_eq!(db.get("uno").unwrap().id, "uno");
}

#[test]
fn an_exported_board_works_as_a_user_board() {
    let builtin = Database::builtin().unwrap();
    let uno = &super::super::exported(builtin.get("uno").unwrap(), builtin_source("uno").unwrap());
    // Saved as it is: it replaces the built-in Uno, aliases and all.
    let (_tmp, db) = load_files(&[("uno.toml", uno)], &[]);
    assert!(db.warnings().is_empty(), "{}", warnings(&db));
    let e = db.find("arduino-uno").unwrap();
    assert_eq!(e.board.id, "uno");
    assert!(matches!(e.source, Source::User(_)), "{:?}", e.source);
    // With an id of its own: a board of its own; the aliases it copied stay the Uno's, with a
    // warning that names both boards.
    let copy = uno.replace("id = \"uno\"", "id = \"my-uno\"");
    let (_tmp, db) = load_files(&[("my-uno.toml", &copy)], &[]);
    let w = warnings(&db);
    assert_eq!(db.warnings().len(), 1, "{w}");
    assert!(
        w.contains("my-uno.toml")
            && w.contains("`arduino-uno`, `uno-r3`")
            && w.contains("board `uno`"),
        "{w}"
    );
    assert_eq!(db.get("arduino-uno").unwrap().id, "uno");
    let mine = db.get("my-uno").unwrap();
    assert!(mine.aliases.is_empty(), "{:?}", mine.aliases);
    // It flashes as ravedude's Uno, by name.
    assert_eq!(mine.flasher_board().unwrap().named.as_deref(), Some("uno"));
    // The Nano's file inherits the Uno's; a copy still flashes as ravedude's Nano.
    let nano = builtin.get("nano").unwrap();
    let copy = super::super::exported(nano, builtin_source("nano").unwrap())
        .replace("id = \"nano\"", "id = \"my-nano\"");
    let (_tmp, db) = load_files(&[("my-nano.toml", &copy)], &[]);
    let mine = db.get("my-nano").unwrap();
    assert_eq!(mine.flasher_board().unwrap().named.as_deref(), Some("nano"));
    // An alias of a built-in board is a warning too, the board usable.
    let (_tmp, db) = load_files(
        &[(
            "x.toml",
            "inherit = \"uno\"\nid = \"x\"\naliases = [\"nano\", \"xx\"]\n",
        )],
        &[],
    );
    let w = warnings(&db);
    assert!(w.contains("`nano` already names board `nano`"), "{w}");
    assert_eq!(db.get("xx").unwrap().id, "x");
    assert_eq!(db.get("nano").unwrap().id, "nano");
}

#[test]
fn a_user_board_is_flashed_as_the_board_it_inherits() {
    let (_tmp, db) = load_files(
        &[
            ("myuno.toml", "inherit = \"uno\"\nid = \"myuno\"\nname = \"My Uno\"\n"),
            ("myuno2.toml", "inherit = \"myuno\"\nid = \"myuno2\"\nname = \"My Uno 2\"\n"),
            (
                "mynano.toml",
                "inherit = \"nano168\"\nid = \"mynano\"\nname = \"My Nano\"\n",
            ),
            (
                "named.toml",
                "inherit = \"uno\"\nid = \"named\"\nname = \"N\"\n[flash]\nboard = \"promini-5v\"\n",
            ),
        ],
        &[],
    );
    assert!(db.warnings().is_empty(), "{}", warnings(&db));
    let like = |id: &str| db.get(id).unwrap().flasher_board().unwrap();
    assert_eq!(like("myuno").like.as_deref(), Some("uno"));
    assert_eq!(like("myuno").named, None);
    assert_eq!(like("myuno2").like.as_deref(), Some("uno"));
    assert_eq!(
        db.get("myuno2").unwrap().inherits().collect::<Vec<_>>(),
        ["myuno", "uno"]
    );
    assert_eq!(like("mynano").like.as_deref(), Some("nano168"));
    // Another chip than the board it inherits: ravedude's board for that chip is not known.
    let (_tmp, db) = load_files(
        &[(
            "m.toml",
            "inherit = \"uno\"\nid = \"m\"\nname = \"M\"\nchip = \"atmega168\"\n",
        )],
        &[],
    );
    let e = format!("{:#}", db.get("m").unwrap_err());
    assert!(
        e.contains("inherits none it has with its chip (atmega168)"),
        "{e}"
    );
    assert_eq!(like("named").named.as_deref(), Some("promini-5v"));
    assert_eq!(like("uno").named.as_deref(), Some("uno"));
    // A board that neither has a name ravedude has nor inherits one is left out.
    let (_tmp, db) = load_files(
        &[(
            "lone.toml",
            &builtin_source("uno")
                .unwrap()
                .replace("id = \"uno\"", "id = \"lone\"")
                .replace("aliases = [\"arduino-uno\", \"uno-r3\"]", "aliases = []"),
        )],
        &[],
    );
    let e = format!("{:#}", db.get("lone").unwrap_err());
    assert!(
        e.contains("ravedude has no board `lone`, and the board inherits none it has"),
        "{e}"
    );
}
