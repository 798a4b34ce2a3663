//! A generator of hostile messages, written for this project.
//!
//! The *kinds* of damage come from what real parser test suites exercise (mail-parser's
//! malformed corpus, Apache mime4j, Mailgun's flanker, MimeKit): nesting, part counts,
//! header sizes, RFC 2047 words, charsets that lie, NUL bytes, broken boundaries and
//! transfer encodings, HTML bombs, sizes. No message is copied from them: every one is
//! built here, deterministically, at test time (nothing big is committed).
//!
//! Most messages carry [`NEEDLE`] where a careful reader would find it, so tests can check
//! that the text survived, not only that a decision came out.

use std::io::{self, Write};
use std::path::Path;

use base64::Engine as _;

/// The sentence hidden in most hostile messages; SALES words, so it steers the decision.
pub const NEEDLE: &str = "I would like a price quote for a new hot tub";

/// One generated message.
pub struct Case {
    /// Stable name, used in test output.
    pub name: String,
    /// The raw message.
    pub raw: Vec<u8>,
    /// Text the view must still contain (in its body text or subject), when the damage
    /// leaves it recoverable.
    pub expect: Option<&'static str>,
}

impl Case {
    fn new(name: impl Into<String>, raw: impl Into<Vec<u8>>, expect: Option<&'static str>) -> Case {
        Case {
            name: name.into(),
            raw: raw.into(),
            expect,
        }
    }
}

