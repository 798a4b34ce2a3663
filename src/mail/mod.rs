//! The message view: what triage reads of a message, decoded and split.
//!
//! Built from raw RFC 5322 bytes with `mail-parser` (MIME, transfer encodings, charsets,
//! RFC 2047 words). Malformed mail still yields a view — in the worst case an empty
//! subject and the raw bytes as lossy text — because mail is data, never an error.
//!
//! Bounded by construction: at most [`parse_limit`] bytes are parsed, the text is cut at
//! `max_scan_bytes` (HTML conversion stops there too), the subject at
//! [`MAX_SUBJECT_BYTES`]; nothing recurses on the message's structure (see [`prepare`]
//! for what is done to the bytes first, and why). When the structure hides the text —
//! an unterminated or misdeclared multipart, a message that only forwards another — the
//! view salvages the first text it can find and lists what it did in
//! [`MessageView::repairs`].

pub mod auth_results;
pub mod html;
pub mod prepare;
pub mod split;

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{
    Address, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

pub use split::Split;

/// FNV-1a over several byte strings, each followed by a separator byte (so `["ab", "c"]`
/// and `["a", "bc"]` differ): a stable 64-bit hash for fingerprints and versions, the
/// same on every machine and in every release.
pub fn hash_parts(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Default cap on the text triage scans (SPEC §3 `max_scan_bytes`).
pub const DEFAULT_MAX_SCAN_BYTES: usize = 256 * 1024;

/// Longest subject kept, in bytes (real subjects are far shorter; a megabyte-long one would
/// otherwise end up in every log line).
pub const MAX_SUBJECT_BYTES: usize = 4 * 1024;

/// How many forwarded messages deep the view looks for text when a message has none.
pub const MAX_FORWARD_DEPTH: usize = 8;

/// Most raw bytes of one message that are parsed: attachments follow the text in real
/// mail, so parsing more than a few times the scan cap only costs memory. Readers may stop
/// reading a message here (see [`MessageView::parse_prefix`]).
pub fn parse_limit(max_scan_bytes: usize) -> usize {
    max_scan_bytes.saturating_mul(4).max(1024 * 1024)
}

/// Damage found in a message and how the view worked around it, for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// Blank or whitespace-only lines before the header were skipped.
    JunkBeforeHeader,
    /// The message used bare CR line endings; they were read as LF.
    BareCrLineEndings,
    /// A Content-Type, Content-Disposition, address or message-id field was absurdly long
    /// and was cut.
    LongField,
    /// The message holds more MIME parts or header fields than the parser is given: it
    /// was read up to there.
    TooManyParts,
    /// No part was marked as the body (an unterminated or misdeclared multipart): the
    /// first text part that is not an attachment was read.
    FirstTextPart,
    /// A multipart's declared boundary never appears (or it declares none): its body was
    /// split on the delimiter lines it actually holds.
    GuessedBoundary,
    /// A multipart without a usable boundary: its raw body was read as text.
    RawMultipartBody,
    /// The message had no text of its own: the text of a message it forwards was read.
    ForwardedMessage,
    /// A UTF-16 part was decoded in the wrong byte order; the bytes were swapped back.
    Utf16ByteOrder,
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Repair::JunkBeforeHeader => "blank lines before the header were skipped",
            Repair::BareCrLineEndings => "bare CR line endings were read as line breaks",
            Repair::LongField => "an oversized header field was cut",
            Repair::TooManyParts => {
                "too many MIME parts or header fields: the message was read up to the limit"
            }
            Repair::FirstTextPart => {
                "no part was marked as the body (broken MIME structure): the first text part was read"
            }
            Repair::GuessedBoundary => {
                "the declared MIME boundary never appears: the parts were split on the one used"
            }
            Repair::RawMultipartBody => {
                "a multipart without a usable boundary: its raw body was read as text"
            }
            Repair::ForwardedMessage => "no text of its own: the forwarded message's text was read",
            Repair::Utf16ByteOrder => "UTF-16 text in the wrong byte order was swapped back",
        })
    }
}

