//! Keyword matching: every keyword of a profile (categories, roles, escalation, urgency,
//! booking) in one Aho-Corasick automaton, run once over the subject and once over the
//! new text of a message.
//!
//! Matching is case-insensitive on whole words: the text is *folded* (lowercased, curly
//! apostrophes straightened, whitespace runs collapsed to one space) and a match counts
//! only when the characters around it are not letters or digits. A keyword written
//! `stem*` needs a boundary only before it. Regex patterns run beside the automaton on
//! the original text. The result records, per keyword set, which entries fired and
//! where, which is exactly what the explanation needs.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;

/// Total folded keyword bytes up to which the automaton is a DFA (built-in rules and a
/// large real profile are a few tens of KB).
pub const DFA_MAX_KEYWORD_BYTES: usize = 256 * 1024;

/// Identifies one keyword set (a category's keywords, a role's, …) inside a [`Matcher`].
pub type SetId = usize;

/// One keyword as written by the owner, with its weight and where it came from.
#[derive(Debug, Clone)]
pub struct Entry {
    /// As written (e.g. "refund*", "bulk pricing", "=resume").
    pub keyword: String,
    pub weight: f64,
    /// The rule pack or file that contributed it: "base", an industry, "profile".
    pub origin: &'static str,
}

/// One regular-expression rule with its weight and where it came from.
#[derive(Debug, Clone)]
pub struct PatternEntry {
    pub source: String,
    pub regex: Regex,
    pub weight: f64,
    pub origin: &'static str,
}

/// How a keyword as written matches: `stem*` any word starting with the stem, `=word`
/// exactly that word, anything else the word and its ordinary forms ([`super::forms`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    Forms,
    Prefix,
    Exact,
}

/// A keyword's text to match (trimmed, without `*` or `=`) and how it matches.
pub fn spelling(keyword: &str) -> (&str, Spelling) {
    let k = keyword.trim();
    if let Some(stem) = k.strip_suffix('*') {
        (stem, Spelling::Prefix)
    } else if let Some(word) = k.strip_prefix('=') {
        (word.trim_start(), Spelling::Exact)
    } else {
        (k, Spelling::Forms)
    }
}

/// A named set of keywords and patterns.
#[derive(Debug, Clone, Default)]
pub struct KeywordSet {
    pub entries: Vec<Entry>,
    pub patterns: Vec<PatternEntry>,
}

/// Where in the message a keyword was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Where {
    pub subject: bool,
    pub body: bool,
}

/// A fired entry of a set: which keyword/pattern, where, and its first body position.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Index into the set's entries (keywords), or entries.len() + i for pattern i.
    pub entry: usize,
    pub found: Where,
    /// Byte offset of the first match in the folded new text (usize::MAX if subject only).
    pub first_body_pos: usize,
}

/// Who owns an automaton pattern: which set and entry, and whether it is a stem.
#[derive(Debug, Clone, Copy)]
struct Owner {
    set: SetId,
    entry: usize,
    prefix: bool,
}

/// All keyword sets of a profile compiled into one automaton.
#[derive(Debug, Clone)]
pub struct Matcher {
    sets: Vec<KeywordSet>,
    automaton: Option<AhoCorasick>,
    /// owners[pattern id] = every (set, entry) that uses that folded string.
    owners: Vec<Vec<Owner>>,
}

/// The keyword hits of one message, per set.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub hits: Vec<Vec<Hit>>,
}

impl Scan {
    /// The hits of one set, in entry order.
    pub fn set(&self, id: SetId) -> &[Hit] {
        self.hits.get(id).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Text prepared for matching: folded, with a map back to the original byte offsets.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    pub text: String,
    /// orig[i] = byte offset in the original text of the character that produced folded byte i.
    pub orig: Vec<u32>,
}

/// Whether `c` is part of a word for boundary purposes.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Folds one keyword the same way text is folded (no offset map needed).
pub fn fold_keyword(k: &str) -> String {
    fold(k).text.trim().to_string()
}

/// Lowercases, straightens apostrophes and collapses whitespace, remembering offsets.
pub fn fold(text: &str) -> Folded {
    let mut out = String::with_capacity(text.len());
    let mut orig = Vec::with_capacity(text.len());
    fold_into(text, &mut out, Some(&mut orig));
    Folded { text: out, orig }
}

/// The folded text alone (no offset map): what keyword matching needs.
pub fn fold_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold_into(text, &mut out, None);
    out
}

