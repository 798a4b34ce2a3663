//! Escalation (SPEC §6): whether a message is escalated, at which priority, and which
//! actions follow — decided from escalation keywords and the new text's sentiment
//! according to the profile's mode.

use super::classify::found_in;
use super::decision::{round, Escalation, EscalationKeyword, Level, PlannedActions, Sentiment};
use crate::matching::matcher::Scan;
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

/// Decides escalation. `recipient` and `fallback` are member names used to resolve who is
/// notified.
pub fn escalate(
    profile: &Profile,
    scan: &Scan,
    sentiment: Option<&Sentiment>,
    recipient: Option<&str>,
    fallback: &[String],
) -> Option<Escalation> {
    let rules = &profile.escalation;
    let keywords: Vec<EscalationKeyword> = scan
        .set(rules.set)
        .iter()
        .filter_map(|h| {
            Some(EscalationKeyword {
                keyword: profile.matcher.label(rules.set, h.entry).to_string(),
                level: *rules.levels.get(h.entry)?,
                found_in: found_in(h),
            })
        })
        .collect();
    let kw_level = keywords.iter().map(|k| k.level).max();
    let s_level = sentiment.and_then(|s| sentiment_level(profile, s));
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
    let level = level?;
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
        by: by.to_string(),
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

/// Scores the sentiment of the new text for the decision. Curly apostrophes are
/// straightened first so "don’t" negates like "don't" (mail clients send both).
pub fn sentiment_of(profile: &Profile, text: &str, sender_name: Option<&str>) -> Sentiment {
    let straight: std::borrow::Cow<'_, str> = if text.contains(['\u{2019}', '\u{2018}']) {
        text.replace(['\u{2019}', '\u{2018}'], "'").into()
    } else {
        text.into()
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
    use super::lowercases_to;

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
