//! The message view: what triage reads of a message, decoded and split.
//!
//! Built from raw RFC 5322 bytes with `mail-parser` (MIME, transfer encodings, charsets,
//! RFC 2047 words). Malformed mail still yields a view — in the worst case an empty
//! subject and the raw bytes as lossy text — because mail is data, never an error.
//!
//! Nothing recurses on the message's structure, and the parser is handed a budgeted
//! amount of structure: see [`prepare`] for what is done to the bytes before the parser
//! sees them, and why. What the view had to work around is
//! listed in [`MessageView::repairs`].

pub mod html;
pub mod prepare;
pub mod split;

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use mail_parser::{
    Address, HeaderName, HeaderValue, Message, MessageParser, MimeHeaders, PartType,
};

pub use split::Split;

/// Default cap on the text triage scans (SPEC §3 `max_scan_bytes`).
pub const DEFAULT_MAX_SCAN_BYTES: usize = 256 * 1024;

/// Most raw bytes of one message that are parsed: attachments follow the text in real
/// mail, so parsing more than a few times the scan cap only costs memory. Readers may stop
/// reading a message here (see [`MessageView::parse_prefix`]).
pub fn parse_limit(max_scan_bytes: usize) -> usize {
    max_scan_bytes.saturating_mul(4).max(1024 * 1024)
}

/// How many forwarded messages deep the view looks for text when a message has none.
pub const MAX_FORWARD_DEPTH: usize = 8;

/// Damage found in a message and how the view worked around it, for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// A Content-Type, Content-Disposition, address or message-id field was absurdly long
    /// and was cut.
    LongField,
    /// The message holds more MIME parts or header fields than the parser is given: it
    /// was read up to there.
    TooManyParts,
    /// The message had no text of its own: the text of a message it forwards was read.
    ForwardedMessage,
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Repair::LongField => "an oversized header field was cut",
            Repair::TooManyParts => {
                "too many MIME parts or header fields: the message was read up to the limit"
            }
            Repair::ForwardedMessage => "no text of its own: the forwarded message's text was read",
        })
    }
}

/// A display name and address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    pub name: Option<String>,
    /// Lowercased and trimmed.
    pub address: String,
}

/// What triage reads of one message.
#[derive(Debug, Clone, Default)]
pub struct MessageView {
    pub message_id: Option<String>,
    pub subject: String,
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    /// The Date header with its own offset, when it parses.
    pub date: Option<DateTime<FixedOffset>>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub list_id: Option<String>,
    pub list_unsubscribe: bool,
    pub list_post: bool,
    pub precedence: Option<String>,
    pub auto_submitted: Option<String>,
    /// X-Autoreply / X-Autorespond present.
    pub x_autoreply: bool,
    /// Return-Path: <> (bounces and other automatic mail).
    pub null_return_path: bool,
    /// A delivery or disposition report (multipart/report).
    pub report: bool,
    /// The body as plain text (HTML converted when there was no plain part), capped.
    pub text: String,
    /// `text` split into new text, quoted text and signature.
    pub body: Split,
    /// The body came from HTML only.
    pub html_only: bool,
    /// The text was cut at the scan cap.
    pub truncated: bool,
    /// The bytes did not parse as a message; the view holds what could be salvaged.
    pub unparsed: bool,
    /// What was repaired or salvaged to get this view (empty for well-formed mail).
    pub repairs: Vec<Repair>,
    /// Size of the raw message in bytes.
    pub size: usize,
}

/// Most addresses kept per header (To, Cc, Reply-To).
pub const MAX_ADDRESSES: usize = 1000;

fn mailboxes(addr: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(addr) = addr else {
        return Vec::new();
    };
    addr.iter()
        .take(MAX_ADDRESSES)
        .filter_map(|a| {
            let address = a.address()?.trim().trim_matches(['<', '>']).to_lowercase();
            if address.is_empty() {
                return None;
            }
            let name = a
                .name()
                .map(|n| n.trim().trim_matches('"').trim().to_string())
                .filter(|n| !n.is_empty());
            Some(Mailbox { name, address })
        })
        .collect()
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

fn convert_date(d: &mail_parser::DateTime) -> Option<DateTime<FixedOffset>> {
    let secs = i32::from(d.tz_hour) * 3600 + i32::from(d.tz_minute) * 60;
    let offset = if d.tz_before_gmt {
        FixedOffset::west_opt(secs)?
    } else {
        FixedOffset::east_opt(secs)?
    };
    let date = NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))?;
    let naive = date.and_hms_opt(u32::from(d.hour), u32::from(d.minute), u32::from(d.second))?;
    offset.from_local_datetime(&naive).single()
}

