//! Configuration diagnostics: what went wrong, where (file, line, column, key path), what
//! was expected, and a "did you mean" when the mistake looks like a typo.
//!
//! Every problem in a file is collected before anything is reported, so an owner fixes
//! them all in one pass instead of one per attempt.

use std::fmt;

use super::Path;

/// A 1-based line and column in a source file (0 when unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    pub line: u32,
    pub column: u32,
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: String,
    pub loc: Loc,
    pub path: Path,
    pub message: String,
    pub expected: Option<String>,
    pub suggestion: Option<String>,
    /// The source line the location points into, for the snippet.
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// A problem at `loc`/`path` in `file`.
    pub fn new(file: &str, loc: Loc, path: Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            loc,
            path,
            message: message.into(),
            expected: None,
            suggestion: None,
            source_line: None,
        }
    }

    /// Adds what would have been accepted.
    pub fn expected(mut self, what: impl Into<String>) -> Self {
        self.expected = Some(what.into());
        self
    }

    /// Adds a "did you mean" suggestion, if there is one.
    pub fn suggest(mut self, candidate: Option<String>) -> Self {
        self.suggestion = candidate;
        self
    }

    /// Fills in the source line from the file's text.
    pub fn with_source(mut self, text: &str) -> Self {
        if self.loc.line > 0 {
            self.source_line = text
                .lines()
                .nth(self.loc.line as usize - 1)
                .map(|l| l.trim_end_matches('\r').to_string());
        }
        self
    }

    /// `file:line:column`, as editors and terminals understand it.
    pub fn position(&self) -> String {
        if self.loc.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}:{}", self.file, self.loc.line, self.loc.column)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        writeln!(f)?;
        writeln!(f, "  --> {}", self.position())?;
        if let Some(src) = &self.source_line {
            let num = self.loc.line.to_string();
            let pad = " ".repeat(num.len());
            let (shown, col) = snippet_window(src, self.loc.column.max(1) as usize);
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {shown}")?;
            let width = underline_width(&shown, col);
            let lead: String = shown
                .chars()
                .take(col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} | {lead}{}", "^".repeat(width))?;
        }
        if !self.path.0.is_empty() {
            writeln!(f, "   = at: {}", self.path)?;
        }
        if let Some(e) = &self.expected {
            writeln!(f, "   = expected: {e}")?;
        }
        Ok(())
    }
}

/// Longest source line shown whole in a snippet, in characters.
const SNIPPET_MAX_CHARS: usize = 120;

/// The part of a source line to show and the (1-based) column within it: the whole line
/// when it is short, else a window around `col` with `…` where it was cut (a minified or
/// machine-written file can have a line of megabytes).
fn snippet_window(line: &str, col: usize) -> (String, usize) {
    let len = line.chars().count();
    if len <= SNIPPET_MAX_CHARS {
        return (line.to_string(), col);
    }
    let col = col.min(len + 1);
    let before = 40;
    let start = col.saturating_sub(1 + before);
    let end = (start + SNIPPET_MAX_CHARS - 2).min(len);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.extend(line.chars().skip(start).take(end - start));
    if end < len {
        out.push('…');
    }
    (out, col - start + usize::from(start > 0))
}

/// How many characters of the token starting at `col` to underline.
fn underline_width(line: &str, col: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(col - 1).collect();
    match rest.first() {
        None => 1,
        Some(&q @ ('"' | '\'')) => rest
            .iter()
            .skip(1)
            .position(|&c| c == q)
            .map_or(rest.len(), |p| p + 2),
        Some(_) => rest
            .iter()
            .position(|&c| matches!(c, ',' | ']' | '}' | '#' | '[' | '{') || c == ':')
            .unwrap_or(rest.len())
            .max(1),
    }
    .clamp(1, rest.len().clamp(1, 80))
}

