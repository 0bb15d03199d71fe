//! Addresses in the board's output, resolved to functions and source lines.
//!
//! A hex number written `0x…` with at least [`MIN_DIGITS`] digits (alone on its line, in
//! esp-backtrace's `Backtrace:` list, in a `mepc=0x…` or `MEPC : 0x…` register dump) that falls
//! inside one of the ELF's code sections is looked up in its DWARF debug info (addr2line and
//! gimli), inlined frames included, else in its symbol table. Addresses anywhere else (RAM,
//! peripherals, other numbers) are left alone.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

/// Fewer hex digits than this are taken for plain numbers, not addresses (`0x0a`, `0x1f`).
pub const MIN_DIGITS: usize = 3;

type Reader = gimli::EndianRcSlice<gimli::RunTimeEndian>;

/// What an ELF says about its code addresses.
pub struct Symbols {
    /// The address ranges of its code sections.
    code: Vec<Range<u64>>,
    /// Its DWARF, when it has some.
    dwarf: Option<addr2line::Context<Reader>>,
    /// Its function symbols `(start, end, mangled name)`, sorted by start.
    functions: Vec<(u64, u64, String)>,
    /// Paths under this folder are shown relative to it.
    root: Option<PathBuf>,
    /// Each address's annotation once it has been looked up (`None`: not a function's).
    cache: HashMap<u64, Option<Rc<str>>>,
}

impl Symbols {
    /// Reads the code ranges, DWARF and symbols of a parsed ELF.
    pub fn new(elf: &object::File<'_>, root: Option<&Path>) -> Symbols {
        let code = elf
            .sections()
            .filter(|s| s.kind() == SectionKind::Text && s.size() > 0)
            .map(|s| s.address()..s.address() + s.size())
            .collect();
        let mut functions: Vec<(u64, u64, String)> = elf
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
            .filter_map(|s| {
                let name = s.name().ok()?;
                Some((s.address(), s.address() + s.size(), name.to_string()))
            })
            .collect();
        functions.sort();
        Symbols {
            code,
            dwarf: load_dwarf(elf),
            functions,
            root: root.map(Path::to_path_buf),
            cache: HashMap::new(),
        }
    }

    /// Whether the ELF has line information (DWARF), not only symbol names.
    pub fn has_lines(&self) -> bool {
        self.dwarf.is_some()
    }

    /// Whether the ELF names any function in its symbol table.
    pub fn has_functions(&self) -> bool {
        !self.functions.is_empty()
    }

    /// The address ranges of the ELF's code sections.
    pub fn code(&self) -> &[Range<u64>] {
        &self.code
    }

    /// Appends to `out` one annotation for each distinct code address in `line`, each ending in
    /// `\n`: `0x42000a2e - fw::blink at src/main.rs:20`, and under it the functions it was
    /// inlined into, innermost first.
    pub fn annotate(&mut self, line: &str, out: &mut String) {
        let mut seen: Vec<u64> = Vec::new();
        for (text, address) in addresses(line) {
            if seen.contains(&address) || !self.code.iter().any(|r| r.contains(&address)) {
                continue;
            }
            seen.push(address);
            if let Some(a) = self.describe(address) {
                out.push_str(text);
                out.push_str(" - ");
                out.push_str(&a);
            }
        }
    }

    /// The annotation of a code address, looked up once.
    fn describe(&mut self, address: u64) -> Option<Rc<str>> {
        if let Some(known) = self.cache.get(&address) {
            return known.clone();
        }
        let found = self
            .in_dwarf(address)
            .or_else(|| self.in_symbols(address))
            .map(Rc::from);
        self.cache.insert(address, found.clone());
        found
    }

    /// `function at file:line\n`, then `    inlined into caller at file:line\n` for each
    /// function the first was inlined into. A location without a function DWARF knows of takes
    /// the symbol table's name.
    fn in_dwarf(&self, address: u64) -> Option<String> {
        let ctx = self.dwarf.as_ref()?;
        let mut frames = ctx.find_frames(address).skip_all_loads().ok()?;
        let mut out = String::new();
        while let Ok(Some(frame)) = frames.next() {
            let name = match &frame.function {
                Some(f) => f
                    .demangle()
                    .map(Cow::into_owned)
                    .unwrap_or_else(|_| "??".into()),
                None => match self.symbol(address) {
                    Some(name) => name,
                    None => continue,
                },
            };
            if !out.is_empty() {
                out.push_str("    inlined into ");
            }
            out.push_str(&name);
            if let Some(loc) = &frame.location {
                if let (Some(file), Some(line)) = (loc.file, loc.line) {
                    let _ = write!(out, " at {}:{line}", self.shown(file));
                }
            }
            out.push('\n');
        }
        (!out.is_empty()).then_some(out)
    }

