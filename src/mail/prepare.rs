//! Cheap, linear passes over the raw bytes before `mail-parser` sees them:
//!
//! - **Nested messages are never opened by the parser.** mail-parser builds a
//!   `message/rfc822` part as a nested `Message` and both drops and copies (`into_owned`,
//!   for base64-encoded ones) that tree recursively: a chain of a few thousand forwarded
//!   messages — 100 KB of bytes — overflows a 2 MiB tokio worker stack and aborts the
//!   process. Every `rfc822`, `global` and `digest` that could be a Content-Type subtype
//!   (a `/` earlier on its line) is renamed in place (`x-c822`, `x-obal`, `x-gest`), so the
//!   parser keeps such parts as opaque bytes; the view opens them itself, one level at a
//!   time and at most a few levels deep, when the outer message has no text of its own.
//!   The parser reads a subtype only as one unbroken token on the line of its `/`, so
//!   the match over-approximates what it could nest.
//!
//! The input is copied at most once (only when something changes).

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

/// Subtypes that make the parser nest a message (`multipart/digest` parts default to
/// `message/rfc822`); their first two bytes become "x-".
const NESTING: [&str; 3] = ["rfc822", "global", "digest"];

static NESTING_WORDS: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(NESTING)
        .ok()
});

/// The renamed subtypes, as the parser reports them (lowercase).
pub const NEUTRALISED_MESSAGE_SUBTYPES: [&str; 2] = ["x-c822", "x-obal"];

/// Applies every pass.
pub fn prepare(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Cow::Borrowed(input);
    neutralise_nesting(&mut out);
    out
}

/// Renames every nesting subtype that has a '/' before it on its line (same length, in
/// place). Linear: one pass over the matches and one over the bytes before them.
fn neutralise_nesting(bytes: &mut Cow<'_, [u8]>) {
    let Some(ac) = NESTING_WORDS.as_ref() else {
        return;
    };
    let mut hits = Vec::new();
    let mut cursor = 0;
    let mut slash_on_line = false;
    for m in ac.find_iter(&bytes[..]) {
        for &b in &bytes[cursor..m.start()] {
            match b {
                b'\n' => slash_on_line = false,
                b'/' => slash_on_line = true,
                _ => {}
            }
        }
        cursor = m.start();
        if slash_on_line {
            hits.push(m.start());
        }
    }
    if hits.is_empty() {
        return;
    }
    let out = bytes.to_mut();
    for at in hits {
        if let Some(dst) = out.get_mut(at..at + 2) {
            dst.copy_from_slice(b"x-");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_mail_is_borrowed_untouched() {
        let raw = b"Subject: hi\r\nContent-Type: text/plain\r\n\r\nbody about rfc822 and global trade\r\n";
        assert!(matches!(prepare(raw), Cow::Borrowed(_)));
    }

    #[test]
    fn nesting_subtypes_are_renamed_after_a_slash() {
        let out = prepare(b"Content-Type: Message/RFC822\r\n\r\nX: multipart/digest; a=global\r\nglobal rfc822\r\n");
        assert_eq!(
            out.into_owned(),
            b"Content-Type: Message/x-C822\r\n\r\nX: multipart/x-gest; a=x-obal\r\nglobal rfc822\r\n".to_vec()
        );
    }
}
