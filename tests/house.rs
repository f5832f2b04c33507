//! The house rules of the source tree (issue 27): imports run one way. Every `crate::` and `super::` path in
//! src/ (in `use` items and inline) is resolved to the file it names; a module may use only modules on a lower
//! floor than its own (the floors are the numbered list in lib.rs's doc), and no files may import each other
//! round a circle. Test code (`#[cfg(test)]` modules and files) is left out: it may look anywhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// A module path such as `["store", "sled_keys"]`, and the file that holds it.
type ModPath = Vec<String>;

struct Source {
    files: BTreeMap<ModPath, PathBuf>,
    /// For each file's module, the module paths it names (resolved to files later).
    paths: BTreeMap<ModPath, Vec<Vec<String>>>,
}

fn module_path(src: &Path, file: &Path) -> ModPath {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text with `//` comments and the inline `#[cfg(test)] mod … { … }` at its end removed.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        code.push_str(line.find("//").map_or(line, |at| &line[..at]));
        code.push('\n');
    }
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]").map(|at| from + at) {
        let rest = code[at + 12..].trim_start();
        let inline_module = rest.strip_prefix("mod ").is_some_and(|after| {
            let after = after.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
            after.trim_start().starts_with('{')
        });
        if inline_module {
            code.truncate(at);
            break;
        }
        from = at + 12;
    }
    code
}

/// Modules declared `#[cfg(test)] mod name;` in `code`: files that are tests.
fn test_modules(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        rest = &rest[at + 12..];
        let after = rest.trim_start();
        let declared = after
            .strip_prefix("mod ")
            .or_else(|| after.strip_prefix("pub mod "))
            .or_else(|| after.strip_prefix("pub(crate) mod "));
        if let Some(declared) = declared {
            let name: String = declared
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if declared[name.len()..].trim_start().starts_with(';') {
                names.push(name);
            }
        }
    }
    names
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let prefix = tree[..open].trim_end_matches("::");
        let close = tree
            .rfind('}')
            .filter(|close| *close > open)
            .unwrap_or(tree.len());
        let inner = &tree[open + 1..close];
        let (mut parts, mut depth, mut current) = (Vec::new(), 0, String::new());
        for c in inner.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        parts.push(current);
        return parts
            .iter()
            .filter(|p| !p.trim().is_empty())
            .flat_map(|p| expand(p))
            .map(|p| match p.as_str() {
                "self" => prefix.to_string(),
                _ => format!("{prefix}::{p}"),
            })
            .collect();
    }
    let path = tree.split(" as ").next().unwrap_or(tree).trim();
    vec![path.to_string()]
}

/// Every `crate::…`, `super::…` and `self::…` path in `code`, from `use` items and inline.
fn paths_in(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let boundary = rest[..at].chars().next_back().is_none_or(|c| !is_ident(c));
        rest = &rest[at + 4..];
        let ours = ["crate::", "super::", "self::"]
            .iter()
            .any(|start| rest.starts_with(start));
        if boundary && ours {
            if let Some(end) = rest.find(';') {
                found.extend(expand(&rest[..end]));
            }
        }
    }
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start).map(|at| from + at) {
            let before = code[..at].chars().next_back();
            from = at + start.len();
            if before.is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| is_ident(*c) || *c == ':')
                .collect();
            found.push(path.trim_end_matches(':').to_string());
        }
    }
    found
}

fn read_source() -> Source {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    rust_files(&src, &mut all);
    let mut texts = BTreeMap::new();
    let mut tests = BTreeSet::new();
    for file in all {
        if file.ends_with("main.rs") {
            continue;
        }
        let module = module_path(&src, &file);
        let code = code_of(&std::fs::read_to_string(&file).expect("readable"));
        for name in test_modules(&code) {
            let mut test = module.clone();
            test.push(name);
            tests.insert(test);
        }
        texts.insert(module, (file, code));
    }
    let texts: BTreeMap<_, _> = texts
        .into_iter()
        .filter(|(module, _)| !tests.iter().any(|t| module.starts_with(t)))
        .collect();
    let mut source = Source {
        files: BTreeMap::new(),
        paths: BTreeMap::new(),
    };
    for (module, (file, code)) in texts {
        let mut named = Vec::new();
        for path in paths_in(&code) {
            let mut segments: Vec<&str> = path.split("::").collect();
            let mut base: Vec<String> = match segments.first() {
                Some(&"crate") => Vec::new(),
                Some(&"super") | Some(&"self") => module.clone(),
                _ => continue,
            };
            if segments[0] == "crate" {
                segments.remove(0);
            }
            while segments.first() == Some(&"super") {
                base.pop();
                segments.remove(0);
            }
            if segments.first() == Some(&"self") {
                segments.remove(0);
            }
            base.extend(segments.iter().map(|s| s.to_string()));
            named.push(base);
        }
        source.paths.insert(module.clone(), named);
        source.files.insert(module, file);
    }
    source
}

/// The file module a path lands in: the longest prefix of it that is a file.
fn resolve<'a>(files: &'a BTreeMap<ModPath, PathBuf>, path: &[String]) -> Option<&'a ModPath> {
    (1..=path.len())
        .rev()
        .find_map(|n| files.get_key_value(&path[..n]).map(|(k, _)| k))
}

