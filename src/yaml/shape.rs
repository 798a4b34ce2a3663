//! Structural validation of a YAML document against the JSON Schema generated from the
//! `Raw*` types: unknown keys (with "did you mean"), missing keys, wrong kinds of values
//! and words outside an allowed set — every one of them, each with its location.
//!
//! serde alone stops at the first problem; walking the located tree first lets an owner
//! see all of them at once. The schema is the same one `mailtriage schema` prints, so the
//! two can never disagree.

use serde_json::{Map, Value as Json};

use super::diag::{did_you_mean, Diagnostic};
use super::{Node, Path, Value};

/// Checks `root` against `schema` (a root schema with `$defs`); returns every problem.
pub fn check(file: &str, root: &Node, schema: &Json) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let walker = Walker { file, defs: schema };
    walker.walk(root, schema, &Path::root(), &mut out);
    out
}

struct Walker<'a> {
    file: &'a str,
    defs: &'a Json,
}

/// The schema's words for a JSON type, as an owner would read them.
fn type_noun(t: &str) -> &'static str {
    match t {
        "object" => "a mapping (key: value pairs)",
        "array" => "a list",
        "string" => "text",
        "number" => "a number",
        "integer" => "a whole number",
        "boolean" => "true or false",
        "null" => "nothing",
        _ => "a value",
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn kind_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => matches!(v, Value::Map(_)),
        "array" => matches!(v, Value::Seq(_)),
        "string" => matches!(v, Value::Str(_) | Value::Int(_) | Value::Float(_)),
        "number" => matches!(v, Value::Int(_) | Value::Float(_)),
        "integer" => matches!(v, Value::Int(_)),
        "boolean" => matches!(v, Value::Bool(_)),
        "null" => matches!(v, Value::Null),
        _ => true,
    }
}

fn found(v: &Value) -> String {
    match v {
        Value::Str(s) => {
            let short: String = s.chars().take(40).collect();
            format!("text `{short}`")
        }
        Value::Bool(b) => format!("`{b}`"),
        Value::Int(i) => format!("the number {i}"),
        Value::Float(f) => format!("the number {f}"),
        other => other.kind().to_string(),
    }
}

