//! Fetching what triage reads, and nothing more: sizes first (usually already known from
//! the FETCH that found the new mail); messages within the scan cap whole
//! (`BODY.PEEK[]`, large UID batches); bigger ones as their header plus only their text
//! parts, found through BODYSTRUCTURE. Everything of a large message is capped: its header
//! at [`MAX_HEADER_BYTES`], each part's own header at [`MAX_PART_HEADER_BYTES`], each text
//! at the scan cap (partial fetches, `<0.N>`, in the same commands); a header cut by its
//! cap is ended where it was cut, so the message is still read, decided and filed.
//! Always `BODY.PEEK`, so \Seen is never set. Every answer is read up to its tagged
//! completion ([`Conn`]), so a connection cut mid-answer is an error, never a short
//! answer.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use async_imap::imap_proto::{BodyStructure, ContentEncoding};

use super::command::{Conn, FetchItem};
use crate::mailbox::{
    end_line, ended, header_complete, uid_sets, Fetched, MessageKey, Signature, MAX_HEADER_BYTES,
    MAX_PART_HEADER_BYTES, SIGNATURE_BODY_BYTES,
};

/// Most bytes fetched in one batch of whole messages.
const BATCH_BYTES: u64 = 8 * 1024 * 1024;
/// Most messages fetched in one batch.
const BATCH_COUNT: usize = 500;
/// Text parts read from one large message.
const MAX_TEXT_PARTS: usize = 4;

/// Size and (when asked for) delivery date of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub size: u64,
    pub date: Option<i64>,
}

/// Runs a UID FETCH, handing each response with a UID to `each` as it arrives (a batch's
/// responses are never all held at once).
pub async fn uid_fetch_each(
    conn: &mut Conn,
    set: &str,
    query: &str,
    timeout: Duration,
    mut each: impl FnMut(FetchItem) + Send,
) -> Result<()> {
    let command = format!("UID FETCH {set} {query}");
    let done = conn
        .run(&format!("fetching {query}"), &command, timeout, &mut |r| {
            match FetchItem::of(r) {
                // Unsolicited flag changes come without a UID: not ours.
                Some(item) if item.uid.is_some() => {
                    each(item);
                    true
                }
                Some(_) => true,
                None => false,
            }
        })
        .await?;
    done.ok()?;
    Ok(())
}

/// Sizes (and, with `dates`, INTERNALDATEs) of the messages in a UID set, by UID.
pub async fn meta(
    conn: &mut Conn,
    set: &str,
    dates: bool,
    timeout: Duration,
) -> Result<HashMap<u32, Meta>> {
    let mut out = HashMap::new();
    let query = if dates {
        "(UID RFC822.SIZE INTERNALDATE)"
    } else {
        "(UID RFC822.SIZE)"
    };
    uid_fetch_each(conn, set, query, timeout, |f| {
        if let Some(uid) = f.uid {
            out.insert(
                uid,
                Meta {
                    size: u64::from(f.size.unwrap_or(0)),
                    date: f.internal_date,
                },
            );
        }
    })
    .await?;
    Ok(out)
}

