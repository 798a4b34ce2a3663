//! What of a sender's own text may go back out in mail we send them.
//!
//! An acknowledgement goes to whatever address the `From:` of a message says, through the
//! business's own SMTP server — its SPF, DKIM and reputation. Anyone can forge that
//! `From:`, so anything we copy from the message into the reply (the sender's name, the
//! subject) is text a spammer chooses and the business delivers. We copy it only when it
//! looks like what it claims to be — a person's name, a plain subject line — and say
//! "there" or "your message" otherwise. The limits are deliberately tight: a real name or
//! subject that fails them costs a slightly less personal reply, nothing more.
//!
//! The same module normalises addresses for the once-per-sender limits (`+tags`, Gmail's
//! dots), so one mailbox cannot be made to receive many replies under different names.

/// Characters that change how text is displayed without being visible: bidirectional
/// overrides and isolates (U+202E turns "gpj.exe" into "exe.jpg"), zero-width characters,
/// the BOM, soft hyphens, language tags, interlinear annotations.
pub fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}')
}

/// Longest name we repeat, in characters.
pub const MAX_NAME_CHARS: usize = 40;
/// Most words in a name we repeat ("Mary Anne de la Cruz").
const MAX_NAME_WORDS: usize = 5;
/// Longest subject we repeat, in characters.
pub const MAX_SUBJECT_CHARS: usize = 80;
/// More digits than this in one run (spaces, dashes, dots and brackets between them
/// included) looks like a phone or account number, not a subject.
const MAX_DIGIT_RUN: usize = 6;

/// The sender's display name, if it reads as a person's (or a company's) name: letters
/// of any script, spaces, and the `.'-` of initials and double names; at most
/// [`MAX_NAME_WORDS`] words and [`MAX_NAME_CHARS`] characters; no digits, no addresses,
/// no links, no markup, no invisible characters.
pub fn person_name(raw: &str) -> Option<String> {
    if raw.chars().any(|c| c.is_control() || is_format_char(c)) {
        return None;
    }
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let name = name.trim_matches(|c| c == '"' || c == '\'').trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return None;
    }
    let words: Vec<&str> = name.split(' ').collect();
    if words.len() > MAX_NAME_WORDS {
        return None;
    }
    let word_ok = |w: &str| {
        w.chars().next().is_some_and(char::is_alphabetic)
            && w.chars()
                .all(|c| c.is_alphabetic() || matches!(c, '.' | '\'' | '’' | '-'))
            // "Dr.Smith.com" and the like: a dot inside a word, followed by letters.
            && !w
                .split('.')
                .skip(1)
                .any(|part| part.chars().filter(|c| c.is_alphabetic()).count() >= 2)
    };
    words.iter().all(|w| word_ok(w)).then(|| name.to_string())
}

/// The subject, if it reads as a plain subject line: at most [`MAX_SUBJECT_CHARS`]
/// characters, no links or host names, no e-mail addresses, no markup, no long runs of
/// digits, no invisible characters.
pub fn plain_subject(raw: &str) -> Option<String> {
    if raw.chars().any(|c| c.is_control() || is_format_char(c)) {
        return None;
    }
    let subject = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS {
        return None;
    }
    if subject.contains(['@', '<', '>', '{', '}', '[', ']', '\\', '|'])
        || subject.contains("://")
        || subject.contains("&#")
    {
        return None;
    }
    if subject.split(' ').any(looks_like_host) || longest_digit_run(&subject) > MAX_DIGIT_RUN {
        return None;
    }
    Some(subject)
}

/// "www.x", "shop.example.com", "bit.ly/abc": a dot with letters on both sides and at
/// least two letters after the last one.
fn looks_like_host(word: &str) -> bool {
    let w = word.trim_matches(|c: char| !c.is_alphanumeric());
    if w.to_ascii_lowercase().starts_with("www") && w.contains('.') {
        return true;
    }
    let host = w.split('/').next().unwrap_or_default();
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '-'))
        && parts
            .last()
            .is_some_and(|tld| tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic))
        && parts[..parts.len() - 1]
            .iter()
            .any(|p| p.chars().any(char::is_alphabetic))
}

/// The most digits in one run of digits and number punctuation (space, `-`, `.`, `(`,
/// `)`, `+`, `/`).
fn longest_digit_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        if c.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else if !matches!(c, ' ' | '-' | '.' | '(' | ')' | '+' | '/') {
            run = 0;
        }
    }
    best
}

