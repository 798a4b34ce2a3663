//! Escalation (SPEC §6): whether a message is escalated, at which priority, and which
//! actions follow — decided from escalation keywords and the new text's sentiment
//! according to the profile's mode.

use super::classify::found_in;
use super::decision::{round, Escalation, EscalationKeyword, Level, PlannedActions, Sentiment};
use super::Folded;
use crate::matching::matcher::{spelling, Scan};
use crate::profile::{EscalationMode, Profile};

/// The sentiment level for a compound score, if it reaches the threshold.
fn sentiment_level(profile: &Profile, s: &Sentiment) -> Option<Level> {
    let e = &profile.escalation;
    if s.compound > e.threshold {
        None
    } else if s.compound <= e.urgent_at {
        Some(Level::URGENT)
    } else if s.compound <= e.high_at {
        Some(Level::HIGH)
    } else {
        Some(Level::MEDIUM)
    }
}

/// Does this mode look at sentiment at all?
pub fn uses_sentiment(mode: EscalationMode) -> bool {
    matches!(
        mode,
        EscalationMode::SentimentOnly
            | EscalationMode::SentimentAndKeyword
            | EscalationMode::SentimentThenKeyword
    )
}

/// Is this escalation keyword, wherever it occurs in the subject and new text, only a
/// person's name — capitalised ("Sue is out today"), and a known name or a word of the
/// sender's or a team member's name? Lower case ("we will sue") or capitals ("I WILL
/// SUE") still count. Only single words can be names.
fn only_as_a_name(
    profile: &Profile,
    keyword: &str,
    text: &Folded<'_>,
    sender_name: Option<&str>,
) -> bool {
    let (word, _) = spelling(keyword);
    let lower = word.to_lowercase();
    if lower.contains(' ') || lower.is_empty() {
        return false;
    }
    let known = profile.escalation.names.binary_search(&lower).is_ok()
        || sender_name
            .into_iter()
            .chain(profile.members.iter().map(|m| m.name.as_str()))
            .flat_map(|n| n.split(|c: char| !c.is_alphanumeric()))
            .any(|w| lowercases_to(w, &lower));
    if !known {
        return false;
    }
    let mut seen = false;
    for part in [text.subject, text.body] {
        for w in part.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
            if w.len() != lower.len() || !lowercases_to(w, &lower) {
                continue;
            }
            seen = true;
            let mut chars = w.chars();
            let capitalised =
                chars.next().is_some_and(char::is_uppercase) && chars.any(char::is_lowercase);
            if !capitalised {
                return false;
            }
        }
    }
    seen
}

/// What escalation sees of a message beyond its keyword hits.
pub struct Seen<'a> {
    pub sentiment: Option<&'a Sentiment>,
    /// The decided category (index into the profile's categories).
    pub category: usize,
    pub text: &'a Folded<'a>,
    pub sender_name: Option<&'a str>,
}

/// Decides escalation. `recipient` and `fallback` are member names used to resolve who is
/// notified.
pub fn escalate(
    profile: &Profile,
    scan: &Scan,
    seen: &Seen<'_>,
    recipient: Option<&str>,
    fallback: &[String],
) -> Option<Escalation> {
    let rules = &profile.escalation;
    let mut names_ignored = Vec::new();
    let keywords: Vec<EscalationKeyword> = scan
        .set(rules.set)
        .iter()
        .filter(|h| super::classify::in_opening(h))
        .filter_map(|h| {
            let keyword = profile.matcher.label(rules.set, h.entry).to_string();
            if only_as_a_name(profile, &keyword, seen.text, seen.sender_name) {
                names_ignored.push(keyword);
                return None;
            }
            Some(EscalationKeyword {
                keyword,
                level: *rules.levels.get(h.entry)?,
                found_in: found_in(h),
            })
        })
        .collect();
    let kw_level = keywords.iter().map(|k| k.level).max();
    let s_level = seen.sentiment.and_then(|s| sentiment_level(profile, s));
    let (level, by) = match rules.mode {
        EscalationMode::ManualOnly => (None, ""),
        EscalationMode::KeywordOnly => (kw_level, "keyword"),
        EscalationMode::SentimentOnly => (s_level, "sentiment"),
        EscalationMode::SentimentAndKeyword => match (s_level, kw_level) {
            (Some(s), Some(k)) => (Some(s.max(k)), "sentiment+keyword"),
            _ => (None, ""),
        },
        EscalationMode::SentimentThenKeyword => match (s_level, kw_level) {
            (Some(s), Some(k)) => (Some(s.max(k)), "sentiment+keyword"),
            (Some(s), None) => (Some(s), "sentiment"),
            (None, Some(k)) => (Some(k), "keyword"),
            (None, None) => (None, ""),
        },
    };
    // A category escalated at a level of its own (URGENT mail is urgent), in every mode
    // but manual_only; the words can still raise the priority.
    let c_level = rules
        .category_levels
        .get(seen.category)
        .copied()
        .flatten()
        .filter(|_| rules.mode != EscalationMode::ManualOnly);
    let (level, by) = match (c_level, level) {
        (Some(c), Some(l)) if l > c => (l, format!("category+{by}")),
        (Some(c), Some(_)) => (c, format!("category+{by}")),
        (Some(c), None) => (c, "category".to_string()),
        (None, Some(l)) => (l, by.to_string()),
        (None, None) => return None,
    };
    let action = &rules.actions[level as usize];
    let mut notify: Vec<String> = Vec::new();
    for who in &action.notify {
        let names: Vec<String> = match who.as_str() {
            "recipient" => recipient.map(String::from).into_iter().collect(),
            "fallback" => fallback.to_vec(),
            member => vec![member.to_string()],
        };
        for n in names {
            if !notify.contains(&n) {
                notify.push(n);
            }
        }
    }
    let mode = serde_json::to_value(rules.mode)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    Some(Escalation {
        level,
        mode,
        category: c_level.and_then(|_| {
            profile
                .categories
                .get(seen.category)
                .map(|c| c.name.clone())
        }),
        names_ignored,
        sentiment_level: if by.contains("sentiment") {
            s_level
        } else {
            None
        },
        keywords: if by.contains("keyword") {
            keywords
        } else {
            Vec::new()
        },
        by,
        actions: PlannedActions {
            flag: action.flag,
            keywords: action.keywords.clone(),
            notify,
            copy_to: action.copy_to.as_ref().map(|p| p.join("/")),
        },
    })
}