/// Fetches what triage needs of `uids`, whose sizes (and dates) `known` may already hold;
/// the rest are asked for first. Messages that no longer exist are left out.
pub async fn fetch(
    conn: &mut Conn,
    uidvalidity: u32,
    uids: &[u32],
    known: &HashMap<u32, Meta>,
    max_scan_bytes: usize,
    dates: bool,
    timeout: Duration,
) -> Result<Vec<Fetched>> {
    // No literal this fetch asks for is longer than what triage parses of a message (a
    // whole one is within the scan cap, every part of a large one capped below it): the
    // reader never holds more for one.
    conn.limit_literals(crate::mail::parse_limit(max_scan_bytes).max(MAX_HEADER_BYTES));
    let mut meta: HashMap<u32, Meta> = HashMap::new();
    let mut unknown = Vec::new();
    for &u in uids {
        match known.get(&u) {
            Some(m) if m.date.is_some() || !dates => {
                meta.insert(u, *m);
            }
            _ => unknown.push(u),
        }
    }
    for set in uid_sets(&unknown) {
        meta.extend(meta_for(conn, &set, dates).await?);
    }
    let cap = max_scan_bytes as u64;
    let mut order: Vec<u32> = uids
        .iter()
        .copied()
        .filter(|u| meta.contains_key(u))
        .collect();
    order.sort_unstable();
    order.dedup();
    let mut bodies: HashMap<u32, (Vec<u8>, Signature)> = HashMap::new();
    // Whole small messages, in batches bounded by count and bytes.
    let mut batch: Vec<u32> = Vec::new();
    let mut batch_bytes = 0u64;
    let mut batches: Vec<Vec<u32>> = Vec::new();
    for &u in &order {
        let size = meta.get(&u).map_or(0, |m| m.size);
        if size > cap {
            continue;
        }
        if !batch.is_empty() && (batch.len() >= BATCH_COUNT || batch_bytes + size > BATCH_BYTES) {
            batches.push(std::mem::take(&mut batch));
            batch_bytes = 0;
        }
        batch.push(u);
        batch_bytes += size;
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    for b in batches {
        let bytes: u64 = b.iter().map(|u| meta.get(u).map_or(0, |m| m.size)).sum();
        // Allow for the volume: the timeout plus a second per 256 KiB.
        let batch_timeout = timeout + Duration::from_secs(bytes / (256 * 1024));
        for set in uid_sets(&b) {
            uid_fetch_each(conn, &set, "(UID BODY.PEEK[])", batch_timeout, |f| {
                if let (Some(uid), Some(body)) = (f.uid, f.body) {
                    let size = meta.get(&uid).map_or(body.len() as u64, |m| m.size);
                    let sig = Signature::of_whole(&body, size);
                    bodies.insert(uid, (body, sig));
                }
            })
            .await?;
        }
    }
    // Large messages: header and text parts only.
    for &u in &order {
        let Some(m) = meta.get(&u).filter(|m| m.size > cap) else {
            continue;
        };
        if let Some(got) = fetch_large(conn, u, m.size, max_scan_bytes, timeout).await? {
            bodies.insert(u, got);
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|uid| {
            let m = meta.remove(&uid)?;
            let (raw, signature) = bodies.remove(&uid)?;
            Some(Fetched {
                key: MessageKey {
                    uid,
                    key: format!("{uidvalidity}:{uid}"),
                },
                raw,
                internal_date: m.date,
                size: m.size,
                signature,
            })
        })
        .collect())
}

/// [`meta`] with the timeout a metadata fetch of a whole backlog needs.
async fn meta_for(conn: &mut Conn, set: &str, dates: bool) -> Result<HashMap<u32, Meta>> {
    meta(conn, set, dates, Duration::from_secs(120)).await
}

/// Text parts worth reading, as section paths (plain and HTML, not attachments).
pub(super) fn text_parts(bs: &BodyStructure<'_>, path: &mut Vec<u32>, out: &mut Vec<Vec<u32>>) {
    if out.len() >= MAX_TEXT_PARTS || path.len() > 16 {
        return;
    }
    match bs {
        BodyStructure::Multipart { bodies, .. } => {
            for (i, b) in bodies.iter().enumerate() {
                path.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
                text_parts(b, path, out);
                path.pop();
            }
        }
        BodyStructure::Text { common, .. } => {
            let sub = common.ty.subtype.to_ascii_lowercase();
            let attachment = common
                .disposition
                .as_ref()
                .is_some_and(|d| d.ty.eq_ignore_ascii_case("attachment"));
            if (sub == "plain" || sub == "html") && !attachment {
                out.push(if path.is_empty() {
                    vec![1]
                } else {
                    path.clone()
                });
            }
        }
        _ => {}
    }
}

/// Is the message one part to read as text: a text part, or a part whose type the server
/// could not read? Dovecot gives up on a header of more than 10 MiB and reports the type
/// as `"" ""`; its text is then read as plain text, as well as it can be.
pub(super) fn single_text(bs: &BodyStructure<'_>) -> bool {
    match bs {
        BodyStructure::Text { .. } => true,
        BodyStructure::Basic { common, .. } => common.ty.ty.trim().is_empty(),
        _ => false,
    }
}

/// Removes the Content-Type and Content-Transfer-Encoding fields (with continuations)
/// from a header block, so a synthetic multipart can replace them.
fn strip_content_headers(header: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(header);
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        let continuation = line.starts_with([' ', '\t']);
        if !continuation {
            let lower = line.to_ascii_lowercase();
            skipping = lower.starts_with("content-type:")
                || lower.starts_with("content-transfer-encoding:")
                || lower.starts_with("mime-version:");
        }
        if !skipping && line.trim_end() != "" {
            out.push_str(line);
        }
    }
    let mut out = out.into_bytes();
    end_line(&mut out);
    out
}