/// The one folding routine; `orig`, when given, receives the original byte offset of the
/// character behind every folded byte.
fn fold_into(text: &str, out: &mut String, mut orig: Option<&mut Vec<u32>>) {
    let mut buf: Vec<u8> = std::mem::take(out).into_bytes();
    let mut last_space = true;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let pos = u32::try_from(i).unwrap_or(u32::MAX);
        // Fast path: a run of plain ASCII (no whitespace, no backtick) copies in bulk.
        let run = bytes[i..]
            .iter()
            .position(|&c| !c.is_ascii_graphic() || c == b'`')
            .unwrap_or(bytes.len() - i);
        if run > 0 {
            let start = buf.len();
            buf.extend_from_slice(&bytes[i..i + run]);
            buf[start..].make_ascii_lowercase();
            if let Some(o) = orig.as_deref_mut() {
                o.extend((i..i + run).map(|p| u32::try_from(p).unwrap_or(u32::MAX)));
            }
            i += run;
            last_space = false;
            continue;
        }
        if b.is_ascii() {
            i += 1;
            let c = match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                    if last_space {
                        continue;
                    }
                    last_space = true;
                    b' '
                }
                b'`' => {
                    last_space = false;
                    b'\''
                }
                _ => {
                    last_space = false;
                    b.to_ascii_lowercase()
                }
            };
            buf.push(c);
            if let Some(o) = orig.as_deref_mut() {
                o.push(pos);
            }
            continue;
        }
        let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) else {
            break;
        };
        i += c.len_utf8();
        let mapped = if c.is_whitespace() || c == '\u{200b}' {
            if last_space {
                continue;
            }
            last_space = true;
            ' '
        } else {
            last_space = false;
            match c {
                '\u{2019}' | '\u{2018}' | '\u{02bc}' => '\'',
                '\u{201c}' | '\u{201d}' => '"',
                '\u{2013}' | '\u{2014}' => '-',
                _ => {
                    let mut lower = c.to_lowercase();
                    match (lower.next(), lower.next()) {
                        (Some(l), None) => l,
                        // Multi-character lowercase forms (rare) keep the original character.
                        _ => c,
                    }
                }
            }
        };
        let mut tmp = [0u8; 4];
        let encoded = mapped.encode_utf8(&mut tmp).as_bytes();
        buf.extend_from_slice(encoded);
        if let Some(o) = orig.as_deref_mut() {
            o.extend(std::iter::repeat_n(pos, encoded.len()));
        }
    }
    // Only whole characters were written, so this cannot fail; stay total regardless.
    *out = String::from_utf8(buf)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
}

/// Whether folded byte offset `start` begins a word (shared by keywords and names).
pub fn boundary_before(text: &str, start: usize) -> bool {
    text.get(..start)
        .and_then(|s| s.chars().next_back())
        .is_none_or(|c| !is_word_char(c))
}

/// Whether folded byte offset `end` ends a word.
pub fn boundary_after(text: &str, end: usize) -> bool {
    text.get(end..)
        .and_then(|s| s.chars().next())
        .is_none_or(|c| !is_word_char(c))
}

impl Folded {
    /// The original byte offset of folded byte `i`.
    pub fn original_offset(&self, i: usize) -> Option<usize> {
        self.orig.get(i).map(|&o| o as usize)
    }
}

