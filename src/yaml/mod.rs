//! YAML loading with source locations.
//!
//! A file is read twice: once into a [`Node`] tree that remembers the line and column of
//! every key and value (so validation can point at the exact place of every problem, not
//! just the first one serde stops at), and once into the typed `Raw*` structures. Both
//! passes use the same hardened parser options: strict booleans (`yes` stays a string),
//! duplicate keys rejected, and budgets against alias bombs and runaway nesting.

use std::fmt;

use serde::de::{Deserialize, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

pub mod checker;
pub mod diag;
pub mod durations;
pub mod shape;

use diag::{Diagnostic, Loc};

/// Largest YAML file we accept (profiles are a few KB; this stops accidents and abuse).
pub const MAX_YAML_BYTES: usize = 4 * 1024 * 1024;

/// Deepest nesting of lists and mappings we accept. The deepest real key of a profile or
/// `mailtriage.yaml` is 5 levels down; every level costs the deserializer tens of KiB of
/// stack in a debug build, so the budget must stop a deep file long before a 2 MiB thread
/// stack runs out (64 levels did not: the process aborted instead of reporting an error).
pub const MAX_DEPTH: usize = 20;

/// Most keys, values and list items in one file, counting what aliases repeat.
pub const MAX_NODES: usize = 200_000;

/// One step of a path into a YAML document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into a YAML document, printed the way an owner would read it:
/// `team[0].roles[1]`, `categories.SALES.keywords."price list"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(pub Vec<Seg>);

impl Path {
    /// The root of the document.
    pub fn root() -> Self {
        Path(Vec::new())
    }

    /// This path extended by a mapping key.
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    /// This path extended by a sequence index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let plain = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$');
                    // A key can be arbitrarily long; the path only needs to recognise it.
                    let shown: String = if k.chars().count() > 60 {
                        k.chars().take(40).chain(std::iter::once('…')).collect()
                    } else {
                        k.clone()
                    };
                    if plain {
                        f.write_str(&shown)?;
                    } else {
                        write!(f, "{shown:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A YAML value with the location it was written at.
#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub loc: Loc,
}

/// A mapping key with its location.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub loc: Loc,
}

/// The shape of a YAML value as the parser resolved it.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// A short noun for error messages ("a list", "a number", …).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "true/false",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "text",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping (key: value pairs)",
        }
    }
}

impl Node {
    /// The value at `path` below this node, if there is one.
    pub fn get(&self, path: &Path) -> Option<&Node> {
        let mut node = self;
        for seg in &path.0 {
            node = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(entries)) => {
                    &entries.iter().find(|(key, _)| &key.name == k)?.1
                }
                (Seg::Index(i), Value::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The location of the key that introduces `path` (or of the item, for an index), or
    /// the nearest enclosing location that exists.
    pub fn locate_key(&self, path: &Path) -> Loc {
        let mut node = self;
        let mut best = self.loc;
        for seg in &path.0 {
            match (seg, &node.value) {
                (Seg::Key(k), Value::Map(entries)) => {
                    match entries.iter().find(|(key, _)| &key.name == k) {
                        Some((key, value)) => {
                            best = key.loc;
                            node = value;
                        }
                        None => return best,
                    }
                }
                (Seg::Index(i), Value::Seq(items)) => match items.get(*i) {
                    Some(item) => {
                        best = item.loc;
                        node = item;
                    }
                    None => return best,
                },
                _ => return best,
            }
        }
        best
    }

    /// The location of the value at `path`, or the nearest enclosing location.
    pub fn locate_value(&self, path: &Path) -> Loc {
        match self.get(path) {
            Some(n) => n.loc,
            None => self.locate_key(path),
        }
    }
}

/// Parser options shared by every YAML file mailtriage reads.
fn options() -> serde_saphyr::Options {
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 100_000;
    alias_limits.max_replay_stack_depth = 32;
    alias_limits.max_alias_expansions_per_anchor = 1_000;
    serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_depth: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_total_scalar_bytes: MAX_YAML_BYTES,
        },
        alias_limits: alias_limits,
    }
}