/// The Content-Type and Content-Transfer-Encoding fields of a single-part text message,
/// from its BODYSTRUCTURE: they stand in for its own when its header was cut before them.
/// Values that are not plain tokens are left out (the field then says less, never
/// something else).
pub(super) fn content_fields(bs: &BodyStructure<'_>) -> Option<String> {
    let BodyStructure::Text { common, other, .. } = bs else {
        return None;
    };
    let token = |s: &str| {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+:".contains(&b))
    };
    let subtype = Some(common.ty.subtype.as_ref()).filter(|s| token(s))?;
    let mut out = format!("Content-Type: text/{subtype}");
    let charset = common
        .ty
        .params
        .iter()
        .flatten()
        .find_map(|(k, v)| (k.eq_ignore_ascii_case("charset") && token(v)).then_some(v));
    if let Some(c) = charset {
        out.push_str(&format!("; charset=\"{c}\""));
    }
    out.push_str("\r\n");
    let encoding = match &other.transfer_encoding {
        ContentEncoding::Base64 => Some("base64"),
        ContentEncoding::QuotedPrintable => Some("quoted-printable"),
        ContentEncoding::EightBit => Some("8bit"),
        ContentEncoding::Binary => Some("binary"),
        ContentEncoding::SevenBit | ContentEncoding::Other(_) => None,
    };
    if let Some(e) = encoding {
        out.push_str(&format!("Content-Transfer-Encoding: {e}\r\n"));
    }
    Some(out)
}

/// A single-part message as triage reads it: its header and its text's first bytes. A
/// header cut by its cap loses its last fields; the content fields, which may be among
/// them, are put back from BODYSTRUCTURE (`content`).
fn single_part(header: &[u8], content: Option<&str>, text: &[u8]) -> Vec<u8> {
    let mut raw = match content {
        Some(fields) if !header.is_empty() && !header_complete(header) => {
            let mut raw = strip_content_headers(header);
            raw.extend_from_slice(b"MIME-Version: 1.0\r\n");
            raw.extend_from_slice(fields.as_bytes());
            raw.extend_from_slice(b"\r\n");
            raw
        }
        _ => ended(header).into_owned(),
    };
    raw.extend_from_slice(text);
    raw
}

/// Header plus text parts of one large message, assembled into a message triage can
/// read, with its signature (header and size; a single text part's first bytes too, read
/// anyway).
async fn fetch_large(
    conn: &mut Conn,
    uid: u32,
    size: u64,
    cap: usize,
    t: Duration,
) -> Result<Option<(Vec<u8>, Signature)>> {
    let mut first = None;
    let q = format!("(UID BODYSTRUCTURE BODY.PEEK[HEADER]<0.{MAX_HEADER_BYTES}>)");
    uid_fetch_each(conn, &uid.to_string(), &q, t, |f| first = Some(f)).await?;
    let Some(f) = first else {
        return Ok(None);
    };
    let header = f.header.unwrap_or_default();
    let (parts, single) = f.text_parts.unwrap_or_default();
    if single {
        let mut text = None;
        let q = format!("(UID BODY.PEEK[TEXT]<0.{cap}>)");
        uid_fetch_each(conn, &uid.to_string(), &q, t, |f| text = f.text).await?;
        let text = text.unwrap_or_default();
        let sig = Signature::of_parts(&header, size, Some(&text));
        let raw = single_part(&header, f.single_content.as_deref(), &text);
        return Ok(Some((raw, sig)));
    }
    let sig = Signature::of_parts(&header, size, None);
    let mut query = String::from("(UID");
    for p in &parts {
        let s: Vec<String> = p.iter().map(u32::to_string).collect();
        let s = s.join(".");
        query.push_str(&format!(
            " BODY.PEEK[{s}.MIME]<0.{MAX_PART_HEADER_BYTES}> BODY.PEEK[{s}]<0.{cap}>"
        ));
    }
    query.push(')');
    let boundary = format!("mailtriage-fetch-{uid}-{}", header.len());
    let mut raw = strip_content_headers(&header);
    raw.extend_from_slice(
        format!(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
        )
        .as_bytes(),
    );
    if !parts.is_empty() {
        let mut got = None;
        uid_fetch_each(conn, &uid.to_string(), &query, t, |f| got = Some(f)).await?;
        if let Some(f) = got {
            for p in &parts {
                if let (Some(mime), Some(body)) = (f.part(p, true), f.part(p, false)) {
                    raw.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                    raw.extend_from_slice(&ended(mime));
                    raw.extend_from_slice(body);
                    raw.extend_from_slice(b"\r\n");
                }
            }
        }
    }
    raw.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(Some((raw, sig)))
}

/// What recovery compares of a candidate in a destination folder: its Message-ID and
/// signature.
pub struct Candidate {
    pub uid: u32,
    pub message_id: Option<String>,
    pub signature: Signature,
}

