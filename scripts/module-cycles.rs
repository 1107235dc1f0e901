//! module-cycles: fails when the top-level modules of a crate import each other in a cycle.
//!
//! `scripts/check-module-cycles.sh` compiles this file with plain `rustc` (no dependencies, so
//! it needs nothing but the toolchain) and runs it on the root file (lib.rs, main.rs) of every
//! crate of the workspace. A module imports another when its code names it through
//! `crate::other`, `crate::{other, ..}`, `super::other` (from a file directly under the root)
//! or an item the root defines or re-exports from it; comments, strings and `#[cfg(test)]`
//! modules do not count. The crate root is a node too: a module that calls a function defined
//! in lib.rs while lib.rs calls into that module is a cycle (DESIGN.md: "No module imports its
//! caller").
//!
//! Usage: `module-cycles ROOT.rs...`; exit 0 when no crate has a cycle, 1 when one has (each
//! cycle printed with the line that makes each of its edges), 2 when a file cannot be read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The node that stands for the items defined in the crate root file itself.
const ROOT: &str = "(crate root)";

fn main() -> ExitCode {
    let roots: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if roots.is_empty() {
        eprintln!("usage: module-cycles CRATE_ROOT.rs...");
        return ExitCode::from(2);
    }
    let mut cycles = 0;
    for root in &roots {
        match Crate::read(root) {
            Ok(krate) => {
                let report = krate.cycles();
                cycles += report.len();
                for text in report {
                    eprint!("{text}");
                }
            }
            Err(e) => {
                eprintln!("module-cycles: cannot read {}: {e}", root.display());
                return ExitCode::from(2);
            }
        }
    }
    if cycles > 0 {
        return ExitCode::FAILURE;
    }
    println!("module-cycles: no cycle among the modules of {} crates", roots.len());
    ExitCode::SUCCESS
}

/// A token of Rust code with comments and literals already blanked out.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Where one module names another: the first place found, for the message.
type Edges = BTreeMap<(String, String), String>;

/// One crate: its root file and top-level modules, each with the files it spans.
struct Crate {
    root: PathBuf,
    modules: BTreeMap<String, Vec<(PathBuf, usize)>>,
    /// Names the root brings into scope with `use`: `Some(module)` for a module of this crate,
    /// `None` for anything else (std, another crate).
    imports: BTreeMap<String, Option<String>>,
    root_tokens: Vec<Token>,
}

impl Crate {
    fn read(root: &Path) -> std::io::Result<Self> {
        let root_tokens = tokens(&std::fs::read_to_string(root)?);
        let dir = root.parent().unwrap_or(Path::new("."));
        let mut modules = BTreeMap::new();
        for name in declared_modules(&root_tokens) {
            modules.insert(name.clone(), module_files(dir, &name));
        }
        let imports = root_imports(&root_tokens, &modules);
        Ok(Self {
            root: root.to_owned(),
            modules,
            imports,
            root_tokens,
        })
    }

