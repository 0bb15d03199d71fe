//! What an ELF says about its code addresses: its code sections, and for an address in them
//! the function and source line, from its DWARF debug info (addr2line and gimli), inlined frames
//! included, else from its symbol table. The monitor annotates the addresses the board prints
//! with it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

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

    /// Whether `address` is in one of the ELF's code sections.
    pub fn in_code(&self, address: u64) -> bool {
        self.code.iter().any(|r| r.contains(&address))
    }

    /// The annotation of a code address (`fw::blink at src/main.rs:20\n`, then a line for each
    /// function it was inlined into), looked up once.
    pub fn describe(&mut self, address: u64) -> Option<Rc<str>> {
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
