//! Cheap, linear passes over the raw bytes before `mail-parser` sees them, each closing a
//! way hostile mail could crash the daemon, stall it, blow up its memory, or hide the
//! message's text:
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
//! - **Structure is budgeted.** The parser spends ~100–4,000 bytes of memory per header
//!   field, MIME part or address, so a megabyte of tiny ones costs ~30 MB. Per MiB of
//!   input at most [`FIELDS_PER_MIB`] lines that could be header fields (lines with a
//!   colon) and [`PARTS_PER_MIB`] runs of dashes (every MIME delimiter starts with one)
//!   are passed on: the message is cut before the first line over budget, so the parser
//!   sees the first parts — where the text is — and the view says it was cut.
//! - **Fields are capped.** Content-Type and Content-Disposition at [`MAX_MIME_FIELD`]
//!   (the parser merges RFC 2231 continuations with a scan over every parameter per
//!   continuation: quadratic, 13 s for one 1 MiB header in a debug build); address and
//!   message-id fields at [`MAX_LIST_FIELD`] each and [`MAX_LIST_FIELDS`] in all (every
//!   address costs ~130 bytes). Real fields are far shorter.
//! - **Blank or whitespace-only lines before the header are skipped** when a header
//!   follows; otherwise the whole message, header included, would be read as body text.
//! - **A message with bare CR line endings only** (no LF anywhere) is read with LF.
//!
//! Every pass keeps the byte count except the caps and the budget, and the input is copied
//! at most once (only when something changes). Every count over-approximates what the
//! parser would see (header names are matched the way it reads them), so no input gets
//! past a budget by dressing its structure differently.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::Repair;

/// Longest Content-Type or Content-Disposition field (with its folded lines) passed to the
/// parser; the rest of the field is dropped.
pub const MAX_MIME_FIELD: usize = 8 * 1024;

/// Longest address or message-id field (From, To, Cc, Bcc, Reply-To, Message-ID,
/// References, In-Reply-To, Content-ID, Resent-Message-ID) passed to the parser.
pub const MAX_LIST_FIELD: usize = 16 * 1024;

/// Most bytes of address and message-id fields passed to the parser in one message; later
/// ones are cut to their name.
pub const MAX_LIST_FIELDS: usize = 32 * 1024;

/// Lines that could be header fields (they hold a colon) passed on per MiB of input.
pub const FIELDS_PER_MIB: usize = 4096;

/// Runs of two or more dashes (possible MIME delimiters) passed on per MiB of input.
pub const PARTS_PER_MIB: usize = 1024;

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

/// Applies every pass to at most `limit` bytes (the parse limit; the budgets scale with
/// it); records what it repaired.
pub fn prepare<'a>(input: &'a [u8], limit: usize, repairs: &mut Vec<Repair>) -> Cow<'a, [u8]> {
    let input = skip_junk_before_header(input, repairs);
    let mut out = Cow::Borrowed(input);
    if !input.contains(&b'\n') && input.contains(&b'\r') {
        for b in out.to_mut().iter_mut() {
            if *b == b'\r' {
                *b = b'\n';
            }
        }
        repairs.push(Repair::BareCrLineEndings);
    }
    neutralise_nesting(&mut out);
    let (capped, over_budget) = limit_structure(&mut out, limit);
    if capped {
        repairs.push(Repair::LongField);
    }
    if over_budget {
        repairs.push(Repair::TooManyParts);
    }
    out
}

/// Does `line` (up to its '\n') look like a header field ("Name: value")?
fn is_field_line(line: &[u8]) -> bool {
    let name_len = line
        .iter()
        .take_while(|&&b| b.is_ascii_graphic() && b != b':')
        .count();
    (1..=76).contains(&name_len) && line.get(name_len) == Some(&b':')
}

/// Skips leading lines of only whitespace when at least two header lines follow them.
fn skip_junk_before_header<'a>(input: &'a [u8], repairs: &mut Vec<Repair>) -> &'a [u8] {
    let start = input
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(input.len());
    if start == 0 || start == input.len() || input.get(start - 1) != Some(&b'\n') {
        return input;
    }
    let rest = &input[start..];
    let mut lines = rest.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let second = lines.next().unwrap_or_default();
    let second_ok =
        is_field_line(second) || second.first().is_some_and(|b| *b == b' ' || *b == b'\t');
    if is_field_line(first) && second_ok {
        repairs.push(Repair::JunkBeforeHeader);
        rest
    } else {
        input
    }
}

