//! The source paths a firmware built by Nix names in its DWARF and panic messages: the project's
//! files as in the project (`src/main.rs`), its dependencies as `<crate>-<version>/src/...`,
//! never the Nix build folder (`/tmp/nix-build-<name>.drv-0/source/...`) nor the vendored
//! crates' store path (`/nix/store/<hash>-vendor-cargo-deps/<hash>/...`), so that the monitor's
//! annotations read the same from every checkout. Checked on the Uno's and the ESP32-C3 Wi-Fi
//! project's builds from scratch.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection};

use super::{from_scratch_with, ready, FromScratch};

#[test]
fn uno_elf_names_sources_as_in_the_project_and_crates_by_version() {
    let test = "uno_elf_names_sources_as_in_the_project_and_crates_by_version";
    let Some(off) = ready(test, &["git"]) else {
        return;
    };
    check_source_paths(&super::uno::uno(off), &["arduino-hal-", "avr-device-"]);
}

#[test]
fn esp32c3_elf_names_sources_as_in_the_project_and_crates_by_version() {
    let test = "esp32c3_elf_names_sources_as_in_the_project_and_crates_by_version";
    let Some(off) = ready(test, &["git"]) else {
        return;
    };
    // The same build from scratch as esp.rs's (the Wi-Fi project, the same arguments).
    let built = from_scratch_with(off, "wifi", "esp32c3", &["-o", "wifi"], &["--json"]);
    check_source_paths(&built, &["esp-hal-", "riscv-rt-", "esp-radio-"]);
}

/// The built ELF's source paths are `src/main.rs` for the project and `<crate>-<version>/...`
/// for each crate of `crates` (name prefixes); no path names the build folder or the vendor
/// folder, in the DWARF or anywhere else in the file.
fn check_source_paths(built: &FromScratch, crates: &[&str]) {
    let elf = built.elf();
    let files = dwarf_files(&elf);
    let list = files.iter().cloned().collect::<Vec<_>>().join("\n  ");
    assert!(
        files.contains("src/main.rs"),
        "the ELF does not name the project's src/main.rs as `src/main.rs`:\n  {list}"
    );
    for krate in crates {
        let named = files.iter().any(|f| {
            f.strip_prefix(krate).is_some_and(|rest| {
                rest.starts_with(|c: char| c.is_ascii_digit()) && rest.contains("/src/")
            })
        });
        assert!(
            named,
            "no source of {krate}<version>/src/... in the ELF's DWARF:\n  {list}"
        );
    }
    for f in &files {
        assert!(
            !f.contains("nix-build-")
                && !f.contains("vendor-cargo-deps")
                && !f.contains("/source/src/"),
            "the ELF names a source by a path of the build: {f}\n  {list}"
        );
    }
    let bytes = fs::read(&elf).unwrap();
    for needle in ["nix-build-", "vendor-cargo-deps"] {
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle.as_bytes());
        if let Some(at) = at {
            let from = at.saturating_sub(80);
            panic!(
                "{} holds `{needle}`: {:?}",
                elf.display(),
                String::from_utf8_lossy(&bytes[from..(at + 160).min(bytes.len())])
            );
        }
    }
    crate::common::measured(&format!(
        "{}: {} source files named in its DWARF, the project's as src/main.rs",
        built.name,
        files.len()
    ));
}

/// Every file named by the line programs of an ELF's DWARF, each as addr2line shows it: its
/// unit's folder, then its own folder, then its name (an absolute part replacing what is before).
fn dwarf_files(elf: &Path) -> BTreeSet<String> {
    let data = fs::read(elf).unwrap();
    let obj = object::File::parse(&*data).unwrap();
    let endian = if obj.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let load = |id: gimli::SectionId| -> Result<_, gimli::Error> {
        let d = obj
            .section_by_name(id.name())
            .and_then(|s| s.data().ok())
            .unwrap_or(&[]);
        Ok(gimli::EndianSlice::new(d, endian))
    };
    let dwarf = gimli::Dwarf::load(load).unwrap();
    let text = |r: gimli::EndianSlice<'_, gimli::RunTimeEndian>| r.to_string_lossy().into_owned();
    let mut files = BTreeSet::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next().unwrap() {
        let unit = dwarf.unit(header).unwrap();
        let comp_dir = unit.comp_dir.map(text).unwrap_or_default();
        let Some(program) = unit.line_program.clone() else {
            continue;
        };
        let header = program.header();
        for file in header.file_names() {
            let mut path = PathBuf::from(&comp_dir);
            if let Some(dir) = file.directory(header) {
                path.push(text(dwarf.attr_string(&unit, dir).unwrap()));
            }
            path.push(text(dwarf.attr_string(&unit, file.path_name()).unwrap()));
            files.insert(path.display().to_string());
        }
    }
    assert!(!files.is_empty(), "{} has no line tables", elf.display());
    files
}