/// Base64 with 76-character lines, as MIME writes it.
pub fn b64_lines(data: &[u8]) -> String {
    let flat = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(flat.len() + flat.len() / 38 + 2);
    for chunk in flat.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// An ordinary header block (no trailing blank line).
fn head(name: &str, subject: &str) -> String {
    format!(
        "From: Pat Customer <pat@example.com>\r\nTo: info@hottubman.ca\r\nSubject: {subject}\r\n\
         Message-ID: <{name}@hostile.example>\r\nDate: Tue, 3 Mar 2026 10:15:00 -0500\r\n\
         MIME-Version: 1.0\r\n"
    )
}

fn simple(name: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!("{}{extra_headers}\r\n", head(name, "hostile")).into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// `depth` levels of multipart/mixed, the text at the bottom; `closed` adds every closing
/// delimiter on the way out.
pub fn nested_multipart(depth: usize, closed: bool) -> Vec<u8> {
    let mut s = head("nested", "deep");
    s.push_str("Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n");
    for i in 0..depth {
        s.push_str(&format!(
            "--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{}\"\r\n\r\n",
            i + 1
        ));
    }
    s.push_str(&format!(
        "--b{depth}\r\nContent-Type: text/plain\r\n\r\n{NEEDLE}\r\n"
    ));
    if closed {
        for i in (0..=depth).rev() {
            s.push_str(&format!("--b{i}--\r\n"));
        }
    }
    s.into_bytes()
}

/// `depth` levels that all reuse the same boundary (mail-parser's malformed/003 shape, deep).
pub fn nested_same_boundary(depth: usize) -> Vec<u8> {
    let mut s = head("same-boundary", "same boundary");
    s.push_str("Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n");
    for _ in 0..depth {
        s.push_str("--a\r\nContent-Type: multipart/mixed; boundary=\"a\"\r\n\r\n");
    }
    s.push_str(&format!(
        "--a\r\nContent-Type: text/plain\r\n\r\n{NEEDLE}\r\n--a--\r\n"
    ));
    s.into_bytes()
}

/// `depth` levels of multipart/alternative whose boundaries are prefixes of each other.
pub fn nested_prefix_boundaries(depth: usize) -> Vec<u8> {
    let mut s = head("prefix-boundary", "prefix boundaries");
    s.push_str("Content-Type: multipart/alternative; boundary=\"x\"\r\n\r\n");
    let mut b = String::from("x");
    for _ in 0..depth {
        let inner = format!("{b}x");
        s.push_str(&format!(
            "--{b}\r\nContent-Type: multipart/alternative; boundary=\"{inner}\"\r\n\r\n"
        ));
        b = inner;
    }
    s.push_str(&format!(
        "--{b}\r\nContent-Type: text/plain\r\n\r\n{NEEDLE}\r\n--{b}--\r\n"
    ));
    s.into_bytes()
}

/// `n` parts in one multipart of `subtype`; the first holds the needle. `attachments` makes
/// every other part a small base64 attachment.
pub fn many_parts(n: usize, subtype: &str, attachments: bool) -> Vec<u8> {
    let mut s = head("many-parts", "many parts");
    s.push_str(&format!(
        "Content-Type: multipart/{subtype}; boundary=\"p\"\r\n\r\n--p\r\nContent-Type: text/plain\r\n\r\n{NEEDLE}\r\n"
    ));
    let blob = b64_lines(b"\x89PNG not really a picture");
    for i in 1..n {
        if attachments {
            s.push_str(&format!(
                "--p\r\nContent-Type: application/octet-stream; name=\"f{i}.bin\"\r\n\
                 Content-Disposition: attachment; filename=\"f{i}.bin\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{blob}"
            ));
        } else {
            s.push_str(&format!(
                "--p\r\nContent-Type: text/plain\r\n\r\npart {i} says hello\r\n"
            ));
        }
    }
    s.push_str("--p--\r\n");
    s.into_bytes()
}

/// One header line of `len` bytes (unfolded), in the subject or in an unknown header.
pub fn long_header_line(len: usize, header: &str) -> Vec<u8> {
    let value: String = "quote ".chars().cycle().take(len).collect();
    let mut raw = head("long-header", "long header");
    raw.push_str(&format!("{header}: {value}\r\n\r\n{NEEDLE}\r\n"));
    raw.into_bytes()
}

/// A To: header with `n` addresses, and References with `n` message ids.
pub fn address_storm(n: usize) -> Vec<u8> {
    let mut s = String::from("From: Pat Customer <pat@example.com>\r\nSubject: storm\r\nTo: ");
    for i in 0..n {
        if i > 0 {
            s.push_str(",\r\n ");
        }
        s.push_str(&format!("\"Person {i}, Esq.\" <p{i}@example.com>"));
    }
    s.push_str("\r\nReferences:");
    for i in 0..n {
        s.push_str(&format!(" <ref{i}@example.com>\r\n"));
    }
    s.push_str(&format!("\r\n{NEEDLE}\r\n"));
    s.into_bytes()
}

/// `n` header fields, then `n` continuation lines of one field.
pub fn header_count_storm(n: usize) -> Vec<u8> {
    let mut s = head("header-count", "many headers");
    for i in 0..n {
        s.push_str(&format!("X-Filler-{i}: value {i}\r\n"));
    }
    s.push_str("X-Folded: start");
    for i in 0..n {
        s.push_str(&format!("\r\n\tcontinued {i}"));
    }
    s.push_str(&format!("\r\n\r\n{NEEDLE}\r\n"));
    s.into_bytes()
}

/// A Content-Type with `n` parameters, and an RFC 2231 boundary split over `n` sections.
pub fn parameter_storm(n: usize) -> Vec<u8> {
    let mut s = head("params", "parameters");
    s.push_str("Content-Type: multipart/mixed");
    for i in 0..n {
        s.push_str(&format!(";\r\n x-p{i}=\"v{i}\""));
    }
    for i in 0..n {
        s.push_str(&format!(";\r\n boundary*{i}=\"q\""));
    }
    let boundary = "q".repeat(n);
    s.push_str(&format!(
        "\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\n{NEEDLE}\r\n--{boundary}--\r\n"
    ));
    s.into_bytes()
}

/// RFC 2047 words that decode, in a rotation of charsets.
fn good_words() -> Vec<String> {
    vec![
        format!("=?utf-8?B?{}?=", b64("price quote ".as_bytes())),
        "=?iso-8859-1?Q?caf=E9_cr=E8me?=".to_string(),
        "=?UTF-8?Q?hot=20tub_=F0=9F=9B=81?=".to_string(),
        format!(
            "=?koi8-r?B?{}?=",
            b64(&[0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4])
        ),
        format!("=?utf-16?B?{}?=", b64(&[0xfe, 0xff, 0, b'h', 0, b'i'])),
        format!("=?windows-1252?B?{}?=", b64(&[0x93, b'q', 0x94])),
        "=?utf-8*en?Q?language_tag?=".to_string(),
        format!("=?shift_jis?B?{}?=", b64(&[0x82, 0xa0, 0x82, 0xa2])),
    ]
}

/// RFC 2047 words that do not.
fn bad_words() -> Vec<String> {
    vec![
        "=?utf-8?B?!!!not*base64!!!?=".to_string(),
        "=?utf-8?X?unknown_encoding?=".to_string(),
        "=?x-unknown?Q?nobody_knows?=".to_string(),
        "=?utf-8?q?unterminated".to_string(),
        "=??=".to_string(),
        "=?utf-8??=".to_string(),
        "=?utf-8?Q?=ZZ=?=".to_string(),
        format!("=?utf-8?B?{}?=", b64(&[0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1])),
        format!("=?{}?Q?long_charset?=", "x".repeat(300)),
        "=?utf-8?B?SGVsbG8?=".to_string(),
        "=?=?=?=?=?=".to_string(),
        "=?utf-8?Q?a\0b?=".to_string(),
    ]
}

/// Thousands of folded encoded words in Subject, From and To, good and bad mixed.
pub fn encoded_word_storm(n: usize) -> Vec<u8> {
    let mut words = good_words();
    words.extend(bad_words());
    let pick = |i: usize| words[i % words.len()].clone();
    let mut s = String::from("From: ");
    for i in 0..n / 4 {
        s.push_str(&pick(i));
        s.push_str("\r\n ");
    }
    s.push_str("<pat@example.com>\r\nTo: ");
    for i in 0..n / 4 {
        if i > 0 {
            s.push_str(",\r\n ");
        }
        s.push_str(&format!("{} <t{i}@example.com>", pick(i + 3)));
    }
    s.push_str("\r\nSubject: ");
    for i in 0..n {
        s.push_str(&pick(i * 7));
        s.push_str(if i % 3 == 0 { "\r\n\t" } else { " " });
    }
    s.push_str(&format!(
        "\r\nMessage-ID: <ew@hostile.example>\r\n\r\n{NEEDLE}\r\n"
    ));
    s.into_bytes()
}

/// NUL bytes in header names, header values, the boundary and the body.
pub fn nul_bytes() -> Vec<Case> {
    let mut body_nuls = format!("{NEEDLE}\r\n").into_bytes();
    body_nuls.extend(std::iter::repeat_n(0u8, 100_000));
    body_nuls.extend_from_slice(b"\r\nafter the nuls\r\n");
    vec![
        Case::new(
            "nul_in_headers",
            format!(
                "Fr\0om: Pat\0 <pat\0@example.com>\r\nSub\0ject: nul\0subject\r\nTo: info@hottubman.ca\0\r\n\r\n{NEEDLE}\r\n"
            ),
            Some(NEEDLE),
        ),
        Case::new(
            "nul_in_body",
            simple("nul-body", "", format!("{NEEDLE}\0with\0nuls\0").as_bytes()),
            Some("price quote"),
        ),
        Case::new("nul_run_in_body", simple("nul-run", "", &body_nuls), Some(NEEDLE)),
        Case::new(
            "nul_in_boundary",
            format!(
                "{}Content-Type: multipart/mixed; boundary=\"a\0b\"\r\n\r\n--a\0b\r\nContent-Type: text/plain\r\n\r\n{NEEDLE}\r\n--a\0b--\r\n",
                head("nul-boundary", "nul boundary")
            ),
            Some(NEEDLE),
        ),
        Case::new("only_nuls", vec![0u8; 64 * 1024], None),
    ]
}

fn utf16(text: &str, le: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(if le { &[0xff, 0xfe] } else { &[0xfe, 0xff] });
    }
    for u in text.encode_utf16() {
        out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
    }
    out
}

/// UTF-16 text parts: both byte orders, with and without a BOM, raw and base64.
pub fn utf16_parts() -> Vec<Case> {
    let mut out = Vec::new();
    for (le, bom, charset, expect) in [
        (true, true, "utf-16", Some(NEEDLE)),
        (false, true, "utf-16", Some(NEEDLE)),
        (true, false, "utf-16le", Some(NEEDLE)),
        (false, false, "utf-16be", Some(NEEDLE)),
        // Without a BOM, RFC 2781 says big-endian; Windows writes little-endian. The parser
        // guesses one; the view must read both.
        (false, false, "utf-16", Some(NEEDLE)),
        (true, false, "utf-16", Some(NEEDLE)),
        // The BOM says one order, the label the other.
        (true, true, "utf-16be", Some(NEEDLE)),
    ] {
        let body = utf16(&format!("{NEEDLE}\r\n"), le, bom);
        let order = if le { "le" } else { "be" };
        let b = if bom { "bom" } else { "nobom" };
        let ct = format!("Content-Type: text/plain; charset=\"{charset}\"\r\n");
        out.push(Case::new(
            format!("utf16_{order}_{b}_as_{charset}_8bit"),
            simple("utf16", &ct, &body),
            expect,
        ));
        out.push(Case::new(
            format!("utf16_{order}_{b}_as_{charset}_base64"),
            simple(
                "utf16",
                &format!("{ct}Content-Transfer-Encoding: base64\r\n"),
                b64_lines(&body).as_bytes(),
            ),
            expect,
        ));
    }
    // An odd number of bytes, and a UTF-16 HTML part.
    let mut odd = utf16(NEEDLE, true, true);
    odd.push(b'!');
    out.push(Case::new(
        "utf16_odd_length",
        simple(
            "utf16-odd",
            "Content-Type: text/plain; charset=utf-16\r\n",
            &odd,
        ),
        Some(NEEDLE),
    ));
    out.push(Case::new(
        "utf16_html",
        simple(
            "utf16-html",
            "Content-Type: text/html; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n",
            b64_lines(&utf16(&format!("<p>{NEEDLE}</p>"), true, true)).as_bytes(),
        ),
        Some(NEEDLE),
    ));
    out
}

/// Charsets that are unknown or lie about the bytes.
pub fn lying_charsets() -> Vec<Case> {
    let utf8 = format!("Café crème — {NEEDLE} ✓\r\n");
    let latin1: Vec<u8> = "Café crème, {NEEDLE}"
        .replace("{NEEDLE}", NEEDLE)
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    let ct = |cs: &str| format!("Content-Type: text/plain; charset={cs}\r\n");
    vec![
        Case::new(
            "declared_latin1_but_utf8",
            simple("lie1", &ct("iso-8859-1"), utf8.as_bytes()),
            Some(NEEDLE),
        ),
        Case::new(
            "declared_utf8_but_latin1",
            simple("lie2", &ct("utf-8"), &latin1),
            Some(NEEDLE),
        ),
        Case::new(
            "charset_x_unknown",
            simple("lie3", &ct("\"x-unknown\""), utf8.as_bytes()),
            Some(NEEDLE),
        ),
        Case::new(
            "charset_empty",
            simple("lie4", &ct("\"\""), &latin1),
            Some(NEEDLE),
        ),
        Case::new(
            "charset_10kb_name",
            simple("lie5", &ct(&"x".repeat(10_000)), utf8.as_bytes()),
            Some(NEEDLE),
        ),
        Case::new(
            "charset_utf7_broken",
            simple("lie6", &ct("utf-7"), format!("{NEEDLE} +AOk- +ZZZ&-- +").as_bytes()),
            Some("price quote"),
        ),
        Case::new(
            "charset_gb2312_random_bytes",
            simple(
                "lie7",
                &ct("gb2312"),
                &[NEEDLE.as_bytes(), &[0xb0, 0xa1, 0xff, 0xfe, 0x81, 0x30][..]].concat(),
            ),
            Some(NEEDLE),
        ),
        Case::new(
            "charset_iso2022jp_broken_escapes",
            simple(
                "lie8",
                &ct("iso-2022-jp"),
                &[NEEDLE.as_bytes(), b"\x1b$B\x30\x21\x1b(\x1b$\x1b"].concat(),
            ),
            Some(NEEDLE),
        ),
        Case::new(
            "invalid_utf8_everywhere",
            [
                &b"Subject: \xff\xfe\xc3\x28 quote\r\nFrom: \xe2\x82 <pat@example.com>\r\n\r\n"[..],
                NEEDLE.as_bytes(),
                b" \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf\r\n",
            ]
            .concat(),
            Some(NEEDLE),
        ),
        Case::new(
            "base64_utf8_declared_ascii_html",
            simple(
                "lie9",
                "Content-Type: text/html; charset=us-ascii\r\nContent-Transfer-Encoding: base64\r\n",
                b64_lines(format!("<p>Caf\u{e9} — {NEEDLE}</p>").as_bytes()).as_bytes(),
            ),
            Some(NEEDLE),
        ),
    ]
}

/// Messages with no header, junk before the header, or no body.
pub fn header_shapes() -> Vec<Case> {
    vec![
        Case::new("empty", Vec::new(), None),
        Case::new("no_headers_at_all", format!("{NEEDLE}\r\n"), Some(NEEDLE)),
        Case::new(
            "blank_line_then_body",
            format!("\r\n{NEEDLE}\r\n"),
            Some(NEEDLE),
        ),
        Case::new("only_newlines", "\r\n".repeat(50_000), None),
        Case::new(
            "utf8_bom_before_headers",
            [&b"\xef\xbb\xbf"[..], &simple("bom", "", NEEDLE.as_bytes())].concat(),
            Some(NEEDLE),
        ),
        Case::new(
            "utf16_bom_before_headers",
            [&b"\xff\xfe"[..], &simple("bom16", "", NEEDLE.as_bytes())].concat(),
            Some(NEEDLE),
        ),
        Case::new(
            "blank_lines_before_headers",
            [
                &b"\r\n\r\n\n\r\n"[..],
                &simple("blank", "", NEEDLE.as_bytes()),
            ]
            .concat(),
            Some(NEEDLE),
        ),
        Case::new(
            "whitespace_line_before_headers",
            [&b"   \r\n\t\r\n"[..], &simple("ws", "", NEEDLE.as_bytes())].concat(),
            Some(NEEDLE),
        ),
        Case::new(
            "headers_without_body_or_blank_line",
            head("nobody", "quote for a new hot tub")
                .trim_end()
                .to_string(),
            Some("quote for a new hot tub"),
        ),
        Case::new(
            "header_without_colon",
            format!("This is not a header\r\nSubject: after junk\r\n\r\n{NEEDLE}\r\n"),
            Some(NEEDLE),
        ),
        Case::new(
            "10kb_header_name",
            format!(
                "{}: value\r\nSubject: x\r\n\r\n{NEEDLE}\r\n",
                "X".repeat(10_000)
            ),
            Some(NEEDLE),
        ),
        Case::new(
            "subject_repeated_3000_times",
            format!("{}\r\n{NEEDLE}\r\n", "Subject: again\r\n".repeat(3_000)),
            Some(NEEDLE),
        ),
        // Past the structure budget: the body is out of reach by design.
        Case::new(
            "subject_repeated_10000_times",
            format!("{}\r\n{NEEDLE}\r\n", "Subject: again\r\n".repeat(10_000)),
            None,
        ),
        Case::new(
            "mbox_from_line_first",
            [
                &b"From pat@example.com Tue Mar  3 10:15:00 2026\r\n"[..],
                &simple("mboxfrom", "", NEEDLE.as_bytes()),
            ]
            .concat(),
            Some(NEEDLE),
        ),
    ]
}

/// CR, LF and CRLF mixed, in the header and at boundaries; a CR-only message.
pub fn line_endings() -> Vec<Case> {
    let mixed = format!(
        "From: Pat <pat@example.com>\rTo: info@hottubman.ca\nSubject: mixed\r\n\
         Content-Type: multipart/alternative; boundary=\"m\"\n\r\n--m\r\
         Content-Type: text/plain\n\n{NEEDLE}\r\r\n--m\nContent-Type: text/html\r\n\r\n<p>html</p>\n\r--m--\r"
    );
    let cr_only = simple("cr", "", format!("{NEEDLE}\rsecond line\r").as_bytes())
        .into_iter()
        .filter(|&b| b != b'\n')
        .collect::<Vec<u8>>();
    let lfcr = simple("lfcr", "", format!("{NEEDLE}\n\r").as_bytes())
        .iter()
        .flat_map(|&b| {
            if b == b'\n' {
                vec![b'\n', b'\r']
            } else {
                vec![b]
            }
        })
        .collect::<Vec<u8>>();
    vec![
        Case::new("mixed_line_endings", mixed, Some(NEEDLE)),
        Case::new("cr_only_line_endings", cr_only, None),
        Case::new("lfcr_line_endings", lfcr, Some(NEEDLE)),
    ]
}

/// Boundaries that are missing, unterminated, misplaced, empty or huge.
pub fn broken_boundaries() -> Vec<Case> {
    let h = |name: &str, ct: &str| format!("{}Content-Type: {ct}\r\n\r\n", head(name, name));
    let part = format!("Content-Type: text/plain\r\n\r\n{NEEDLE}\r\n");
    let long_b = "L".repeat(10_000);
    vec![
        Case::new(
            "boundary_never_appears",
            format!("{}{NEEDLE}\r\n", h("b1", "multipart/mixed; boundary=\"nowhere\"")),
            Some(NEEDLE),
        ),
        Case::new(
            "boundary_unterminated",
            format!("{}--u\r\n{part}--u\r\nContent-Type: text/plain\r\n\r\nmore", h("b2", "multipart/mixed; boundary=u")),
            Some(NEEDLE),
        ),
        Case::new(
            "boundary_closed_before_opened",
            format!("{}--c--\r\n--c\r\n{part}", h("b3", "multipart/mixed; boundary=c")),
            None,
        ),
        Case::new(
            "boundary_empty",
            format!("{}--\r\n{part}----\r\n", h("b4", "multipart/mixed; boundary=\"\"")),
            None,
        ),
        Case::new(
            "boundary_missing_attribute",
            format!("{}--x\r\n{part}--x--\r\n", h("b5", "multipart/mixed")),
            Some(NEEDLE),
        ),
        Case::new(
            "boundary_10kb",
            format!("{}--{long_b}\r\n{part}--{long_b}--\r\n", h("b6", &format!("multipart/mixed; boundary=\"{long_b}\""))),
            Some(NEEDLE),
        ),
        Case::new(
            "boundary_all_dashes",
            format!("{}------\r\n{part}--------\r\n", h("b7", "multipart/mixed; boundary=\"----\"")),
            None,
        ),
        Case::new(
            "boundary_with_trailing_dashes",
            format!("{}--a--\r\n{part}--a----\r\n", h("b8", "multipart/mixed; boundary=\"a--\"")),
            None,
        ),
        Case::new(
            "two_content_types",
            format!(
                "{}Content-Type: multipart/mixed; boundary=two\r\n\r\n--one\r\n{part}--two\r\n{part}--one--\r\n",
                head("b9", "two content types").replace("MIME-Version: 1.0\r\n", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=one\r\n")
            ),
            Some(NEEDLE),
        ),
        Case::new(
            "boundary_inside_a_text_line",
            format!("{}--z\r\nContent-Type: text/plain\r\n\r\n{NEEDLE} and --z inside a line\r\n--z--\r\n", h("b10", "multipart/mixed; boundary=z")),
            Some(NEEDLE),
        ),
        Case::new(
            "multipart_without_parts_only_preamble",
            format!("{}preamble {NEEDLE}\r\n--e--\r\nepilogue\r\n", h("b11", "multipart/mixed; boundary=e")),
            None,
        ),
    ]
}

/// Boundaries that occur inside base64 data (as a substring, and after a stray "--").
pub fn boundary_in_base64() -> Vec<Case> {
    let data: Vec<u8> = (0..6000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut enc = b64_lines(&data);
    // The boundary is a run that occurs in the base64 text itself.
    let boundary = enc[152..160].to_string();
    let h = |name: &str, b: &str| {
        format!(
            "{}Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\nContent-Type: text/plain\r\n\r\n{NEEDLE}\r\n",
            head(name, name)
        )
    };
    let as_substring = format!(
        "{}--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{enc}--{boundary}--\r\n",
        h("bb1", &boundary)
    );
    // A stray "--" turns the substring into a delimiter in the middle of a base64 line.
    enc.insert_str(160 - boundary.len(), "--");
    let after_dashes = format!(
        "{}--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{enc}--{boundary}--\r\n",
        h("bb2", &boundary)
    );
    // The text part itself is base64 and contains the boundary after "--".
    let text_b = "U0dW";
    let inner = format!(
        "{}Content-Type: multipart/mixed; boundary=\"{text_b}\"\r\n\r\n--{text_b}\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--{text_b}SGVsbG8=\r\n--{text_b}--\r\n",
        head("bb3", "bb3"),
        b64_lines(NEEDLE.as_bytes())
    );
    vec![
        Case::new("boundary_substring_of_base64", as_substring, Some(NEEDLE)),
        Case::new(
            "boundary_after_dashes_in_base64",
            after_dashes,
            Some(NEEDLE),
        ),
        Case::new("boundary_glued_to_base64_text", inner, Some(NEEDLE)),
    ]
}

/// Truncated or invalid base64 and quoted-printable.
pub fn broken_transfer_encodings() -> Vec<Case> {
    let full = b64(format!("{NEEDLE}. More text follows here.").as_bytes());
    let cte = |e: &str| {
        format!("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {e}\r\n")
    };
    let long_b64_line = b64(&NEEDLE.repeat(20_000).into_bytes());
    let mut qp_long = String::from(NEEDLE);
    for i in 0..20_000 {
        qp_long.push_str(&format!(" word{i}=\r\n"));
    }
    vec![
        Case::new(
            "base64_cut_mid_quantum",
            simple("t1", &cte("base64"), &full.as_bytes()[..full.len() - 3]),
            Some(NEEDLE),
        ),
        Case::new(
            "base64_missing_padding",
            simple("t2", &cte("base64"), full.trim_end_matches('=').as_bytes()),
            Some(NEEDLE),
        ),
        Case::new(
            "base64_invalid_characters",
            simple(
                "t3",
                &cte("base64"),
                format!("{}!!**%%{}", &full[..40], &full[40..]).as_bytes(),
            ),
            None,
        ),
        Case::new("base64_one_char", simple("t4", &cte("base64"), b"Q"), None),
        Case::new(
            "base64_only_padding",
            simple("t5", &cte("base64"), "====\r\n".repeat(1000).as_bytes()),
            None,
        ),
        Case::new(
            "base64_2mb_single_line",
            simple("t6", &cte("base64"), long_b64_line.as_bytes()),
            Some(NEEDLE),
        ),
        Case::new(
            "qp_equals_at_eof",
            simple(
                "t7",
                &cte("quoted-printable"),
                format!("{NEEDLE} caf=C3=A9=").as_bytes(),
            ),
            Some(NEEDLE),
        ),
        Case::new(
            "qp_invalid_hex",
            simple(
                "t8",
                &cte("quoted-printable"),
                format!("{NEEDLE} =ZZ =4 =\r").as_bytes(),
            ),
            Some(NEEDLE),
        ),
        Case::new(
            "qp_soft_break_storm",
            simple("t9", &cte("quoted-printable"), qp_long.as_bytes()),
            Some(NEEDLE),
        ),
        Case::new(
            "qp_truncated_utf8_sequence",
            simple(
                "t10",
                &cte("quoted-printable"),
                format!("{NEEDLE} =E2=82").as_bytes(),
            ),
            Some(NEEDLE),
        ),
        Case::new(
            "unknown_transfer_encoding",
            simple("t11", &cte("x-uuencode-ish"), NEEDLE.as_bytes()),
            Some(NEEDLE),
        ),
        Case::new(
            "base64_truncated_in_multipart",
            format!(
                "{}Content-Type: multipart/mixed; boundary=t\r\n\r\n--t\r\n{}\r\n{}\r\n--t--\r\n",
                head("t12", "t12"),
                cte("base64"),
                &full[..full.len() - 5]
            ),
            Some("price quote"),
        ),
    ]
}

/// message/rfc822 inside message/rfc822, `depth` times, the text at the bottom.
pub fn nested_rfc822(depth: usize) -> Vec<u8> {
    let mut s = head("rfc822", "forwarded");
    for i in 0..depth {
        s.push_str(&format!(
            "Content-Type: message/rfc822\r\n\r\nSubject: level {i}\r\nFrom: l{i}@example.com\r\n"
        ));
    }
    s.push_str(&format!("Content-Type: text/plain\r\n\r\n{NEEDLE}\r\n"));
    s.into_bytes()
}

/// The smallest possible forwarding chain, LF only, as deep as fits in `bytes`: the
/// deepest nesting a parser can be handed within the parse limit.
pub fn minimal_rfc822_chain(bytes: usize) -> Vec<u8> {
    let level = "Content-Type: message/rfc822\n\n";
    let mut s = String::from("Subject: chain\n");
    while s.len() + level.len() + NEEDLE.len() + 40 < bytes {
        s.push_str(level);
    }
    s.push_str(&format!("Content-Type: text/plain\n\n{NEEDLE}\n"));
    s.into_bytes()
}

/// One base64-encoded message/rfc822 part whose decoded content is a forwarding chain
/// `depth` deep: the parser opens encoded messages itself, so the chain is invisible in
/// the raw bytes.
pub fn rfc822_chain_inside_base64(depth: usize) -> Vec<u8> {
    let mut inner = String::from("Subject: inner\n");
    for _ in 0..depth {
        inner.push_str("Content-Type: message/rfc822\n\n");
    }
    inner.push_str(&format!("Content-Type: text/plain\n\n{NEEDLE}\n"));
    let mut raw = head("chain-b64", "forwarded");
    raw.push_str("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    raw.push_str(&b64_lines(inner.as_bytes()));
    raw.into_bytes()
}

/// message/rfc822 inside multipart/mixed, alternating, `depth` times; each level opens with
/// a text part, so the outermost text is the needle.
pub fn nested_rfc822_in_multipart(depth: usize) -> Vec<u8> {
    let mut s = head("rfc822-mp", "forwarded chain");
    for i in 0..depth {
        let text = if i == 0 {
            NEEDLE.to_string()
        } else {
            format!("forward {i}")
        };
        s.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"f{i}\"\r\n\r\n--f{i}\r\nContent-Type: text/plain\r\n\r\n{text}\r\n--f{i}\r\nContent-Type: message/rfc822\r\n\r\nSubject: fwd {i}\r\n"
        ));
    }
    s.push_str("Content-Type: text/plain\r\n\r\nbottom\r\n");
    for i in (0..depth).rev() {
        s.push_str(&format!("--f{i}--\r\n"));
    }
    s.into_bytes()
}

/// message/rfc822 parts that are base64-encoded, nested `depth` times (mail-parser recurses
/// into encoded messages).
pub fn nested_rfc822_base64(depth: usize) -> Vec<u8> {
    let mut inner =
        format!("Subject: bottom\r\nContent-Type: text/plain\r\n\r\n{NEEDLE}\r\n").into_bytes();
    for i in 0..depth {
        inner = format!(
            "Subject: level {i}\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            b64_lines(&inner)
        )
        .into_bytes();
    }
    let mut raw = head("rfc822-b64", "encoded forward").into_bytes();
    raw.extend_from_slice(&inner[inner.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1)..]);
    raw
}

fn html_case(name: &str, html: &str, expect: Option<&'static str>) -> Case {
    Case::new(
        name,
        simple(
            name,
            "Content-Type: text/html; charset=utf-8\r\n",
            html.as_bytes(),
        ),
        expect,
    )
}

/// HTML bombs: deep nesting, unclosed tags, entity runs, attribute storms.
pub fn html_bombs(n: usize) -> Vec<Case> {
    let nest = |open: &str, close: &str| {
        format!(
            "<html><body>{}<p>{NEEDLE}</p>{}</body></html>",
            open.repeat(n),
            close.repeat(n)
        )
    };
    let mut attrs = format!("{NEEDLE}<div");
    for i in 0..n {
        attrs.push_str(&format!(" a{i}=\"v\""));
    }
    attrs.push_str(">after</div>");
    vec![
        html_case("html_nested_divs", &nest("<div>", "</div>"), Some(NEEDLE)),
        html_case(
            "html_nested_blockquotes",
            &format!("<p>{NEEDLE}</p>{}", nest("<blockquote>x", "</blockquote>")),
            Some(NEEDLE),
        ),
        html_case(
            "html_nested_tables",
            &format!("{NEEDLE}{}", nest("<table><tr><td>", "</td></tr></table>")),
            Some(NEEDLE),
        ),
        html_case("html_nested_pre", &nest("<pre>", "</pre>"), Some(NEEDLE)),
        html_case(
            "html_unclosed_inline_tags",
            &format!("<b>{NEEDLE}{}the end", "<b><i><font>".repeat(n)),
            Some(NEEDLE),
        ),
        html_case(
            "html_unclosed_then_closed_at_bottom",
            &format!("<span>{}{NEEDLE}{}", "<div>".repeat(n), "</span>".repeat(n)),
            Some(NEEDLE),
        ),
        html_case(
            "html_stray_end_tags",
            &format!("{NEEDLE}{}", "</div></blockquote></p>".repeat(n)),
            Some(NEEDLE),
        ),
        html_case(
            "html_hidden_nesting",
            &format!(
                "<p>{NEEDLE}</p>{}",
                "<div style=\"display:none\">x".repeat(n)
            ),
            Some(NEEDLE),
        ),
        html_case(
            "html_br_storm",
            &format!("{NEEDLE}{}", "<br>".repeat(n * 2)),
            Some(NEEDLE),
        ),
        html_case(
            "html_li_storm",
            &format!("{NEEDLE}<ul>{}", "<li>i".repeat(n)),
            Some(NEEDLE),
        ),
        html_case(
            "html_amp_entity_run",
            &format!("{NEEDLE} {}", "&amp;".repeat(n * 2)),
            Some(NEEDLE),
        ),
        html_case(
            "html_numeric_entity_run",
            &format!("{NEEDLE} {}", "&#x1F6C1;&#0;&#99999999999;".repeat(n)),
            Some(NEEDLE),
        ),
        html_case(
            "html_unknown_entity_run",
            &format!("{NEEDLE} {}", "&bogus".repeat(n)),
            Some(NEEDLE),
        ),
        html_case(
            "html_nbsp_run",
            &format!("{NEEDLE}{}", "&nbsp;".repeat(n * 2)),
            Some(NEEDLE),
        ),
        html_case(
            "html_ampersand_then_long_word",
            &format!("{NEEDLE} &{}", "a".repeat(n * 5)),
            Some(NEEDLE),
        ),
        html_case(
            "html_long_numeric_reference",
            &format!("{NEEDLE} &#{}", "9".repeat(n * 5)),
            Some(NEEDLE),
        ),
        html_case("html_attribute_storm", &attrs, Some(NEEDLE)),
        html_case(
            "html_huge_attribute_value",
            &format!("<a href=\"{}\">{NEEDLE}</a>", "x".repeat(n * 5)),
            Some(NEEDLE),
        ),
        html_case(
            "html_unterminated_comment",
            &format!("{NEEDLE}<!-- {}", "<p>hidden</p>".repeat(n / 10)),
            Some(NEEDLE),
        ),
        html_case(
            "html_unterminated_script",
            &format!("{NEEDLE}<script>{}", "</scrip".repeat(n / 10)),
            Some(NEEDLE),
        ),
        html_case(
            "html_unterminated_attribute_quotes",
            &format!("{NEEDLE}{}", "<a title=\"x>".repeat(n / 10)),
            Some(NEEDLE),
        ),
        html_case(
            "html_lt_storm",
            &format!("{NEEDLE} {}", "< <! </ <? ".repeat(n / 2)),
            Some(NEEDLE),
        ),
        html_case(
            "html_single_10mb_line",
            &format!("<p>{NEEDLE} {}</p>", "word ".repeat(2_000_000)),
            Some(NEEDLE),
        ),
    ]
}

/// A 10 MB body on one line (no line break at all).
pub fn single_line_body(bytes: usize) -> Vec<u8> {
    let mut raw = head("one-line", "one line").into_bytes();
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(NEEDLE.as_bytes());
    raw.push(b' ');
    let word = b"lorem ";
    while raw.len() < bytes {
        raw.extend_from_slice(word);
    }
    raw
}

/// Writes a message with a text part then a base64 attachment of `attachment_bytes`
/// (encoded size), streaming, so the test itself never holds it whole.
pub fn write_big_attachment(w: &mut impl Write, attachment_bytes: usize) -> io::Result<()> {
    write!(
        w,
        "{}Content-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\n{NEEDLE}\r\n\
         --big\r\nContent-Type: application/octet-stream; name=\"backup.bin\"\r\n\
         Content-Disposition: attachment; filename=\"backup.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        head("big-attachment", "quote with attachment")
    )?;
    let line: String = b64(&(0..57u8).collect::<Vec<u8>>()) + "\r\n";
    let mut written = 0;
    while written < attachment_bytes {
        w.write_all(line.as_bytes())?;
        written += line.len();
    }
    w.write_all(b"--big--\r\n")?;
    w.flush()
}

/// Writes `raw` to `path` through a temporary name, so a concurrent reader never sees a
/// partial file.
pub fn write_file(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut w = io::BufWriter::new(std::fs::File::create(&tmp)?);
    write(&mut w)?;
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, path)
}

