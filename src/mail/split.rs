//! Separates what the sender just wrote from what they quoted and from their signature.
//!
//! Only the new text counts toward scores and name mentions: a complaint quoted from an
//! earlier thread, a name in a signature, or "Thanks, Sarah" at the bottom must not steer
//! routing. Rules, applied line by line:
//!
//! - lines starting with `>` are quoted; new lines between quotes (inline answers) stay new;
//! - a reply attribution ("On … wrote:", also wrapped over two lines and in a few other
//!   languages), an Outlook header block ("From: … Sent: …", "-----Original Message-----")
//!   or a forwarding marker ends the new text: everything after it is quoted;
//! - `-- ` (the standard signature separator), "Sent from my …" lines, and a short closing
//!   block after a valediction ("Thanks,", "Best regards,") are the signature.

/// A body split into its three parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    pub new_text: String,
    pub quoted: String,
    pub signature: String,
}

const VALEDICTIONS: &[&str] = &[
    "thanks",
    "thank you",
    "thanks again",
    "thanks so much",
    "thank you so much",
    "many thanks",
    "thanks in advance",
    "regards",
    "best regards",
    "kind regards",
    "warm regards",
    "warmest regards",
    "best wishes",
    "best",
    "all the best",
    "cheers",
    "sincerely",
    "yours sincerely",
    "yours truly",
    "respectfully",
    "take care",
    "talk soon",
    "cordialement",
    "merci",
    "saludos",
    "gracias",
    "mit freundlichen grüßen",
    "viele grüße",
];

const FORWARD_MARKERS: &[&str] = &[
    "---------- forwarded message",
    "-------- forwarded message",
    "begin forwarded message",
    "-----original message-----",
    "----- original message -----",
    "-------- original message --------",
    "----- forwarded by",
    "-----message d'origine-----",
    "-----ursprüngliche nachricht-----",
    "-----mensaje original-----",
];

const MOBILE_SIGNOFFS: &[&str] = &[
    "sent from my ",
    "get outlook for ",
    "sent from outlook",
    "sent from mail for windows",
    "sent from yahoo mail",
    "envoyé de mon ",
    "enviado desde mi ",
];

/// Longest valediction, in bytes: longer lines are not looked up.
const VALEDICTION_MAX: usize = longest(VALEDICTIONS);

const fn longest(words: &[&str]) -> usize {
    let (mut i, mut max) = (0, 0);
    while i < words.len() {
        if words[i].len() > max {
            max = words[i].len();
        }
        i += 1;
    }
    max
}

/// Does this line (trimmed, lowercased) start with one of `prefixes`? Each is compared
/// only when its first byte matches (every line of every body is checked).
fn starts_with_one_of(lower: &str, prefixes: &[&str]) -> bool {
    let Some(&first) = lower.as_bytes().first() else {
        return false;
    };
    prefixes
        .iter()
        .any(|p| p.as_bytes().first() == Some(&first) && lower.starts_with(p))
}

/// Is this line (trimmed, lowercased) a reply attribution such as "On … wrote:"?
fn is_attribution(lower: &str) -> bool {
    // Every form below starts with a two-letter word.
    if lower.as_bytes().get(2) != Some(&b' ') {
        return false;
    }
    let ends = |s: &str| lower.ends_with(s);
    (lower.starts_with("on ") && (ends("wrote:") || ends("wrote :")))
        || (lower.starts_with("le ") && (ends("a écrit :") || ends("a écrit:")))
        || (lower.starts_with("am ") && ends("schrieb:"))
        || (lower.starts_with("el ") && (ends("escribió:") || ends("escribió :")))
        || (lower.starts_with("il ") && ends("ha scritto:"))
        || (lower.starts_with("op ") && ends("schreef:"))
}

/// Header names that open a pasted header block, lowercased with their colon.
const FROM_KEYS: &[&str] = &["from:", "de :", "de:", "von:"];
const DATE_KEYS: &[&str] = &["sent:", "date:", "envoyé :", "gesendet:", "enviado:"];
const TO_KEYS: &[&str] = &[
    "to:", "subject:", "cc:", "à :", "an:", "para:", "objet :", "betreff:",
];
/// Lines that may stand in a pasted header block without being one of the three kinds.
const OTHER_KEYS: &[&str] = &["content-", "mime-version:", "reply-to:", "message-id:"];

