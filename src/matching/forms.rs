//! Word forms: a keyword matches its ordinary English forms without the owner writing
//! them (SPEC §15) — `refund` also finds refunds, refunded, refunding; `urgent` urgently
//! and urgency; `leak` leaks, leaked, leaking. Only the last word of a phrase is inflected
//! (`water leak` → `water leaks`).
//!
//! The forms are generated when the profile is compiled and go into the same automaton as
//! the keyword, so matching costs nothing more per message. Regular inflection only:
//! plural and third person (-s, -es, -ies), past (-ed, -ied, doubled consonant), -ing,
//! adverbs (-ly, -ily, -ally), and -nt ↔ -ncy. A form that is not a real word never occurs
//! in text, so over-generating is harmless; a real word with another meaning can be kept
//! out by writing the keyword `=exact`.

/// The other forms of a folded keyword (lowercase, single spaces), not including itself.
/// Words shorter than three letters, or with anything but ASCII letters, get none.
pub fn forms(keyword: &str) -> Vec<String> {
    let (head, last) = match keyword.rsplit_once(' ') {
        Some((h, l)) => (format!("{h} "), l),
        None => (String::new(), keyword),
    };
    if last.len() < 3 || !last.bytes().all(|b| b.is_ascii_lowercase()) {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    let mut add = |w: String| {
        if w != last && !out.contains(&w) {
            out.push(w);
        }
    };
    let b = last.as_bytes();
    let n = b.len();
    let stem = &last[..n - 1];
    let before_last = b[n - 2];
    let ends_consonant_y = b[n - 1] == b'y' && !is_vowel(before_last);
    // Already -ing or -ed (but "bleed", "need", "speed" are base words).
    let inflected = last.ends_with("ing") || (last.ends_with("ed") && !last.ends_with("eed"));
    // Plural, third person.
    if last.ends_with('s') && !last.ends_with("ss") {
        // Already a plural, or a word like "news" whose "singular" would be another word.
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|e| last.ends_with(e))
    {
        add(format!("{last}es"));
    } else if ends_consonant_y {
        add(format!("{stem}ies"));
    } else {
        add(format!("{last}s"));
    }
    if !inflected {
        // Past.
        if last.ends_with('e') {
            add(format!("{last}d"));
        } else if ends_consonant_y {
            add(format!("{stem}ied"));
        } else if doubles(b) {
            add(format!("{last}{}ed", b[n - 1] as char));
        } else {
            add(format!("{last}ed"));
        }
        // -ing.
        if last.ends_with("ie") {
            add(format!("{}ying", &last[..n - 2]));
        } else if last.ends_with('e') && !["ee", "ye", "oe"].iter().any(|e| last.ends_with(e)) {
            add(format!("{stem}ing"));
        } else if doubles(b) {
            add(format!("{last}{}ing", b[n - 1] as char));
        } else {
            add(format!("{last}ing"));
        }
        // Adverb.
        if last.ends_with("le") && !is_vowel(b[n - 3]) {
            add(format!("{stem}y"));
        } else if ends_consonant_y {
            add(format!("{stem}ily"));
        } else if last.ends_with("ic") {
            add(format!("{last}ally"));
        } else {
            add(format!("{last}ly"));
        }
    }
    // urgent ↔ urgency, vacant ↔ vacancy.
    if let Some(root) = last.strip_suffix("nt") {
        add(format!("{root}ncy"));
    }
    if let Some(root) = last.strip_suffix("ncy") {
        add(format!("{root}nt"));
    }
    out.into_iter().map(|w| format!("{head}{w}")).collect()
}

fn is_vowel(b: u8) -> bool {
    matches!(b, b'a' | b'e' | b'i' | b'o' | b'u')
}

/// Short consonant-vowel-consonant words double their last letter: stop → stopped,
/// plan → planning (not fix, snow, play, or longer words such as "visit").
fn doubles(b: &[u8]) -> bool {
    let n = b.len();
    n <= 4
        && !is_vowel(b[n - 1])
        && !matches!(b[n - 1], b'w' | b'x' | b'y')
        && is_vowel(b[n - 2])
        && !is_vowel(b[n - 3])
}

#[cfg(test)]
mod tests {
    use super::forms;

    fn has(keyword: &str, form: &str) -> bool {
        forms(keyword).iter().any(|f| f == form)
    }

    #[test]
    fn ordinary_forms_are_found() {
        let cases: &[(&str, &[&str])] = &[
            ("urgent", &["urgently", "urgency"]),
            ("urgency", &["urgent"]),
            ("refund", &["refunds", "refunded", "refunding"]),
            ("leak", &["leaks", "leaked", "leaking"]),
            ("immediate", &["immediately"]),
            ("sue", &["sued", "suing", "sues"]),
            ("stop", &["stopped", "stopping", "stops"]),
            ("fix", &["fixes", "fixed", "fixing"]),
            ("reply", &["replies", "replied", "replying"]),
            ("critical", &["critically"]),
            ("crash", &["crashes", "crashed", "crashing"]),
            ("water leak", &["water leaks", "water leaking"]),
            ("visit", &["visited", "visiting"]),
            ("simple", &["simply"]),
            ("happy", &["happily"]),
            ("basic", &["basically"]),
            ("die", &["dying"]),
            ("bleed", &["bleeding", "bleeds"]),
            ("need", &["needed", "needing"]),
        ];
        for (k, want) in cases {
            for w in *want {
                assert!(has(k, w), "{k} → {w}: {:?}", forms(k));
            }
        }
    }

    #[test]
    fn short_inflected_and_foreign_words_are_left_alone() {
        for k in ["ph", "cv", "éclair", "x2", "flooding", "flooded"] {
            let f = forms(k);
            assert!(
                f.iter()
                    .all(|w| !w.ends_with("inged") && !w.ends_with("eded")),
                "{k}: {f:?}"
            );
        }
        assert!(forms("ph").is_empty());
        assert!(forms("éclair").is_empty());
        assert!(!has("visit", "visitted"));
        // A word ending in s is not unpluralised: "news" must not find "new".
        assert!(!has("news", "new"));
        assert!(!forms("urgent").contains(&"urgent".to_string()));
    }
}