/// A text part *after* an attachment of `attachment_bytes`: beyond the parse limit, the text
/// is out of reach and the view must say it was truncated.
pub fn text_after_attachment(attachment_bytes: usize) -> Vec<u8> {
    let mut s = format!(
        "{}Content-Type: multipart/mixed; boundary=\"late\"\r\n\r\n--late\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        head("late-text", "see attached")
    );
    let line: String = b64(&[7u8; 57]) + "\r\n";
    while s.len() < attachment_bytes {
        s.push_str(&line);
    }
    s.push_str(&format!(
        "--late\r\nContent-Type: text/plain\r\n\r\n{NEEDLE}\r\n--late--\r\n"
    ));
    s.into_bytes()
}

/// A multipart/alternative whose text part is longer than the parse limit, so the view
/// sees it unterminated.
pub fn text_part_cut(bytes: usize) -> Vec<u8> {
    let mut s = format!(
        "{}Content-Type: multipart/alternative; boundary=\"cut\"\r\n\r\n--cut\r\nContent-Type: text/plain\r\n\r\n{NEEDLE}\r\n",
        head("cut", "long text")
    );
    while s.len() < bytes {
        s.push_str("More details about the spa follow on this line.\r\n");
    }
    s.push_str("--cut\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--cut--\r\n");
    s.into_bytes()
}