impl Matcher {
    /// Compiles the sets into one automaton. Set ids are positions in `sets`.
    pub fn new(sets: Vec<KeywordSet>) -> Result<Matcher, String> {
        let mut strings: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<Owner>> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut add = |folded: String, owner: Owner| {
            let id = *index.entry(folded.clone()).or_insert_with(|| {
                strings.push(folded);
                owners.push(Vec::new());
                strings.len() - 1
            });
            if let Some(o) = owners.get_mut(id) {
                o.push(owner);
            }
        };
        for (set_id, set) in sets.iter().enumerate() {
            let written: Vec<(String, Spelling)> = set
                .entries
                .iter()
                .map(|e| {
                    let (text, how) = spelling(&e.keyword);
                    (fold_keyword(text), how)
                })
                .collect();
            // A form that another keyword of the set is written as belongs to that one
            // ("supplier" does not also count for a separate "suppliers").
            let own: std::collections::HashSet<&str> =
                written.iter().map(|(w, _)| w.as_str()).collect();
            for (entry, (folded, how)) in written.iter().enumerate() {
                if folded.is_empty() {
                    continue;
                }
                let owner = Owner {
                    set: set_id,
                    entry,
                    prefix: *how == Spelling::Prefix,
                };
                if *how == Spelling::Forms {
                    for form in super::forms::forms(folded) {
                        if !own.contains(form.as_str()) {
                            add(form, owner);
                        }
                    }
                }
                add(folded.clone(), owner);
            }
        }
        let automaton = if strings.is_empty() {
            None
        } else {
            // A DFA is the fastest to scan with, but its size grows with the keywords'
            // total length times the alphabet: for a profile with tens of thousands of
            // keywords it takes seconds and hundreds of MB to build. Past a real profile's
            // size, a contiguous NFA (still linear-time) builds in a fraction of that.
            let bytes: usize = strings.iter().map(String::len).sum();
            let kind = if bytes <= DFA_MAX_KEYWORD_BYTES {
                aho_corasick::AhoCorasickKind::DFA
            } else {
                aho_corasick::AhoCorasickKind::ContiguousNFA
            };
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .kind(Some(kind))
                    .build(&strings)
                    .map_err(|e| format!("cannot build keyword automaton: {e}"))?,
            )
        };
        Ok(Matcher {
            sets,
            automaton,
            owners,
        })
    }

    /// The set with this id.
    pub fn set(&self, id: SetId) -> Option<&KeywordSet> {
        self.sets.get(id)
    }

    /// Number of sets.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// True when there are no sets.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Finds every keyword and pattern of every set in the subject and the new text.
    pub fn scan(&self, subject: &str, body: &str) -> Scan {
        self.scan_folded(subject, body, &fold_text(subject), &fold_text(body))
    }

    /// [`Matcher::scan`] over texts already folded with [`fold_text`].
    pub fn scan_folded(&self, subject: &str, body: &str, fs: &str, fb: &str) -> Scan {
        let mut hits: Vec<Vec<Hit>> = vec![Vec::new(); self.sets.len()];
        self.scan_one(fs, false, &mut hits);
        self.scan_one(fb, true, &mut hits);
        for (set_id, set) in self.sets.iter().enumerate() {
            for (i, p) in set.patterns.iter().enumerate() {
                let entry = set.entries.len() + i;
                let in_subject = p.regex.is_match(subject);
                let body_pos = p.regex.find(body).map(|m| m.start());
                if in_subject || body_pos.is_some() {
                    if let Some(list) = hits.get_mut(set_id) {
                        list.push(Hit {
                            entry,
                            found: Where {
                                subject: in_subject,
                                body: body_pos.is_some(),
                            },
                            first_body_pos: body_pos.unwrap_or(usize::MAX),
                        });
                    }
                }
            }
        }
        for list in &mut hits {
            list.sort_by_key(|h| h.entry);
        }
        Scan { hits }
    }

    fn scan_one(&self, text: &str, is_body: bool, hits: &mut [Vec<Hit>]) {
        let Some(ac) = &self.automaton else { return };
        for m in ac.find_overlapping_iter(text) {
            if !boundary_before(text, m.start()) {
                continue;
            }
            let end_ok = boundary_after(text, m.end());
            let Some(owners) = self.owners.get(m.pattern().as_usize()) else {
                continue;
            };
            for o in owners {
                if !o.prefix && !end_ok {
                    continue;
                }
                let Some(list) = hits.get_mut(o.set) else {
                    continue;
                };
                match list.iter_mut().find(|h| h.entry == o.entry) {
                    Some(h) => {
                        if is_body {
                            if !h.found.body {
                                h.first_body_pos = m.start();
                            }
                            h.found.body = true;
                        } else {
                            h.found.subject = true;
                        }
                    }
                    None => list.push(Hit {
                        entry: o.entry,
                        found: Where {
                            subject: !is_body,
                            body: is_body,
                        },
                        first_body_pos: if is_body { m.start() } else { usize::MAX },
                    }),
                }
            }
        }
    }

    /// The keyword or pattern text of a hit, as the owner wrote it.
    pub fn label(&self, set: SetId, entry: usize) -> &str {
        let Some(s) = self.sets.get(set) else {
            return "";
        };
        match s.entries.get(entry) {
            Some(e) => &e.keyword,
            None => s
                .patterns
                .get(entry - s.entries.len())
                .map(|p| p.source.as_str())
                .unwrap_or_default(),
        }
    }

    /// The weight of a hit's keyword or pattern.
    pub fn weight(&self, set: SetId, entry: usize) -> f64 {
        let Some(s) = self.sets.get(set) else {
            return 0.0;
        };
        match s.entries.get(entry) {
            Some(e) => e.weight,
            None => s
                .patterns
                .get(entry - s.entries.len())
                .map_or(0.0, |p| p.weight),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(words: &[(&str, f64)]) -> KeywordSet {
        KeywordSet {
            entries: words
                .iter()
                .map(|(k, w)| Entry {
                    keyword: (*k).to_string(),
                    weight: *w,
                    origin: "test",
                })
                .collect(),
            patterns: Vec::new(),
        }
    }

    fn fired(m: &Matcher, subject: &str, body: &str) -> Vec<String> {
        let scan = m.scan(subject, body);
        scan.set(0)
            .iter()
            .map(|h| m.label(0, h.entry).to_string())
            .collect()
    }

    #[test]
    fn whole_words_phrases_and_stems() {
        let m = Matcher::new(vec![set(&[
            ("bulk", 1.0),
            ("bulk pricing", 1.0),
            ("refund*", 1.0),
            ("mark", 1.0),
            ("doesn't work", 1.0),
        ])])
        .expect("builds");
        let cases: &[(&str, &[&str])] = &[
            ("Need BULK\n   pricing please", &["bulk", "bulk pricing"]),
            ("bulky items", &[]),
            ("we were refunded twice", &["refund*"]),
            ("prerefund", &[]),
            ("the bookmark broke", &[]),
            ("it doesn\u{2019}t work", &["doesn't work"]),
        ];
        for (body, want) in cases {
            assert_eq!(fired(&m, "", body), *want, "body: {body:?}");
        }
    }

    #[test]
    fn each_keyword_counts_once_and_remembers_where() {
        let m = Matcher::new(vec![set(&[("quote", 1.0)])]).expect("builds");
        let scan = m.scan("Quote request", "a quote, another quote");
        let hits = scan.set(0);
        assert_eq!(hits.len(), 1);
        assert_eq!(
            hits[0].found,
            Where {
                subject: true,
                body: true
            }
        );
        assert_eq!(hits[0].first_body_pos, 2);
    }

    #[test]
    fn unicode_boundaries_and_case() {
        let m = Matcher::new(vec![set(&[("café", 1.0), ("zoë", 1.0)])]).expect("builds");
        assert_eq!(fired(&m, "", "Le CAFÉ est fermé"), vec!["café"]);
        assert_eq!(fired(&m, "", "zoëlle"), Vec::<String>::new());
    }

    #[test]
    fn both_folds_agree() {
        for t in [
            "Hi  Zoë\r\nMark",
            "İstanbul ẞ K\u{212a}elvin",
            "a\u{2019}b\u{200b} \t c`",
            "",
        ] {
            assert_eq!(fold(t).text, fold_text(t), "{t:?}");
            assert_eq!(fold(t).orig.len(), fold(t).text.len());
        }
    }

    #[test]
    fn fold_maps_back_to_original_offsets() {
        let f = fold("Hi  Zoë\r\nMark");
        assert_eq!(f.text, "hi zoë mark");
        let pos = f.text.find("mark").expect("found");
        assert_eq!(f.original_offset(pos), Some(10));
    }
}
