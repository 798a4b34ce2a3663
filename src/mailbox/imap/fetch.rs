//! Fetching what triage reads, and nothing more: sizes first; messages within the scan
//! cap whole (`BODY.PEEK[]`, large UID batches); bigger ones as their header plus only
//! their text parts, each capped, found through BODYSTRUCTURE. Always `BODY.PEEK`, so
//! \Seen is never set.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, Result};
use async_imap::imap_proto::{BodyStructure, MessageSection, SectionPath};
use async_imap::types::Fetch;
use futures_util::TryStreamExt;

use super::connect::ImapSession;
use crate::mailbox::{uid_sets, Fetched, MessageKey};

/// Most bytes fetched in one batch of whole messages.
const BATCH_BYTES: u64 = 8 * 1024 * 1024;
/// Most messages fetched in one batch.
const BATCH_COUNT: usize = 500;
/// Text parts read from one large message.
const MAX_TEXT_PARTS: usize = 4;

/// Runs a UID FETCH and collects every response that carries a UID.
async fn uid_fetch(
    session: &mut ImapSession,
    set: &str,
    query: &str,
    timeout: Duration,
) -> Result<Vec<Fetch>> {
    let mut all = Vec::new();
    uid_fetch_each(session, set, query, timeout, |f| all.push(f)).await?;
    confirm(session, timeout).await?;
    Ok(all)
}

