//! Addresses in the board's output, resolved to functions and source lines.
//!
//! A hex number written `0x…` with at least [`MIN_DIGITS`] digits (alone on its line, in
//! esp-backtrace's `Backtrace:` list, in a `mepc=0x…` or `MEPC : 0x…` register dump) that falls
//! inside one of the ELF's code sections is looked up in the firmware's [`Symbols`]. Addresses
//! anywhere else (RAM, peripherals, other numbers) are left alone.

use crate::firmware::symbols::Symbols;

/// Fewer hex digits than this are taken for plain numbers, not addresses (`0x0a`, `0x1f`).
pub const MIN_DIGITS: usize = 3;

/// Appends to `out` one annotation for each distinct code address in `line`, each ending in
/// `\n`: `0x42000a2e - fw::blink at src/main.rs:20`, and under it the functions it was
/// inlined into, innermost first.
pub fn annotate(symbols: &mut Symbols, line: &str, out: &mut String) {
    let mut seen: Vec<u64> = Vec::new();
    for (text, address) in addresses(line) {
        if seen.contains(&address) || !symbols.in_code(address) {
            continue;
        }
        seen.push(address);
        if let Some(a) = symbols.describe(address) {
            out.push_str(text);
            out.push_str(" - ");
            out.push_str(&a);
        }
    }
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