impl Walker<'_> {
    fn resolve<'s>(&'s self, schema: &'s Json) -> &'s Json {
        let mut s = schema;
        for _ in 0..16 {
            match s.get("$ref").and_then(Json::as_str) {
                Some(r) => {
                    let name = r.rsplit('/').next().unwrap_or_default();
                    match self.defs.get("$defs").and_then(|d| d.get(name)) {
                        Some(def) => s = def,
                        None => return s,
                    }
                }
                None => return s,
            }
        }
        s
    }

    /// The fixed words a schema allows (`enum`, `const`, or alternatives made only of them).
    fn words(&self, schema: &Json) -> Option<Vec<String>> {
        let s = self.resolve(schema);
        if let Some(values) = s.get("enum").and_then(Json::as_array) {
            return Some(
                values
                    .iter()
                    .filter_map(Json::as_str)
                    .map(String::from)
                    .collect(),
            );
        }
        if let Some(c) = s.get("const").and_then(Json::as_str) {
            return Some(vec![c.to_string()]);
        }
        let branches = s.get("oneOf").or_else(|| s.get("anyOf"))?.as_array()?;
        let mut out = Vec::new();
        for b in branches {
            out.extend(self.words(b)?);
        }
        Some(out)
    }

    /// Could a value of this kind satisfy the schema (looking through alternatives)?
    fn kind_ok(&self, schema: &Json, v: &Value, depth: usize) -> bool {
        let s = self.resolve(schema);
        if depth > 8 {
            return true;
        }
        if let Some(branches) = s
            .get("anyOf")
            .or_else(|| s.get("oneOf"))
            .and_then(Json::as_array)
        {
            return branches.iter().any(|b| self.kind_ok(b, v, depth + 1));
        }
        match s.get("type") {
            Some(Json::String(t)) => kind_matches(t, v),
            Some(Json::Array(ts)) => ts
                .iter()
                .filter_map(Json::as_str)
                .any(|t| kind_matches(t, v)),
            _ => true,
        }
    }

    fn diag(&self, node: &Node, path: &Path, msg: String) -> Diagnostic {
        Diagnostic::new(self.file, node.loc, path.clone(), msg)
    }

    /// A short description of what a schema accepts.
    fn expects(&self, schema: &Json) -> String {
        let s = self.resolve(schema);
        if let Some(words) = self.words(s) {
            return format!("one of: {}", words.join(", "));
        }
        if let Some(branches) = s
            .get("anyOf")
            .or_else(|| s.get("oneOf"))
            .and_then(Json::as_array)
        {
            let parts: Vec<String> = branches
                .iter()
                .filter(|b| b.get("type").and_then(Json::as_str) != Some("null"))
                .map(|b| self.expects(b))
                .collect();
            return parts.join(", or ");
        }
        let base = match s.get("type") {
            Some(Json::String(t)) => type_noun(t).to_string(),
            Some(Json::Array(ts)) => ts
                .iter()
                .filter_map(Json::as_str)
                .filter(|t| *t != "null")
                .map(type_noun)
                .collect::<Vec<_>>()
                .join(" or "),
            _ => "a value".to_string(),
        };
        if s.get("type").and_then(Json::as_str) == Some("object") {
            if let Some(props) = s.get("properties").and_then(Json::as_object) {
                let keys: Vec<&str> = props.keys().map(String::as_str).collect();
                return format!("{base} with keys among: {}", keys.join(", "));
            }
        }
        base
    }

    fn walk(&self, node: &Node, schema: &Json, path: &Path, out: &mut Vec<Diagnostic>) {
        let s = self.resolve(schema);
        if let Some(words) = self.words(s) {
            let text = scalar_text(&node.value);
            let ok = text.as_ref().is_some_and(|t| words.iter().any(|w| w == t));
            if !ok {
                let shown = text.unwrap_or_else(|| node.value.kind().to_string());
                let mut d = self
                    .diag(node, path, format!("`{shown}` is not allowed here"))
                    .expected(format!("one of: {}", words.join(", ")))
                    .suggest(did_you_mean(&shown, words.iter().map(String::as_str)));
                if let Some(desc) = s.get("description").and_then(Json::as_str) {
                    d = d.expected(format!("one of: {} ({desc})", words.join(", ")));
                }
                out.push(d);
            }
            return;
        }
        if let Some(branches) = s
            .get("anyOf")
            .or_else(|| s.get("oneOf"))
            .and_then(Json::as_array)
        {
            self.walk_alternatives(node, s, branches, path, out);
            return;
        }
        let types: Vec<&str> = match s.get("type") {
            Some(Json::String(t)) => vec![t.as_str()],
            Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|t| kind_matches(t, &node.value)) {
            let yes_no = matches!(&node.value, Value::Str(w) if ["yes", "no", "on", "off", "y", "n"].contains(&w.to_lowercase().as_str()));
            let msg = if types.contains(&"boolean") && yes_no {
                format!(
                    "expected true or false, found {} (yes/no/on/off are text in mailtriage profiles)",
                    found(&node.value)
                )
            } else {
                format!("expected {}, found {}", self.expects(s), found(&node.value))
            };
            let mut d = self.diag(node, path, msg);
            if let Some(desc) = s.get("description").and_then(Json::as_str) {
                d = d.expected(desc.to_string());
            }
            out.push(d);
            return;
        }
        if let (Some(min), Value::Int(_) | Value::Float(_)) =
            (s.get("minimum").and_then(Json::as_f64), &node.value)
        {
            let v = match node.value {
                Value::Int(i) => i as f64,
                Value::Float(f) => f,
                _ => 0.0,
            };
            if v < min {
                out.push(
                    self.diag(node, path, format!("{v} is too small"))
                        .expected(format!("a number of at least {min}")),
                );
            }
        }
        match &node.value {
            Value::Map(entries) => self.walk_object(node, entries, s, path, out),
            Value::Seq(items) => {
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item, item_schema, &path.index(i), out);
                    }
                }
            }
            _ => {}
        }
    }

    fn walk_alternatives(
        &self,
        node: &Node,
        s: &Json,
        branches: &[Json],
        path: &Path,
        out: &mut Vec<Diagnostic>,
    ) {
        let mut best: Option<Vec<Diagnostic>> = None;
        for b in branches {
            let rb = self.resolve(b);
            let mut errs = Vec::new();
            self.walk(node, rb, path, &mut errs);
            if errs.is_empty() {
                return;
            }
            // Prefer the branch whose kind of value matches what was written.
            if best.is_none() && self.kind_ok(rb, &node.value, 0) {
                best = Some(errs);
            }
        }
        match best {
            Some(mut errs) => {
                // A word that fits none of several alternatives: say what all of them accept.
                let real = branches
                    .iter()
                    .filter(|b| self.resolve(b).get("type").and_then(Json::as_str) != Some("null"))
                    .count();
                if real > 1 && errs.len() == 1 {
                    if let Some(e) = errs.first_mut().filter(|e| &e.path == path) {
                        e.expected = Some(self.expects(s));
                    }
                }
                out.extend(errs)
            }
            None => {
                let mut d = self.diag(
                    node,
                    path,
                    format!("expected {}, found {}", self.expects(s), found(&node.value)),
                );
                if let Some(desc) = s.get("description").and_then(Json::as_str) {
                    d = d.expected(desc.to_string());
                }
                out.push(d);
            }
        }
    }

    fn walk_object(
        &self,
        node: &Node,
        entries: &[(super::Key, Node)],
        s: &Json,
        path: &Path,
        out: &mut Vec<Diagnostic>,
    ) {
        let empty = Map::new();
        let props = s
            .get("properties")
            .and_then(Json::as_object)
            .unwrap_or(&empty);
        let additional = s.get("additionalProperties");
        for (key, value) in entries {
            let child = path.key(&key.name);
            if let Some(p) = props.get(&key.name) {
                self.walk(value, p, &child, out);
                continue;
            }
            match additional {
                Some(Json::Bool(false)) => {
                    let names: Vec<&str> = props.keys().map(String::as_str).collect();
                    let mut d = Diagnostic::new(
                        self.file,
                        key.loc,
                        child,
                        format!("unknown key `{}`", key.name),
                    )
                    .suggest(did_you_mean(&key.name, names.iter().copied()));
                    if !names.is_empty() {
                        d = d.expected(format!("one of: {}", names.join(", ")));
                    }
                    out.push(d);
                }
                Some(extra @ Json::Object(_)) => self.walk(value, extra, &child, out),
                _ => {}
            }
        }
        if let Some(required) = s.get("required").and_then(Json::as_array) {
            for r in required.iter().filter_map(Json::as_str) {
                if !entries.iter().any(|(k, _)| k.name == r) {
                    let mut d = self.diag(node, path, format!("missing required key `{r}`"));
                    if let Some(desc) = props
                        .get(r)
                        .map(|p| self.resolve(p))
                        .and_then(|p| p.get("description"))
                        .and_then(Json::as_str)
                    {
                        d = d.expected(format!("`{r}`: {desc}"));
                    }
                    out.push(d);
                }
            }
        }
    }
}