/// `UID FETCH`, handing each response with a UID to `each` as it arrives (a batch's
/// responses are never all held at once). Not confirmed: a caller that got fewer
/// messages than it asked for calls [`confirm`] before trusting the answer.
async fn uid_fetch_each(
    session: &mut ImapSession,
    set: &str,
    query: &str,
    timeout: Duration,
    mut each: impl FnMut(Fetch),
) -> Result<()> {
    let fut = async {
        let mut stream = session.uid_fetch(set, query).await?;
        while let Some(f) = stream.try_next().await? {
            if f.uid.is_some() {
                each(f);
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow!("timed out after {}s fetching {query}", timeout.as_secs()))?
}

/// Confirms that the last stream-returning command (FETCH, SEARCH, LIST, STORE,
/// EXPUNGE, SELECT) really completed. async-imap ends such a stream quietly when the
/// connection closes mid-response, so a cut FETCH looks like a short answer; a NOOP
/// round trip on a dead connection fails instead, and the caller retries from a fresh
/// session rather than acting on half an answer.
pub async fn confirm(session: &mut ImapSession, timeout: Duration) -> Result<()> {
    tokio::time::timeout(timeout, session.run_command_and_check_ok("NOOP"))
        .await
        .map_err(|_| {
            anyhow!(
                "timed out after {}s confirming the last command",
                timeout.as_secs()
            )
        })?
        .map_err(|e| anyhow!("the connection broke during the last command: {e}"))
}

/// Sizes and (when asked for) dates of these UIDs (missing ones are absent).
struct Meta {
    size: u64,
    date: Option<i64>,
}

/// Fetches what triage needs of `uids`; with `dates`, their INTERNALDATE too (Dovecot
/// stats each message file for it: a third of the cost of reading the bodies).
pub async fn fetch(
    session: &mut ImapSession,
    uidvalidity: u32,
    uids: &[u32],
    max_scan_bytes: usize,
    dates: bool,
    timeout: Duration,
) -> Result<Vec<Fetched>> {
    let mut meta: HashMap<u32, Meta> = HashMap::new();
    let asked: std::collections::HashSet<u32> = uids.iter().copied().collect();
    for set in uid_sets(uids) {
        let meta_timeout = Duration::from_secs(120);
        uid_fetch_each(
            session,
            &set,
            if dates {
                "(UID RFC822.SIZE INTERNALDATE)"
            } else {
                "(UID RFC822.SIZE)"
            },
            meta_timeout,
            |f| {
                if let Some(uid) = f.uid {
                    meta.insert(
                        uid,
                        Meta {
                            size: u64::from(f.size.unwrap_or(0)),
                            date: f.internal_date().map(|d| d.timestamp()),
                        },
                    );
                }
            },
        )
        .await?;
    }
    // A stream cut short looks like a short answer: when messages are missing (also when
    // they were merely expunged meanwhile), a round trip proves the connection whole.
    if asked.iter().any(|u| !meta.contains_key(u)) {
        confirm(session, timeout).await?;
    }
    let cap = max_scan_bytes as u64;
    let mut order: Vec<u32> = uids
        .iter()
        .copied()
        .filter(|u| meta.contains_key(u))
        .collect();
    order.sort_unstable();
    let mut bodies: HashMap<u32, Vec<u8>> = HashMap::new();
    // Whole small messages, in batches bounded by count and bytes.
    let small: Vec<u32> = order
        .iter()
        .copied()
        .filter(|u| meta.get(u).is_some_and(|m| m.size <= cap))
        .collect();
    let mut batch: Vec<u32> = Vec::new();
    let mut batch_bytes = 0u64;
    let mut batches: Vec<Vec<u32>> = Vec::new();
    for u in small {
        let size = meta.get(&u).map_or(0, |m| m.size);
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
    let wanted = batches.iter().map(Vec::len).sum::<usize>();
    for b in batches {
        let bytes: u64 = b.iter().map(|u| meta.get(u).map_or(0, |m| m.size)).sum();
        // Allow for the volume: the timeout plus a second per 256 KiB.
        let batch_timeout = timeout + Duration::from_secs(bytes / (256 * 1024));
        for set in uid_sets(&b) {
            uid_fetch_each(session, &set, "(UID BODY.PEEK[])", batch_timeout, |f| {
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    bodies.insert(uid, body.to_vec());
                }
            })
            .await?;
        }
    }
    if bodies.len() < wanted {
        confirm(session, timeout).await?;
    }
    // Large messages: header and text parts only.
    for u in order
        .iter()
        .copied()
        .filter(|u| meta.get(u).is_some_and(|m| m.size > cap))
    {
        if let Some(raw) = fetch_large(session, u, max_scan_bytes, timeout).await? {
            bodies.insert(u, raw);
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|uid| {
            let m = meta.remove(&uid)?;
            let raw = bodies.remove(&uid)?;
            Some(Fetched {
                key: MessageKey {
                    uid,
                    key: format!("{uidvalidity}:{uid}"),
                },
                raw,
                internal_date: m.date,
                size: m.size,
            })
        })
        .collect())
}

/// Text parts worth reading, as section paths (plain and HTML, not attachments).
fn text_parts(bs: &BodyStructure<'_>, path: &mut Vec<u32>, out: &mut Vec<Vec<u32>>) {
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
    out.into_bytes()
}

/// Header plus text parts of one large message, assembled into a message triage can read.
async fn fetch_large(
    session: &mut ImapSession,
    uid: u32,
    cap: usize,
    t: Duration,
) -> Result<Option<Vec<u8>>> {
    let first = uid_fetch(
        session,
        &uid.to_string(),
        "(UID BODYSTRUCTURE BODY.PEEK[HEADER])",
        t,
    )
    .await?;
    let Some(f) = first.first() else {
        return Ok(None);
    };
    let header = f.header().unwrap_or_default().to_vec();
    let mut parts = Vec::new();
    let single = matches!(f.bodystructure(), Some(BodyStructure::Text { .. }));
    if let Some(bs) = f.bodystructure() {
        text_parts(bs, &mut Vec::new(), &mut parts);
    }
    if single {
        let q = format!("(UID BODY.PEEK[TEXT]<0.{cap}>)");
        let got = uid_fetch(session, &uid.to_string(), &q, t).await?;
        let text = got.first().and_then(|f| f.text()).unwrap_or_default();
        let mut raw = header;
        raw.extend_from_slice(text);
        return Ok(Some(raw));
    }
    let mut query = String::from("(UID");
    for p in &parts {
        let s: Vec<String> = p.iter().map(u32::to_string).collect();
        let s = s.join(".");
        query.push_str(&format!(" BODY.PEEK[{s}.MIME] BODY.PEEK[{s}]<0.{cap}>"));
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
        let got = uid_fetch(session, &uid.to_string(), &query, t).await?;
        if let Some(f) = got.first() {
            for p in &parts {
                let mime = f.section(&SectionPath::Part(p.clone(), Some(MessageSection::Mime)));
                let body = f.section(&SectionPath::Part(p.clone(), None));
                if let (Some(mime), Some(body)) = (mime, body) {
                    raw.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                    raw.extend_from_slice(mime);
                    raw.extend_from_slice(body);
                    raw.extend_from_slice(b"\r\n");
                }
            }
        }
    }
    raw.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(Some(raw))
}

/// The Message-ID headers of a UID set (for recovery's "is it already there?").
pub async fn message_ids(
    session: &mut ImapSession,
    set: &str,
    timeout: Duration,
) -> Result<Vec<String>> {
    let got = uid_fetch(
        session,
        set,
        "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
        timeout,
    )
    .await?;
    Ok(got
        .iter()
        .filter_map(|f| {
            let text = String::from_utf8_lossy(f.header()?).into_owned();
            let unfolded = text
                .replace("\r\n ", " ")
                .replace("\r\n\t", " ")
                .replace("\n ", " ");
            let line = unfolded
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))?;
            Some(line.split_once(':')?.1.trim().to_string())
        })
        .collect())
}

/// What identifies a message without a Message-ID: size, delivery date and key headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub size: u32,
    date: Option<i64>,
    header: Vec<u8>,
}

/// The identity of one message, if it exists.
pub async fn identity(
    session: &mut ImapSession,
    uid: u32,
    timeout: Duration,
) -> Result<Option<Identity>> {
    let got = uid_fetch(
        session,
        &uid.to_string(),
        "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (DATE FROM TO SUBJECT)])",
        timeout,
    )
    .await?;
    Ok(got.first().map(|f| Identity {
        size: f.size.unwrap_or(0),
        date: f.internal_date().map(|d| d.timestamp()),
        header: f.header().map(<[u8]>::to_vec).unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_headers_are_replaced_not_duplicated() {
        let h = b"From: a\r\nContent-Type: multipart/mixed;\r\n\tboundary=x\r\nSubject: s\r\nMIME-Version: 1.0\r\n\r\n";
        let out = String::from_utf8(strip_content_headers(h)).expect("utf-8");
        assert_eq!(out, "From: a\r\nSubject: s\r\n");
    }
}