/// A multipart/alternative whose base64 text part is longer than the parse limit.
pub fn base64_text_part_cut(bytes: usize) -> Vec<u8> {
    let mut text = format!("{NEEDLE}\r\n");
    while text.len() * 4 / 3 < bytes {
        text.push_str("Caf\u{e9} details about the spa follow on this line.\r\n");
    }
    format!(
        "{}Content-Type: multipart/alternative; boundary=\"cut\"\r\n\r\n--cut\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--cut\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--cut--\r\n",
        head("cut64", "long text"),
        b64_lines(text.as_bytes())
    )
    .into_bytes()
}

/// Bodies aimed at the quote/signature splitter, which works line by line: valedictions,
/// Outlook header blocks, attributions and quote markers by the thousand, and blank-line
/// runs between them.
pub fn split_storms() -> Vec<Case> {
    let body = |name: &str, unit: &str, n: usize| {
        Case::new(
            name,
            simple(
                name,
                "",
                format!("{NEEDLE}\r\n{}", unit.repeat(n)).as_bytes(),
            ),
            Some(NEEDLE),
        )
    };
    vec![
        body("split_valediction_storm", "Thanks,\r\n\r\n\r\n", 30_000),
        body(
            "split_valediction_blank_runs",
            &format!("Best regards,\r\n{}", "\r\n".repeat(5_000)),
            40,
        ),
        body(
            "split_outlook_header_storm",
            "From: a\r\nSent: b\r\nTo: c\r\nSubject: d\r\n",
            10_000,
        ),
        body(
            "split_from_lines_without_blocks",
            "From: someone\r\n",
            30_000,
        ),
        body("split_attribution_storm", "On Mon, Bob wrote:\r\n", 20_000),
        body(
            "split_wrapped_attribution_storm",
            "On Mon, Mar 2, 2026 at 9:14 AM Bob\r\n",
            20_000,
        ),
        body(
            "split_quote_storm",
            &format!("{}\r\n", ">".repeat(200)),
            2_000,
        ),
        body(
            "split_signature_markers",
            "-- \r\nSent from my iPhone\r\n",
            20_000,
        ),
    ]
}

