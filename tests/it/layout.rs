//! The code's own rules that a reviewer would otherwise have to count by hand: no Rust file of
//! nixflash (src/, tests/, examples/) over 600 lines.

use std::path::{Path, PathBuf};

use crate::common::repo;

const MAX_LINES: usize = 600;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            // Test scratch and npm packages are not nixflash's code.
            if !path.ends_with("node_modules") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_rust_file_is_over_600_lines() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "examples"] {
        rust_files(&repo().join(dir), &mut files);
    }
    assert!(files.len() > 50, "only {} files found", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > MAX_LINES)
                .then(|| format!("{}: {n} lines", f.strip_prefix(repo()).unwrap().display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by area (at most {MAX_LINES} lines a file):\n{}",
        long.join("\n")
    );
}
