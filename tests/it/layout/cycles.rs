//! The library's top-level modules use each other without a cycle. The module graph is read from
//! the source with syn: `crate::x` paths (in `use` items, code and macro arguments) and `super::`
//! paths that climb to the crate's root, in the modules src/lib.rs declares.

use std::path::PathBuf;

use crate::common::repo;

/// Where the code of each module of the library lies: the module's path in the crate
/// (`["monitor", "decode"]`) and its file, found from src/lib.rs through its `mod x;` items
/// (`#[path]` included). Test-only modules (`#[cfg(test)]`) are left out: what they use is not a
/// dependency of the program. The command line (main.rs, src/cmd/) is another crate.
fn library_files() -> Vec<(Vec<String>, PathBuf)> {
    fn walk(module: Vec<String>, file: PathBuf, out: &mut Vec<(Vec<String>, PathBuf)>) {
        let source = std::fs::read_to_string(&file).unwrap();
        let parsed = syn::parse_file(&source)
            .unwrap_or_else(|e| panic!("cannot parse {}: {e}", file.display()));
        let dir = file.parent().unwrap().to_path_buf();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        // Where `mod x;` looks for x: beside lib.rs and mod.rs, in a folder named for others.
        let children = if stem == "lib" || stem == "mod" {
            dir.clone()
        } else {
            dir.join(&stem)
        };
        for item in &parsed.items {
            let syn::Item::Mod(m) = item else { continue };
            if m.content.is_some() || is_test_only(&m.attrs) {
                continue;
            }
            let name = m.ident.to_string();
            let explicit = m.attrs.iter().find_map(|a| match &a.meta {
                syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) => Some(dir.join(s.value())),
                    _ => None,
                },
                _ => None,
            });
            let child = explicit.unwrap_or_else(|| {
                let flat = children.join(format!("{name}.rs"));
                if flat.exists() {
                    flat
                } else {
                    children.join(&name).join("mod.rs")
                }
            });
            let mut path = module.clone();
            path.push(name);
            walk(path, child, out);
        }
        out.push((module, file));
    }
    let mut out = Vec::new();
    walk(Vec::new(), repo().join("src/lib.rs"), &mut out);
    out
}

/// `#[cfg(test)]` (or a `cfg` naming `test` in an `all`/`any`).
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta.require_list().is_ok_and(|l| {
                l.tokens
                    .to_string()
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|w| w == "test")
            })
    })
}

/// A use of top-level module `to` by code of top-level module `from`, and where (`file:line`).
type Edge = (String, String, String);