/// Message-ID and signature of each message of a UID set in the selected folder; with
/// `bodies`, the signature covers the body's first bytes (needed only when a message
/// looked for was read whole when it was decided).
pub async fn candidates(
    conn: &mut Conn,
    set: &str,
    bodies: bool,
    timeout: Duration,
) -> Result<Vec<Candidate>> {
    // The header as far as the signature reads it (see `SIGNATURE_HEADER_BYTES`).
    let header = format!("BODY.PEEK[HEADER]<0.{MAX_HEADER_BYTES}>");
    let query = if bodies {
        format!("(UID RFC822.SIZE {header} BODY.PEEK[TEXT]<0.{SIGNATURE_BODY_BYTES}>)")
    } else {
        format!("(UID RFC822.SIZE {header})")
    };
    let mut out = Vec::new();
    uid_fetch_each(conn, set, &query, timeout, |f| {
        let (Some(uid), Some(header)) = (f.uid, f.header.as_deref()) else {
            return;
        };
        let size = u64::from(f.size.unwrap_or(0));
        out.push(Candidate {
            uid,
            message_id: header_field(header, "message-id"),
            signature: Signature::of_parts(header, size, f.text.as_deref().filter(|_| bodies)),
        });
    })
    .await?;
    Ok(out)
}

/// The first value of a header field (unfolded, trimmed), if present.
fn header_field(header: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let unfolded = text
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ")
        .replace("\n ", " ")
        .replace("\n\t", " ");
    let line = unfolded.lines().find(|l| {
        l.len() > name.len()
            && l.is_char_boundary(name.len())
            && l[..name.len()].eq_ignore_ascii_case(name)
            && l[name.len()..].starts_with(':')
    })?;
    Some(line.split_once(':')?.1.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_headers_are_replaced_not_duplicated() {
        let h = b"From: a\r\nContent-Type: multipart/mixed;\r\n\tboundary=x\r\nSubject: s\r\nMIME-Version: 1.0\r\n\r\n";
        let out = String::from_utf8(strip_content_headers(h)).expect("utf-8");
        assert_eq!(out, "From: a\r\nSubject: s\r\n");
        // A header cut by its cap mid-line: its last line is ended.
        let cut = b"From: a\r\nContent-Type: text/plain;\r\n\tcharset=utf-8\r\nX-Junk: aaa";
        let out = String::from_utf8(strip_content_headers(cut)).expect("utf-8");
        assert_eq!(out, "From: a\r\nX-Junk: aaa\r\n");
    }

    /// Issue 19: a large message whose header was cut by its cap, mid-line and before its
    /// content fields, is still read: the fields before the cut, and its text decoded with
    /// the encoding BODYSTRUCTURE gives.
    #[test]
    fn a_message_with_a_cut_header_is_still_read() {
        use crate::mail::{MessageView, DEFAULT_MAX_SCAN_BYTES};
        let mut header =
            b"From: Pat <pat@example.com>\r\nSubject: Heater\r\nMessage-ID: <big@x>\r\nX-Junk: "
                .to_vec();
        header.resize(MAX_HEADER_BYTES, b'a');
        let text = b"VGhlIGhlYXRlciBpcyBicm9rZW4sIHBsZWFzZSByZXBhaXIgaXQu\r\n";
        let r = async_imap::imap_proto::Response::parse(
            b"* 1 FETCH (BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"base64\" 54 1 NIL NIL NIL NIL))\r\n",
        )
        .expect("parses")
        .1;
        let fields = super::super::command::FetchItem::of(&r)
            .and_then(|f| f.single_content)
            .expect("content fields");
        assert_eq!(
            fields,
            "Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n"
        );
        for content in [Some(fields.as_str()), None] {
            let raw = single_part(&header, content, text);
            let v = MessageView::parse(&raw, DEFAULT_MAX_SCAN_BYTES);
            assert_eq!(v.subject, "Heater");
            assert_eq!(v.message_id.as_deref(), Some("big@x"));
            assert_eq!(
                v.from.map(|f| f.address).as_deref(),
                Some("pat@example.com")
            );
            let want = if content.is_some() {
                "The heater is broken, please repair it."
            } else {
                "VGhlIGhlYXRlciBpcyBicm9rZW4sIHBsZWFzZSByZXBhaXIgaXQu"
            };
            assert_eq!(v.text.trim(), want, "{content:?}");
        }
        // A whole header keeps its own fields.
        let whole = b"Subject: s\r\nContent-Type: text/plain\r\n\r\n";
        assert_eq!(
            single_part(whole, Some(&fields), b"hi"),
            b"Subject: s\r\nContent-Type: text/plain\r\n\r\nhi"
        );
    }

    #[test]
    fn header_fields_are_found_unfolded_and_whole_named() {
        let h = b"X-Message-ID-Copy: no\r\nMessage-ID:\r\n <a@b>\r\nSubject: s\r\n\r\n";
        assert_eq!(header_field(h, "message-id").as_deref(), Some("<a@b>"));
        assert_eq!(header_field(h, "subject").as_deref(), Some("s"));
        assert_eq!(header_field(h, "to"), None);
    }
}