/// Renames every nesting subtype that has a '/' before it on its line (same length, in
/// place). Linear: the automaton only reads the rest of a line after its first '/'.
fn neutralise_nesting(bytes: &mut Cow<'_, [u8]>) {
    let Some(ac) = NESTING_WORDS.as_ref() else {
        return;
    };
    let mut hits = Vec::new();
    let mut at = 0;
    while let Some(p) = memchr::memchr(b'/', bytes.get(at..).unwrap_or_default()) {
        let from = at + p + 1;
        let rest = bytes.get(from..).unwrap_or_default();
        let end = memchr::memchr(b'\n', rest).map_or(bytes.len(), |q| from + q);
        hits.extend(ac.find_iter(&bytes[from..end]).map(|m| from + m.start()));
        at = end;
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

/// Header fields whose parsing builds structure worth capping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    /// Content-Type, Content-Disposition.
    Mime,
    /// Address and message-id lists.
    List,
    /// Anything else, or not a field.
    Other,
}

/// What kind of field this line starts, as mail-parser reads header names (whitespace
/// anywhere in the name ignored, leading colons skipped, any case).
fn field_kind(line: &[u8]) -> Field {
    let mut name = [0u8; 20];
    let mut len = 0;
    for &b in line {
        match b {
            b':' if len > 0 => break,
            b':' => {}
            b'\n' => return Field::Other,
            b if b.is_ascii_whitespace() => {}
            b => {
                let Some(slot) = name.get_mut(len) else {
                    return Field::Other;
                };
                *slot = b.to_ascii_lowercase();
                len += 1;
            }
        }
    }
    match &name[..len] {
        b"content-type" | b"content-disposition" => Field::Mime,
        b"from" | b"to" | b"cc" | b"bcc" | b"reply-to" | b"message-id" | b"references"
        | b"in-reply-to" | b"content-id" | b"resent-message-id" => Field::List,
        _ => Field::Other,
    }
}

/// Runs of two or more '-' in `bytes`.
fn dash_runs(bytes: &[u8]) -> usize {
    let mut runs = 0;
    // Position just past the previous dash, and the length of the run it ended.
    let (mut after_dash, mut run) = (usize::MAX, 0usize);
    for at in memchr::memchr_iter(b'-', bytes) {
        run = if at == after_dash { run + 1 } else { 1 };
        if run == 2 {
            runs += 1;
        }
        after_dash = at + 1;
    }
    runs
}

/// Messages shorter than this cannot reach any field cap or the field-line budget, so
/// [`limit_structure`] only has to count their dash runs: every field is shorter than
/// the smallest cap (the list total included: it stays below the message's length), and
/// `n` lines holding a colon take at least `2n - 1` bytes.
fn small_enough(max_fields: usize) -> usize {
    MAX_MIME_FIELD
        .min(MAX_LIST_FIELD)
        .min(MAX_LIST_FIELDS / 2)
        .min(2 * max_fields)
}

/// Caps fields and applies the structure budget (see the module documentation). Returns
/// (a field was cut, the message was cut at the budget).
fn limit_structure(bytes: &mut Cow<'_, [u8]>, limit: usize) -> (bool, bool) {
    let mib = limit.div_ceil(1024 * 1024).max(1);
    let (max_fields, max_parts) = (FIELDS_PER_MIB * mib, PARTS_PER_MIB * mib);
    // Most mail is far below every budget and cap: a message shorter than all of them
    // can only go over the dash-run budget, which one vectorised scan checks.
    if bytes.len() < small_enough(max_fields) && dash_runs(bytes) <= max_parts {
        return (false, false);
    }
    limit_lines(bytes, max_fields, max_parts)
}

/// [`limit_structure`] line by line.
fn limit_lines(bytes: &mut Cow<'_, [u8]>, max_fields: usize, max_parts: usize) -> (bool, bool) {
    // Ranges to drop, found on the borrowed bytes first: most messages need no copy.
    let mut drops: Vec<(usize, usize)> = Vec::new();
    let mut cut_at = None;
    let (mut fields, mut parts) = (0usize, 0usize);
    let mut field = Field::Other;
    let mut field_len = 0usize;
    let mut list_total = 0usize;
    let mut start = 0;
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |p| start + p + 1);
        let line = &bytes[start..end];
        let colon = memchr::memchr(b':', line).is_some();
        fields += usize::from(colon);
        parts += dash_runs(line);
        if fields > max_fields || parts > max_parts {
            cut_at = Some(start);
            break;
        }
        let folded = matches!(line.first(), Some(b' ' | b'\t'));
        if !(field != Field::Other && folded) {
            // A whole line without a colon names no field.
            field = if colon || !line.ends_with(b"\n") {
                field_kind(line)
            } else {
                Field::Other
            };
            field_len = 0;
        }
        let cap = match field {
            Field::Mime => MAX_MIME_FIELD,
            Field::List => {
                MAX_LIST_FIELD.min(MAX_LIST_FIELDS.saturating_sub(list_total) + field_len)
            }
            Field::Other => usize::MAX,
        };
        let room = cap.saturating_sub(field_len);
        field_len += line.len();
        if line.len() > room {
            // Keep the line end ("\n" or "\r\n") so the field still ends where it did.
            let ending = if line.ends_with(b"\r\n") {
                2
            } else {
                usize::from(line.ends_with(b"\n"))
            };
            // A field's first line keeps its name: a line left empty would end the header.
            let name_end = if folded {
                0
            } else {
                line.iter().position(|&b| b == b':').map_or(0, |p| p + 1)
            };
            let cut_from = start + room.max(name_end).min(line.len() - ending);
            let cut_to = if room == 0 && folded {
                end
            } else {
                end - ending
            };
            if cut_from < cut_to {
                drops.push((cut_from, cut_to));
            }
        }
        if field == Field::List {
            list_total += line.len().min(room);
        }
        start = end;
    }
    let capped = !drops.is_empty();
    if let Some(at) = cut_at {
        drops.push((at, bytes.len()));
    } else if drops.is_empty() {
        return (false, false);
    }
    let src = std::mem::take(bytes.to_mut());
    let mut out = Vec::with_capacity(src.len());
    let mut at = 0;
    for (from, to) in drops {
        out.extend_from_slice(src.get(at..from).unwrap_or_default());
        at = to;
    }
    out.extend_from_slice(src.get(at..).unwrap_or_default());
    *bytes = Cow::Owned(out);
    (capped, cut_at.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Vec<u8>, Vec<Repair>) {
        let mut repairs = Vec::new();
        let out = prepare(input, 1 << 20, &mut repairs).into_owned();
        (out, repairs)
    }

    #[test]
    fn ordinary_mail_is_borrowed_untouched() {
        let raw = b"Subject: hi\r\nContent-Type: text/plain\r\n\r\nbody about rfc822 and global trade\r\n";
        let mut repairs = Vec::new();
        assert!(matches!(
            prepare(raw, 1 << 20, &mut repairs),
            Cow::Borrowed(_)
        ));
        assert!(repairs.is_empty());
    }

    #[test]
    fn nesting_subtypes_are_renamed_after_a_slash() {
        let (out, _) = run(b"Content-Type: Message/RFC822\r\n\r\nX: multipart/digest; a=global\r\nglobal rfc822\r\n");
        assert_eq!(
            out,
            b"Content-Type: Message/x-C822\r\n\r\nX: multipart/x-gest; a=x-obal\r\nglobal rfc822\r\n".to_vec()
        );
    }

    #[test]
    fn long_content_type_is_cut_and_folded_lines_dropped() {
        let mut raw = b"Content-Type: multipart/mixed".to_vec();
        for i in 0..5000 {
            raw.extend_from_slice(format!(";\r\n p{i}=v").as_bytes());
        }
        raw.extend_from_slice(b"\r\nSubject: kept\r\n\r\nbody");
        let (out, repairs) = run(&raw);
        assert_eq!(repairs, vec![Repair::LongField]);
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.len() < MAX_MIME_FIELD + 100, "{}", text.len());
        assert!(text.ends_with("\r\nSubject: kept\r\n\r\nbody"), "{text}");
    }

    #[test]
    fn long_single_line_content_disposition_is_cut() {
        let mut raw = b"Content-Disposition: attachment".to_vec();
        raw.extend(std::iter::repeat_n(b'x', 50_000));
        raw.extend_from_slice(b"\nSubject: s\n\nbody");
        let (out, _) = run(&raw);
        assert_eq!(out.len(), MAX_MIME_FIELD + b"\nSubject: s\n\nbody".len());
    }

    #[test]
    fn address_fields_are_capped_each_and_in_total() {
        let to = |n: usize| format!("To: {}\r\n", "a@b.example, ".repeat(n));
        let raw = format!(
            "{}{}{}Subject: kept\r\n\r\nbody",
            to(2000),
            to(2000),
            to(2000)
        );
        let (out, repairs) = run(raw.as_bytes());
        assert_eq!(repairs, vec![Repair::LongField]);
        let text = String::from_utf8(out).expect("ascii");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0].len(), MAX_LIST_FIELD);
        assert_eq!(lines[1].len(), MAX_LIST_FIELDS - MAX_LIST_FIELD);
        assert_eq!(lines[2], "To:", "a field over the total keeps its name");
        assert_eq!(lines[3], "Subject: kept");
    }

    #[test]
    fn the_message_is_cut_at_the_structure_budget() {
        let mut raw = b"Content-Type: multipart/mixed; boundary=p\r\n\r\n".to_vec();
        for i in 0..3000 {
            raw.extend_from_slice(format!("--p\r\n\r\npart {i}\r\n").as_bytes());
        }
        let (out, repairs) = run(&raw);
        assert_eq!(repairs, vec![Repair::TooManyParts]);
        let text = String::from_utf8(out).expect("ascii");
        assert_eq!(text.matches("--p").count(), PARTS_PER_MIB);
        assert!(text.ends_with(&format!("part {}\r\n", PARTS_PER_MIB - 1)));
        // Header-like lines are budgeted the same way.
        let raw = "X-A: b\r\n".repeat(FIELDS_PER_MIB + 10);
        let (out, repairs) = run(raw.as_bytes());
        assert_eq!(repairs, vec![Repair::TooManyParts]);
        assert_eq!(out.len(), FIELDS_PER_MIB * 8);
    }

    #[test]
    fn junk_lines_before_a_header_are_skipped() {
        let (out, repairs) = run(b"\r\n  \r\nFrom: a@b\r\nSubject: s\r\n\r\nbody");
        assert_eq!(out, b"From: a@b\r\nSubject: s\r\n\r\nbody".to_vec());
        assert_eq!(repairs, vec![Repair::JunkBeforeHeader]);
        // A body that merely starts with "Word:" is not mistaken for a header.
        let (out, repairs) = run(b"\r\nNote: call me\r\nthanks");
        assert_eq!(out, b"\r\nNote: call me\r\nthanks".to_vec());
        assert!(repairs.is_empty());
    }

    #[test]
    fn bare_cr_becomes_lf() {
        let (out, repairs) = run(b"Subject: s\r\rbody\r");
        assert_eq!(out, b"Subject: s\n\nbody\n".to_vec());
        assert_eq!(repairs, vec![Repair::BareCrLineEndings]);
    }

    proptest::proptest! {
        /// The shortcut for small messages gives what the line-by-line pass gives.
        #[test]
        fn small_message_shortcut_agrees_with_the_line_pass(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "From: a@b\r\n", "To: x\n", " folded\r\n", "--", "---", "-", "--b\n",
                    ":", "\n", "\r\n", "text ", "Content-Type: text/plain\n", "\t", "x",
                ]),
                0..2500,
            ),
            parts in 1usize..1100,
        ) {
            let raw: Vec<u8> = pieces.concat().into_bytes();
            let mut slow = Cow::Borrowed(&raw[..]);
            let fields = FIELDS_PER_MIB;
            let shortcut = raw.len() < small_enough(fields) && dash_runs(&raw) <= parts;
            let by_lines = limit_lines(&mut slow, fields, parts);
            if shortcut {
                proptest::prop_assert_eq!(by_lines, (false, false));
                proptest::prop_assert_eq!(&slow[..], &raw[..]);
            }
        }
    }
}