/// Whether `word` lowercased is `lower`, without building the lowercased word (this is
/// asked once per team-name word for every capitalised lexicon word of a message).
/// Words with a capital sigma take `str::to_lowercase`, whose final-sigma rule a
/// char-by-char mapping does not know.
fn lowercases_to(word: &str, lower: &str) -> bool {
    if word.contains('Σ') {
        return word.to_lowercase() == lower;
    }
    word.chars().flat_map(char::to_lowercase).eq(lower.chars())
}

/// Lines of a letter's form, not of its mood: a greeting ("Dear Support Team,", "Hi
/// Sarah!") and a sign-off ("Thanks,", "Kind regards") on a line of its own.
fn formula_line(line: &str) -> bool {
    let l = line
        .trim()
        .trim_end_matches([',', '!', '.', ':', ';'])
        .trim();
    if l.is_empty() || l.len() > 60 {
        return false;
    }
    let lower = l.to_lowercase();
    const GREETINGS: [&str; 8] = [
        "dear ",
        "hi ",
        "hello ",
        "hey ",
        "good morning",
        "good afternoon",
        "good evening",
        "greetings",
    ];
    const SIGNOFFS: [&str; 12] = [
        "thanks",
        "thank you",
        "many thanks",
        "regards",
        "kind regards",
        "best regards",
        "warm regards",
        "best wishes",
        "best",
        "cheers",
        "sincerely",
        "yours sincerely",
    ];
    let words = lower.split_whitespace().count();
    (GREETINGS
        .iter()
        .any(|g| lower.starts_with(g) || lower == g.trim())
        && words <= 6)
        || SIGNOFFS.contains(&lower.as_str())
        || ["hi", "hello", "hey", "dear"].contains(&lower.as_str())
}

/// The text without the lines of a letter's form ([`formula_line`]).
fn without_formulas(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.lines().any(formula_line) {
        return text.into();
    }
    text.lines()
        .filter(|l| !formula_line(l))
        .collect::<Vec<_>>()
        .join("\n")
        .into()
}

/// Scores the sentiment of the new text for the decision, without its greeting and
/// sign-off lines (a form letter's "Dear Support team, … Kind regards" is not delight).
/// Curly apostrophes are straightened first so "don’t" negates like "don't" (mail
/// clients send both).
pub fn sentiment_of(profile: &Profile, text: &str, sender_name: Option<&str>) -> Sentiment {
    let text = without_formulas(text);
    let straight: std::borrow::Cow<'_, str> = if text.contains(['\u{2019}', '\u{2018}']) {
        text.replace(['\u{2019}', '\u{2018}'], "'").into()
    } else {
        text.as_ref().into()
    };
    // People's names carry no mood: the sender's and the team's ("Grant", "Joy", "Hope").
    // Asked only of capitalised lexicon words, so nothing is built per message.
    let is_name = |lower: &str| {
        sender_name
            .into_iter()
            .chain(profile.members.iter().map(|m| m.name.as_str()))
            .flat_map(|n| n.split(|c: char| !c.is_alphanumeric() && c != '\''))
            .any(|w| w.chars().nth(1).is_some() && lowercases_to(w, lower))
    };
    let s = super::sentiment::Analyzer::builtin().score_with(
        &straight,
        &profile.escalation.sentiment_neutral,
        &is_name,
    );
    Sentiment {
        compound: round(s.compound),
        words: s
            .contributions
            .into_iter()
            .map(|c| super::decision::SentimentWord {
                word: c.word,
                valence: round(c.valence),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::{formula_line, lowercases_to, without_formulas};

    #[test]
    fn greetings_and_sign_offs_are_form_not_mood() {
        for line in [
            "Dear Support Team,",
            "Hi Sarah!",
            "Hello,",
            "Good morning everyone",
            "Kind regards,",
            "Thanks!",
            "Best",
        ] {
            assert!(formula_line(line), "{line}");
        }
        for line in [
            "Thanks for nothing, this is the worst service ever",
            "Hi, the heater is broken again and I am furious about it",
            "Best service I ever had",
            "",
        ] {
            assert!(!formula_line(line), "{line}");
        }
        assert_eq!(
            without_formulas("Dear Support,\nThe site is down.\nKind regards,\nPat"),
            "The site is down.\nPat"
        );
    }

    #[test]
    fn names_compare_with_lowercased_words_as_str_to_lowercase_does() {
        for (word, lower) in [
            ("Grant", "grant"),
            ("GRANT", "grant"),
            ("Grant", "grants"),
            ("Élodie", "élodie"),
            ("İpek", "i\u{307}pek"),
            ("ΟΔΥΣΣΕΥΣ", "οδυσσευς"),
            ("ΟΔΥΣΣΕΥΣ", "οδυσσευσ"),
            ("Joy", "joy"),
        ] {
            assert_eq!(
                lowercases_to(word, lower),
                word.to_lowercase() == lower,
                "{word} vs {lower}"
            );
        }
        assert!(lowercases_to("Élodie", "élodie") && !lowercases_to("Grant", "grants"));
    }
}
