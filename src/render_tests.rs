//! Tests of rendering: every board and option combination, the lock data, Cargo.lock.

use super::*;
use std::path::Path;

#[test]
fn every_board_renders_and_every_toml_parses() {
    let pins = pins().unwrap();
    let db = crate::board::Database::builtin().unwrap();
    for (b, p) in db.boards().flat_map(|b| {
        Project::variants(b, "my-fw")
            .into_iter()
            .map(move |p| (b, p))
    }) {
        let files = render(b, &p).unwrap();
        let names: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
        assert!(names.iter().any(|n| n == "Cargo.lock"), "{}", b.id);
        for want in [
            "Cargo.toml",
            "src/main.rs",
            "rust-toolchain.toml",
            ".cargo/config.toml",
            "flake.nix",
            "flake.lock",
            ".envrc",
            ".gitignore",
            "README.md",
        ] {
            assert!(names.iter().any(|n| n == want), "{}: no {want}", b.id);
        }
        for f in &files {
            let name = f.path.display().to_string();
            if name == "flake.lock" {
                let lock: serde_json::Value = serde_json::from_str(&f.contents).unwrap();
                let flake = &files
                    .iter()
                    .find(|f| f.path == Path::new("flake.nix"))
                    .unwrap()
                    .contents;
                for (input, pin) in &pins {
                    assert_eq!(lock["nodes"]["root"]["inputs"][input], input.as_str());
                    assert_eq!(lock["nodes"][input]["locked"]["rev"], pin.rev.as_str());
                    assert!(
                        flake.contains(&format!("url = \"{}\";", pin.url)),
                        "{}: flake.nix does not name {input} as {}",
                        b.id,
                        pin.url
                    );
                }
            } else if name.ends_with(".toml") || name.ends_with(".lock") {
                let t: toml::Table =
                    toml::from_str(&f.contents).unwrap_or_else(|e| panic!("{}: {name}: {e}", b.id));
                if name == "Cargo.toml" {
                    assert_eq!(
                        t["package"]["metadata"]["nixflash"]["board"].as_str(),
                        Some(b.id.as_str())
                    );
                    assert_eq!(t["package"]["name"].as_str(), Some("my-fw"));
                }
                if name == "Cargo.lock" {
                    let pkgs = t["package"].as_array().unwrap();
                    assert!(pkgs.iter().any(|p| p["name"].as_str() == Some("my-fw")));
                    assert!(!f.contents.contains("@root"));
                }
            }
            // GitHub Actions' own expressions are `${{ ... }}`.
            let left = f.contents.replace("${{", "");
            assert!(
                !left.contains("{{") && !left.contains("{%"),
                "{}: {name}",
                b.id
            );
        }
    }
}

#[test]
fn choices_name_their_locks_and_every_lock_is_there() {
    let db = crate::board::Database::builtin().unwrap();
    let c3 = db.get("esp32c3").unwrap();
    let lock = |opts: &[(&str, &str)]| {
        let mut p = Project::new("p");
        for (n, c) in opts {
            p = p.with_option(n, c);
        }
        lock_name(c3, &p).unwrap()
    };
    assert_eq!(lock(&[]), "esp32c3");
    assert_eq!(lock(&[("log", "defmt")]), "esp32c3-defmt");
    assert_eq!(lock(&[("log", "println")]), "esp32c3");
    // By option name: alloc, async, log, wifi; wifi brings async and alloc.
    assert_eq!(
        lock(&[("wifi", "on"), ("log", "defmt")]),
        "esp32c3-alloc-embassy-defmt-wifi"
    );
    assert_eq!(lock(&[("async", "embassy")]), "esp32c3-embassy");
    assert_eq!(
        lock_name(
            db.get("pico").unwrap(),
            &Project::new("p").with_option("async", "embassy")
        )
        .unwrap(),
        "rp2040-embassy"
    );
    // Every lock a project can need is there.
    for b in db.boards() {
        for p in Project::variants(b, "p") {
            lock_template(b, &p).unwrap();
        }
    }
}

#[test]
fn lock_gets_the_root_package_in_order() {
    let deps = "version = 4\n\n[[package]]\nname = \"@root\"\ndependencies = [\n \"b\",\n]\n\n\
                [[package]]\nname = \"b\"\nversion = \"1.0.0\"\n\n\
                [[package]]\nname = \"d\"\nversion = \"1.0.0\"\n";
    let lock = complete_lock(deps, &Project::new("c"));
    assert_eq!(
        lock,
        "version = 4\n\n[[package]]\nname = \"b\"\nversion = \"1.0.0\"\n\n\
         [[package]]\nname = \"c\"\nversion = \"0.1.0\"\ndependencies = [\n \"b\",\n]\n\n\
         [[package]]\nname = \"d\"\nversion = \"1.0.0\"\n"
    );
}