/// File → files it imports, with one path that shows each arrow.
fn arrows(source: &Source) -> BTreeMap<ModPath, BTreeMap<ModPath, String>> {
    let mut out: BTreeMap<ModPath, BTreeMap<ModPath, String>> = BTreeMap::new();
    for (module, paths) in &source.paths {
        for path in paths {
            if let Some(target) = resolve(&source.files, path) {
                if target != module && !target.is_empty() {
                    out.entry(module.clone())
                        .or_default()
                        .entry(target.clone())
                        .or_insert_with(|| path.join("::"));
                }
            }
        }
    }
    out
}

/// The floors from lib.rs's doc: `//! N. [`a`], [`b`]: …`.
fn floors() -> HashMap<String, usize> {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("lib.rs");
    let mut floors = HashMap::new();
    for line in lib.lines().filter_map(|l| l.strip_prefix("//! ")) {
        let Some((number, rest)) = line.split_once(". ") else {
            continue;
        };
        let Ok(floor) = number.parse::<usize>() else {
            continue;
        };
        let names = rest.split(':').next().unwrap_or("");
        for name in names.split(',') {
            let name = name.trim().trim_matches(|c| "[]`".contains(c));
            floors.insert(name.to_string(), floor);
        }
    }
    floors
}

/// Strongly connected groups of more than one file (Tarjan).
fn circles(graph: &BTreeMap<ModPath, BTreeMap<ModPath, String>>) -> Vec<Vec<ModPath>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<ModPath, BTreeMap<ModPath, String>>,
        index: HashMap<&'a ModPath, usize>,
        low: HashMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(walk: &mut Walk<'a>, node: &'a ModPath) {
        let number = walk.index.len();
        walk.index.insert(node, number);
        walk.low.insert(node, number);
        walk.stack.push(node);
        for next in walk.graph.get(node).into_iter().flat_map(|m| m.keys()) {
            if !walk.index.contains_key(next) {
                visit(walk, next);
                let low = walk.low[node].min(walk.low[next]);
                walk.low.insert(node, low);
            } else if walk.stack.contains(&next) {
                let low = walk.low[node].min(walk.index[next]);
                walk.low.insert(node, low);
            }
        }
        if walk.low[node] == walk.index[node] {
            let mut group = Vec::new();
            while let Some(top) = walk.stack.pop() {
                group.push(top.clone());
                if top == node {
                    break;
                }
            }
            if group.len() > 1 {
                walk.found.push(group);
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node) {
            visit(&mut walk, node);
        }
    }
    walk.found
}

#[test]
fn every_module_imports_only_from_floors_below_its_own() {
    let source = read_source();
    let floors = floors();
    let rooms: BTreeSet<&String> = source.files.keys().filter_map(|m| m.first()).collect();
    let unplaced: Vec<_> = rooms.iter().filter(|r| !floors.contains_key(**r)).collect();
    assert!(
        unplaced.is_empty(),
        "modules without a floor in lib.rs's doc: {unplaced:?}"
    );
    let mut upward = Vec::new();
    for (from, targets) in arrows(&source) {
        for (to, path) in targets {
            let (Some(a), Some(b)) = (from.first(), to.first()) else {
                continue;
            };
            if a != b && floors[a] <= floors[b] {
                upward.push(format!(
                    "{} (floor {}) uses {path} (floor {})",
                    from.join("/"),
                    floors[a],
                    floors[b]
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run up or sideways:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_files_import_each_other_round_a_circle() {
    let source = read_source();
    let found: Vec<String> = circles(&arrows(&source))
        .iter()
        .map(|group| {
            let names: Vec<String> = group.iter().map(|m| m.join("/")).collect();
            names.join(" → ")
        })
        .collect();
    assert!(
        found.is_empty(),
        "files that import each other:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import_and_a_circle() {
    // The parser and resolver, on a made-up tree: a use tree, an inline path, `super` and a test module.
    let code = code_of(
        "use crate::ledger::{Ledger, writer::{Job, self}};\nfn f() { super::sibling::g(); } // crate::hidden\n\
         #[cfg(test)]\nmod tests {\n    use crate::cli::Cli;\n}\n",
    );
    let paths = paths_in(&code);
    for expected in [
        "crate::ledger::Ledger",
        "crate::ledger::writer::Job",
        "crate::ledger::writer",
        "super::sibling::g",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} in {paths:?}"
        );
    }
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("hidden") || p.contains("cli")),
        "{paths:?}"
    );
    let module = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<ModPath>();
    let mut graph = BTreeMap::new();
    graph.insert(
        module(&["a", "x"]),
        BTreeMap::from([(module(&["a", "y"]), String::new())]),
    );
    graph.insert(
        module(&["a", "y"]),
        BTreeMap::from([(module(&["a", "x"]), String::new())]),
    );
    graph.insert(
        module(&["b"]),
        BTreeMap::from([(module(&["a", "x"]), String::new())]),
    );
    let found = circles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].len(), 2);
    assert_eq!(floors().get("store"), Some(&4), "lib.rs's floors are read");
}