/// Does a pasted header block — Outlook's "From: … Sent: … To: …", Thunderbird's
/// "Subject: … Date: … From: …", a forward with its MIME headers — start at line `i`? It
/// is a run of header lines, in any order, with a sender, a date and a recipient or
/// subject among the first eight.
fn is_header_block(lines: &[&str], i: usize) -> bool {
    let key_of = |l: &str| -> Option<u8> {
        let t = l.trim_start().trim_start_matches('*');
        // Every key starts with one of these letters: most lines stop here.
        let lead = t.as_bytes().first()?.to_ascii_lowercase();
        if !matches!(
            lead,
            b'f' | b'd'
                | b'v'
                | b's'
                | b'g'
                | b'e'
                | b't'
                | b'c'
                | b'a'
                | b'b'
                | b'p'
                | b'o'
                | b'm'
                | b'r'
        ) {
            return None;
        }
        let any = |keys: &[&str]| keys.iter().any(|k| starts_with_lowercase(t, k));
        if any(FROM_KEYS) {
            Some(b'f')
        } else if any(DATE_KEYS) {
            Some(b'd')
        } else if any(TO_KEYS) {
            Some(b't')
        } else if any(OTHER_KEYS) {
            Some(b'o')
        } else {
            None
        }
    };
    let Some(first) = lines.get(i) else {
        return false;
    };
    if key_of(first).is_none() {
        return false;
    }
    let (mut from, mut date, mut to) = (false, false, false);
    for l in lines.iter().skip(i).take(8) {
        match key_of(l) {
            Some(b'f') => from = true,
            Some(b'd') => date = true,
            Some(b't') => to = true,
            _ => {}
        }
    }
    from && date && to
}

fn is_valediction(lower: &str) -> bool {
    let t = lower.trim_end_matches([',', '.', '!', ' ', '-']);
    t.len() <= VALEDICTION_MAX && VALEDICTIONS.contains(&t)
}

/// Splits a plain-text body into new text, quoted text and signature.
pub fn split(body: &str) -> Split {
    let parts = sort_lines(body);
    Split {
        new_text: join_trimmed(&parts.new),
        quoted: join_trimmed(&parts.quoted),
        signature: join_trimmed(&parts.signature),
    }
}

/// The new text of [`split`] alone (what triage reads), without copying the rest.
pub fn new_text(body: &str) -> String {
    join_trimmed(&sort_lines(body).new)
}

/// A body's lines by part, in order.
struct Parts<'a> {
    new: Vec<&'a str>,
    quoted: Vec<&'a str>,
    signature: Vec<&'a str>,
}

/// Sorts the lines of a body into new text, quoted text and signature (the rules in the
/// module's documentation).
fn sort_lines(body: &str) -> Parts<'_> {
    let lines: Vec<&str> = body.lines().collect();
    let mut new_lines: Vec<&str> = Vec::new();
    let mut quoted: Vec<&str> = Vec::new();
    let mut signature: Vec<&str> = Vec::new();
    let mut cut_at: Option<usize> = None;
    let mut sig_from: Option<usize> = None;

    let mut lower = String::new();
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        lowercase_into(&mut lower, trimmed);
        let lower = lower.as_str();
        let wrapped_attribution = lower.starts_with("on ")
            && !lower.contains("wrote")
            && lines
                .get(i + 1)
                .map(|n| n.trim().to_lowercase())
                .is_some_and(|n| n.ends_with("wrote:") && n.len() < 120);
        let underscore_rule = trimmed.len() >= 20
            && trimmed.chars().all(|c| c == '_')
            && is_header_block(&lines, i + 1);
        if is_attribution(lower)
            || wrapped_attribution
            || starts_with_one_of(lower, FORWARD_MARKERS)
            || underscore_rule
            || is_header_block(&lines, i)
        {
            cut_at = Some(i);
            break;
        }
        if sig_from.is_none() {
            if line == "-- " || line == "--" || line == "—" {
                sig_from = Some(i);
                continue;
            }
            if starts_with_one_of(lower, MOBILE_SIGNOFFS)
                || (is_valediction(lower) && closing_block_follows(&lines, i))
            {
                sig_from = Some(i);
            }
        }
        if sig_from.is_some() {
            signature.push(line);
        } else if trimmed.starts_with('>') {
            quoted.push(line);
        } else {
            new_lines.push(line);
        }
    }
    if let Some(c) = cut_at {
        quoted.extend(lines.iter().skip(c).map(|l| l.trim_end_matches('\r')));
    }
    Parts {
        new: new_lines,
        quoted,
        signature,
    }
}