/// Every problem found while loading one configuration file (or several).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// An error made of one diagnostic.
    pub fn single(d: Diagnostic) -> Self {
        ConfigError {
            diagnostics: vec![d],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let n = self.diagnostics.len();
        if n > 1 {
            writeln!(f)?;
            write!(f, "{n} problems found")?;
            if let Some(d) = self.diagnostics.first() {
                write!(f, " in {}", d.file)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The closest candidate to `word`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let w = word.to_lowercase();
    let candidates_again: Vec<&str> = candidates.into_iter().collect();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates_again.iter().copied() {
        let d = edit_distance(&w, &c.to_lowercase());
        let limit = match c.chars().count() {
            0..=3 => 1,
            4..=7 => 2,
            _ => 3,
        };
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    if let Some((_, c)) = best {
        return Some(c.to_string());
    }
    // A word that is the start of exactly one candidate ("keyword" → "keyword_only").
    let prefixed: Vec<&str> = candidates_again
        .iter()
        .copied()
        .filter(|c| w.chars().count() >= 3 && c.to_lowercase().starts_with(&w))
        .collect();
    match prefixed.as_slice() {
        [one] => Some((*one).to_string()),
        _ => None,
    }
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_not_strangers() {
        let roles = ["sales_manager", "service_manager", "owner"];
        let cases = [
            ("sales_manger", Some("sales_manager")),
            ("servce_manager", Some("service_manager")),
            ("onwer", Some("owner")),
            ("accountant", None),
        ];
        for (typo, want) in cases {
            assert_eq!(
                did_you_mean(typo, roles.iter().copied()).as_deref(),
                want,
                "{typo}"
            );
        }
    }

    /// Regression: the snippet printed the whole source line, so an error in a file with
    /// a megabyte-long line (a long anchored scalar, a one-line flow document) printed a
    /// megabyte of text. Long lines are now cut to a window around the column.
    #[test]
    fn megabyte_lines_were_printed_whole_in_snippets() {
        let line = format!(
            "team: [{}*bad, {}x]",
            "a, ".repeat(400_000),
            "b, ".repeat(100)
        );
        let col = line.find("*bad").map_or(1, |i| i + 1);
        let d = Diagnostic::new(
            "p.yaml",
            Loc {
                line: 1,
                column: u32::try_from(col).unwrap_or(u32::MAX),
            },
            Path::root(),
            "boom",
        )
        .with_source(&line);
        let text = d.to_string();
        assert!(text.len() < 600, "{} bytes", text.len());
        let lines: Vec<&str> = text.lines().collect();
        let src = lines[3].trim_start_matches("1 | ");
        let caret = lines[4].trim_start_matches("  | ");
        let at = caret.find('^').expect("a caret");
        assert_eq!(
            src.chars().skip(at).take(4).collect::<String>(),
            "*bad",
            "{text}"
        );
        assert!(src.starts_with('…') && src.ends_with('…'), "{src}");
        // Near the start of a long line, and on short lines, nothing changes.
        let (short, c) = snippet_window("roles: [x]", 9);
        assert_eq!((short.as_str(), c), ("roles: [x]", 9));
        let (head, c) = snippet_window(&line, 1);
        assert_eq!(c, 1);
        assert!(head.starts_with("team: [a,") && head.ends_with('…'));
    }

    #[test]
    fn renders_position_snippet_and_hints() {
        let d = Diagnostic::new(
            "p.yaml",
            Loc {
                line: 2,
                column: 11,
            },
            Path::root().key("team").index(0).key("roles").index(0),
            "unknown role `sales_manger`",
        )
        .suggest(Some("sales_manager".into()))
        .expected("a role from rules/roles.yaml or the profile's `roles:`")
        .with_source("team:\n  roles: [sales_manger]\n");
        let text = d.to_string();
        assert_eq!(
            text,
            "error: unknown role `sales_manger` (did you mean `sales_manager`?)\n  --> p.yaml:2:11\n  |\n2 |   roles: [sales_manger]\n  |           ^^^^^^^^^^^^\n   = at: team[0].roles[0]\n   = expected: a role from rules/roles.yaml or the profile's `roles:`\n"
        );
    }
}
