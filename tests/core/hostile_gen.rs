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

use base64::Engine as _;

/// The sentence hidden in most hostile messages; SALES words, so it steers the decision.
pub const NEEDLE: &str = "I would like a price quote for a new hot tub";

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
