//! The direction of dependencies, enforced. Every file under `src/` is parsed (syn); every path
//! that names a module of this crate (`use crate::…`, `crate::…` anywhere in the code, `super::`
//! chains that climb out of the file's own top-level module, and the same inside macro calls)
//! is mapped to its top-level module, and each edge from one top-level module to another is
//! checked against the rules below. A forbidden edge fails the test with the file, the path and
//! the rule it broke.
//!
//! The rules are written once, here, as three tables (`MODULES`, `MAY_IMPORT`, `NEVER`);
//! `docs/architecture.md` shows the same tables. Test modules (`#[cfg(test)]`) are held to the
//! same rules: no exemption. Not read: paths inside string literals (a serde `with = "…"`;
//! there are none) and doc comments (they are not code).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// The layers, bottom up. A layer may import the layers `MAY_IMPORT` lists for it, never the
/// others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    /// Deadlines and the backoff formula: imports nothing from the crate.
    Timing,
    /// Plain settings (TOML, environment, validation).
    Config,
    /// The pure core: parsing, rules, evidence, reports, the probe ports. No I/O of its own.
    Core,
    /// The I/O edges: AWS, DNS, the ledger, notifiers, HTTP, workers, metrics, logging, signals.
    Edge,
    /// The service wired together (`app::run`).
    App,
    /// The command line: parses arguments and prints.
    Cli,
}

/// Every top-level module of `src/` and its layer. A new module must be added here.
const MODULES: &[(&str, Layer)] = &[
    ("timing", Layer::Timing),
    ("config", Layer::Config),
    ("alert", Layer::Core),
    ("dnsbl", Layer::Core),
    ("dovecot", Layer::Core),
    ("probe", Layer::Core),
    ("report", Layer::Core),
    ("runbook", Layer::Core),
    ("sendmail", Layer::Core),
    ("aws", Layer::Edge),
    ("dns", Layer::Edge),
    ("ledger", Layer::Edge),
    ("metrics", Layer::Edge),
    ("notify", Layer::Edge),
    ("server", Layer::Edge),
    ("shutdown", Layer::Edge),
    ("telemetry", Layer::Edge),
    ("worker", Layer::Edge),
    ("app", Layer::App),
    ("cli", Layer::Cli),
];

/// What each layer may import (besides itself: a module always uses its own submodules). Nothing
/// lists `Cli`: nothing imports `cli`. Only `Cli` lists `App`. (`main.rs` and `lib.rs`, the crate
/// root, are not a layer: they declare the modules and call `cli::main`.)
const MAY_IMPORT: &[(Layer, &[Layer])] = &[
    (Layer::Timing, &[]),
    (Layer::Config, &[Layer::Timing]),
    (Layer::Core, &[Layer::Core, Layer::Config, Layer::Timing]),
    (
        Layer::Edge,
        &[Layer::Edge, Layer::Core, Layer::Config, Layer::Timing],
    ),
    (
        Layer::App,
        &[Layer::Edge, Layer::Core, Layer::Config, Layer::Timing],
    ),
    (
        Layer::Cli,
        &[
            Layer::App,
            Layer::Edge,
            Layer::Core,
            Layer::Config,
            Layer::Timing,
        ],
    ),
];

/// Edges forbidden although their layers allow them: (from, to, why).
const NEVER: &[(&str, &str, &str)] = &[(
    "ledger",
    "notify",
    "the ledger stores the destination names it is given and knows nothing of Slack or PagerDuty",
)];

/// Temporary allowances, each with the reason and the issue that removes it: (from, to, why).
/// Empty: keep it so, or say here why not.
const ALLOWED_FOR_NOW: &[(&str, &str, &str)] = &[];

// ---------------------------------------------------------------------------------------------
// The checker.

fn layer_of(module: &str) -> Option<Layer> {
    MODULES
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
}

fn may_import(from: Layer, to: Layer) -> bool {
    MAY_IMPORT
        .iter()
        .find(|(layer, _)| *layer == from)
        .is_some_and(|(_, allowed)| allowed.contains(&to))
}

/// One forbidden edge, where it was found and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    file: String,
    from: String,
    to: String,
    /// The path as written (`crate::aws::AwsError`, `super::super::cli`).
    path: String,
    rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} -> {} (`{}`): {}",
            self.file, self.from, self.to, self.path, self.rule
        )
    }
}