/// Every in-memory hostile message (the 50 MB one is written to a file separately).
pub fn cases() -> Vec<Case> {
    let mut out = vec![
        Case::new(
            "nested_multipart_128_closed",
            nested_multipart(128, true),
            Some(NEEDLE),
        ),
        Case::new(
            "nested_multipart_1000_closed",
            nested_multipart(1_000, true),
            Some(NEEDLE),
        ),
        Case::new(
            "nested_multipart_1000_unclosed",
            nested_multipart(1_000, false),
            Some(NEEDLE),
        ),
        // Past the structure budget: the text at the bottom is out of reach by design.
        Case::new(
            "nested_multipart_1500_closed",
            nested_multipart(1_500, true),
            None,
        ),
        Case::new(
            "nested_multipart_15000_unclosed",
            nested_multipart(15_000, false),
            None,
        ),
        Case::new(
            "nested_same_boundary_2000",
            nested_same_boundary(2_000),
            None,
        ),
        Case::new(
            "nested_prefix_boundaries_300",
            nested_prefix_boundaries(300),
            None,
        ),
        Case::new(
            "many_parts_5000_text",
            many_parts(5_000, "mixed", false),
            Some(NEEDLE),
        ),
        Case::new(
            "many_parts_5000_attachments",
            many_parts(5_000, "mixed", true),
            Some(NEEDLE),
        ),
        Case::new(
            "many_parts_5000_alternative",
            many_parts(5_000, "alternative", false),
            Some(NEEDLE),
        ),
        Case::new(
            "many_parts_20000_text",
            many_parts(20_000, "mixed", false),
            Some(NEEDLE),
        ),
        Case::new(
            "header_line_100kb_subject",
            long_header_line(100_000, "Subject"),
            Some(NEEDLE),
        ),
        Case::new(
            "header_line_100kb_unknown",
            long_header_line(100_000, "X-Long"),
            Some(NEEDLE),
        ),
        Case::new(
            "header_line_100kb_from",
            long_header_line(100_000, "From"),
            Some(NEEDLE),
        ),
        Case::new("address_storm_5000", address_storm(5_000), Some(NEEDLE)),
        Case::new("header_count_storm_20000", header_count_storm(20_000), None),
        Case::new("parameter_storm_3000", parameter_storm(3_000), None),
        Case::new(
            "encoded_word_storm_5000",
            encoded_word_storm(5_000),
            Some(NEEDLE),
        ),
        Case::new("nested_rfc822_100", nested_rfc822(100), None),
        Case::new("nested_rfc822_2000", nested_rfc822(2_000), None),
        Case::new("nested_rfc822_20000", nested_rfc822(20_000), None),
        Case::new(
            "nested_rfc822_in_multipart_500",
            nested_rfc822_in_multipart(500),
            Some(NEEDLE),
        ),
        Case::new(
            "nested_rfc822_base64_8",
            nested_rfc822_base64(8),
            Some(NEEDLE),
        ),
        Case::new(
            "nested_rfc822_3_text_at_bottom",
            nested_rfc822(3),
            Some(NEEDLE),
        ),
        Case::new(
            "minimal_rfc822_chain_1mib",
            minimal_rfc822_chain(1024 * 1024),
            None,
        ),
        Case::new(
            "rfc822_chain_3000_inside_base64",
            rfc822_chain_inside_base64(3_000),
            None,
        ),
        Case::new(
            "rfc822_chain_20000_inside_base64",
            rfc822_chain_inside_base64(20_000),
            None,
        ),
        Case::new(
            "single_line_body_10mb",
            single_line_body(10 * 1024 * 1024),
            Some(NEEDLE),
        ),
        Case::new(
            "text_after_2mb_attachment",
            text_after_attachment(2 * 1024 * 1024),
            None,
        ),
        Case::new(
            "text_part_cut_by_parse_limit",
            text_part_cut(2 * 1024 * 1024),
            Some(NEEDLE),
        ),
        Case::new(
            "base64_text_part_cut_by_parse_limit",
            base64_text_part_cut(2 * 1024 * 1024),
            Some(NEEDLE),
        ),
    ];
    out.extend(nul_bytes());
    out.extend(utf16_parts());
    out.extend(lying_charsets());
    out.extend(header_shapes());
    out.extend(line_endings());
    out.extend(broken_boundaries());
    out.extend(boundary_in_base64());
    out.extend(broken_transfer_encodings());
    out.extend(html_bombs(100_000));
    out.extend(split_storms());
    out
}