/// After a valediction at line `i`, is the rest (up to a cut or the end) a short closing?
fn closing_block_follows(lines: &[&str], i: usize) -> bool {
    let mut count = 0;
    for (j, l) in lines.iter().enumerate().skip(i + 1) {
        let lower = l.trim().to_lowercase();
        if is_attribution(&lower)
            || starts_with_one_of(&lower, FORWARD_MARKERS)
            || is_header_block(lines, j)
            || lower.starts_with('>')
        {
            break;
        }
        if !lower.is_empty() {
            count += 1;
        }
        if count > 6 {
            return false;
        }
    }
    true
}

/// Does `text`, lowercased, start with `key` (lowercase)? Without lowercasing the line
/// when its first bytes are ASCII (checked on every line of every body).
fn starts_with_lowercase(text: &str, key: &str) -> bool {
    match text.as_bytes().get(..key.len()) {
        Some(head) if head.is_ascii() => head.eq_ignore_ascii_case(key.as_bytes()),
        // Shorter than the key, and lowercasing ASCII keeps the length: no match. (Most
        // lines of a body, blank ones included, end here, without an allocation.)
        None if text.is_ascii() => false,
        _ => text.to_lowercase().starts_with(key),
    }
}

/// `s` lowercased into `out` (replacing it), cheaply for the common all-ASCII line.
fn lowercase_into(out: &mut String, s: &str) {
    out.clear();
    if s.is_ascii() {
        out.push_str(s);
        out.make_ascii_lowercase();
    } else {
        out.push_str(&s.to_lowercase());
    }
}