/// The rule the edge `from -> to` breaks, if any.
fn broken_rule(from: &str, to: &str) -> Option<String> {
    if from == to
        || ALLOWED_FOR_NOW
            .iter()
            .any(|(f, t, _)| *f == from && *t == to)
    {
        return None;
    }
    let Some(from_layer) = layer_of(from) else {
        return Some(format!(
            "module `{from}` is not in the MODULES table of tests/architecture.rs; give it a layer"
        ));
    };
    let Some(to_layer) = layer_of(to) else {
        return Some(format!(
            "module `{to}` is not in the MODULES table of tests/architecture.rs; give it a layer"
        ));
    };
    if let Some((_, _, why)) = NEVER.iter().find(|(f, t, _)| *f == from && *t == to) {
        return Some(format!("`{from}` never imports `{to}`: {why}"));
    }
    if !may_import(from_layer, to_layer) {
        let allowed = MAY_IMPORT
            .iter()
            .find(|(layer, _)| *layer == from_layer)
            .map(|(_, allowed)| allowed.to_vec())
            .unwrap_or_default();
        return Some(format!(
            "`{from}` is {from_layer:?} and `{to}` is {to_layer:?}; {from_layer:?} may import {allowed:?} only"
        ));
    }
    None
}

/// The module path of a source file: `src/a/b.rs` and `src/a/b/mod.rs` are `["a", "b"]`;
/// `src/lib.rs` and `src/main.rs` are the crate root (`[]`).
fn module_path_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.strip_suffix(".rs").unwrap_or(&last).to_string();
        if stem != "mod" && !(parts.is_empty() && (stem == "lib" || stem == "main")) {
            parts.push(stem);
        }
    }
    parts
}

/// Collects the crate paths of one file, resolved to absolute module paths.
struct Collector {
    /// The module the code being visited is in (the file's, then inline `mod`s).
    current: Vec<String>,
    /// (resolved first segments, the path as written).
    found: Vec<(Vec<String>, String)>,
}

