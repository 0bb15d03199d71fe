//! The firmware's defmt table (its `.defmt` section, read by defmt-decoder), with where each
//! log call is in the source (from its DWARF): what the monitor decodes defmt frames with.

use std::collections::BTreeMap;
use std::path::Path;

use defmt_decoder::{Encoding, Table};

/// An ELF's defmt table and its log calls' places.
pub struct DefmtTable {
    pub table: Table,
    /// Where each log call of the table is in the source, as shown after its message:
    /// ` (src/main.rs:20)`; empty without DWARF.
    pub places: BTreeMap<u64, String>,
}

impl DefmtTable {
    /// The table of an ELF: `Ok(None)` when it has no `.defmt` section, `Err(why)` when it has
    /// one that cannot be used (only rzCOBS frames can share a port with text). Source paths
    /// under `root` are shown relative to it.
    pub fn read(elf: &[u8], root: Option<&Path>) -> Result<Option<DefmtTable>, String> {
        let table = match Table::parse(elf) {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(None),
            Err(e) => return Err(format!("its .defmt section cannot be read: {e}")),
        };
        if table.encoding() != Encoding::Rzcobs {
            return Err(format!(
                "it sends defmt frames {:?}-encoded; only rzCOBS frames (esp-println's \
                 defmt-espflash) can share the port with text",
                table.encoding()
            ));
        }
        let places: BTreeMap<u64, String> = table
            .get_locations(elf)
            .unwrap_or_default()
            .into_iter()
            .map(|(index, loc)| {
                let file = match root {
                    Some(root) => loc.file.strip_prefix(root).unwrap_or(&loc.file),
                    None => &loc.file,
                };
                (index, format!(" ({}:{})", file.display(), loc.line))
            })
            .collect();
        Ok(Some(DefmtTable { table, places }))
    }
}