/// Domains whose mailboxes ignore dots in the local part.
const DOTLESS_DOMAINS: &[&str] = &["gmail.com", "googlemail.com"];

/// The mailbox an address reaches, for "once per sender" limits: lowercased, without a
/// `+tag`, and for Gmail without dots (`J.Doe+1@googlemail.com` → `jdoe@gmail.com`).
pub fn mailbox_key(address: &str) -> String {
    let a = address.trim().to_lowercase();
    let Some((local, domain)) = a.rsplit_once('@') else {
        return a;
    };
    let local = local.split('+').next().unwrap_or(local);
    if DOTLESS_DOMAINS.contains(&domain) {
        format!("{}@gmail.com", local.replace('.', ""))
    } else {
        format!("{local}@{domain}")
    }
}

/// The domain part of a [`mailbox_key`] (or of an address).
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_repeated_only_when_they_read_as_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Pat Customer", Some("Pat Customer")),
            ("Zoë Müller", Some("Zoë Müller")),
            ("Sinéad O'Brien", Some("Sinéad O'Brien")),
            ("J. R. Smith-Jones", Some("J. R. Smith-Jones")),
            ("\"Dana Whitfield\"", Some("Dana Whitfield")),
            ("  Pat   Customer ", Some("Pat Customer")),
            ("李小龙", Some("李小龙")),
            ("Acme Spa Supplies", Some("Acme Spa Supplies")),
            ("", None),
            ("Cheap pills at pills.example", None),
            ("WIN $1000 NOW", None),
            ("Call 555 0142 9876", None),
            ("pat@example.com", None),
            ("http://spam.example", None),
            ("<b>Pat</b>", None),
            ("Pat\u{202E}gpj.exe", None),
            ("Pat\u{200B}Customer", None),
            ("Visit.Our.Shop", None),
            ("A very long name that goes on and on forever", None),
            ("One Two Three Four Five Six", None),
        ];
        for (raw, want) in cases {
            assert_eq!(person_name(raw).as_deref(), *want, "{raw:?}");
        }
    }

    #[test]
    fn subjects_are_repeated_only_when_plain() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Quote for a new hot tub", Some("Quote for a new hot tub")),
            ("Re: Invoice no. 5 (March)", Some("Re: Invoice no. 5 (March)")),
            ("Heater error FL1, v2.0 firmware", Some("Heater error FL1, v2.0 firmware")),
            ("Order 12345", Some("Order 12345")),
            ("¿Precio del jacuzzi?", Some("¿Precio del jacuzzi?")),
            ("Cheap meds at www.pills.example", None),
            ("Visit shop.example.com today", None),
            ("Go to bit.ly/x", None),
            ("https://spam.example/offer", None),
            ("Write to boss@example.com", None),
            ("<script>alert(1)</script>", None),
            ("Call +1 (555) 014-2999 now", None),
            ("Account 4111 1111 1111 1111", None),
            ("Invoice\u{202E}fdp.exe", None),
            ("&#x202E; tricks", None),
            (
                "A subject line that is far too long to be a subject anyone would write by hand, surely",
                None,
            ),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(plain_subject(raw).as_deref(), *want, "{raw:?}");
        }
    }

    #[test]
    fn one_mailbox_has_one_key() {
        let cases: &[(&str, &str)] = &[
            ("Victim@Example.com", "victim@example.com"),
            ("victim+1@example.com", "victim@example.com"),
            ("victim+a+b@example.com", "victim@example.com"),
            ("v.i.c.t.i.m@gmail.com", "victim@gmail.com"),
            ("Victim+x@GoogleMail.com", "victim@gmail.com"),
            ("first.last@example.com", "first.last@example.com"),
            ("no-at-sign", "no-at-sign"),
        ];
        for (raw, want) in cases {
            assert_eq!(mailbox_key(raw), *want, "{raw:?}");
        }
        assert_eq!(domain_of("victim@example.com"), "example.com");
    }

    #[test]
    fn invisible_characters_are_format_characters() {
        for c in [
            '\u{202E}',
            '\u{200B}',
            '\u{2066}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{E0041}',
        ] {
            assert!(is_format_char(c), "{c:?}");
        }
        for c in ['a', 'é', ' ', '’', '李'] {
            assert!(!is_format_char(c), "{c:?}");
        }
    }
}