impl Collector {
    /// Resolves a path's leading `crate` / `self` / `super` segments against the current module;
    /// None when the path does not start with one of them (an external crate, a local name).
    fn resolve(&self, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        let mut base = match first.as_str() {
            "crate" => Vec::new(),
            "self" | "super" => self.current.clone(),
            _ => return None,
        };
        let mut rest = &segments[1..];
        if first == "super" {
            base.pop();
        }
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn record(&mut self, segments: Vec<String>) {
        if let Some(resolved) = self.resolve(&segments) {
            self.found.push((resolved, segments.join("::")));
        }
    }

    /// Every `use` path of a tree, flattened (`use crate::{a::X, b}` gives `crate::a::X` and
    /// `crate::b`).
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => {
                let mut full = prefix.clone();
                full.push(name.ident.to_string());
                self.record(full);
            }
            syn::UseTree::Rename(rename) => {
                let mut full = prefix.clone();
                full.push(rename.ident.to_string());
                self.record(full);
            }
            syn::UseTree::Glob(_) => self.record(prefix.clone()),
            syn::UseTree::Group(group) => {
                for item in &group.items {
                    self.use_tree(prefix, item);
                }
            }
        }
    }

    /// `crate :: a :: b` and `super :: super :: a` sequences inside a macro's tokens.
    fn macro_tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(group) => self.macro_tokens(group.stream()),
                TokenTree::Ident(ident)
                    if matches!(ident.to_string().as_str(), "crate" | "super") =>
                {
                    // A path start followed by `::` and more names.
                    let mut segments = vec![ident.to_string()];
                    let mut j = i + 1;
                    loop {
                        let colons = matches!(
                            (trees.get(j), trees.get(j + 1)),
                            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                                if a.as_char() == ':' && b.as_char() == ':'
                        );
                        match (colons, trees.get(j + 2)) {
                            (true, Some(TokenTree::Ident(next))) => {
                                segments.push(next.to_string());
                                j += 3;
                            }
                            _ => break,
                        }
                    }
                    if segments.len() > 1 {
                        self.record(segments);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if item.content.is_some() {
            self.current.push(item.ident.to_string());
            syn::visit::visit_item_mod(self, item);
            self.current.pop();
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.record(segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.macro_tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

/// What one file imports from the crate: its edges to other top-level modules, and the
/// forbidden ones among them.
#[derive(Debug, Default)]
struct Checked {
    edges: BTreeSet<(String, String)>,
    violations: Vec<Violation>,
}

/// The forbidden edges of one source file whose module path is `module` (`["runbook",
/// "gather"]`); `file` names it in the violations.
fn check_source(module: &[&str], file: &str, source: &str) -> Result<Vec<Violation>, String> {
    check_file(module, file, source).map(|checked| checked.violations)
}

fn check_file(module: &[&str], file: &str, source: &str) -> Result<Checked, String> {
    let parsed = syn::parse_file(source).map_err(|e| format!("{file}: cannot parse: {e}"))?;
    let mut collector = Collector {
        current: module.iter().map(|s| s.to_string()).collect(),
        found: Vec::new(),
    };
    collector.visit_file(&parsed);
    let Some(from) = module.first() else {
        // The crate root declares the modules and calls `cli::main`: no rule applies.
        return Ok(Checked::default());
    };
    let mut edges = BTreeSet::new();
    let mut violations = BTreeSet::new();
    for (resolved, written) in collector.found {
        let Some(to) = resolved.first() else { continue };
        if to != from {
            edges.insert((from.to_string(), to.clone()));
        }
        if let Some(rule) = broken_rule(from, to) {
            violations.insert(Violation {
                file: file.to_string(),
                from: from.to_string(),
                to: to.clone(),
                path: written,
                rule,
            });
        }
    }
    Ok(Checked {
        edges,
        violations: violations.into_iter().collect(),
    })
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Every edge and every forbidden edge of the crate's sources under `src`.
fn check_tree(src: &Path) -> Checked {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    assert!(
        files.len() > 50,
        "only {} files under {}",
        files.len(),
        src.display()
    );
    let mut all = Checked::default();
    let violations = &mut all.violations;
    for path in files {
        let relative = path.strip_prefix(src).unwrap();
        let module = module_path_of(relative);
        let module: Vec<&str> = module.iter().map(String::as_str).collect();
        let source = std::fs::read_to_string(&path).unwrap();
        let name = format!("src/{}", relative.display());
        // Every file's top-level module must have a layer, even one that imports nothing.
        if let Some(top) = module.first() {
            if layer_of(top).is_none() {
                violations.push(Violation {
                    file: name.clone(),
                    from: top.to_string(),
                    to: String::new(),
                    path: String::new(),
                    rule: format!(
                        "module `{top}` is not in the MODULES table of tests/architecture.rs; give it a layer"
                    ),
                });
            }
        }
        let checked = check_file(&module, &name, &source).unwrap_or_else(|e| panic!("{e}"));
        violations.extend(checked.violations);
        all.edges.extend(checked.edges);
    }
    all
}

#[test]
fn dependencies_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let Checked { edges, violations } = check_tree(&src);
    // The checker sees the crate's real imports (a reader that found nothing would pass).
    for (from, to) in [
        ("runbook", "probe"),
        ("aws", "timing"),
        ("app", "ledger"),
        ("cli", "app"),
        ("notify", "ledger"),
    ] {
        assert!(
            edges.contains(&(from.to_string(), to.to_string())),
            "the edge {from} -> {to} was not found; edges: {edges:?}"
        );
    }
    assert!(
        violations.is_empty(),
        "{} forbidden import(s) (rules: tests/architecture.rs, docs/architecture.md):\n{}",
        violations.len(),
        violations
            .iter()
            .map(|v| format!("  {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_tables_are_consistent() {
    let mut names = BTreeSet::new();
    for (name, _) in MODULES {
        assert!(names.insert(*name), "{name} listed twice in MODULES");
    }
    for (layer, _) in MAY_IMPORT {
        assert!(
            MAY_IMPORT.iter().filter(|(l, _)| l == layer).count() == 1,
            "{layer:?} listed twice in MAY_IMPORT"
        );
    }
    for layer in [
        Layer::Timing,
        Layer::Config,
        Layer::Core,
        Layer::Edge,
        Layer::App,
        Layer::Cli,
    ] {
        assert!(
            MAY_IMPORT.iter().any(|(l, _)| *l == layer),
            "{layer:?} has no MAY_IMPORT row"
        );
        assert!(
            !may_import(layer, Layer::Cli),
            "{layer:?} may import cli: nothing imports cli"
        );
        assert_eq!(
            may_import(layer, Layer::App),
            layer == Layer::Cli,
            "only cli imports app"
        );
    }
    // Every module of the tables exists under src/.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (name, _) in MODULES {
        assert!(
            src.join(format!("{name}.rs")).exists() || src.join(name).join("mod.rs").exists(),
            "MODULES lists {name}, which is not a module under src/"
        );
    }
}

// The same rules as a table in `docs/architecture.md` ("## Layers"): the map a newcomer reads
// must not drift from the rules the test enforces.

const ALL_LAYERS: [Layer; 6] = [
    Layer::Timing,
    Layer::Config,
    Layer::Core,
    Layer::Edge,
    Layer::App,
    Layer::Cli,
];

fn layer_name(layer: Layer) -> String {
    format!("{layer:?}").to_lowercase()
}

/// The rows of the markdown table under `## Layers`: (layer, its modules, the layers it may
/// import), each list sorted.
fn layers_table_of(markdown: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let section = markdown
        .split("\n## ")
        .find(|s| s.starts_with("Layers"))
        .unwrap_or("");
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() != 3 || cells[0] == "layer" || cells[0].starts_with("--") {
            continue;
        }
        let mut modules: Vec<String> = cells[1]
            .split(',')
            .map(|m| m.trim().trim_matches('`').to_string())
            .filter(|m| !m.is_empty())
            .collect();
        modules.sort();
        let mut imports: Vec<String> = if cells[2].starts_with("nothing") {
            Vec::new()
        } else {
            cells[2].split(',').map(|l| l.trim().to_string()).collect()
        };
        imports.sort();
        rows.push((cells[0].to_string(), modules, imports));
    }
    rows
}

/// How the markdown table differs from `MODULES` and `MAY_IMPORT`; empty when they agree.
fn layers_table_differences(markdown: &str) -> Vec<String> {
    let documented = layers_table_of(markdown);
    let mut differences = Vec::new();
    for layer in ALL_LAYERS {
        let name = layer_name(layer);
        let mut modules: Vec<String> = MODULES
            .iter()
            .filter(|(_, l)| *l == layer)
            .map(|(m, _)| m.to_string())
            .collect();
        modules.sort();
        let mut imports: Vec<String> = MAY_IMPORT
            .iter()
            .find(|(l, _)| *l == layer)
            .map(|(_, allowed)| allowed.iter().map(|l| layer_name(*l)).collect())
            .unwrap_or_default();
        imports.sort();
        match documented.iter().find(|(l, _, _)| *l == name) {
            None => differences.push(format!("layer `{name}` has no row")),
            Some((_, doc_modules, doc_imports)) => {
                if *doc_modules != modules {
                    differences.push(format!(
                        "layer `{name}`: the docs list modules {doc_modules:?}, the rules {modules:?}"
                    ));
                }
                if *doc_imports != imports {
                    differences.push(format!(
                        "layer `{name}`: the docs say it may import {doc_imports:?}, the rules {imports:?}"
                    ));
                }
            }
        }
    }
    for (layer, _, _) in &documented {
        if !ALL_LAYERS.iter().any(|l| layer_name(*l) == *layer) {
            differences.push(format!("the docs have a layer `{layer}` the rules do not"));
        }
    }
    differences
}

#[test]
fn docs_architecture_shows_the_same_layers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
    let markdown = std::fs::read_to_string(&path).expect("docs/architecture.md");
    let differences = layers_table_differences(&markdown);
    assert!(
        differences.is_empty(),
        "docs/architecture.md (\"## Layers\") and tests/architecture.rs disagree:\n  {}",
        differences.join("\n  ")
    );
}

#[test]
fn a_drifted_layers_table_is_reported() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
    let markdown = std::fs::read_to_string(&path).expect("docs/architecture.md");
    // `probe` documented as an edge, and core allowed to import edges.
    let drifted = markdown
        .replace(
            "| core | `alert`, `dnsbl`, `dovecot`, `probe`, `report`, `runbook`, `sendmail` | core, config, timing |",
            "| core | `alert`, `dnsbl`, `dovecot`, `report`, `runbook`, `sendmail` | edge, core, config, timing |",
        );
    assert_ne!(drifted, markdown, "the test's row must match the docs' row");
    let differences = layers_table_differences(&drifted);
    assert_eq!(differences.len(), 2, "{differences:?}");
    assert!(differences[0].contains("layer `core`: the docs list modules"));
    assert!(differences[1].contains("may import"));
    assert_eq!(layers_table_differences("no table").len(), ALL_LAYERS.len());
}

// The checker itself must be able to fail: forbidden edges written every way it reads.

fn rules_broken(module: &[&str], source: &str) -> Vec<String> {
    check_source(module, "src/synthetic.rs", source)
        .unwrap()
        .into_iter()
        .map(|v| v.to_string())
        .collect()
}

#[test]
fn a_use_of_an_edge_in_the_core_is_reported_with_its_rule() {
    let broken = rules_broken(&["runbook"], "use crate::aws::X;");
    assert_eq!(
        broken,
        ["src/synthetic.rs: runbook -> aws (`crate::aws::X`): `runbook` is Core and `aws` is Edge; Core may import [Core, Config, Timing] only"]
    );
    assert!(rules_broken(&["runbook"], "use crate::probe::X; use crate::config::Y;").is_empty());
}

#[test]
fn paths_in_code_groups_super_chains_and_macros_are_read() {
    // A path in an expression, inside a function of a nested module.
    let in_code = rules_broken(
        &["probe", "logs"],
        "mod inner { fn f() { let _ = crate::aws::retry::call; } }",
    );
    assert_eq!(in_code.len(), 1, "{in_code:?}");
    assert!(in_code[0].contains("probe -> aws"), "{in_code:?}");
    // A group.
    let grouped = rules_broken(&["alert"], "use crate::{report::Report, ledger::Ledger};");
    assert_eq!(grouped.len(), 1, "{grouped:?}");
    assert!(grouped[0].contains("alert -> ledger"), "{grouped:?}");
    // `super::super` out of runbook/gather.rs's test module lands at the crate root's `cli`.
    let climbed = rules_broken(
        &["runbook", "gather"],
        "#[cfg(test)] mod tests { use super::super::super::cli::triage; }",
    );
    assert_eq!(climbed.len(), 1, "{climbed:?}");
    assert!(climbed[0].contains("runbook -> cli"), "{climbed:?}");
    // `super` within the module is fine.
    assert!(rules_broken(&["runbook", "gather"], "use super::evidence::Evidence;").is_empty());
    // Inside a macro call.
    let in_macro = rules_broken(
        &["sendmail"],
        "fn f() { assert!(matches!(x, crate::notify::Decision::GiveUp(_))); }",
    );
    assert_eq!(in_macro.len(), 1, "{in_macro:?}");
    assert!(in_macro[0].contains("sendmail -> notify"), "{in_macro:?}");
}

#[test]
fn the_special_rules_are_enforced() {
    let ledger = rules_broken(&["ledger", "model"], "use crate::notify::Destination;");
    assert_eq!(ledger.len(), 1);
    assert!(ledger[0].contains("never imports `notify`"), "{ledger:?}");
    assert!(rules_broken(&["notify"], "use crate::ledger::Ledger;").is_empty());
    let app = rules_broken(&["server"], "use crate::app::run;");
    assert!(app[0].contains("Edge may import"), "{app:?}");
    assert!(rules_broken(&["cli", "serve"], "use crate::app::run;").is_empty());
    let cli = rules_broken(&["app"], "use crate::cli::Cli;");
    assert!(cli[0].contains("App may import"), "{cli:?}");
    let timing = rules_broken(&["timing"], "fn f() -> crate::config::Config { todo!() }");
    assert!(timing[0].contains("Timing may import []"), "{timing:?}");
    let unknown = rules_broken(&["newthing"], "use crate::alert::X;");
    assert!(
        unknown[0].contains("not in the MODULES table"),
        "{unknown:?}"
    );
    // The crate root may name anything.
    assert!(rules_broken(&[], "use crate::cli::main;").is_empty());
}

#[test]
fn module_paths_follow_the_file_layout() {
    assert_eq!(module_path_of(Path::new("lib.rs")), Vec::<String>::new());
    assert_eq!(module_path_of(Path::new("main.rs")), Vec::<String>::new());
    assert_eq!(module_path_of(Path::new("timing.rs")), ["timing"]);
    assert_eq!(module_path_of(Path::new("probe/mod.rs")), ["probe"]);
    assert_eq!(
        module_path_of(Path::new("aws/exec/client.rs")),
        ["aws", "exec", "client"]
    );
    assert_eq!(
        module_path_of(Path::new("ledger/main.rs")),
        ["ledger", "main"]
    );
}