    /// One text per cycle found, empty when there is none.
    fn cycles(&self) -> Vec<String> {
        let edges = match self.edges() {
            Ok(edges) => edges,
            Err(e) => return vec![format!("module-cycles: {}: {e}\n", self.root.display())],
        };
        let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (from, to) in edges.keys() {
            graph.entry(from).or_default().insert(to);
        }
        components(&graph)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|component| self.describe(&graph, &component, &edges))
            .collect()
    }

    fn describe(
        &self,
        graph: &BTreeMap<&str, BTreeSet<&str>>,
        component: &BTreeSet<&str>,
        edges: &Edges,
    ) -> String {
        let cycle = cycle_in(graph, component);
        let mut text = format!(
            "module cycle in {}: {}\n",
            self.root.display(),
            cycle.join(" -> ")
        );
        for pair in cycle.windows(2) {
            let at = &edges[&(pair[0].to_owned(), pair[1].to_owned())];
            let _ = writeln!(text, "  {} -> {}: {at}", pair[0], pair[1]);
        }
        if component.len() + 1 > cycle.len() {
            let all: Vec<&str> = component.iter().copied().collect();
            let _ = writeln!(text, "  and each of these reaches the others: {}", all.join(", "));
        }
        text
    }

    /// Every import between two nodes (modules and the root), with where it is.
    fn edges(&self) -> std::io::Result<Edges> {
        let mut edges = Edges::new();
        let root_name = self.root.display().to_string();
        for (i, t) in self.root_tokens.iter().enumerate() {
            // In the root a module is named by its own name at the start of a path.
            if let Tok::Ident(name) = &t.tok {
                let starts_path = i == 0 || self.root_tokens[i - 1].tok != Tok::Path;
                let is_path = matches!(self.root_tokens.get(i + 1), Some(n) if n.tok == Tok::Path);
                if starts_path && is_path && self.modules.contains_key(name) {
                    add(&mut edges, ROOT, name, &root_name, t.line);
                }
            }
        }
        for (module, files) in &self.modules {
            for (file, depth) in files {
                let toks = tokens(&std::fs::read_to_string(file)?);
                for (name, line) in crate_level_names(&toks, *depth) {
                    if let Some(to) = self.resolve(&name) {
                        let at = file.display().to_string();
                        add(&mut edges, module, &to, &at, line);
                    }
                }
            }
        }
        Ok(edges)
    }

    /// The node a crate-level `name` belongs to; `None` when it is outside the crate.
    fn resolve(&self, name: &str) -> Option<String> {
        if self.modules.contains_key(name) {
            return Some(name.to_owned());
        }
        match self.imports.get(name) {
            Some(imported) => imported.clone(),
            None => Some(ROOT.to_owned()),
        }
    }
}

fn add(edges: &mut Edges, from: &str, to: &str, file: &str, line: usize) {
    if from != to {
        let key = (from.to_owned(), to.to_owned());
        edges.entry(key).or_insert_with(|| format!("{file}:{line}"));
    }
}

/// The names a file reaches at the crate's top level: `crate::X`, each first name of
/// `crate::{X, Y::z}`, and `super::X` where the `super`s climb exactly to the root (`depth`:
/// 1 for `src/m.rs`, 2 for `src/m/x.rs`).
fn crate_level_names(toks: &[Token], depth: usize) -> Vec<(String, usize)> {
    let mut names = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let start = i;
        let mut supers = 0;
        while ident_is(toks.get(i), "super") && matches!(toks.get(i + 1), Some(t) if t.tok == Tok::Path) {
            supers += 1;
            i += 2;
        }
        let from_crate = supers == 0
            && ident_is(toks.get(i), "crate")
            && matches!(toks.get(i + 1), Some(t) if t.tok == Tok::Path);
        if from_crate {
            i += 2;
        }
        let after_path_sep = start > 0 && toks[start - 1].tok == Tok::Path;
        if !after_path_sep && (from_crate || (supers > 0 && supers == depth)) {
            names.extend(first_names(toks, i));
        }
        i = if i == start { i + 1 } else { i };
    }
    names
}

/// At `i`, a name or a `{...}` group: the first name of each of its paths.
fn first_names(toks: &[Token], i: usize) -> Vec<(String, usize)> {
    match toks.get(i).map(|t| &t.tok) {
        Some(Tok::Ident(name)) => vec![(name.clone(), toks[i].line)],
        Some(Tok::Punct('{')) => {
            let mut names = Vec::new();
            let mut depth = 0;
            let mut expect_name = true;
            for t in &toks[i..] {
                match &t.tok {
                    Tok::Punct('{') => depth += 1,
                    Tok::Punct('}') => depth -= 1,
                    Tok::Punct(',') if depth == 1 => expect_name = true,
                    Tok::Ident(name) if depth == 1 && expect_name => {
                        if name != "self" {
                            names.push((name.clone(), t.line));
                        }
                        expect_name = false;
                    }
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
            }
            names
        }
        _ => Vec::new(),
    }
}

fn ident_is(t: Option<&Token>, word: &str) -> bool {
    matches!(t, Some(Token { tok: Tok::Ident(w), .. }) if w == word)
}

/// `mod NAME;` at the root's top level (inline `mod NAME { .. }` is part of the root).
fn declared_modules(toks: &[Token]) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate() {
        match &t.tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => depth -= 1,
            Tok::Ident(w) if w == "mod" && depth == 0 => {
                if let (Some(Tok::Ident(name)), Some(Tok::Punct(';'))) =
                    (toks.get(i + 1).map(|t| &t.tok), toks.get(i + 2).map(|t| &t.tok))
                {
                    names.push(name.clone());
                }
            }
            _ => {}
        }
    }
    names
}

