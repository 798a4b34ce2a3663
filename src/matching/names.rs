//! Finding team members named in a message (SPEC §5 step 1).
//!
//! Each member is known by their full name, first name, title + last name ("Mr. Johnson")
//! and aliases ("owner", "boss"). All variants go into one automaton matched on folded
//! text with whole-word boundaries, leftmost-longest (so "Mark Johnson" wins over "Mark").
//! The rules that keep this from misfiring:
//!
//! - a first name or alias shared by two members names nobody (full names still count);
//! - first names match only capitalised by default ("please mark this" names nobody);
//! - aliases used about someone else do not count: "my boss", "I'm the owner", "the owner
//!   of a 2019 spa", "co-owner";
//! - a name that is part of the sender's own display name does not count (a customer
//!   called Sarah signing "Sarah").

use std::collections::BTreeMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::matcher::{
    boundary_after, boundary_before, fold, fold_keyword, fold_text, is_word_char,
};

/// When a first name alone names a member (compiled from the profile's
/// `routing.first_names`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstNames {
    /// Only capitalised ("Mark", not "mark this as urgent").
    Capitalized,
    /// In any case.
    Any,
    /// First names alone never name anyone (full names and aliases still do).
    Off,
}

/// How a variant names its member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Full,
    First,
    TitledLast,
    Alias,
}

#[derive(Debug, Clone)]
struct Variant {
    member: usize,
    kind: Kind,
    /// As the owner would write it ("Mr. Johnson", "sales rep").
    display: String,
}

/// Every way the team can be named, compiled.
#[derive(Debug, Clone, Default)]
pub struct NameIndex {
    automaton: Option<AhoCorasick>,
    /// variants[pattern id] — after ambiguity pruning, one or more variants per string
    /// (several only for the same member).
    variants: Vec<Vec<Variant>>,
    /// Strings shared by several members, and who shares them.
    ambiguous: Vec<(String, Vec<usize>)>,
}

/// One place a member is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameHit {
    pub member: usize,
    pub kind: Kind,
    /// Byte range in the original text.
    pub start: usize,
    pub end: usize,
    /// The text as written.
    pub text: String,
}

const TITLES: &[&str] = &["mr", "mrs", "ms", "miss", "dr", "prof"];

fn strip_title(token: &str) -> Option<&str> {
    let t = token.trim_end_matches('.').to_lowercase();
    if TITLES.contains(&t.as_str()) {
        None
    } else {
        Some(token)
    }
}

/// Splits a full name into (first name, last name), skipping titles and initials.
pub fn name_parts(full: &str) -> (Option<String>, Option<String>) {
    let tokens: Vec<&str> = full.split_whitespace().filter_map(strip_title).collect();
    let is_initial = |t: &str| t.trim_end_matches('.').chars().count() <= 1;
    let first = tokens
        .first()
        .filter(|t| !is_initial(t))
        .map(|t| t.trim_end_matches(',').to_string());
    let last = if tokens.len() > 1 {
        tokens
            .last()
            .filter(|t| !is_initial(t))
            .map(|t| t.to_string())
    } else {
        None
    };
    (first, last)
}