/// Turns a parser error into a diagnostic at its location.
fn parse_error(file: &str, err: &serde_saphyr::Error) -> Diagnostic {
    let loc = err
        .location()
        .map(|l| Loc {
            line: u32::try_from(l.line()).unwrap_or(0),
            column: u32::try_from(l.column()).unwrap_or(0),
        })
        .unwrap_or_default();
    // The parser's own message starts with "error: line N column M: "; keep what follows.
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("invalid YAML");
    let message = match first.split_once(": ") {
        Some((_, rest)) if first.starts_with("error") => match rest.split_once(": ") {
            Some((pos, msg)) if pos.starts_with("line ") => msg.to_string(),
            _ => rest.to_string(),
        },
        _ => first.to_string(),
    };
    // Budget breaches read "budget breached: Kind { .. }"; the kind says what was too big.
    // (Depth must be told apart from aliases: a deep file is not an alias bomb.)
    let breach = message
        .split_once("budget breached: ")
        .map(|(_, kind)| kind.split([' ', '{']).next().unwrap_or_default());
    let lower = message.to_lowercase();
    let nesting = match breach {
        Some(kind) => kind == "Depth",
        None => {
            !lower.contains("alias")
                && ["depth", "nesting", "recursion"]
                    .iter()
                    .any(|w| lower.contains(w))
        }
    };
    if nesting {
        return Diagnostic::new(
            file,
            loc,
            Path::root(),
            format!("the file nests too deeply ({message})"),
        )
        .expected(format!("at most {MAX_DEPTH} levels of lists and mappings"));
    }
    if matches!(breach, Some("Nodes" | "Events" | "ScalarBytes")) {
        return Diagnostic::new(
            file,
            loc,
            Path::root(),
            format!("the file holds too many values ({message})"),
        )
        .expected(format!(
            "at most {MAX_NODES} keys, values and list items and {} MiB of text, counting what aliases (*name) repeat",
            MAX_YAML_BYTES >> 20
        ));
    }
    if breach.is_some() || lower.contains("alias") || lower.contains("anchor") {
        return Diagnostic::new(
            file,
            loc,
            Path::root(),
            format!("the file's YAML aliases (*name) expand to too much data ({message})"),
        )
        .expected("a profile without deeply repeated aliases; write the values out instead");
    }
    // Keys are read as text; the parser's words for other keys are written for programmers.
    if message.starts_with("expected string scalar") {
        return Diagnostic::new(
            file,
            loc,
            Path::root(),
            "a key must be text, not a list or a mapping",
        )
        .expected("a key such as `name:` or `keywords:` (quote it if it starts with [ or {)");
    }
    if message.starts_with("cannot deserialize null into string") {
        return Diagnostic::new(
            file,
            loc,
            Path::root(),
            "a key is empty (`null`, `~` or nothing)",
        )
        .expected("a key such as `name:`; write \"null\" in quotes to mean the word");
    }
    Diagnostic::new(file, loc, Path::root(), format!("YAML syntax: {message}"))
}

/// A syntax error often comes a line after its cause: a `[` or `{` never closed. Point at it.
fn bracket_hint(d: Diagnostic, text: &str) -> Diagnostic {
    if d.expected.is_some() || d.loc.line == 0 || d.message.contains("duplicate") {
        return d;
    }
    let upto = d.loc.line as usize;
    for (i, line) in text
        .lines()
        .enumerate()
        .take(upto)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let code = line.split(" #").next().unwrap_or(line);
        let mut depth: i32 = 0;
        let mut quote: Option<char> = None;
        // A quote opens a quoted scalar only where a scalar starts (`O'Brien` is plain).
        let mut scalar_start = true;
        for c in code.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') if scalar_start => quote = Some(c),
                (None, '[' | '{') => depth += 1,
                (None, ']' | '}') => depth -= 1,
                _ => {}
            }
            if quote.is_none() {
                scalar_start = matches!(c, '[' | '{' | ',' | ':' | '-' | ' ' | '\t');
            }
        }
        if depth > 0 {
            return d.expected(format!(
                "line {} opens a `[` or `{{` that is never closed on that line",
                i + 1
            ));
        }
    }
    d
}

/// Checks size and encoding before parsing.
fn check_text(file: &str, bytes: &[u8]) -> Result<String, Box<Diagnostic>> {
    if bytes.len() > MAX_YAML_BYTES {
        return Err(Box::new(Diagnostic::new(
            file,
            Loc::default(),
            Path::root(),
            format!(
                "file is {} bytes; a profile may be at most {} bytes",
                bytes.len(),
                MAX_YAML_BYTES
            ),
        )));
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.strip_prefix('\u{feff}').unwrap_or(s).to_string()),
        Err(e) => {
            let upto = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
            let col = upto.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            Err(Box::new(
                Diagnostic::new(
                    file,
                    Loc {
                        line: u32::try_from(line).unwrap_or(u32::MAX),
                        column: u32::try_from(col).unwrap_or(u32::MAX),
                    },
                    Path::root(),
                    "the file is not valid UTF-8 text (save it as UTF-8)".to_string(),
                )
                .expected("UTF-8 encoded YAML"),
            ))
        }
    }
}

/// A YAML document parsed both ways: the located tree and its source text.
pub struct Document {
    pub file: String,
    pub text: String,
    pub root: Node,
}

