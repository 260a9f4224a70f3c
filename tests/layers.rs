//! The shape of the house (docs/architecture.md): no circle between the files of `src/`, and the
//! layers point one way (`main → cli → config`, `main → commands → {config, stages}`,
//! `stages → lake`). Read from the source text, the way a newcomer follows a `use`.
//!
//! A file depends on another when it names it: `crate::a::b`, `super::x`, or a `{…}` group of
//! them, in a `use` or inline. `pub use` re-exports are a module's facade, not a dependency, and
//! comments and string literals are skipped. `main.rs` is its own crate and is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/` but `main.rs`, by module path (`""` for `lib.rs`).
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, src, out);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut segs: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if segs == ["main"] {
                continue;
            }
            if matches!(segs.last().map(String::as_str), Some("mod" | "lib")) {
                segs.pop();
            }
            out.insert(segs.join("::"), path);
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// The code of a file without comments, string literals and `pub use` re-exports.
fn code(text: &str) -> String {
    // One pass: `//` comments to the end of the line, `/* */` comments, "strings" (with
    // escapes), r#"raw strings"#, and '"' (a char literal, not a string).
    let b = text.as_bytes();
    let mut plain = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if raw_string_at(b, i) {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            i += 2 + hashes;
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            plain.push_str("\"\"");
        } else if b[i..].starts_with(b"'\"'") {
            i += 3;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            plain.push_str("\"\"");
        } else {
            let start = i;
            while i < b.len()
                && !b[i..].starts_with(b"//")
                && !b[i..].starts_with(b"/*")
                && !raw_string_at(b, i)
                && !b[i..].starts_with(b"'\"'")
                && b[i] != b'"'
            {
                i += 1;
            }
            // Only ASCII bytes end a run, so the run is whole characters.
            plain.push_str(&text[start..i]);
        }
    }
    // `pub use …;` and `pub(crate) use …;`.
    let mut result = String::with_capacity(plain.len());
    let mut rest = plain.as_str();
    while let Some(i) = rest.find("pub") {
        let after = &rest[i + 3..];
        let after_vis = after
            .strip_prefix('(')
            .and_then(|a| a.find(')').map(|j| &a[j + 1..]))
            .unwrap_or(after);
        let boundary = i == 0 || !is_ident(rest[..i].chars().last().unwrap());
        if boundary && after_vis.trim_start().starts_with("use ") {
            result.push_str(&rest[..i]);
            let end = after_vis
                .find(';')
                .map_or(rest.len(), |j| rest.len() - after_vis.len() + j + 1);
            rest = &rest[end..];
        } else {
            result.push_str(&rest[..i + 3]);
            rest = &rest[i + 3..];
        }
    }
    result.push_str(rest);
    result
}