/// The uses between top-level modules in the source of module `module` (its path in the
/// crate): paths starting `crate::x` (in `use` items, code and macro arguments) and `super::`
/// paths that climb to the crate's root. `tops` are the top-level modules (`crate::fail!` is a
/// macro, not a module). Test-only items are left out.
fn module_uses(module: &[String], file: &str, source: &str, tops: &[String]) -> Vec<Edge> {
    use syn::spanned::Spanned;
    use syn::visit::Visit;

    struct Finder<'a> {
        /// The module being read, inline modules (`mod inner { … }`) included.
        module: Vec<String>,
        file: &'a str,
        tops: &'a [String],
        found: Vec<Edge>,
    }
    impl Finder<'_> {
        /// `segments` of a path, at `line`: the top-level module it names, if another.
        fn path(&mut self, segments: &[String], line: usize) {
            let mut base = self.module.clone();
            let rest = match segments.first().map(String::as_str) {
                Some("crate") => {
                    base.clear();
                    &segments[1..]
                }
                Some("super") => {
                    let ups = segments.iter().take_while(|s| *s == "super").count();
                    base.truncate(base.len().saturating_sub(ups));
                    &segments[ups..]
                }
                _ => return,
            };
            let to = match (base.first(), rest.first()) {
                (Some(top), _) => top,
                (None, Some(top)) => top,
                (None, None) => return,
            };
            let from = &self.module[0];
            if to != from && self.tops.contains(to) {
                let at = format!("{}:{line}", self.file);
                self.found.push((from.clone(), to.clone(), at));
            }
        }
        fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
            let line = tree.span().start().line;
            match tree {
                syn::UseTree::Path(p) => {
                    prefix.push(p.ident.to_string());
                    self.use_tree(prefix, &p.tree);
                    prefix.pop();
                }
                syn::UseTree::Name(n) => {
                    prefix.push(n.ident.to_string());
                    self.path(prefix, line);
                    prefix.pop();
                }
                syn::UseTree::Rename(r) => {
                    prefix.push(r.ident.to_string());
                    self.path(prefix, line);
                    prefix.pop();
                }
                syn::UseTree::Glob(_) => self.path(prefix, line),
                syn::UseTree::Group(g) => {
                    for t in &g.items {
                        self.use_tree(prefix, t);
                    }
                }
            }
        }
        /// `crate :: x` and `super :: x` in a macro's tokens (`format!("{}", crate::x::y())`).
        fn tokens(&mut self, tokens: proc_macro2::TokenStream) {
            use proc_macro2::TokenTree;
            let flat: Vec<TokenTree> = tokens.into_iter().collect();
            for (i, t) in flat.iter().enumerate() {
                match t {
                    TokenTree::Group(g) => self.tokens(g.stream()),
                    TokenTree::Ident(id) if id == "crate" || id == "super" => {
                        // The path: idents joined by `::`.
                        let mut segments = vec![id.to_string()];
                        let mut j = i + 1;
                        while let (
                            Some(TokenTree::Punct(a)),
                            Some(TokenTree::Punct(b)),
                            Some(TokenTree::Ident(next)),
                        ) = (flat.get(j), flat.get(j + 1), flat.get(j + 2))
                        {
                            if a.as_char() != ':' || b.as_char() != ':' {
                                break;
                            }
                            segments.push(next.to_string());
                            j += 3;
                        }
                        // `$crate` is the macro's own crate, a path like any other here.
                        self.path(&segments, id.span().start().line);
                    }
                    _ => {}
                }
            }
        }
    }
    impl<'a> Visit<'a> for Finder<'_> {
        fn visit_item(&mut self, item: &'a syn::Item) {
            let attrs = match item {
                syn::Item::Mod(m) => &m.attrs,
                syn::Item::Fn(f) => &f.attrs,
                syn::Item::Use(u) => &u.attrs,
                syn::Item::Impl(i) => &i.attrs,
                syn::Item::Const(c) => &c.attrs,
                syn::Item::Static(s) => &s.attrs,
                syn::Item::Struct(s) => &s.attrs,
                syn::Item::Enum(e) => &e.attrs,
                _ => return syn::visit::visit_item(self, item),
            };
            if !is_test_only(attrs) {
                syn::visit::visit_item(self, item);
            }
        }
        fn visit_item_mod(&mut self, m: &'a syn::ItemMod) {
            self.module.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.module.pop();
        }
        fn visit_item_use(&mut self, u: &'a syn::ItemUse) {
            self.use_tree(&mut Vec::new(), &u.tree);
        }
        fn visit_path(&mut self, p: &'a syn::Path) {
            let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
            self.path(&segments, p.span().start().line);
            syn::visit::visit_path(self, p);
        }
        fn visit_macro(&mut self, m: &'a syn::Macro) {
            self.tokens(m.tokens.clone());
            syn::visit::visit_macro(self, m);
        }
    }
    if module.is_empty() {
        return Vec::new(); // lib.rs: the crate's root only declares the modules
    }
    let parsed = syn::parse_file(source).unwrap_or_else(|e| panic!("cannot parse {file}: {e}"));
    let mut finder = Finder {
        module: module.to_vec(),
        file,
        tops,
        found: Vec::new(),
    };
    finder.visit_file(&parsed);
    finder.found
}