impl Document {
    /// Parses `bytes` (the contents of `file`) into a located tree.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Document, Box<Diagnostic>> {
        let text = check_text(file, bytes)?;
        let root = if text.trim().is_empty() {
            Node {
                value: Value::Null,
                loc: Loc { line: 1, column: 1 },
            }
        } else {
            let spanned: Spanned<RawNode> = serde_saphyr::from_str_with_options(&text, options())
                .map_err(|e| {
                Box::new(bracket_hint(parse_error(file, &e), &text).with_source(&text))
            })?;
            convert(spanned)
        };
        Ok(Document {
            file: file.to_string(),
            text,
            root,
        })
    }

    /// Deserializes the document into a typed structure.
    pub fn typed<T: DeserializeOwned>(&self) -> Result<T, Box<Diagnostic>> {
        let src = if self.text.trim().is_empty() {
            "{}"
        } else {
            &self.text
        };
        serde_saphyr::from_str_with_options(src, options())
            .map_err(|e| Box::new(parse_error(&self.file, &e)))
    }
}

/// The parser-facing tree (spans in serde-saphyr's types), converted right away.
enum RawNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<String>, Spanned<RawNode>)>),
}

fn loc_of(l: &serde_saphyr::Location) -> Loc {
    Loc {
        line: u32::try_from(l.line()).unwrap_or(0),
        column: u32::try_from(l.column()).unwrap_or(0),
    }
}

fn convert(n: Spanned<RawNode>) -> Node {
    let loc = loc_of(&n.referenced);
    let value = match n.value {
        RawNode::Null => Value::Null,
        RawNode::Bool(b) => Value::Bool(b),
        RawNode::Int(i) => Value::Int(i),
        RawNode::Float(f) => Value::Float(f),
        RawNode::Str(s) => Value::Str(s),
        RawNode::Seq(items) => Value::Seq(items.into_iter().map(convert).collect()),
        RawNode::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    (
                        Key {
                            loc: loc_of(&k.referenced),
                            name: k.value,
                        },
                        convert(v),
                    )
                })
                .collect(),
        ),
    };
    Node { value, loc }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<RawNode, E> {
                Ok(RawNode::Null)
            }
            fn visit_none<E>(self) -> Result<RawNode, E> {
                Ok(RawNode::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<RawNode, D2::Error> {
                RawNode::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
                Ok(RawNode::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
                Ok(RawNode::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
                Ok(match i64::try_from(v) {
                    Ok(i) => RawNode::Int(i),
                    Err(_) => RawNode::Float(v as f64),
                })
            }
            fn visit_i128<E>(self, v: i128) -> Result<RawNode, E> {
                Ok(RawNode::Float(v as f64))
            }
            fn visit_u128<E>(self, v: u128) -> Result<RawNode, E> {
                Ok(RawNode::Float(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
                Ok(RawNode::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
                Ok(RawNode::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
                Ok(RawNode::Str(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<RawNode, E> {
                Ok(RawNode::Str(String::from_utf8_lossy(v).into_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<RawNode, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = s.next_element::<Spanned<RawNode>>()? {
                    out.push(item);
                }
                Ok(RawNode::Seq(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawNode, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Spanned<String>>()? {
                    let v = m.next_value::<Spanned<RawNode>>()?;
                    out.push((k, v));
                }
                Ok(RawNode::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_an_owner_reads_them() {
        let p = Path::root()
            .key("categories")
            .key("SALES")
            .key("keywords")
            .key("price list");
        assert_eq!(p.to_string(), r#"categories.SALES.keywords."price list""#);
        assert_eq!(
            Path::root()
                .key("team")
                .index(0)
                .key("roles")
                .index(1)
                .to_string(),
            "team[0].roles[1]"
        );
    }

    #[test]
    fn locates_keys_and_values() {
        let doc = Document::parse("t.yaml", b"team:\n  - name: Mark\n    roles: [a, b]\n")
            .expect("parses");
        let p = Path::root().key("team").index(0).key("roles").index(1);
        assert_eq!(
            doc.root.locate_value(&p),
            Loc {
                line: 3,
                column: 16
            }
        );
        let k = Path::root().key("team").index(0).key("roles");
        assert_eq!(doc.root.locate_key(&k), Loc { line: 3, column: 5 });
    }

    #[test]
    fn strict_booleans_keep_yes_as_text() {
        let doc = Document::parse("t.yaml", b"a: yes\nb: true\n").expect("parses");
        let a = doc.root.get(&Path::root().key("a")).map(|n| &n.value);
        assert!(matches!(a, Some(Value::Str(s)) if s == "yes"));
        let b = doc.root.get(&Path::root().key("b")).map(|n| &n.value);
        assert!(matches!(b, Some(Value::Bool(true))));
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let err = Document::parse("bad.yaml", b"name: x\nroles: [a\n")
            .err()
            .expect("fails");
        assert_eq!(err.loc.line, 2);
        assert!(err.message.contains("YAML syntax"), "{}", err.message);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            y.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(Document::parse("bomb.yaml", y.as_bytes()).is_err());
    }

    #[test]
    fn invalid_utf8_is_reported_with_position() {
        let err = Document::parse("x.yaml", b"a: 1\nb: \xff\xfe\n")
            .err()
            .expect("fails");
        assert_eq!((err.loc.line, err.loc.column), (2, 4));
    }
}
