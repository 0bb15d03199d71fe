//! Two builds of one firmware compared: the files as a whole, then section by section (by name,
//! in the order of the first file's section headers), so that a rebuild that is not identical
//! says where it differs (`.data  8 of 24 bytes differ`) and by how much.

use anyhow::{Context, Result};
use object::{Object, ObjectSection};
use serde::Serialize;

/// How one section of the first file compares with the section of the same name in the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Same bytes, size and address.
    Same,
    /// Other bytes, another size or another address.
    Differs,
    /// The first file has it, the second does not.
    OnlyInFirst,
    /// The second file has it, the first does not.
    OnlyInSecond,
}

/// One section compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub name: String,
    pub state: State,
    /// Its size in the first file, and in the second (0 where it is missing).
    pub size: u64,
    pub other_size: u64,
    /// Bytes that differ where both have bytes (a section without bytes in the file, such as
    /// `.bss`, has none to differ: only its size can).
    pub differing_bytes: u64,
    /// Whether its address differs.
    pub moved: bool,
}

impl Section {
    /// What differs, as a table row says it after the name: `8 of 24 bytes differ`,
    /// `24 bytes, 4 more (28)`, `only in the first`, `moved from 0x100 to 0x120`.
    pub fn describe(&self, first: &str, second: &str) -> String {
        match self.state {
            State::Same => "same".to_string(),
            State::OnlyInFirst => format!("only in {first} ({} bytes)", self.size),
            State::OnlyInSecond => format!("only in {second} ({} bytes)", self.other_size),
            State::Differs => {
                let mut parts = Vec::new();
                if self.differing_bytes > 0 {
                    parts.push(format!(
                        "{} of {} bytes differ",
                        self.differing_bytes,
                        self.size.min(self.other_size)
                    ));
                }
                if self.size != self.other_size {
                    let (d, word) = if self.other_size > self.size {
                        (self.other_size - self.size, "longer")
                    } else {
                        (self.size - self.other_size, "shorter")
                    };
                    parts.push(format!(
                        "{d} bytes {word} in {second} ({} instead of {})",
                        self.other_size, self.size
                    ));
                }
                if self.moved {
                    parts.push("at another address".to_string());
                }
                parts.join(", ")
            }
        }
    }
}

/// Two files compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// Whether the files are the same, byte for byte.
    pub identical: bool,
    /// The two files' sizes, and how many bytes differ where both have bytes.
    pub size: u64,
    pub other_size: u64,
    pub differing_bytes: u64,
    /// Every section, in the order of the first file's section headers (then those only the
    /// second has, in its order).
    pub sections: Vec<Section>,
}

impl Comparison {
    /// The sections that are not the same.
    pub fn differing(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter().filter(|s| s.state != State::Same)
    }
}

/// Bytes that differ between `a` and `b` where both have bytes.
fn differing(a: &[u8], b: &[u8]) -> u64 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as u64
}

/// A section as compared: name, address, size and bytes in the file.
struct Part<'d> {
    name: String,
    address: u64,
    size: u64,
    data: &'d [u8],
}

fn parts<'d>(data: &'d [u8], which: &str) -> Result<Vec<Part<'d>>> {
    let file = super::parse(data).with_context(|| format!("{which} is not an ELF file"))?;
    // The null section (index 0, no name) is in every ELF: left out.
    file.sections()
        .filter(|s| !s.name().unwrap_or("").is_empty())
        .map(|s| {
            Ok(Part {
                name: s.name().unwrap_or("?").to_string(),
                address: s.address(),
                size: s.size(),
                data: s
                    .data()
                    .with_context(|| format!("a section of {which} lies outside the file"))?,
            })
        })
        .collect()
}