/// Fragments of mail structure, for property tests that glue random sequences of them
/// together: delimiters, MIME and address headers, encoded words, base64 and
/// quoted-printable lines, nesting declarations, and every kind of line ending.
pub const FRAGMENTS: &[&str] = &[
    "\r\n",
    "\n",
    "\r",
    "\r\n\r\n",
    "--a\r\n",
    "--a--\r\n",
    "--b\n",
    "--",
    "Content-Type: multipart/mixed; boundary=a\r\n",
    "Content-Type: multipart/alternative; boundary=\"b\"\n",
    "Content-Type: multipart/digest; boundary=a\r\n",
    "Content-Type: message/rfc822\r\n",
    "Content-Type: message/global\n",
    "Content-Type: text/plain; charset=utf-16\r\n",
    "Content-Type: text/html; charset=x-unknown\r\n",
    "Content-Type: text/plain; charset*0*=utf-8''%41; charset*1=b\r\n",
    "Content-Disposition: attachment; filename*=utf-8''%E2%82\r\n",
    "Content-Transfer-Encoding: base64\r\n",
    "Content-Transfer-Encoding: quoted-printable\r\n",
    "From: =?utf-8?B?UGF0?= <pat@example.com>\r\n",
    "To: a@b, (c) \"d\\\"\" <e@f>, g: h@i;\r\n",
    "Subject: =?iso-8859-1?Q?caf=E9?= =?utf-8?B?!!?=\r\n",
    "References: <a@b> <<c>\r\n",
    " folded continuation\r\n",
    "\tfolded=?utf-8?q?x?=\r\n",
    "SGVsbG8gd29ybGQ=\r\n",
    "SGVsbG8\r\n",
    "caf=C3=A9=\r\n",
    "=ZZ=\r\n",
    "<p>quote <b>hot tub</p></blockquote>&amp;&#x1F6C1;&bogus\r\n",
    "> quoted\r\n",
    "On Mon, Bob wrote:\r\n",
    "-- \r\n",
    "\u{feff}",
    "\0",
    "\u{fffd}\u{1F6C1}",
    "I would like a quote for a new hot tub. ",
];