fn header_raw<'a>(m: &'a Message<'_>, name: &'static str) -> Option<&'a str> {
    m.header_raw(name).map(str::trim).filter(|s| !s.is_empty())
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn cap(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

fn parser() -> MessageParser {
    MessageParser::new()
        .with_minimal_headers()
        .with_message_ids()
        .header_text(HeaderName::Subject)
        .default_header_raw()
}

impl MessageView {
    /// Builds the view of a raw message, scanning at most `max_scan_bytes` of its text.
    pub fn parse(raw: &[u8], max_scan_bytes: usize) -> MessageView {
        MessageView::parse_prefix(raw, raw.len(), max_scan_bytes)
    }

    /// Builds the view from the first bytes of a message of `size` bytes: readers need not
    /// hold more than [`parse_limit`] bytes of a message (bytes past it are ignored anyway).
    pub fn parse_prefix(prefix: &[u8], size: usize, max_scan_bytes: usize) -> MessageView {
        let size = size.max(prefix.len());
        let limit = parse_limit(max_scan_bytes);
        let input = prefix.get(..limit).unwrap_or(prefix);
        let mut repairs = Vec::new();
        let prepared = prepare::prepare(input, limit, &mut repairs);
        let mut view = match parser().parse(&prepared[..]) {
            Some(m) if !m.headers().is_empty() || m.text_body_count() > 0 => {
                let mut view = header_view(&m);
                let (body, forwarded) = match body_text(&m) {
                    Some(body) => (Some(body), None),
                    None => (None, forwarded_bytes(&m)),
                };
                drop(m);
                let body = body.or_else(|| {
                    let body = forwarded.and_then(|b| forwarded_text(b, limit))?;
                    repairs.push(Repair::ForwardedMessage);
                    Some(body)
                });
                if let Some((text, html_only)) = body {
                    view.text = text;
                    view.html_only = html_only;
                }
                view
            }
            _ => MessageView {
                text: String::from_utf8_lossy(input).into_owned(),
                unparsed: true,
                ..MessageView::default()
            },
        };
        view.size = size;
        view.truncated = cap(&mut view.text, max_scan_bytes)
            || input.len() < size
            || repairs.contains(&Repair::TooManyParts);
        view.repairs = repairs;
        view.body = split::split(&view.text);
        view
    }

    /// The sender's address, if any.
    pub fn from_address(&self) -> Option<&str> {
        self.from.as_ref().map(|m| m.address.as_str())
    }

    /// The sender's display name, if any.
    pub fn from_name(&self) -> Option<&str> {
        self.from.as_ref().and_then(|m| m.name.as_deref())
    }
}

/// The view's header fields (everything but the text).
fn header_view(m: &Message<'_>) -> MessageView {
    let content_type_report = m.root_part().content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    MessageView {
        message_id: m.message_id().map(|s| s.to_string()),
        subject: m.subject().unwrap_or_default().trim().to_string(),
        from: mailboxes(m.from()).into_iter().next(),
        to: mailboxes(m.to()),
        cc: mailboxes(m.cc()),
        reply_to: mailboxes(m.reply_to()),
        date: m.date().and_then(convert_date),
        in_reply_to: ids(m.in_reply_to()),
        references: ids(m.references()),
        list_id: header_raw(m, "List-Id").map(String::from),
        list_unsubscribe: header_raw(m, "List-Unsubscribe").is_some(),
        list_post: header_raw(m, "List-Post").is_some(),
        precedence: header_raw(m, "Precedence").map(|s| s.to_lowercase()),
        auto_submitted: header_raw(m, "Auto-Submitted").map(|s| s.to_lowercase()),
        x_autoreply: header_raw(m, "X-Autoreply").is_some()
            || header_raw(m, "X-Autorespond").is_some(),
        null_return_path: header_raw(m, "Return-Path").is_some_and(|r| r.replace(' ', "") == "<>"),
        report: content_type_report,
        ..MessageView::default()
    }
}

/// The body text of a parsed message and whether it came from HTML only.
fn body_text(m: &Message<'_>) -> Option<(String, bool)> {
    let mut text = String::new();
    let mut html_only = true;
    let mut any = false;
    for idx in m.text_body.iter().take(16) {
        let Some(part) = m.parts.get(*idx as usize) else {
            continue;
        };
        let piece = match &part.body {
            PartType::Text(t) => {
                html_only = false;
                t.to_string()
            }
            PartType::Html(h) => html::html_to_text(h),
            _ => continue,
        };
        any = true;
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&piece);
    }
    any.then_some((text, html_only))
}

