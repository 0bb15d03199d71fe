//! The rendered projects compile to firmware with the real compiler (`common::firmware`).
//!
//! Needs the firmware tools from `../shared/tools/install-firmware-tools.sh` (Debian's rustc with
//! the std source, ld.lld, avr-gcc); the Uno project takes arduino-hal from the avr-hal bundle in
//! ../shared/fixtures.

use crate::common;
use crate::common::firmware::{build, elf_machine, Kind, ELFCLASS32, EM_AVR, EM_RISCV};

use object::{Object, ObjectSection, ObjectSymbol};

#[test]
fn esp32c3_project_compiles_to_a_riscv_elf() {
    let built = match build(Kind::Esp32c3) {
        Ok(b) => b,
        Err(why) => return common::skip("esp32c3_project_compiles_to_a_riscv_elf", &why),
    };
    assert_eq!(elf_machine(&built.elf), (ELFCLASS32, EM_RISCV));
}

/// `nixflash new --log defmt`: the project builds, and its ELF carries the defmt table of the
/// template's log calls (the .defmt section) that the monitor decodes frames with.
#[test]
fn esp32c3_defmt_project_compiles_with_its_defmt_table() {
    let built = match build(Kind::Esp32c3Defmt) {
        Ok(b) => b,
        Err(why) => {
            return common::skip("esp32c3_defmt_project_compiles_with_its_defmt_table", &why)
        }
    };
    assert_eq!(elf_machine(&built.elf), (ELFCLASS32, EM_RISCV));
    let data = std::fs::read(&built.elf).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    assert!(elf.section_by_name(".defmt").is_some(), "no .defmt section");
    let strings: Vec<String> = elf
        .symbols()
        .filter(|s| s.section_index() == elf.section_by_name(".defmt").map(|d| d.index()))
        .filter_map(|s| s.name().ok().map(str::to_string))
        .collect();
    for want in [
        "\"data\":\"Hello from fw on the ESP32-C3-DevKitM-1!\"",
        "\"data\":\"GPIO8 is {=str}\"",
    ] {
        assert!(
            strings
                .iter()
                .any(|s| s.contains(want) && s.contains("\"tag\":\"defmt_info\"")),
            "no {want} in {strings:#?}"
        );
    }
    // The wire format the monitor's defmt-decoder reads.
    assert!(
        elf.symbols().any(|s| s.name() == Ok("_defmt_version_ = 4")),
        "not defmt wire format 4"
    );
    assert!(
        elf.symbols()
            .any(|s| s.name() == Ok("_defmt_encoding_ = rzcobs")),
        "not rzCOBS-encoded"
    );
}

#[test]
fn uno_project_compiles_to_an_avr_elf() {
    let built = match build(Kind::Uno) {
        Ok(b) => b,
        Err(why) => return common::skip("uno_project_compiles_to_an_avr_elf", &why),
    };
    assert_eq!(elf_machine(&built.elf), (ELFCLASS32, EM_AVR));
}