/// A display name and address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    /// The display name, trimmed, when there is one.
    pub name: Option<String>,
    /// Lowercased and trimmed.
    pub address: String,
}

/// What triage reads of one message.
#[derive(Debug, Clone, Default)]
pub struct MessageView {
    /// The Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// The decoded subject, trimmed, at most [`MAX_SUBJECT_BYTES`].
    pub subject: String,
    /// The first From address.
    pub from: Option<Mailbox>,
    /// To addresses (at most [`MAX_ADDRESSES`]).
    pub to: Vec<Mailbox>,
    /// Cc addresses (at most [`MAX_ADDRESSES`]).
    pub cc: Vec<Mailbox>,
    /// Reply-To addresses (at most [`MAX_ADDRESSES`]).
    pub reply_to: Vec<Mailbox>,
    /// The Date header with its own offset, when it parses.
    pub date: Option<DateTime<FixedOffset>>,
    /// Message ids in In-Reply-To.
    pub in_reply_to: Vec<String>,
    /// Message ids in References.
    pub references: Vec<String>,
    /// The List-Id header, raw.
    pub list_id: Option<String>,
    /// A List-Unsubscribe header is present.
    pub list_unsubscribe: bool,
    /// A List-Post header is present.
    pub list_post: bool,
    /// Another `List-*` header (RFC 2369: List-Help, List-Subscribe, List-Owner, …), by
    /// name, when none of the above is present.
    pub list_other: Option<String>,
    /// A `Sender:` that is a list's (`owner-…@`, `…-request@`, `…-bounces@`, `…-owner@`).
    pub list_sender: Option<String>,
    /// `Authentication-Results` header values (RFC 8601), topmost first, at most
    /// [`MAX_AUTH_RESULTS`], each at most [`MAX_AUTH_RESULT_BYTES`].
    pub authentication_results: Vec<String>,
    /// Precedence, lowercased.
    pub precedence: Option<String>,
    /// Auto-Submitted, lowercased.
    pub auto_submitted: Option<String>,
    /// X-Autoreply / X-Autorespond present.
    pub x_autoreply: bool,
    /// A spam filter upstream marked the message: the header that says so.
    pub spam_verdict: Option<String>,
    /// Return-Path: <> (bounces and other automatic mail).
    pub null_return_path: bool,
    /// A delivery or disposition report (multipart/report).
    pub report: bool,
    /// The body as plain text (HTML converted when there was no plain part), capped.
    /// Empty in views that keep only the new text ([`MessageView::parse_for_triage`]).
    pub text: String,
    /// `text` split into new text, quoted text and signature (only the new text in views
    /// from [`MessageView::parse_for_triage`]).
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

/// Most `Authentication-Results` headers kept.
pub const MAX_AUTH_RESULTS: usize = 8;
/// Longest `Authentication-Results` value kept, in bytes.
pub const MAX_AUTH_RESULT_BYTES: usize = 2048;

/// Is this local part (lowercased) a mailing list's administrative address?
pub fn list_local_part(local: &str) -> bool {
    local.starts_with("owner-")
        || local.ends_with("-request")
        || local.ends_with("-bounces")
        || local.contains("-bounces+")
        || local.ends_with("-owner")
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

/// `s` in ASCII lowercase, copied only when it has an uppercase letter (HTML tag and
/// attribute names, and most words of mail text, are lowercase already).
pub(crate) fn ascii_lower(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|c| c.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(s.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
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

fn parser() -> &'static MessageParser {
    // Built once: building it fills a table of header parsers (2 % of a message's parse).
    // Fields the view does not decode (Received, X-…, List-…) are only skipped: the few
    // read as they are (`header_raw`) come from the raw bytes by offset, which the parser
    // records for every field, and copying every other field's value (a third of the
    // header parse on list mail with its long Received chains) bought nothing.
    static PARSER: std::sync::LazyLock<MessageParser> = std::sync::LazyLock::new(|| {
        MessageParser::new()
            .with_minimal_headers()
            .with_message_ids()
            .header_text(HeaderName::Subject)
            .default_header_ignore()
    });
    &PARSER
}

/// How much of the body a view keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// The whole text, and its split into new text, quoted text and signature.
    All,
    /// Only the new text, which is all that triage reads: `text`, `body.quoted` and
    /// `body.signature` stay empty. For the daemon, which holds batches of views.
    NewText,
}

impl MessageView {
    /// Builds the view of a raw message, scanning at most `max_scan_bytes` of its text.
    pub fn parse(raw: &[u8], max_scan_bytes: usize) -> MessageView {
        MessageView::parse_prefix(raw, raw.len(), max_scan_bytes)
    }

    /// Like [`MessageView::parse`], keeping only what triage reads: the new text (`text`,
    /// `body.quoted` and `body.signature` stay empty). For the daemon, which holds batches
    /// of views.
    pub fn parse_for_triage(raw: &[u8], max_scan_bytes: usize) -> MessageView {
        MessageView::parse_prefix_keeping(raw, raw.len(), max_scan_bytes, Keep::NewText)
    }

    /// Builds the view from the first bytes of a message of `size` bytes: readers need not
    /// hold more than [`parse_limit`] bytes of a message (bytes past it are ignored anyway).
    pub fn parse_prefix(prefix: &[u8], size: usize, max_scan_bytes: usize) -> MessageView {
        MessageView::parse_prefix_keeping(prefix, size, max_scan_bytes, Keep::All)
    }

    /// [`MessageView::parse_prefix`], keeping `keep` of the body.
    fn parse_prefix_keeping(
        prefix: &[u8],
        size: usize,
        max_scan_bytes: usize,
        keep: Keep,
    ) -> MessageView {
        let limit = parse_limit(max_scan_bytes);
        let input = prefix.get(..limit).unwrap_or(prefix);
        let mut repairs = Vec::new();
        let prepared = prepare::prepare(input, limit, &mut repairs);
        let mut view = match parser().parse(&prepared[..]) {
            Some(m) if !m.headers().is_empty() || m.text_body_count() > 0 => {
                let mut view = header_view(&m);
                let (body, forwarded) = match body_text(&m, max_scan_bytes, &mut repairs) {
                    Some(body) => (Some(body), None),
                    None => (None, forwarded_bytes(&m)),
                };
                drop(m);
                let body = body.or_else(|| {
                    let body = forwarded.and_then(|b| forwarded_text(b, limit, max_scan_bytes))?;
                    repairs.push(Repair::ForwardedMessage);
                    Some(body)
                });
                if let Some(body) = body {
                    view.text = body.text;
                    view.html_only = body.html_only;
                    view.truncated = body.cut;
                }
                view
            }
            _ => MessageView {
                // Lossy conversion never shortens, so one byte over the cap is enough for
                // `cap` below to notice the cut.
                text: String::from_utf8_lossy(input.get(..=max_scan_bytes).unwrap_or(input))
                    .into_owned(),
                unparsed: true,
                ..MessageView::default()
            },
        };
        view.size = size.max(prefix.len());
        let subject_cut = cap(&mut view.subject, MAX_SUBJECT_BYTES);
        let text_cut = cap(&mut view.text, max_scan_bytes);
        view.truncated |= text_cut
            || subject_cut
            || input.len() < view.size
            || repairs.contains(&Repair::TooManyParts);
        for r in repairs {
            if !view.repairs.contains(&r) {
                view.repairs.push(r);
            }
        }
        match keep {
            Keep::All => view.body = split::split(&view.text),
            Keep::NewText => {
                view.body.new_text = split::new_text(&std::mem::take(&mut view.text));
            }
        }
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
    let mut list_other = None;
    let mut authentication_results = Vec::new();
    for (name, value) in m.headers_raw() {
        let known_list = ["list-id", "list-unsubscribe", "list-post"]
            .iter()
            .any(|k| name.eq_ignore_ascii_case(k));
        if list_other.is_none()
            && !known_list
            && name.len() > 5
            && name.is_char_boundary(5)
            && name[..5].eq_ignore_ascii_case("list-")
        {
            list_other = Some(name.to_string());
        }
        if name.eq_ignore_ascii_case("Authentication-Results")
            && authentication_results.len() < MAX_AUTH_RESULTS
        {
            let mut v = value.trim();
            if v.len() > MAX_AUTH_RESULT_BYTES {
                let mut end = MAX_AUTH_RESULT_BYTES;
                while !v.is_char_boundary(end) {
                    end -= 1;
                }
                v = &v[..end];
            }
            authentication_results.push(v.to_string());
        }
    }
    // Sender is not decoded by the parser (see `parser`): its address, from the raw value.
    let list_sender = header_raw(m, "Sender")
        .map(|v| {
            let addr = v.rsplit_once('<').map_or(v, |(_, r)| r);
            addr.split(['>', ' ', '('])
                .next()
                .unwrap_or_default()
                .to_lowercase()
        })
        .filter(|a| {
            a.rsplit_once('@')
                .is_some_and(|(local, _)| list_local_part(local))
        });
    MessageView {
        list_other,
        list_sender,
        authentication_results,
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
        spam_verdict: spam_verdict(|name| header_raw(m, name)),
        report: content_type_report,
        ..MessageView::default()
    }
}

/// The upstream spam verdict among a message's header fields, as evidence: SpamAssassin's
/// `X-Spam-Flag: YES` and `X-Spam-Status: Yes, …`, `X-Spam: yes`, rspamd's `X-Spam-Action`
/// (reject, add header, rewrite subject) and Microsoft's `X-MS-Exchange-Organization-SCL`
/// of 5 or more.
pub fn spam_verdict<'a>(header: impl Fn(&'static str) -> Option<&'a str>) -> Option<String> {
    let yes = |v: &str| {
        let w = v.split([',', ' ', ';']).next().unwrap_or_default();
        w.eq_ignore_ascii_case("yes") || w.eq_ignore_ascii_case("true")
    };
    for name in ["X-Spam-Flag", "X-Spam-Status", "X-Spam"] {
        if let Some(v) = header(name).filter(|v| yes(v)) {
            let shown: String = v.chars().take(40).collect();
            return Some(format!("{name}: {shown}"));
        }
    }
    if let Some(v) = header("X-Spam-Action") {
        let action = v.trim().to_ascii_lowercase();
        if ["reject", "add header", "rewrite subject"].contains(&action.as_str()) {
            return Some(format!("X-Spam-Action: {action}"));
        }
    }
    let scl = header("X-MS-Exchange-Organization-SCL")?;
    match scl.trim().parse::<i32>() {
        Ok(n) if n >= 5 => Some(format!("X-MS-Exchange-Organization-SCL: {n}")),
        _ => None,
    }
}

/// A message's body text.
struct Body {
    text: String,
    /// Every piece came from HTML.
    html_only: bool,
    /// Text was left out at the scan cap.
    cut: bool,
}

/// The body text of a parsed message: the parts the parser marked as the body; else, for
/// a multipart whose declared boundary never appears, the parts split on the boundary its
/// body actually uses; else the first text part that is not an attachment (an
/// unterminated or misdeclared multipart leaves every part unmarked); else the raw body
/// of a multipart without a usable boundary. Stops at `max` bytes.
fn body_text(m: &Message<'_>, max: usize, repairs: &mut Vec<Repair>) -> Option<Body> {
    body_text_with(m, max, repairs, true)
}

fn body_text_with(
    m: &Message<'_>,
    max: usize,
    repairs: &mut Vec<Repair>,
    guess_boundary: bool,
) -> Option<Body> {
    let mut body = Body {
        text: String::new(),
        html_only: true,
        cut: false,
    };
    let mut any = false;
    for idx in m.text_body.iter().take(16) {
        let Some(part) = m.parts.get(*idx as usize) else {
            continue;
        };
        if body.text.len() >= max {
            body.cut = true;
            break;
        }
        let Some(piece) = part_text(part, max - body.text.len(), repairs) else {
            continue;
        };
        body.html_only &= piece.html_only;
        body.cut |= piece.cut;
        any = true;
        if !body.text.is_empty() {
            body.text.push_str("\n\n");
        }
        body.text.push_str(&piece.text);
    }
    if any {
        return Some(body);
    }
    if guess_boundary {
        if let Some(body) = m.parts.iter().find_map(|p| resplit(p, max, repairs)) {
            repairs.push(Repair::GuessedBoundary);
            return Some(body);
        }
    }
    let salvaged = m
        .parts
        .iter()
        .filter(|p| declared_text(p) && !is_attachment(p))
        .filter_map(|p| part_text(p, max, repairs))
        .find(|piece| !piece.text.trim().is_empty());
    if let Some(piece) = salvaged {
        repairs.push(Repair::FirstTextPart);
        return Some(piece);
    }
    let raw = m.parts.iter().find_map(|p| match &p.body {
        PartType::Binary(b) | PartType::InlineBinary(b)
            if p.content_type()
                .is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("multipart")) =>
        {
            Some(String::from_utf8_lossy(b.get(..=max).unwrap_or(b)).into_owned())
        }
        _ => None,
    })?;
    repairs.push(Repair::RawMultipartBody);
    Some(Body {
        text: raw,
        html_only: false,
        cut: false,
    })
}