/// Compares the ELF files `first` and `second`. A section is matched with the one of the same
/// name (the nth of that name with the nth).
pub fn compare(first: &[u8], second: &[u8]) -> Result<Comparison> {
    let a = parts(first, "the first file")?;
    let b = parts(second, "the second file")?;
    let nth = |list: &[Part], i: usize| -> usize {
        list[..i].iter().filter(|p| p.name == list[i].name).count()
    };
    let find = |list: &[Part], name: &str, n: usize| -> Option<usize> {
        list.iter()
            .enumerate()
            .filter(|(_, p)| p.name == name)
            .nth(n)
            .map(|(i, _)| i)
    };
    let mut matched = vec![false; b.len()];
    let mut sections = Vec::new();
    for (i, p) in a.iter().enumerate() {
        let Some(j) = find(&b, &p.name, nth(&a, i)) else {
            sections.push(Section {
                name: p.name.clone(),
                state: State::OnlyInFirst,
                size: p.size,
                other_size: 0,
                differing_bytes: 0,
                moved: false,
            });
            continue;
        };
        matched[j] = true;
        let q = &b[j];
        let differing_bytes = differing(p.data, q.data);
        let moved = p.address != q.address;
        let same = differing_bytes == 0 && p.size == q.size && p.data.len() == q.data.len();
        sections.push(Section {
            name: p.name.clone(),
            state: if same && !moved {
                State::Same
            } else {
                State::Differs
            },
            size: p.size,
            other_size: q.size,
            differing_bytes,
            moved,
        });
    }
    for (q, _) in b.iter().zip(&matched).filter(|(_, m)| !**m) {
        sections.push(Section {
            name: q.name.clone(),
            state: State::OnlyInSecond,
            size: 0,
            other_size: q.size,
            differing_bytes: 0,
            moved: false,
        });
    }
    Ok(Comparison {
        identical: first == second,
        size: first.len() as u64,
        other_size: second.len() as u64,
        differing_bytes: differing(first, second),
        sections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/project/firmware.elf"
        ))
        .unwrap()
    }

    /// Where the section `name` of `elf` starts in the file, and its size.
    fn place(elf: &[u8], name: &str) -> (usize, usize) {
        let f = object::File::parse(elf).unwrap();
        let s = f.section_by_name(name).unwrap();
        let (at, size) = s.file_range().unwrap();
        (at as usize, size as usize)
    }

    #[test]
    fn a_file_compared_with_itself_is_identical_in_every_section() {
        let elf = fixture();
        let c = compare(&elf, &elf).unwrap();
        assert!(c.identical);
        assert_eq!(c.differing_bytes, 0);
        assert_eq!(c.differing().count(), 0);
        let names: Vec<&str> = c.sections.iter().map(|s| s.name.as_str()).collect();
        // In the order of the section headers (readelf -S), .bss (no bytes in the file) too.
        assert_eq!(&names[..4], [".data", ".text", ".bss", ".comment"]);
        assert_eq!(c.sections[0].size, 24);
    }

    #[test]
    fn changed_bytes_are_counted_in_their_section() {
        let elf = fixture();
        let mut other = elf.clone();
        let (at, size) = place(&elf, ".data");
        for b in &mut other[at + 2..at + 10] {
            *b ^= 0xff;
        }
        let c = compare(&elf, &other).unwrap();
        assert!(!c.identical);
        assert_eq!(c.differing_bytes, 8);
        let diff: Vec<&Section> = c.differing().collect();
        assert_eq!(diff.len(), 1, "{diff:?}");
        assert_eq!(diff[0].name, ".data");
        assert_eq!(diff[0].state, State::Differs);
        assert_eq!(diff[0].differing_bytes, 8);
        assert_eq!(
            (diff[0].size, diff[0].other_size),
            (size as u64, size as u64)
        );
        assert_eq!(
            diff[0].describe("the build", "the rebuild"),
            "8 of 24 bytes differ"
        );
    }

    #[test]
    fn a_changed_header_differs_in_the_file_but_in_no_section() {
        let elf = fixture();
        let mut other = elf.clone();
        other[0x18] ^= 1; // e_entry
        let c = compare(&elf, &other).unwrap();
        assert!(!c.identical);
        assert_eq!(c.differing_bytes, 1);
        assert_eq!(c.differing().count(), 0);
    }

    #[test]
    fn sections_only_in_one_file_and_other_sizes_are_said() {
        let elf = fixture();
        let more = crate::firmware::section::with_section(&elf, ".mmcu", b"atmega").unwrap();
        let c = compare(&elf, &more).unwrap();
        let diff: Vec<&Section> = c.differing().collect();
        // .shstrtab gained a name; .mmcu is new.
        assert_eq!(diff.len(), 2, "{diff:?}");
        assert_eq!(diff[0].name, ".shstrtab");
        assert_eq!(
            diff[0].describe("the build", "the rebuild"),
            "6 bytes longer in the rebuild (84 instead of 78)"
        );
        assert_eq!(diff[1].name, ".mmcu");
        assert_eq!(diff[1].state, State::OnlyInSecond);
        assert_eq!(
            diff[1].describe("the build", "the rebuild"),
            "only in the rebuild (6 bytes)"
        );
        let back = compare(&more, &elf).unwrap();
        let gone = back.differing().find(|s| s.name == ".mmcu").unwrap();
        assert_eq!(gone.state, State::OnlyInFirst);
        assert!(compare(&elf, b"not an elf").is_err());
    }
}
