//! Tests of the family files as the database loads them: option data and family facts are
//! checked at load.

use super::tests::db_with;
use super::*;

/// The esp-riscv family file with `extra` appended (an option table), parsed and checked as a
/// built-in family is.
fn family_with(extra: &str) -> Result<Family> {
    let text = builtin_source("families/esp-riscv").unwrap();
    let origin = "boards/families/esp-riscv.toml";
    let family = Family::parse("esp-riscv", &format!("{text}\n{extra}"), origin)?;
    check_files(&family, origin)?;
    Ok(family)
}

#[test]
fn bad_option_data_is_refused_at_load() {
    family_with("").unwrap();
    let bad = |extra: &str| format!("{:#}", family_with(extra).unwrap_err());
    let e = bad(
        "[options.ble]\nabout = \"x\"\ndefault = \"off\"\nchoices.off = { about = \"no\" }\n\
         choices.on = { about = \"yes\", requires = { radio = \"on\" } }\n",
    );
    assert!(
        e.contains("`options.ble.choices.on.requires` names `radio`, which is no other option"),
        "{e}"
    );
    let e = bad(
        "[options.ble]\nabout = \"x\"\ndefault = \"off\"\nchoices.off = { about = \"no\" }\n\
         choices.on = { about = \"yes\", requires = { async = \"tokio\" } }\n",
    );
    assert!(
        e.contains("asks for `async = \"tokio\"`, which is not one of its choices (embassy, none)"),
        "{e}"
    );
    let e = bad(
        "[options.ble]\nabout = \"x\"\ndefault = \"off\"\nchoices.off = { about = \"no\" }\n\
         choices.on = { about = \"yes\", files = [\"src/ble.rs\"] }\n",
    );
    assert!(
        e.contains(
            "`options.ble.choices.on.files` names `src/ble.rs`, but templates/esp-riscv/ has no \
             src/ble.rs.jinja"
        ),
        "{e}"
    );
    let e = bad(
        "[options.ble]\nabout = \"x\"\ndefault = \"off\"\nchoices.off = { about = \"no\" }\n\
         choices.on = { about = \"yes\", lock = \"{chip}-ble\" }\n",
    );
    assert!(e.contains("is not a suffix of lowercase letters"), "{e}");
    let e = bad(
        "[options.ble]\nabout = \"x\"\ndefault = \"on\"\nchoices.off = { about = \"no\" }\n\
         choices.on = { about = \"yes\", requires = { alloc = \"on\" } }\n",
    );
    assert!(
        e.contains("is the default and requires other choices"),
        "{e}"
    );
    // A file the family has is fine.
    family_with(
        "[options.ble]\nabout = \"x\"\ndefault = \"off\"\nchoices.off = { about = \"no\" }\n\
         choices.on = { about = \"yes\", files = [\"build.rs\"] }\n",
    )
    .unwrap();
}

#[test]
fn option_chips_are_chips_of_the_family_s_boards() {
    let db = Database::builtin().unwrap();
    for f in db.families() {
        for (name, o) in &f.options {
            for chip in o.chips.iter().flatten() {
                assert!(
                    db.boards().any(|b| b.family_id == f.id && b.chip == *chip),
                    "options.{name}.chips of family `{}` names `{chip}`, no board's chip",
                    f.id
                );
            }
        }
    }
}

#[test]
fn family_facts_are_data_checked_at_load() {
    let db = db_with(&[]).unwrap();
    let pico = db.get("pico").unwrap();
    let console = pico.monitor.console.as_deref();
    assert_eq!(console, Some("UART0 (GP0 TX, GP1 RX)"));
    let vendor = pico.family().usb_vendor.as_ref().unwrap();
    assert_eq!(
        (vendor.id.as_str(), vendor.name.as_str()),
        ("2e8a", "Raspberry Pi")
    );
    assert!(db.get("uno").unwrap().family().usb_vendor.is_none());
    let name = |m| crate::board::family::elf_machine_name(db.families(), m);
    assert_eq!([name(83), name(243), name(40)], ["AVR", "RISC-V", "ARM"]);
    assert_eq!(name(62), "ELF machine 62");

    let text = builtin_source("families/esp-riscv").unwrap();
    let bad_vendor = format!("usb-vendor = {{ id = \"2E8A\", name = \"x\" }}\n{text}");
    let e = format!(
        "{:#}",
        Family::parse("x", &bad_vendor, "x.toml").unwrap_err()
    );
    assert!(
        e.contains("`usb-vendor.id` `2E8A` is not four lowercase hex digits"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        db_with(&[(
            "my.toml",
            "inherit = \"uno\"\nid = \"x\"\n[monitor]\nconsole = \"D1/D0\"\n"
        )])
        .unwrap_err()
    );
    assert!(e.contains("set `usb-console = false`"), "{e}");
}

#[test]
fn a_family_s_firmware_image_is_checked_at_load() {
    use crate::board::family::FirmwareImage;
    let parse = |id: &str, edit: &dyn Fn(String) -> String| {
        let text = builtin_source(&format!("families/{id}")).unwrap();
        Family::parse(id, &edit(text.to_string()), "f.toml").map(|f| f.firmware_image)
    };
    let err = |r: Result<FirmwareImage>| format!("{:#}", r.unwrap_err());
    assert_eq!(parse("avr", &|t| t).unwrap(), FirmwareImage::FlashSegments);
    assert_eq!(parse("esp-riscv", &|t| t).unwrap(), FirmwareImage::Flasher);
    // The flasher's image needs the command that saves it, naming the firmware and the image.
    let no_args = |t: String| {
        t.lines()
            .filter(|l| !l.starts_with("app-image-args"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let e = err(parse("esp-riscv", &no_args));
    assert!(e.contains("needs `flasher.app-image-args`"), "{e}");
    let no_elf = |t: String| {
        let at = t.rfind("\"{elf}\", ").unwrap();
        format!("{}{}", &t[..at], &t[at + "\"{elf}\", ".len()..])
    };
    let e = err(parse("esp-riscv", &no_elf));
    assert!(
        e.contains("`flasher.app-image-args` must name the firmware"),
        "{e}"
    );
    let e = err(parse("avr", &|t| {
        t.replace("\"flash-segments\"", "\"flasher\"")
    }));
    assert!(e.contains("needs `flasher.app-image-args`"), "{e}");
    let e = err(parse("avr", &|t| {
        t.replace("\"flash-segments\"", "\"hex\"")
    }));
    assert!(e.contains("unknown variant `hex`"), "{e}");
    let e = err(parse("avr", &|t| t.replace("firmware-image = ", "x = ")));
    assert!(
        e.contains("missing field `firmware-image`") || e.contains("unknown field `x`"),
        "{e}"
    );
}