/// The lines joined with `\n`, without the blank lines, spaces and line breaks at either
/// end; one allocation (none when nothing is left).
fn join_trimmed(lines: &[&str]) -> String {
    let edge = |c: char| c == '\n' || c == '\r' || c == ' ';
    let blank = |l: &&str| l.trim_matches(edge).is_empty();
    let Some(first) = lines.iter().position(|l| !blank(l)) else {
        return String::new();
    };
    let last = lines.iter().rposition(|l| !blank(l)).unwrap_or(first);
    let kept = lines.get(first..=last).unwrap_or_default();
    let mut out = String::with_capacity(kept.iter().map(|l| l.len() + 1).sum());
    for (i, l) in kept.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut l = *l;
        if i == 0 {
            l = l.trim_start_matches(edge);
        }
        if i + 1 == kept.len() {
            l = l.trim_end_matches(edge);
        }
        out.push_str(l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        body: &'static str,
        new_text: &'static str,
        quoted_has: &'static str,
        signature_has: &'static str,
    }

    #[test]
    fn markers_are_found_by_their_first_byte_and_every_valediction_is_looked_up() {
        for m in FORWARD_MARKERS.iter().chain(MOBILE_SIGNOFFS) {
            let line = format!("{m} and more");
            assert!(
                starts_with_one_of(&line, FORWARD_MARKERS)
                    || starts_with_one_of(&line, MOBILE_SIGNOFFS),
                "{m:?}"
            );
        }
        assert!(!starts_with_one_of("", FORWARD_MARKERS));
        assert!(!starts_with_one_of("hello", MOBILE_SIGNOFFS));
        for v in VALEDICTIONS {
            assert!(is_valediction(v), "{v:?}");
        }
    }

    #[test]
    fn join_trimmed_is_join_then_trim() {
        let reference = |lines: &[&str]| {
            lines
                .join("\n")
                .trim_matches(|c: char| c == '\n' || c == '\r' || c == ' ')
                .to_string()
        };
        let cases: &[&[&str]] = &[
            &[],
            &[""],
            &["  ", "\r", " \r "],
            &[" a "],
            &["", " a", "b ", ""],
            &["\r", "x\r", " \r"],
            &["a", "", "  ", "b"],
            &["\tkeep tabs\t"],
            &["é ", " ü"],
        ];
        for lines in cases {
            assert_eq!(join_trimmed(lines), reference(lines), "{lines:?}");
        }
    }

    #[test]
    fn splits_real_reply_shapes() {
        let cases = [
            Case {
                name: "gmail top-post",
                body: "Yes, Tuesday works.\n\nOn Mon, Mar 2, 2026 at 9:14 AM Sarah Williams <sarah@hottubman.ca> wrote:\n> Can we come Tuesday?\n",
                new_text: "Yes, Tuesday works.",
                quoted_has: "Sarah Williams",
                signature_has: "",
            },
            Case {
                name: "wrapped attribution",
                body: "Sounds good.\nOn Mon, Mar 2, 2026 at 9:14 AM Sarah Williams\n<sarah@hottubman.ca> wrote:\n> hi",
                new_text: "Sounds good.",
                quoted_has: "> hi",
                signature_has: "",
            },
            Case {
                name: "inline answers keep new lines",
                body: "> Which model?\nThe Sundance 880.\n> Year?\n2019",
                new_text: "The Sundance 880.\n2019",
                quoted_has: "> Year?",
                signature_has: "",
            },
            Case {
                name: "outlook header block",
                body: "Please see below.\n\nFrom: Mark Johnson <mark@hottubman.ca>\nSent: Monday, March 2, 2026 9:00 AM\nTo: Jane\nSubject: Quote\n\nHere is your quote.",
                new_text: "Please see below.",
                quoted_has: "Here is your quote.",
                signature_has: "",
            },
            Case {
                name: "thunderbird header block, date first",
                body: "See below.\n\nSubject: Your order\nDate: Mon, 2 Mar 2026 09:00:00 +0100\nFrom: Shop <shop@example.com>\nTo: Jane\n\nYour order has shipped.",
                new_text: "See below.",
                quoted_has: "Your order has shipped.",
                signature_has: "",
            },
            Case {
                name: "a forward opening with its MIME headers",
                body: "Content-Transfer-Encoding: quoted-printable\nDate: Fri, 27 Apr 2001 10:22:32 -0500\nFrom: \"A B\" <ab@example.com>\nTo: \"C D\" <cd@example.com>,\n\"E F\" <ef@example.com>\nSubject: An article\n\nA long article.",
                new_text: "",
                quoted_has: "A long article.",
                signature_has: "",
            },
            Case {
                name: "a sentence starting with a header word is not a block",
                body: "From: now on I will call first.\nDate: any day next week suits me.\nSee you then.",
                new_text: "From: now on I will call first.\nDate: any day next week suits me.\nSee you then.",
                quoted_has: "",
                signature_has: "",
            },
            Case {
                name: "signature separator",
                body: "The pump is noisy.\n-- \nMark Peters\nPeters Plumbing",
                new_text: "The pump is noisy.",
                quoted_has: "",
                signature_has: "Mark Peters",
            },
            Case {
                name: "valediction block",
                body: "Can someone look at my heater?\n\nThanks,\nSarah Connor\n555-0142",
                new_text: "Can someone look at my heater?",
                quoted_has: "",
                signature_has: "Sarah Connor",
            },
            Case {
                name: "thanks naming someone is not a valediction",
                body: "Got the parts.\nThanks Mark,\nJoe",
                new_text: "Got the parts.\nThanks Mark,\nJoe",
                quoted_has: "",
                signature_has: "",
            },
            Case {
                name: "forwarded",
                body: "FYI\n\n---------- Forwarded message ---------\nFrom: someone\nThe tub is leaking",
                new_text: "FYI",
                quoted_has: "The tub is leaking",
                signature_has: "",
            },
            Case {
                name: "mobile sign-off",
                body: "Call me back please\n\nSent from my iPhone",
                new_text: "Call me back please",
                quoted_has: "",
                signature_has: "Sent from my iPhone",
            },
            Case {
                name: "crlf",
                body: "Hello\r\nOn Tue, Sarah wrote:\r\n> x\r\n",
                new_text: "Hello",
                quoted_has: "> x",
                signature_has: "",
            },
        ];
        for c in cases {
            let s = split(c.body);
            assert_eq!(s.new_text, c.new_text, "{}: new text", c.name);
            assert_eq!(new_text(c.body), c.new_text, "{}: new_text()", c.name);
            assert!(
                s.quoted.contains(c.quoted_has),
                "{}: quoted {:?}",
                c.name,
                s.quoted
            );
            assert!(
                s.signature.contains(c.signature_has),
                "{}: signature {:?}",
                c.name,
                s.signature
            );
        }
    }
}
