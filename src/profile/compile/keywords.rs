//! Keyword maps: merged over the rule packs, checked, and compiled into keyword sets.

use regex::RegexBuilder;

use super::MAX_KEYWORD_CHARS;
use crate::matching::matcher::{spelling, Entry, KeywordSet, PatternEntry};
use crate::profile::raw::{KeywordWeights, RawCategory, RawRole};
use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::Path;

/// Largest compiled size of one regex (bytes of the compiled program).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// The problem with a keyword or alias that is too long, if it is.
pub(super) fn too_long(word: &str) -> Option<String> {
    let n = word.chars().count();
    (n > MAX_KEYWORD_CHARS).then(|| {
        let short: String = word.chars().take(24).collect();
        format!("`{short}…` is {n} characters long; a keyword or alias may have at most {MAX_KEYWORD_CHARS}")
    })
}

/// Merges keyword maps: the overlay's weights replace the base's; weight 0 removes.
pub(super) fn merge_keywords(base: &KeywordWeights, overlay: &KeywordWeights) -> KeywordWeights {
    let mut out = base.clone();
    for (k, w) in overlay {
        if *w == 0.0 {
            out.remove(k);
        } else {
            out.insert(k.clone(), *w);
        }
    }
    out
}

pub(super) fn merge_category(base: Option<&RawCategory>, overlay: &RawCategory) -> RawCategory {
    let empty = RawCategory::default();
    let b = base.unwrap_or(&empty);
    RawCategory {
        description: overlay
            .description
            .clone()
            .or_else(|| b.description.clone()),
        threshold: overlay.threshold.or(b.threshold),
        subject_boost: overlay.subject_boost.or(b.subject_boost),
        keywords: merge_keywords(&b.keywords, &overlay.keywords),
        patterns: merge_keywords(&b.patterns, &overlay.patterns),
    }
}

pub(super) fn merge_role(base: Option<&RawRole>, overlay: &RawRole) -> RawRole {
    let empty = RawRole::default();
    let b = base.unwrap_or(&empty);
    RawRole {
        label: overlay.label.clone().or_else(|| b.label.clone()),
        description: overlay
            .description
            .clone()
            .or_else(|| b.description.clone()),
        weight: overlay.weight.or(b.weight),
        categories: overlay.categories.clone().or_else(|| b.categories.clone()),
        keywords: merge_keywords(&b.keywords, &overlay.keywords),
        patterns: merge_keywords(&b.patterns, &overlay.patterns),
    }
}

/// Checks weights and compiles a keyword map + pattern map into a set; `origin` says which
/// pack or file each word came from.
pub(super) fn keyword_set(
    c: &mut Checker<'_>,
    path: &Path,
    keywords: &KeywordWeights,
    patterns: &KeywordWeights,
    origin: &dyn Fn(&str) -> &'static str,
) -> KeywordSet {
    let mut set = KeywordSet::default();
    for (k, w) in keywords {
        let p = path.key("keywords").key(k);
        if !w.is_finite() {
            c.at_value(&p, format!("weight of `{k}` is not a number"))
                .expect_("a number such as 1.0 or 0.5");
            continue;
        }
        let (text, _) = spelling(k);
        if text.trim().is_empty() {
            c.at_key(&p, "an empty keyword matches nothing")
                .expect_("a word or phrase");
            continue;
        }
        if let Some(msg) = too_long(k) {
            c.at_key(&p, msg).expect_("a word or a short phrase");
            continue;
        }
        if text.contains('*') {
            c.at_key(&p, format!("`*` may only end a keyword (`{k}`)"))
                .expect_("a word, a phrase, or a stem ending in * such as refund*");
            continue;
        }
        if text.starts_with('=') || (k.trim().starts_with('=') && k.trim().ends_with('*')) {
            c.at_key(&p, format!("`{k}` is both exact (`=`) and a stem (`*`)"))
                .expect_("=word for that word only, or stem* for every word starting with it");
            continue;
        }
        set.entries.push(Entry {
            keyword: k.clone(),
            weight: *w,
            origin: origin(k),
        });
    }
    for (source, w) in patterns {
        let p = path.key("patterns").key(source);
        if !w.is_finite() {
            c.at_value(&p, format!("weight of pattern `{source}` is not a number"))
                .expect_("a number such as 1.0");
            continue;
        }
        match RegexBuilder::new(source)
            .case_insensitive(true)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT * 4)
            .build()
        {
            Ok(regex) => set.patterns.push(PatternEntry {
                source: source.clone(),
                regex,
                weight: *w,
                origin: origin(source),
            }),
            Err(e) => {
                let detail = e.to_string();
                let last = detail
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("invalid")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string();
                let expected = if last.contains("size limit") {
                    "a smaller pattern: fewer or smaller repetitions ({n}), or a keyword instead"
                } else {
                    "a regular expression in Rust `regex` syntax (no look-around or backreferences)"
                };
                c.at_key(&p, format!("invalid regular expression: {last}"))
                    .expect_(expected);
            }
        }
    }
    set
}

/// Compiles a list of plain keywords (all weight 1) from `origin` into a set.
pub(crate) fn plain_set(words: &[String], origin: &'static str) -> KeywordSet {
    KeywordSet {
        entries: words
            .iter()
            .filter(|w| !w.trim().is_empty())
            .map(|w| Entry {
                keyword: w.clone(),
                weight: 1.0,
                origin,
            })
            .collect(),
        patterns: Vec::new(),
    }
}
