//! The code's own rules that a reviewer would otherwise have to count by hand: no Rust file of
//! nixflash (src/, tests/, examples/) over 600 lines, no function in src/ over 100 lines, and no
//! tracked file with a path of the machine it was written on; and no cycle between the library's
//! modules ([`cycles`]).

mod cycles;

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

const MAX_FN_LINES: usize = 100;

/// The functions in `source` (free functions, methods, trait methods with a body, nested ones)
/// longer than `limit` lines, counted from the `fn` line to the closing brace (comments inside
/// count), as `name: N lines (line L)`. syn parses the file, so braces in strings, chars and
/// comments do not count.
fn long_functions(source: &str, limit: usize) -> Vec<String> {
    use syn::spanned::Spanned;
    use syn::visit::Visit;

    struct Finder {
        limit: usize,
        found: Vec<String>,
    }
    impl Finder {
        fn check(&mut self, sig: &syn::Signature, block: &syn::Block) {
            let start = sig.fn_token.span().start().line;
            let end = block.brace_token.span.close().end().line;
            let n = end - start + 1;
            if n > self.limit {
                self.found
                    .push(format!("{}: {n} lines (line {start})", sig.ident));
            }
        }
    }
    impl<'a> Visit<'a> for Finder {
        fn visit_item_fn(&mut self, f: &'a syn::ItemFn) {
            self.check(&f.sig, &f.block);
            syn::visit::visit_item_fn(self, f);
        }
        fn visit_impl_item_fn(&mut self, f: &'a syn::ImplItemFn) {
            self.check(&f.sig, &f.block);
            syn::visit::visit_impl_item_fn(self, f);
        }
        fn visit_trait_item_fn(&mut self, f: &'a syn::TraitItemFn) {
            if let Some(block) = &f.default {
                self.check(&f.sig, block);
            }
            syn::visit::visit_trait_item_fn(self, f);
        }
    }
    let file = syn::parse_file(source).unwrap_or_else(|e| panic!("cannot parse: {e}"));
    let mut finder = Finder {
        limit,
        found: Vec::new(),
    };
    finder.visit_file(&file);
    finder.found
}

#[test]
fn long_functions_are_found_and_braces_in_strings_and_comments_do_not_count() {
    let source = "fn short() {\n    let s = \"}}}\"; // }\n}\n\n\
                  impl X {\n    /// }\n    fn long(&self) {\n        let c = '{';\n        \
                  /* { */\n        let r = r#\"{\"#;\n    }\n}\n";
    assert_eq!(long_functions(source, 3), ["long: 5 lines (line 7)"]);
    assert!(long_functions(source, 5).is_empty());
    // The real source has functions over a lower limit, so the test below is not vacuous.
    let main = std::fs::read_to_string(repo().join("src/cmd/flash.rs")).unwrap();
    assert!(
        !long_functions(&main, 40).is_empty(),
        "no function over 40 lines in src/cmd/flash.rs"
    );
}

#[test]
fn no_function_in_src_is_over_100_lines() {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    assert!(files.len() > 30, "only {} files found", files.len());
    let mut long = Vec::new();
    let mut over_40 = 0;
    for f in &files {
        let source = std::fs::read_to_string(f).unwrap();
        let name = f.strip_prefix(repo()).unwrap().display().to_string();
        over_40 += long_functions(&source, 40).len();
        long.extend(
            long_functions(&source, MAX_FN_LINES)
                .into_iter()
                .map(|l| format!("{name}: {l}")),
        );
    }
    // The scanner sees src/'s functions: many are over 40 lines.
    assert!(
        over_40 > 10,
        "only {over_40} functions in src/ over 40 lines"
    );
    assert!(
        long.is_empty(),
        "split these into named steps (at most {MAX_FN_LINES} lines a function):\n{}",
        long.join("\n")
    );
}

/// The absolute paths in `text` that name a folder of some machine: a home folder (`/home/…`,
/// `/Users/…`, `/root`), a work folder (`/work/…`), or where this checkout lies (`checkout`, the
/// folder holding the repository). Nix store paths, URLs (`https://host/home/…`) and paths
/// under a variable (`$HOME/…`, `~/…`) are not.
fn machine_paths(text: &str, checkout: &str) -> Vec<String> {
    let path_char = |c: char| c.is_ascii_alphanumeric() || "._/@+-~%".contains(c);
    let mut found = Vec::new();
    for line in text.lines() {
        let bytes = line.as_bytes();
        for (i, _) in line.match_indices('/') {
            // The start of a path: at the start of a word (not after a name, a folder, a
            // variable or a placeholder such as `/proc/<pid>/root`).
            if i > 0
                && !(bytes[i - 1] as char).is_whitespace()
                && !"'\"`(<[{,=:".contains(bytes[i - 1] as char)
            {
                continue;
            }
            // Not in a URL.
            let word_start = line[..i]
                .rfind(|c: char| c.is_whitespace() || "'\"`(<[{,=".contains(c))
                .map_or(0, |w| w + 1);
            if line[word_start..i].contains("://") {
                continue;
            }
            let end = line[i..]
                .find(|c: char| !path_char(c))
                .map_or(line.len(), |e| i + e);
            let path = &line[i..end];
            let under = |folder: &str| path == folder || path.starts_with(&format!("{folder}/"));
            if ["/home", "/Users", "/root", "/work"]
                .iter()
                .any(|f| path.len() > f.len() + 1 && under(f) || *f == "/root" && path == "/root")
                || (checkout.len() > 1 && under(checkout))
            {
                found.push(path.to_string());
            }
        }
    }
    found
}

#[test]
fn machine_paths_are_found_and_store_paths_and_urls_are_not() {
    let found = machine_paths(
        "    'path:/work/wt-build/tests/fixtures/overlay?lastModified=1' (2026-11-23)\n\
         export PATH=/root/.cargo/bin HOME=/root\n\
         git -C /home/me/blinky add\n\
         /Users/me/p and /srv/ci/nixflash/src/main.rs\n\
         /nix/store/aaaa-source/home/x https://github.com/home/x $HOME/work/x ~/work a/work/b\n\
         /homework /tmp/tmp.XCAZzN4ufo/p /path/to/nixflash /proc/<pid>/root /proc/{}/root",
        "/srv/ci",
    );
    assert_eq!(
        found,
        [
            "/work/wt-build/tests/fixtures/overlay",
            "/root/.cargo/bin",
            "/root",
            "/home/me/blinky",
            "/Users/me/p",
            "/srv/ci/nixflash/src/main.rs",
        ]
    );
}

/// No tracked file names a folder of the machine it was written on (a captured log with the
/// path of a worktree, a test with someone's home): they mean nothing on another machine.
#[test]
fn no_tracked_file_has_a_machine_s_path() {
    let o = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "git ls-files failed");
    let checkout = repo()
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut bad = Vec::new();
    let files: Vec<&[u8]> = o
        .stdout
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .collect();
    assert!(files.len() > 100, "only {} tracked files", files.len());
    for f in files {
        let f = String::from_utf8_lossy(f).into_owned();
        // This file's own examples.
        if f == "tests/it/layout.rs" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(repo().join(&f)) else {
            continue; // not text (or deleted in the work tree)
        };
        for p in machine_paths(&text, &checkout) {
            bad.push(format!("{f}: {p}"));
        }
    }
    assert!(
        bad.is_empty(),
        "tracked files name folders of a machine (use a placeholder, or a path relative to the \
         repository):\n{}",
        bad.join("\n")
    );
}
