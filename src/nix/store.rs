//! Whether the flake's inputs are in the Nix store yet (a first build downloads them): the store
//! path of a locked input follows from its narHash, the way Nix names a source tree it fetched.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Nix's base-32 alphabet (no e, o, t, u).
const BASE32: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// `bytes` in Nix's base 32: the bits taken from the end, 5 at a time.
fn base32(bytes: &[u8]) -> String {
    let len = (bytes.len() * 8).div_ceil(5);
    (0..len)
        .rev()
        .map(|n| {
            let b = n * 5;
            let (i, j) = (b / 8, b % 8);
            let low = u16::from(bytes[i]) >> j;
            let high = bytes.get(i + 1).map_or(0, |h| u16::from(*h) << (8 - j));
            BASE32[usize::from((low | high) & 0x1f)] as char
        })
        .collect()
}

/// Decodes standard base 64 (the `sha256-...` SRI form of a narHash).
fn base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The store path of a source tree named `name` with this NAR hash (`sha256-<base64>`), in
/// `store` (`/nix/store`).
pub fn source_path(store: &Path, nar_hash: &str, name: &str) -> Option<PathBuf> {
    let digest = base64(nar_hash.strip_prefix("sha256-")?)?;
    if digest.len() != 32 {
        return None;
    }
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let fingerprint = format!("source:sha256:{hex}:{}:{name}", store.display());
    let full = Sha256::digest(fingerprint.as_bytes());
    let mut short = [0u8; 20];
    for (i, b) in full.iter().enumerate() {
        short[i % 20] ^= b;
    }
    Some(store.join(format!("{}-{name}", base32(&short))))
}

/// The inputs of the flake in `flake_dir` (as flake.lock locks them) whose trees are not in the
/// store: what a build would download first. Inputs locked without a narHash are left out.
pub fn missing_inputs(flake_dir: &Path) -> Vec<String> {
    let store = std::env::var_os("NIX_STORE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/nix/store"));
    let Ok(text) = std::fs::read_to_string(flake_dir.join("flake.lock")) else {
        return Vec::new();
    };
    let Ok(inputs) = crate::flake_lock::parse(&text) else {
        return Vec::new();
    };
    inputs
        .into_iter()
        .filter_map(|(name, locked)| {
            let v: serde_json::Value = serde_json::from_str(&locked.json).ok()?;
            let path = source_path(&store, v.get("narHash")?.as_str()?, "source")?;
            (!path.exists()).then_some(name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_paths_of_the_pinned_inputs() {
        // What `nix store add-path --name source` of the fixture trees printed.
        let store = Path::new("/nix/store");
        let pins = crate::pins::pins().unwrap();
        assert_eq!(
            source_path(store, &pins["crane"].nar_hash, "source").unwrap(),
            Path::new("/nix/store/ddjqkn21kl77hqi7fz22rl8qqww6qrgf-source")
        );
        assert_eq!(
            source_path(store, &pins["rust-overlay"].nar_hash, "source").unwrap(),
            Path::new("/nix/store/y5lrl180y94y904wwnvz3w7s3q1n9jxg-source")
        );
        assert_eq!(source_path(store, "md5-x", "source"), None);
    }
}
