//! Version numbers of the tools nixflash runs (nix, the flashers, avrdude), read from what they
//! print.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Major, minor, patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// The first `X.Y[.Z]` in `text` (a leading `v` allowed, anything after the digits of a part
    /// ignored), e.g. in `ravedude v0.2.2 (no git)`, `nix (Nix) 2.26.3`, `2.4pre2021`.
    pub fn find_in(text: &str) -> Option<Version> {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.')) {
            let w = word.strip_prefix('v').unwrap_or(word);
            let mut parts = w.split('.');
            let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
                continue;
            };
            let num = |s: &str| -> Option<u32> {
                let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
                digits.parse().ok()
            };
            let (Some(major), Some(minor)) = (a.parse().ok(), num(b)) else {
                continue;
            };
            let patch = parts.next().and_then(num).unwrap_or(0);
            return Some(Version(major, minor, patch));
        }
        None
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl std::str::FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Version::find_in(s)
            .filter(|v| v.to_string() == s || format!("{}.{}", v.0, v.1) == s)
            .ok_or_else(|| format!("`{s}` is not a version (write it as 1.2.3)"))
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_found_in_tool_output() {
        assert_eq!(
            Version::find_in("ravedude v0.2.2 (no git)"),
            Some(Version(0, 2, 2))
        );
        assert_eq!(Version::find_in("espflash 4.0.1"), Some(Version(4, 0, 1)));
        assert_eq!(
            Version::find_in("avrdude version 7.1, URL: <https://github.com/avrdudes/avrdude>"),
            Some(Version(7, 1, 0))
        );
        assert_eq!(Version::find_in(" 6.3-20171130"), Some(Version(6, 3, 0)));
        assert_eq!(
            Version::find_in("nix (Nix) 2.26.3"),
            Some(Version(2, 26, 3))
        );
        assert_eq!(Version::find_in("2.4pre2021"), Some(Version(2, 4, 0)));
        assert_eq!(Version::find_in("no digits here"), None);
        assert!(Version(0, 1, 8) < Version(0, 2, 0));
        assert_eq!("0.2.0".parse::<Version>(), Ok(Version(0, 2, 0)));
        assert_eq!("6.3".parse::<Version>(), Ok(Version(6, 3, 0)));
        assert!("v6".parse::<Version>().is_err());
    }
}