/// A multipart the parser could not split (its declared boundary never appears, or it
/// declares none), split again on the first delimiter line its body holds.
fn resplit(part: &MessagePart<'_>, max: usize, repairs: &mut Vec<Repair>) -> Option<Body> {
    let ct = part.content_type()?;
    if !ct.ctype().eq_ignore_ascii_case("multipart") {
        return None;
    }
    let raw: &[u8] = match &part.body {
        PartType::Text(t) => t.as_bytes(),
        PartType::Binary(b) | PartType::InlineBinary(b) => b,
        _ => return None,
    };
    let boundary = guess_boundary(raw)?;
    let subtype = ct
        .subtype()
        .filter(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or("mixed");
    let mut message = format!("Content-Type: multipart/{subtype}; boundary=\"").into_bytes();
    message.extend_from_slice(boundary);
    message.extend_from_slice(b"\"\r\n\r\n");
    message.extend_from_slice(raw);
    let m = parser().parse(&message[..])?;
    body_text_with(&m, max, repairs, false).filter(|b| !b.text.trim().is_empty())
}

/// The boundary of the first delimiter line ("--" and 1 to 70 boundary characters, not a
/// closing "--…--") in a body.
fn guess_boundary(body: &[u8]) -> Option<&[u8]> {
    body.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let b = line.strip_prefix(b"--")?.trim_ascii_end();
        let bchar = |c: &u8| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(c);
        ((1..=70).contains(&b.len()) && b.iter().all(bchar) && !b.ends_with(b"--")).then_some(b)
    })
}