/// The first part that holds a forwarded message (its bytes, decoded): the parser keeps
/// them opaque (see [`prepare`]).
fn forwarded_bytes(m: &Message<'_>) -> Option<Vec<u8>> {
    m.parts.iter().find_map(|p| {
        let forwarded = p.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct.subtype().is_some_and(|s| {
                    prepare::NEUTRALISED_MESSAGE_SUBTYPES
                        .iter()
                        .any(|n| s.eq_ignore_ascii_case(n))
                })
        });
        match &p.body {
            PartType::Binary(b) | PartType::InlineBinary(b) if forwarded => Some(b.to_vec()),
            PartType::Text(t) if forwarded => Some(t.as_bytes().to_vec()),
            _ => None,
        }
    })
}

/// The text of a forwarded message, looking through at most [`MAX_FORWARD_DEPTH`] levels
/// of forwarding, one parse at a time (never recursively).
fn forwarded_text(mut bytes: Vec<u8>, limit: usize) -> Option<(String, bool)> {
    for _ in 0..MAX_FORWARD_DEPTH {
        let prepared = prepare::prepare(&bytes, limit, &mut Vec::new());
        let m = parser().parse(&prepared[..])?;
        if let Some(body) = body_text(&m) {
            return Some(body);
        }
        let next = forwarded_bytes(&m)?;
        drop(m);
        drop(prepared);
        bytes = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_headers_and_splits_body() {
        let raw = b"From: =?UTF-8?Q?Zo=C3=AB_M=C3=BCller?= <Zoe@Example.COM>\r\nTo: info@hottubman.ca, Mark <mark@hottubman.ca>\r\nSubject: =?ISO-8859-1?Q?Caf=E9?= question\r\nDate: Tue, 3 Mar 2026 10:15:00 -0500\r\nMessage-ID: <abc@example.com>\r\nList-Id: <spa.lists.example.com>\r\n\r\nHi there\r\n\r\nOn Mon, Bob wrote:\r\n> old\r\n";
        let v = MessageView::parse(raw, DEFAULT_MAX_SCAN_BYTES);
        assert_eq!(v.subject, "Café question");
        assert_eq!(
            v.from,
            Some(Mailbox {
                name: Some("Zoë Müller".into()),
                address: "zoe@example.com".into()
            })
        );
        assert_eq!(v.to.len(), 2);
        assert_eq!(v.message_id.as_deref(), Some("abc@example.com"));
        assert_eq!(v.list_id.as_deref(), Some("<spa.lists.example.com>"));
        assert_eq!(v.body.new_text, "Hi there");
        assert_eq!(
            v.date.map(|d| d.to_rfc3339()),
            Some("2026-03-03T10:15:00-05:00".into())
        );
    }

    #[test]
    fn garbage_still_gives_a_view() {
        for raw in [
            &b""[..],
            b"\0\0\xff\xfe",
            b"just some words",
            b"::::\r\n\r\n",
        ] {
            let v = MessageView::parse(raw, DEFAULT_MAX_SCAN_BYTES);
            assert!(v.subject.len() < 100);
        }
    }

    #[test]
    fn text_is_capped() {
        let mut raw = b"Subject: big\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 10_000));
        let v = MessageView::parse(&raw, 1000);
        assert!(v.truncated);
        assert!(v.text.len() <= 1000);
    }
}