impl NameIndex {
    /// Builds the index for members given as (full name, aliases).
    pub fn new(members: &[(String, Vec<String>)], first_names: FirstNames) -> NameIndex {
        // folded string → (member, kind) candidates
        let mut by_text: BTreeMap<String, Vec<Variant>> = BTreeMap::new();
        let mut add = |display: String, member: usize, kind: Kind| {
            let text = fold_keyword(&display);
            if text.is_empty() {
                return;
            }
            let list = by_text.entry(text).or_default();
            if !list.iter().any(|v| v.member == member && v.kind == kind) {
                list.push(Variant {
                    member,
                    kind,
                    display,
                });
            }
        };
        for (i, (full, aliases)) in members.iter().enumerate() {
            add(full.clone(), i, Kind::Full);
            let without_titles: Vec<&str> =
                full.split_whitespace().filter_map(strip_title).collect();
            add(without_titles.join(" "), i, Kind::Full);
            let (first, last) = name_parts(full);
            if let (Some(f), Some(l)) = (&first, &last) {
                add(format!("{f} {l}"), i, Kind::Full);
            }
            if first_names != FirstNames::Off {
                if let Some(f) = &first {
                    add(f.clone(), i, Kind::First);
                }
            }
            if let Some(l) = &last {
                for t in TITLES {
                    let title = format!("{}{}", t[..1].to_uppercase(), &t[1..]);
                    add(format!("{title} {l}"), i, Kind::TitledLast);
                    add(format!("{title}. {l}"), i, Kind::TitledLast);
                }
            }
            for a in aliases {
                add(a.clone(), i, Kind::Alias);
            }
        }
        let mut strings = Vec::new();
        let mut variants = Vec::new();
        let mut ambiguous = Vec::new();
        for (text, list) in by_text {
            let mut members: Vec<usize> = list.iter().map(|v| v.member).collect();
            members.dedup();
            // Shared by several members: only a full name can still tell them apart, and
            // two members with the same full name are rejected by validation.
            let kept: Vec<Variant> = if members.len() > 1 {
                if let Some(v) = list.first() {
                    ambiguous.push((v.display.clone(), members));
                }
                Vec::new()
            } else {
                list
            };
            if !kept.is_empty() {
                strings.push(text);
                variants.push(kept);
            }
        }
        let automaton = if strings.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(&strings)
                .ok()
        };
        NameIndex {
            automaton,
            variants,
            ambiguous,
        }
    }

    /// The ways `member` can be named, as (text, kind), for previews.
    pub fn triggers(&self, member: usize) -> Vec<(String, Kind)> {
        let mut out: Vec<(String, Kind)> = self
            .variants
            .iter()
            .flatten()
            .filter(|v| v.member == member)
            .filter(|v| v.kind != Kind::TitledLast || v.display.starts_with("Mr. "))
            .map(|v| match v.kind {
                // One entry stands for every title form ("Mr. Johnson", "Dr Johnson", …).
                Kind::TitledLast => (v.display.replacen("Mr. ", "Mr./Ms./Dr. ", 1), v.kind),
                _ => (v.display.clone(), v.kind),
            })
            .collect();
        out.sort_by_key(|(_, k)| match k {
            Kind::Full => 0,
            Kind::First => 1,
            Kind::TitledLast => 2,
            Kind::Alias => 3,
        });
        out.dedup_by(|a, b| a.0.eq_ignore_ascii_case(&b.0));
        out
    }

    /// Names or aliases shared by several members (ignored when matching), with the members.
    pub fn ambiguous(&self) -> &[(String, Vec<usize>)] {
        &self.ambiguous
    }

    /// Every place in `text` that names a member, in order, with the pitfall rules applied.
    /// `sender_name` is the sender's display name (its words never name anyone).
    pub fn find(&self, text: &str, mode: FirstNames, sender_name: Option<&str>) -> Vec<NameHit> {
        self.find_folded(text, &fold_text(text), mode, sender_name)
    }

    /// [`NameIndex::find`] with the text already folded by [`fold_text`]; the offset map
    /// back to the original is only built when something matches.
    pub fn find_folded(
        &self,
        text: &str,
        folded_text: &str,
        mode: FirstNames,
        sender_name: Option<&str>,
    ) -> Vec<NameHit> {
        let Some(ac) = &self.automaton else {
            return Vec::new();
        };
        let mut matches = ac.find_iter(folded_text).peekable();
        if matches.peek().is_none() {
            return Vec::new();
        }
        let folded = fold(text);
        let sender = sender_name.map(|s| format!(" {} ", fold_text(s)));
        let mut out = Vec::new();
        for m in matches {
            if !boundary_before(&folded.text, m.start()) || !boundary_after(&folded.text, m.end()) {
                continue;
            }
            let Some(list) = self.variants.get(m.pattern().as_usize()) else {
                continue;
            };
            let (Some(start), Some(last)) = (
                folded.original_offset(m.start()),
                folded.original_offset(m.end().saturating_sub(1)),
            ) else {
                continue;
            };
            let end = text
                .get(last..)
                .and_then(|s| s.chars().next())
                .map_or(text.len(), |c| last + c.len_utf8());
            let matched = folded.text.get(m.start()..m.end()).unwrap_or_default();
            if let Some(s) = &sender {
                if s.contains(&format!(" {matched} ")) {
                    continue;
                }
            }
            // Prefer the strongest kind when one string is several variants of one member.
            let Some(v) = list
                .iter()
                .find(|v| v.kind == Kind::Full)
                .or_else(|| list.iter().find(|v| v.kind == Kind::TitledLast))
                .or_else(|| list.first())
            else {
                continue;
            };
            let original = text.get(start..end).unwrap_or_default();
            let ok = match v.kind {
                Kind::Full | Kind::TitledLast => true,
                Kind::First => match mode {
                    FirstNames::Any => true,
                    FirstNames::Off => false,
                    FirstNames::Capitalized => {
                        original.chars().next().is_some_and(char::is_uppercase)
                    }
                },
                Kind::Alias => !alias_about_someone_else(&folded, m.start(), m.end()),
            };
            if ok {
                out.push(NameHit {
                    member: v.member,
                    kind: v.kind,
                    start,
                    end,
                    text: original.to_string(),
                });
            }
        }
        out
    }
}