/// Declared as text: text/*, no Content-Type (text/plain by default), or a multipart the
/// parser could not split (its body is the message's text). An attachment cut short is
/// kept as raw text by the parser; its declared type tells it apart.
fn declared_text(part: &MessagePart<'_>) -> bool {
    part.content_type().is_none_or(|ct| {
        ct.ctype().eq_ignore_ascii_case("text") || ct.ctype().eq_ignore_ascii_case("multipart")
    })
}

/// Declared as an attachment: a Content-Disposition of "attachment" or a file name.
fn is_attachment(part: &MessagePart<'_>) -> bool {
    part.content_disposition()
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"))
        || part.attachment_name().is_some()
}

/// The text of one text or HTML part (HTML converted), at most `max` bytes.
fn part_text(part: &MessagePart<'_>, max: usize, repairs: &mut Vec<Repair>) -> Option<Body> {
    let (decoded, html) = match &part.body {
        PartType::Text(t) => (t, false),
        PartType::Html(h) => (h, true),
        _ => return None,
    };
    // A part the parser could not delimit (no closing boundary) is left undecoded.
    let redecoded = if part.is_encoding_problem {
        redecode(part, decoded)
    } else {
        None
    };
    let decoded: &str = redecoded.as_deref().unwrap_or(decoded);
    let unswapped = unswap_utf16(decoded);
    if unswapped.is_some() {
        repairs.push(Repair::Utf16ByteOrder);
    }
    let decoded = unswapped.as_deref().unwrap_or(decoded);
    let (text, cut) = if html {
        html::html_to_text_capped(decoded, max)
    } else {
        let end = floor_char_boundary(decoded, max);
        (
            decoded.get(..end).unwrap_or_default().to_string(),
            end < decoded.len(),
        )
    };
    Some(Body {
        text,
        html_only: html,
        cut,
    })
}