/// The files of top-level module `name` beside the root, each with its depth below the root.
fn module_files(dir: &Path, name: &str) -> Vec<(PathBuf, usize)> {
    let mut files = Vec::new();
    let file = dir.join(format!("{name}.rs"));
    if file.is_file() {
        files.push((file, 1));
    }
    collect_rs(&dir.join(name), 1, &mut files);
    files
}

fn collect_rs(dir: &Path, depth: usize, files: &mut Vec<(PathBuf, usize)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_rs(&path, depth + 1, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            // dir/mod.rs is the module at `depth`; dir/x.rs is one level below it.
            let is_mod = path.file_name().is_some_and(|f| f == "mod.rs");
            files.push((path, if is_mod { depth } else { depth + 1 }));
        }
    }
}

/// The names the root's `use` items bring in, and where each comes from.
fn root_imports(
    toks: &[Token],
    modules: &BTreeMap<String, Vec<(PathBuf, usize)>>,
) -> BTreeMap<String, Option<String>> {
    let mut imports = BTreeMap::new();
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => depth -= 1,
            Tok::Ident(w) if w == "use" && depth == 0 => {
                let end = (i..toks.len())
                    .find(|&j| toks[j].tok == Tok::Punct(';'))
                    .unwrap_or(toks.len());
                let item = &toks[i + 1..end];
                let source = use_source(item).filter(|m| modules.contains_key(m));
                for name in use_leaves(item) {
                    imports.insert(name, source.clone());
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    imports
}

/// The first segment of a `use` path, past `crate::` and `self::`.
fn use_source(item: &[Token]) -> Option<String> {
    item.iter()
        .filter_map(|t| match &t.tok {
            Tok::Ident(w) if w != "crate" && w != "self" => Some(w.clone()),
            _ => None,
        })
        .next()
}

/// The names a `use` tree binds: each last segment, or the name after `as`.
fn use_leaves(item: &[Token]) -> Vec<String> {
    let mut leaves = Vec::new();
    for (j, t) in item.iter().enumerate() {
        let Tok::Ident(name) = &t.tok else { continue };
        let next = item.get(j + 1).map(|t| &t.tok);
        let next_is_as = matches!(next, Some(Tok::Ident(w)) if w == "as");
        let after_as = j > 0 && matches!(&item[j - 1].tok, Tok::Ident(w) if w == "as");
        let ends = matches!(next, None | Some(Tok::Punct(',' | '}')));
        if name != "as" && !next_is_as && (ends || after_as) {
            leaves.push(name.clone());
        }
    }
    leaves
}

/// Tarjan's strongly connected components.
fn components<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<BTreeSet<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<BTreeSet<&'a str>>,
    }
    fn visit<'a>(v: &'a str, g: &BTreeMap<&'a str, BTreeSet<&'a str>>, s: &mut State<'a>) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for &w in g.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, g, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                component.insert(w);
                if w == v {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for &v in graph.keys() {
        if !state.index.contains_key(v) {
            visit(v, graph, &mut state);
        }
    }
    state.out
}

/// A shortest cycle through the first node of `component`, first node repeated at the end.
fn cycle_in<'a>(
    graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    component: &BTreeSet<&'a str>,
) -> Vec<&'a str> {
    let start = *component.iter().next().expect("a component has a node");
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in graph.get(v).into_iter().flatten() {
            if !component.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![start, v];
                let mut at = v;
                while let Some(&prev) = came_from.get(at) {
                    path.push(prev);
                    at = prev;
                }
                path[1..].reverse();
                path.push(start);
                path.dedup();
                return path;
            }
            if w != start && !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start, start]
}