    /// `function\n` from the symbol table, for an ELF without DWARF for this address.
    fn in_symbols(&self, address: u64) -> Option<String> {
        self.symbol(address).map(|name| name + "\n")
    }

    /// The demangled name of the function symbol that holds `address`.
    fn symbol(&self, address: u64) -> Option<String> {
        let after = self.functions.partition_point(|f| f.0 <= address);
        let (_, _, name) = self.functions[..after]
            .iter()
            .rev()
            .find(|f| (f.0..f.1).contains(&address))?;
        Some(format!("{:#}", rustc_demangle::demangle(name)))
    }

    /// A source path as it is shown: relative to the project when it is in it.
    fn shown<'p>(&self, file: &'p str) -> Cow<'p, str> {
        if let Some(root) = &self.root {
            if let Ok(rel) = Path::new(file).strip_prefix(root) {
                return Cow::Owned(rel.display().to_string());
            }
        }
        Cow::Borrowed(file)
    }
}

/// The ELF's DWARF, if it has a `.debug_info` section.
fn load_dwarf(elf: &object::File<'_>) -> Option<addr2line::Context<Reader>> {
    elf.section_by_name(".debug_info")?;
    let endian = if elf.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let load = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
        let data = elf
            .section_by_name(id.name())
            .and_then(|s| s.data().ok())
            .unwrap_or(&[]);
        Ok(gimli::EndianRcSlice::new(Rc::from(data), endian))
    };
    let dwarf = gimli::Dwarf::load(load).ok()?;
    addr2line::Context::from_dwarf(dwarf).ok()
}

/// The hex numbers written `0x…` in a line that may be addresses: at least [`MIN_DIGITS`] and at
/// most 16 digits, not part of a longer word. Each with its text as written.
pub fn addresses(line: &str) -> impl Iterator<Item = (&str, u64)> {
    let bytes = line.as_bytes();
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(i) = find_0x(&bytes[from..]).map(|i| i + from) {
            from = i + 2;
            if i > 0 && is_word(bytes[i - 1]) {
                continue;
            }
            let digits = bytes[i + 2..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            let end = i + 2 + digits;
            from = end;
            if !(MIN_DIGITS..=16).contains(&digits) || bytes.get(end).is_some_and(|&b| is_word(b)) {
                continue;
            }
            let value = u64::from_str_radix(&line[i + 2..end], 16).ok()?;
            return Some((&line[i..end], value));
        }
        None
    })
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Where `0x` or `0X` starts in `bytes`.
fn find_0x(bytes: &[u8]) -> Option<usize> {
    memchr::memchr2_iter(b'x', b'X', bytes)
        .find(|&i| i > 0 && bytes[i - 1] == b'0')
        .map(|i| i - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(line: &str) -> Vec<(&str, u64)> {
        addresses(line).collect()
    }

    #[test]
    fn addresses_are_hex_words_of_three_to_sixteen_digits() {
        assert_eq!(found("0x42000a2e"), [("0x42000a2e", 0x4200_0a2e)]);
        assert_eq!(
            found("mepc=0x42000a2e, mtval=0x00000000"),
            [("0x42000a2e", 0x4200_0a2e), ("0x00000000", 0)]
        );
        assert_eq!(
            found("MEPC    : 0x4200a2e6  RA      : 0X4200A2D8\r"),
            [("0x4200a2e6", 0x4200_a2e6), ("0X4200A2D8", 0x4200_a2d8)]
        );
        assert_eq!(
            found("pc 0x1f4 sp 0x8ff"),
            [("0x1f4", 0x1f4), ("0x8ff", 0x8ff)]
        );
        // Too short, part of a word, too long, or no number at all.
        assert!(found("flags 0x0a 0x1f").is_empty());
        assert!(found("id_0x42000a2e 0x42000a2eg 0x12345678901234567").is_empty());
        assert!(found("0x 00x1234 x0x1234 hello").is_empty());
        assert_eq!(found("(0x3fc8_0000) [0x400]"), [("0x400", 0x400)]);
    }
}