/// Decodes the transfer encoding and charset of a part the parser left raw.
fn redecode(part: &MessagePart<'_>, raw: &str) -> Option<String> {
    let cte = part.content_transfer_encoding()?.trim();
    let bytes = if cte.eq_ignore_ascii_case("base64") {
        // A part cut short may end mid-quantum: decode the whole quanta only.
        let clean: Vec<u8> = raw
            .bytes()
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
            .collect();
        base64_decode(clean.get(..clean.len() / 4 * 4).unwrap_or_default())?
    } else if cte.eq_ignore_ascii_case("quoted-printable") {
        quoted_printable_decode(raw.as_bytes())?
    } else {
        return None;
    };
    let charset = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .and_then(|c| charset_decoder(c.as_bytes()));
    Some(match charset {
        Some(decode) => decode(&bytes),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// UTF-16 decoded in the wrong byte order turns ASCII text into U+XX00 characters; when
/// most of the first characters look like that, swap every code unit back.
fn unswap_utf16(s: &str) -> Option<String> {
    let mut total = 0;
    let mut swapped = 0;
    for c in s
        .chars()
        .filter(|&c| c != '\u{feff}' && c != '\u{fffe}')
        .take(64)
    {
        total += 1;
        let u = u32::from(c);
        if u <= 0xffff && u & 0xff == 0 && matches!(u >> 8, 0x09 | 0x0a | 0x0d | 0x20..=0x7e) {
            swapped += 1;
        }
    }
    if total < 4 || swapped * 4 < total * 3 {
        return None;
    }
    Some(
        char::decode_utf16(s.encode_utf16().map(u16::swap_bytes))
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .filter(|&c| c != '\u{feff}')
            .collect(),
    )
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
fn forwarded_text(mut bytes: Vec<u8>, limit: usize, max: usize) -> Option<Body> {
    for _ in 0..MAX_FORWARD_DEPTH {
        let mut ignored = Vec::new();
        let prepared = prepare::prepare(&bytes, limit, &mut ignored);
        let m = parser().parse(&prepared[..])?;
        if let Some(body) = body_text(&m, max, &mut ignored) {
            return Some(body);
        }
        let next = forwarded_bytes(&m)?;
        drop(m);
        drop(prepared);
        bytes = next;
    }
    None
}

/// The largest index ≤ `max` on a character boundary of `s`.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    end
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

    #[test]
    fn unterminated_encoded_text_parts_are_decoded() {
        for (cte, body) in [
            ("base64", "SGVsbG8gdGhlcmUsIEkgbmVlZCBhIHF1b3RlLg==\r\n"),
            ("base64", "SGVsbG8gdGhlcmUsIEkgbmVlZCBhIHF1b3RlLg"),
            ("quoted-printable", "Hello there, I need a =\r\nquote.=\r\n"),
        ] {
            let raw = format!(
                "Subject: s\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\
                 Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\n\r\n{body}"
            );
            let v = MessageView::parse(raw.as_bytes(), DEFAULT_MAX_SCAN_BYTES);
            assert!(
                v.text.starts_with("Hello there, I need a quote"),
                "{cte}: {:?} {:?}",
                v.text,
                v.repairs
            );
        }
    }
}
