//! Where configuration problems are collected: each with its file, line and column.

use super::diag::Diagnostic;
use super::{Document, Path};

/// Collects diagnostics with locations resolved against the document.
pub(crate) struct Checker<'a> {
    doc: &'a Document,
    pub(crate) out: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(doc: &'a Document) -> Self {
        Checker {
            doc,
            out: Vec::new(),
        }
    }

    /// The file being checked, as named in messages.
    pub(crate) fn file(&self) -> &str {
        &self.doc.file
    }

    /// A problem with the value at `path`.
    pub(crate) fn at_value(&mut self, path: &Path, msg: impl Into<String>) -> &mut Diagnostic {
        let loc = self.doc.root.locate_value(path);
        self.push(Diagnostic::new(&self.doc.file, loc, path.clone(), msg))
    }

    /// A problem with the key at `path` (e.g. a name that is itself wrong).
    pub(crate) fn at_key(&mut self, path: &Path, msg: impl Into<String>) -> &mut Diagnostic {
        let loc = self.doc.root.locate_key(path);
        self.push(Diagnostic::new(&self.doc.file, loc, path.clone(), msg))
    }

    fn push(&mut self, d: Diagnostic) -> &mut Diagnostic {
        self.out.push(d);
        let last = self.out.len() - 1;
        &mut self.out[last]
    }

    /// Finishes: sorted by position, with source snippets.
    pub(crate) fn finish(mut self) -> Vec<Diagnostic> {
        self.out.sort_by_key(|d| d.loc);
        self.out
            .dedup_by(|a, b| a.loc == b.loc && a.message == b.message);
        let text = &self.doc.text;
        self.out.into_iter().map(|d| d.with_source(text)).collect()
    }
}

/// Extension for the builder-style diagnostic helpers on `&mut Diagnostic`.
pub(crate) trait DiagExt {
    fn expect_(&mut self, what: impl Into<String>) -> &mut Self;
    fn suggest_(&mut self, s: Option<String>) -> &mut Self;
}

impl DiagExt for Diagnostic {
    fn expect_(&mut self, what: impl Into<String>) -> &mut Self {
        self.expected = Some(what.into());
        self
    }
    fn suggest_(&mut self, s: Option<String>) -> &mut Self {
        self.suggestion = s;
        self
    }
}