/// "my boss", "our owner", "I'm the owner", "the owner of", "co-owner": an alias used
/// about someone other than the team member it stands for.
fn alias_about_someone_else(f: &super::matcher::Folded, start: usize, end: usize) -> bool {
    let before = f.text.get(..start).unwrap_or_default();
    if before.ends_with('-') {
        return true;
    }
    let words: Vec<&str> = before
        .split(|c: char| !is_word_char(c) && c != '\'')
        .filter(|w| !w.is_empty())
        .rev()
        .take(2)
        .collect();
    let prev1 = words.first().copied().unwrap_or_default();
    let prev2 = words.get(1).copied().unwrap_or_default();
    const POSSESSIVES: &[&str] = &["my", "our", "his", "her", "their", "a", "an", "its"];
    const SELF: &[&str] = &[
        "i'm", "im", "am", "we're", "are", "as", "was", "were", "being",
    ];
    if POSSESSIVES.contains(&prev1) || (prev1 == "the" && SELF.contains(&prev2)) {
        return true;
    }
    let after = f.text.get(end..).unwrap_or_default();
    let next = after
        .split(|c: char| !is_word_char(c))
        .find(|w| !w.is_empty())
        .unwrap_or_default();
    next == "of"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> NameIndex {
        NameIndex::new(
            &[
                ("Mark Johnson".to_string(), vec!["sales rep".to_string()]),
                (
                    "Sarah Williams".to_string(),
                    vec!["owner".to_string(), "boss".to_string()],
                ),
                ("Dr. J. Smith".to_string(), vec![]),
                ("Mark Evans".to_string(), vec![]),
            ],
            FirstNames::Capitalized,
        )
    }

    fn named(text: &str, sender: Option<&str>) -> Vec<(usize, String)> {
        index()
            .find(text, FirstNames::Capitalized, sender)
            .into_iter()
            .map(|h| (h.member, h.text))
            .collect()
    }

    #[test]
    fn mentions_and_pitfalls() {
        type Case<'a> = (&'a str, Option<&'a str>, &'a [(usize, &'a str)]);
        let cases: &[Case] = &[
            ("Hi Sarah, call me", None, &[(1, "Sarah")]),
            ("please mark this as urgent", None, &[]),
            // "Mark" is shared by two members: ambiguous, ignored; full names still work.
            ("Mark said so", None, &[]),
            ("Mark Johnson said so", None, &[(0, "Mark Johnson")]),
            ("Dear Mr. Johnson,", None, &[(0, "Mr. Johnson")]),
            ("Dear Dr Smith", None, &[(2, "Dr Smith")]),
            ("can I speak to the owner?", None, &[(1, "owner")]),
            ("I'm the owner of a 2019 spa", None, &[]),
            ("my boss wants a quote", None, &[]),
            ("ask your boss", None, &[(1, "boss")]),
            ("the co-owner called", None, &[]),
            ("Thanks, Sarah", Some("Sarah Connor"), &[]),
            (
                "Sarah Williams helped",
                Some("Sarah Connor"),
                &[(1, "Sarah Williams")],
            ),
            ("Talk to our sales rep", None, &[]),
            ("Talk to the sales rep", None, &[(0, "sales rep")]),
        ];
        for (text, sender, want) in cases {
            let want: Vec<(usize, String)> =
                want.iter().map(|(m, t)| (*m, (*t).to_string())).collect();
            assert_eq!(named(text, *sender), want, "text: {text:?}");
        }
    }

    #[test]
    fn name_parts_skip_titles_and_initials() {
        assert_eq!(
            name_parts("Dr. J. Smith"),
            (None, Some("Smith".to_string()))
        );
        assert_eq!(
            name_parts("Sinéad O'Brien"),
            (Some("Sinéad".to_string()), Some("O'Brien".to_string()))
        );
        assert_eq!(name_parts("Cher"), (Some("Cher".to_string()), None));
    }
}