/// The cycles among `edges` (`from`, `to`, where): each strongly connected group of modules
/// named by one of its shortest cycles, `a → b → a`, with where each step is used.
fn module_cycles(edges: &[Edge]) -> Vec<String> {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};
    let mut next: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for (from, to, at) in edges {
        next.entry(from).or_default().entry(to).or_insert(at);
        next.entry(to).or_default();
    }
    let reach = |from: &str| -> BTreeSet<&str> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(m) = todo.pop() {
            for n in next[m].keys() {
                if seen.insert(*n) {
                    todo.push(n);
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&str, BTreeSet<&str>> = next.keys().map(|m| (*m, reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut cycles = Vec::new();
    for m in next.keys() {
        if done.contains(m) || !reaches[m].contains(m) {
            continue;
        }
        // Its group: the modules it reaches that reach it back.
        let group: BTreeSet<&str> = reaches[m]
            .iter()
            .filter(|n| reaches[**n].contains(m))
            .copied()
            .collect();
        done.extend(group.iter().copied());
        // A shortest way back to m, breadth first.
        let mut before: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([*m]);
        'search: while let Some(at) = queue.pop_front() {
            for n in next[at].keys() {
                if *n == *m {
                    before.insert(m, at);
                    break 'search;
                }
                if !before.contains_key(n) {
                    before.insert(n, at);
                    queue.push_back(n);
                }
            }
        }
        let mut path = vec![*m];
        let mut at = before[m];
        while at != *m {
            path.push(at);
            at = before[at];
        }
        path.push(m);
        path.reverse();
        let steps: Vec<String> = path
            .windows(2)
            .map(|w| format!("  {} → {} ({})", w[0], w[1], next[w[0]][w[1]]))
            .collect();
        let names: Vec<&str> = group.iter().copied().collect();
        cycles.push(format!(
            "{} (modules in the cycle: {}):\n{}",
            path.join(" → "),
            names.join(", "),
            steps.join("\n")
        ));
    }
    cycles
}

/// The uses between the library's top-level modules.
fn library_graph() -> Vec<Edge> {
    let files = library_files();
    let tops: Vec<String> = files
        .iter()
        .filter(|(m, _)| m.len() == 1)
        .map(|(m, _)| m[0].clone())
        .collect();
    let mut edges = Vec::new();
    for (module, file) in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(repo()).unwrap().display().to_string();
        edges.extend(module_uses(module, &name, &source, &tops));
    }
    edges
}

/// Uses between top-level modules that close a cycle today and that another helper of issue 19
/// removes: `(from, to, who)`. The lead deletes an entry when merging the branch that removes
/// the use (the test fails on an entry whose use is gone).
const CYCLES_BEING_REMOVED: &[(&str, &str, &str)] = &[];

/// A use of `to` by `from` in `edges`.
fn has_use(edges: &[Edge], from: &str, to: &str) -> bool {
    edges.iter().any(|(f, t, _)| f == from && t == to)
}

#[test]
fn cycles_are_found_named_and_broken_by_leaving_out_a_use() {
    let tops: Vec<String> = ["a", "b", "c", "d"].map(String::from).into();
    let module = |path: &[&str]| path.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // a → b (a use item), b → c (a path in code), c → a (`super::` from a child of c, inside a
    // macro); d is used by a and uses nothing. Test-only code and `self::` paths do not count.
    let mut edges = module_uses(
        &module(&["a"]),
        "src/a.rs",
        "use crate::{b::{self, B}, d};\nuse self::inner::X;\n\
         #[cfg(test)]\nmod tests { use crate::c::C; }",
        &tops,
    );
    edges.extend(module_uses(
        &module(&["b"]),
        "src/b.rs",
        "fn f() -> u8 { crate::c::value() }",
        &tops,
    ));
    edges.extend(module_uses(
        &module(&["c", "child"]),
        "src/c/child.rs",
        "fn g() { println!(\"{}\", super::super::a::name()); }",
        &tops,
    ));
    let pairs: std::collections::BTreeSet<(&str, &str)> = edges
        .iter()
        .map(|(f, t, _)| (f.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [("a", "b"), ("a", "d"), ("b", "c"), ("c", "a")].into()
    );
    let cycles = module_cycles(&edges);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(
        cycles[0].starts_with("a → b → c → a (modules in the cycle: a, b, c)"),
        "{}",
        cycles[0]
    );
    assert!(
        cycles[0].contains("c → a (src/c/child.rs:1)"),
        "{}",
        cycles[0]
    );
    // Without the use that closes it, no cycle.
    edges.retain(|(f, t, _)| (f.as_str(), t.as_str()) != ("c", "a"));
    assert!(module_cycles(&edges).is_empty());
}

/// The library's top-level modules depend on each other without a cycle: each can be read, and
/// tested, with only what it uses below it.
#[test]
fn no_cycle_between_top_level_modules() {
    let mut edges = library_graph();
    // The graph is the real one: the pipeline's stages use the modules below them.
    for (from, to) in [("nix", "git"), ("flash", "board"), ("monitor", "firmware")] {
        assert!(has_use(&edges, from, to), "no use of {to} by {from} found");
    }
    let stale: Vec<String> = CYCLES_BEING_REMOVED
        .iter()
        .filter(|(from, to, _)| !has_use(&edges, from, to))
        .map(|(from, to, who)| format!("{from} → {to} ({who})"))
        .collect();
    assert!(
        stale.is_empty(),
        "these uses are gone: delete them from CYCLES_BEING_REMOVED:\n{}",
        stale.join("\n")
    );
    edges.retain(|(from, to, _)| {
        !CYCLES_BEING_REMOVED
            .iter()
            .any(|(f, t, _)| f == from && t == to)
    });
    let cycles = module_cycles(&edges);
    assert!(
        cycles.is_empty(),
        "modules of src/ that use each other (move what both need to a module below them):\n{}",
        cycles.join("\n")
    );
}