/// `r"…"` or `r#"…"#` starts at `i` (not the raw identifier `r#type`).
fn raw_string_at(b: &[u8], i: usize) -> bool {
    if b[i] != b'r'
        || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') && b[i - 1] != b'b')
    {
        return false;
    }
    let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
    b.get(i + 1 + hashes) == Some(&b'"')
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths named at `s` (just after `crate::` or `super::`): one for `a::b`, several for a
/// `{a, b::{c, d}}` group.
fn paths(s: &str) -> Vec<Vec<String>> {
    let s = s.trim_start();
    if let Some(group) = s.strip_prefix('{') {
        let mut depth = 1;
        let mut items = Vec::new();
        let mut start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        items.push(&group[start..i]);
                        break;
                    }
                }
                ',' if depth == 1 => {
                    items.push(&group[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return items
            .into_iter()
            .filter(|i| !i.trim().is_empty())
            .flat_map(paths)
            .collect();
    }
    let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
    if end == 0 {
        return vec![vec![]];
    }
    let seg = s[..end].to_string();
    match s[end..].strip_prefix("::") {
        Some(rest) => paths(rest)
            .into_iter()
            .map(|mut p| {
                p.insert(0, seg.clone());
                p
            })
            .collect(),
        None => vec![vec![seg]],
    }
}

/// The files each file names.
fn edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(src);
    let mut out = BTreeMap::new();
    for (module, path) in &mods {
        let text = code(&std::fs::read_to_string(path).unwrap());
        let me: Vec<&str> = if module.is_empty() {
            vec![]
        } else {
            module.split("::").collect()
        };
        let mut targets = BTreeSet::new();
        for prefix in ["crate::", "super::"] {
            for (i, _) in text.match_indices(prefix) {
                if i > 0 && is_ident(text[..i].chars().last().unwrap()) {
                    continue;
                }
                let mut rest = &text[i + prefix.len()..];
                let mut base: Vec<&str> = if prefix == "crate::" {
                    vec![]
                } else {
                    me[..me.len().saturating_sub(1)].to_vec()
                };
                if prefix == "super::" && text[..i].ends_with("super::") {
                    continue; // counted from the first `super::`
                }
                while let Some(r) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = r;
                }
                for p in paths(rest) {
                    let full: Vec<String> = base.iter().map(|s| s.to_string()).chain(p).collect();
                    let target = (0..=full.len())
                        .rev()
                        .map(|k| full[..k].join("::"))
                        .find(|m| mods.contains_key(m));
                    if let Some(t) = target {
                        if &t != module {
                            targets.insert(t);
                        }
                    }
                }
            }
        }
        out.insert(module.clone(), targets);
    }
    out
}

/// The strongly connected components with more than one file.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut c = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                c.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                c.sort();
                t.out.push(c);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_circle_between_files() {
    let edges = edges(&src());
    let found = circles(&edges);
    let shown: Vec<String> = found
        .iter()
        .map(|c| {
            let links: Vec<String> = c
                .iter()
                .map(|a| {
                    let to: Vec<&str> = edges[a]
                        .iter()
                        .filter(|b| c.contains(b))
                        .map(String::as_str)
                        .collect();
                    format!("{a} -> {}", to.join(", "))
                })
                .collect();
            links.join("; ")
        })
        .collect();
    assert!(found.is_empty(), "circles between files: {shown:#?}");
}

#[test]
fn the_layers_point_one_way() {
    let edges = edges(&src());
    // Top-level module of a module path.
    let top = |m: &str| m.split("::").next().unwrap_or("").to_string();
    let stages = [
        "genesys",
        "extract",
        "aggregate",
        "sync",
        "report",
        "simulator",
    ];
    for (from, tos) in &edges {
        for to in tos {
            let (f, t) = (top(from), top(to));
            // Nothing but main names the command layer or the flags.
            assert!(t != "commands" || f == "commands", "{from} names {to}");
            assert!(t != "cli" || f == "cli", "{from} names {to}");
            // The settings are plain: they name no stage's internals, no command, no flag.
            if f == "config" {
                assert!(
                    !matches!(t.as_str(), "commands" | "cli" | "lake" | "sync" | "genesys"),
                    "{from} names {to}"
                );
            }
            // The lake is below every stage.
            if f == "lake" {
                assert!(!stages.contains(&t.as_str()), "{from} names {to}");
            }
        }
    }
}

#[test]
fn the_checker_sees_groups_supers_and_ignores_re_exports_and_strings() {
    let text = code(
        "use super::{a::B, c};\npub use crate::d::E;\nlet s = \"crate::f\"; // crate::g\nuse crate::{h, i::{j, k}};",
    );
    assert!(!text.contains("crate::d") && !text.contains("crate::f") && !text.contains("crate::g"));
    assert_eq!(
        paths("{h, i::{j, k}};"),
        vec![
            vec!["h".to_string()],
            vec!["i".to_string(), "j".to_string()],
            vec!["i".to_string(), "k".to_string()],
        ]
    );
    let mut e = BTreeMap::new();
    e.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    e.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    e.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(circles(&e), vec![vec!["a".to_string(), "b".to_string()]]);
}