/// The tokens of `src`, its comments, string and character literals and `#[cfg(test)]`
/// modules left out; each token keeps its line.
fn tokens(src: &str) -> Vec<Token> {
    let code = blank_comments_and_literals(src);
    let chars: Vec<char> = code.chars().collect();
    let mut toks = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
        }
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            toks.push(Token {
                tok: Tok::Ident(word),
                line,
            });
            continue;
        }
        if c == ':' && chars.get(i + 1) == Some(&':') {
            toks.push(Token {
                tok: Tok::Path,
                line,
            });
            i += 2;
            continue;
        }
        if !c.is_whitespace() {
            toks.push(Token {
                tok: Tok::Punct(c),
                line,
            });
        }
        i += 1;
    }
    drop_test_modules(toks)
}

/// Removes `#[cfg(test)] mod NAME { .. }` and `#[cfg(test)] mod NAME;`: a test may use what
/// its module does not.
fn drop_test_modules(toks: Vec<Token>) -> Vec<Token> {
    const CFG_TEST: [&str; 7] = ["#", "[", "cfg", "(", "test", ")", "]"];
    let text = |t: &Token| match &t.tok {
        Tok::Ident(w) => w.clone(),
        Tok::Punct(c) => c.to_string(),
        Tok::Path => "::".to_owned(),
    };
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let is_cfg_test = toks.len() >= i + CFG_TEST.len()
            && CFG_TEST.iter().enumerate().all(|(k, w)| text(&toks[i + k]) == *w);
        if !is_cfg_test {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        let mut j = i + CFG_TEST.len();
        while matches!(toks.get(j).map(text).as_deref(), Some("pub" | "mod")) {
            j += 1;
        }
        let is_mod = j >= i + CFG_TEST.len() + 1 && text(&toks[j - 1]) == "mod";
        if !is_mod {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        // Past the name: either `;` or a braced body.
        j += 1;
        if matches!(toks.get(j).map(|t| &t.tok), Some(Tok::Punct('{'))) {
            let mut depth = 0;
            while j < toks.len() {
                match toks[j].tok {
                    Tok::Punct('{') => depth += 1,
                    Tok::Punct('}') => depth -= 1,
                    _ => {}
                }
                j += 1;
                if depth == 0 {
                    break;
                }
            }
        } else {
            j += 1;
        }
        i = j;
    }
    out
}

/// `src` with comments, string and character literals replaced by spaces (newlines kept, so
/// lines still count).
fn blank_comments_and_literals(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        let end = literal_or_comment_end(&chars, i);
        if end == i {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        for &c in &chars[i..end] {
            out.push(if c == '\n' { '\n' } else { ' ' });
        }
        i = end;
    }
    out
}

/// Where the comment or literal starting at `i` ends; `i` itself when none starts there.
fn literal_or_comment_end(chars: &[char], i: usize) -> usize {
    let at = |k: usize| chars.get(k).copied();
    let ident_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    match (chars[i], at(i + 1)) {
        ('/', Some('/')) => (i..chars.len()).find(|&k| chars[k] == '\n').unwrap_or(chars.len()),
        ('/', Some('*')) => block_comment_end(chars, i),
        ('"', _) => quoted_end(chars, i + 1, '"'),
        ('r', Some('#' | '"')) if !ident_before => raw_string_end(chars, i + 1).unwrap_or(i),
        ('b', Some('r')) if !ident_before => raw_string_end(chars, i + 2).unwrap_or(i),
        ('\'', Some('\\')) => quoted_end(chars, i + 1, '\''),
        // 'x' is a character; 'a without a closing quote two further on is a lifetime.
        ('\'', Some(_)) if at(i + 2) == Some('\'') => i + 3,
        _ => i,
    }
}

fn block_comment_end(chars: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    chars.len()
}

/// Past the closing `quote` of a literal whose body starts at `i`, escapes skipped.
fn quoted_end(chars: &[char], mut i: usize, quote: char) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// `#*"..."#*` starting at `i` (after the `r`); `None` when it is not a raw string.
fn raw_string_end(chars: &[char], mut i: usize) -> Option<usize> {
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    if chars.get(i) != Some(&'"') {
        return None;
    }
    i += 1;
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    Some(chars.len())
}
