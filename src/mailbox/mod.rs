//! Mail backends: where messages come from and where they are filed.
//!
//! - [`imap`] — any IMAP server (IDLE or polling, UID MOVE or COPY + UID EXPUNGE);
//! - [`maildir`] — a local Maildir++ tree as Dovecot lays it out (filesystem events,
//!   atomic renames).
//!
//! Both implement [`MailSource`], which is all the pipeline needs: fetch what triage
//! reads, file a group of messages into one folder, and answer the questions crash
//! recovery asks (is the message still here? is it already there?).

pub mod imap;
pub mod maildir;
pub mod names;

use std::borrow::Cow;

use anyhow::Result;

/// A message's identity in its source folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey {
    /// IMAP UID (0 for Maildir).
    pub uid: u32,
    /// Stable key: "uidvalidity:uid" for IMAP, the unique file name for Maildir.
    pub key: String,
}

/// What triage needs of one message: its bytes (headers and text parts, capped) and the
/// little the server says about it.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub key: MessageKey,
    pub raw: Vec<u8>,
    /// Unix time the message was delivered, when known (IMAP: only when asked for).
    pub internal_date: Option<i64>,
    pub size: u64,
    /// What tells this message from others with the same Message-ID (or none).
    pub signature: Signature,
}

/// Bytes of the body that go into a [`Signature`].
pub const SIGNATURE_BODY_BYTES: usize = 2048;

/// Most bytes of a message's header block that are read (IMAP `BODY.PEEK[HEADER]<0.N>`)
/// and looked at. Real headers, long `Received:`, DKIM, ARC and `References:` chains
/// included, stay within tens of KiB; a header line of 150 MB is an attack or a broken
/// mailer, and read whole it cost the daemon twice its size in memory. 256 KiB is ten
/// times a long real header and leaves three quarters of the smallest parse limit
/// ([`crate::mail::parse_limit`], 1 MiB) to the message's text. A header cut here is
/// still parsed, decided and filed.
pub const MAX_HEADER_BYTES: usize = 256 * 1024;

/// Most bytes of one MIME part's own header block read for triage (`BODY.PEEK[n.MIME]`):
/// real ones hold a Content-Type, an encoding and a file name, well under 1 KiB.
pub const MAX_PART_HEADER_BYTES: usize = 64 * 1024;

/// Bytes of the header block that go into a [`Signature`]: 4 fewer than
/// [`MAX_HEADER_BYTES`], so that the blank line ending a header block never counts, and a
/// header read through a capped fetch hashes the same as one cut out of the whole
/// message (whichever way a message was read, by which backend, in which run).
pub const SIGNATURE_HEADER_BYTES: usize = MAX_HEADER_BYTES - 4;

/// What tells one stored message from another beyond its Message-ID: its size, a hash of
/// its header (its first [`SIGNATURE_HEADER_BYTES`]), and a hash of the first
/// [`SIGNATURE_BODY_BYTES`] of its body when the body was read (a large message's body is not: only its text parts are, and those are not
/// its first bytes). A message moved by IMAP or renamed in a Maildir keeps all three; two
/// deliveries of one message differ in their `Received:` lines; two messages written from
/// one template differ in size or in their first lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    pub size: u64,
    pub header: u64,
    pub body: Option<u64>,
}

impl Signature {
    /// The signature of a message read whole (or its prefix, cut after the header).
    pub fn of_whole(raw: &[u8], size: u64) -> Signature {
        let (header, body) = split_header(raw);
        Signature::of_parts(header, size, Some(body))
    }

    /// The signature of a message from its header block (with or without the blank line
    /// that ends it; whole, or its first [`MAX_HEADER_BYTES`] or more) and, when read, its
    /// body's first bytes.
    pub fn of_parts(header: &[u8], size: u64, body: Option<&[u8]>) -> Signature {
        let header = header
            .strip_suffix(b"\r\n\r\n")
            .or_else(|| header.strip_suffix(b"\n\n"))
            .unwrap_or(header);
        // A header longer than the cap was read only in part: what counts is what every
        // reader has, its first bytes (see SIGNATURE_HEADER_BYTES).
        let header = header.get(..SIGNATURE_HEADER_BYTES).unwrap_or(header);
        Signature {
            size,
            header: crate::mail::hash_parts(&[header]),
            body: body
                .map(|b| crate::mail::hash_parts(&[b.get(..SIGNATURE_BODY_BYTES).unwrap_or(b)])),
        }
    }

    /// As stored: `size:header:body` in hex, `-` for a body not read.
    pub fn encode(&self) -> String {
        match self.body {
            Some(b) => format!("{}:{:016x}:{b:016x}", self.size, self.header),
            None => format!("{}:{:016x}:-", self.size, self.header),
        }
    }

    /// The stored form read back; `None` for an empty (older) or damaged one.
    pub fn decode(s: &str) -> Option<Signature> {
        let mut it = s.split(':');
        let size = it.next()?.parse().ok()?;
        let header = u64::from_str_radix(it.next()?, 16).ok()?;
        let body = match it.next()? {
            "-" => None,
            b => Some(u64::from_str_radix(b, 16).ok()?),
        };
        it.next()
            .is_none()
            .then_some(Signature { size, header, body })
    }

    /// Does a message seen with `other` (read whole or not) have this signature? A body
    /// hash is compared only where both sides read the body.
    pub fn matches(&self, other: &Signature) -> bool {
        self.size == other.size
            && self.header == other.header
            && match (self.body, other.body) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// A message's header block (up to the blank line that ends it, not included) and body.
/// A message with no blank line is all header, as an IMAP server's `BODY[HEADER]` has it
/// (so are the bytes of a longer one read only in part).
pub fn split_header(raw: &[u8]) -> (&[u8], &[u8]) {
    if let Some(p) = memchr::memmem::find(raw, b"\r\n\r\n") {
        return (&raw[..p], &raw[p + 4..]);
    }
    if let Some(p) = memchr::memmem::find(raw, b"\n\n") {
        return (&raw[..p], &raw[p + 2..]);
    }
    (raw, &[])
}

/// Ends the last line of `bytes` (a header cut by its cap may stop anywhere, even between
/// CR and LF), so that what is appended starts a line of its own.
pub(crate) fn end_line(bytes: &mut Vec<u8>) {
    match bytes.last() {
        None | Some(b'\n') => {}
        Some(b'\r') => bytes.push(b'\n'),
        Some(_) => bytes.extend_from_slice(b"\r\n"),
    }
}

/// Is this header block whole: does it end with the blank line (an empty header is that
/// line alone)? One cut by its cap does not.
pub(crate) fn header_complete(header: &[u8]) -> bool {
    header.ends_with(b"\r\n\r\n")
        || header.ends_with(b"\n\n")
        || header == b"\r\n"
        || header == b"\n"
}

/// A header block as read, ended with a line break and the blank line when its cap cut
/// it, so that what follows it is read as the body and not as the rest of a field.
pub(crate) fn ended(header: &[u8]) -> Cow<'_, [u8]> {
    if header.is_empty() || header_complete(header) {
        return Cow::Borrowed(header);
    }
    let mut out = header.to_vec();
    end_line(&mut out);
    out.extend_from_slice(b"\r\n");
    Cow::Owned(out)
}

/// A destination as its backend names it, for people: `INBOX.SUPPORT.Night-Day Crew`
/// where the decision says `SUPPORT/Night/Day Crew`.
pub fn shown(naming: &names::Naming, levels: &[String]) -> String {
    naming.shown(&naming.server_name(levels))
}

/// A message recovery looks for in a destination folder.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// Its key in the source folder (a Maildir file keeps it when moved).
    pub key: &'a MessageKey,
    /// Its Message-ID, normalised ([`normalize_message_id`]).
    pub message_id: Option<&'a str>,
    /// Its signature when it was decided (decisions recorded by older versions have none).
    pub signature: Option<Signature>,
}

/// Where a move put messages, when the server says (RFC 4315 COPYUID): the destination's
/// UIDVALIDITY and each source UID's new UID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moved {
    pub uidvalidity: u32,
    pub uids: std::collections::HashMap<u32, u32>,
}

impl Moved {
    /// The new position of the message that had `uid` in the source, if known.
    pub fn of(&self, uid: u32) -> Option<(u32, u32)> {
        self.uids.get(&uid).map(|&u| (self.uidvalidity, u))
    }
}

/// Why a filing operation failed, for the caller's retry decision.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The server refused (quota, permissions, bad name): retry later, message stays put.
    #[error("the server refused: {0}")]
    Refused(String),
    /// The connection or storage failed: the session is unusable; reconnect.
    #[error(transparent)]
    Broken(#[from] anyhow::Error),
}

/// A watched folder of some backend.
#[allow(async_fn_in_trait)]
pub trait MailSource {
    /// Account name, for logs and state.
    fn account(&self) -> &str;
    /// Folder name as configured (e.g. INBOX).
    fn folder(&self) -> &str;
    /// How this backend names destinations (for logs: the folder as the server has it).
    fn naming(&self) -> names::Naming;
    /// Reads what triage needs of these messages; missing ones are left out. With
    /// `dates`, also when each was delivered (an IMAP server stats every message file for
    /// that, so it is asked only when a date filter needs it).
    async fn fetch(
        &mut self,
        keys: &[MessageKey],
        max_scan_bytes: usize,
        dates: bool,
    ) -> Result<Vec<Fetched>>;
    /// Moves these messages into the folder given as levels, creating it if needed.
    /// Flags other than \Deleted survive; \Seen is never set. Says where they went when
    /// the server tells (COPYUID).
    async fn file(&mut self, keys: &[MessageKey], dest: &[String]) -> Result<Moved, FileError>;
    /// Which of these messages are still in the source folder.
    async fn present(&mut self, keys: &[MessageKey]) -> Result<Vec<MessageKey>>;
    /// Are moves atomic (UID MOVE, a rename)? Then a message still in the source was not
    /// moved, and recovery need not look for a copy in the destination.
    fn atomic_moves(&self) -> bool;
    /// Which of these messages the folder given as levels holds, each found by what
    /// identifies it (Message-ID and signature; a Maildir file by its unique name), with
    /// its UID there when known: one round of searching per folder, not per message.
    async fn find_copies(
        &mut self,
        dest: &[String],
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<Option<Found>>>;
    /// Removes messages from the source whose copy is already in place (the second half
    /// of a copy-then-delete move interrupted by a crash). Removes exactly these, nothing else.
    async fn file_remove_source(&mut self, keys: &[MessageKey]) -> Result<(), FileError>;
    /// Adds \Flagged (when `flag`) and keywords to messages in the source folder; keywords
    /// the folder cannot keep are skipped quietly and returned. Never touches \Seen or
    /// the message's content. Repeating it changes nothing.
    async fn mark(
        &mut self,
        keys: &[MessageKey],
        flag: bool,
        keywords: &[String],
    ) -> Result<Vec<String>, FileError>;
    /// Copies messages into the folder given as levels (created if needed); the
    /// originals stay where they are.
    async fn copy_to(&mut self, keys: &[MessageKey], dest: &[String]) -> Result<(), FileError>;
}

/// A message found in a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Its (UIDVALIDITY, UID) there, when the backend has UIDs.
    pub position: Option<(u32, u32)>,
}

/// Which flags a folder keeps (IMAP PERMANENTFLAGS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permanent {
    /// `\*`: any new keyword may be created.
    pub any_keyword: bool,
    /// Keywords listed explicitly.
    pub listed: Vec<String>,
}

/// The flags to store for an escalation mark, and the keywords left out because the
/// folder cannot keep them.
pub fn storable(
    flag: bool,
    keywords: &[String],
    permanent: &Permanent,
) -> (Vec<String>, Vec<String>) {
    let mut set: Vec<String> = Vec::new();
    let mut skipped = Vec::new();
    if flag {
        set.push("\\Flagged".to_string());
    }
    for k in keywords {
        let allowed =
            permanent.any_keyword || permanent.listed.iter().any(|l| l.eq_ignore_ascii_case(k));
        if allowed {
            set.push(k.clone());
        } else {
            skipped.push(k.clone());
        }
    }
    (set, skipped)
}

/// A Message-ID in the form used for comparisons: trimmed, lowercase, no angle brackets.
pub fn normalize_message_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_lowercase()
}

/// Compresses sorted UIDs into an IMAP sequence set ("1:5,7,9:12"), in chunks short
/// enough for one command line each.
pub fn uid_sets(uids: &[u32]) -> Vec<String> {
    let mut sorted: Vec<u32> = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut sets = Vec::new();
    let mut cur = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        let piece = if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        };
        if cur.len() + piece.len() + 1 > 4000 {
            sets.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(',');
        }
        cur.push_str(&piece);
        i += 1;
    }
    if !cur.is_empty() {
        sets.push(cur);
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_stored_only_where_the_folder_keeps_them() {
        let kw = vec!["$Escalated".to_string(), "$Priority_URGENT".to_string()];
        let any = Permanent {
            any_keyword: true,
            listed: Vec::new(),
        };
        assert_eq!(
            storable(true, &kw, &any),
            (
                vec![
                    "\\Flagged".into(),
                    "$Escalated".into(),
                    "$Priority_URGENT".into()
                ],
                vec![]
            )
        );
        // PERMANENTFLAGS without \*: only listed keywords; the rest skipped quietly.
        let some = Permanent {
            any_keyword: false,
            listed: vec!["$escalated".into()],
        };
        assert_eq!(
            storable(true, &kw, &some),
            (
                vec!["\\Flagged".into(), "$Escalated".into()],
                vec!["$Priority_URGENT".into()]
            )
        );
        assert_eq!(
            storable(false, &kw, &Permanent::default()),
            (vec![], kw.clone())
        );
    }

    #[test]
    fn uid_sets_compress_ranges() {
        assert_eq!(uid_sets(&[5, 1, 2, 3, 7, 9, 10, 11]), vec!["1:3,5,7,9:11"]);
        assert!(uid_sets(&[]).is_empty());
        let many: Vec<u32> = (1..5000).map(|i| i * 2).collect();
        let sets = uid_sets(&many);
        assert!(sets.len() > 1 && sets.iter().all(|s| s.len() <= 4000));
    }

    /// Issue 17: messages without a Message-ID whose headers were identical, and
    /// messages sharing one Message-ID, were taken for one another.
    #[test]
    fn signatures_tell_apart_what_ids_do_not() {
        let a = b"From: a@x\r\nSubject: Order\r\n\r\nOrder number 1001\r\n";
        let b = b"From: a@x\r\nSubject: Order\r\n\r\nOrder number 1002\r\n";
        let sa = Signature::of_whole(a, a.len() as u64);
        let sb = Signature::of_whole(b, b.len() as u64);
        assert_eq!((sa.size, sa.header), (sb.size, sb.header));
        assert_ne!(sa, sb);
        assert!(!sa.matches(&sb));
        // The same message read through its header and body prefix (as for a large one,
        // or in recovery) has the same signature.
        let (h, body) = split_header(a);
        assert_eq!(h, b"From: a@x\r\nSubject: Order");
        let header_block = b"From: a@x\r\nSubject: Order\r\n\r\n";
        assert_eq!(
            Signature::of_parts(header_block, a.len() as u64, Some(body)),
            sa
        );
        // Without a body read, only size and header are compared.
        let no_body = Signature::of_parts(header_block, a.len() as u64, None);
        assert!(no_body.matches(&sa) && sa.matches(&no_body));
        assert!(!no_body.matches(&Signature::of_whole(a, 1)));
        // Stored and read back.
        for s in [sa, no_body] {
            assert_eq!(Signature::decode(&s.encode()), Some(s));
        }
        assert_eq!(Signature::decode(""), None);
        assert_eq!(Signature::decode("12:zz:-"), None);
        assert_eq!(Signature::decode("12:1:2:3"), None);
        // LF-only messages split the same way.
        assert_eq!(split_header(b"A: b\n\nbody").0, b"A: b");
        assert_eq!(split_header(b"A: b").1, b"");
    }

    /// Issue 19: a header cut by its cap (mid-line, or between CR and LF) is ended where it
    /// was cut, so the text that follows is read as the body; a whole one is kept as it is.
    #[test]
    fn headers_cut_by_their_cap_are_ended() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"A: b\r\n\r\n", b"A: b\r\n\r\n"),
            (b"A: b\n\n", b"A: b\n\n"),
            (b"\r\n", b"\r\n"),
            (b"", b""),
            (b"A: b\r\nX: aaa", b"A: b\r\nX: aaa\r\n\r\n"),
            (b"A: b\r\nX: aaa\r", b"A: b\r\nX: aaa\r\n\r\n"),
            (b"A: b\r\nX: aaa\r\n", b"A: b\r\nX: aaa\r\n\r\n"),
        ];
        for (header, want) in cases {
            assert_eq!(
                &*ended(header),
                *want,
                "{:?}",
                String::from_utf8_lossy(header)
            );
        }
    }

    /// Issue 19: a header longer than the cap is read only in part (IMAP
    /// `BODY.PEEK[HEADER]<0.N>`: for a large message, and in recovery), but the same
    /// message fetched whole (a larger `max_scan_bytes`, an earlier run) or read from a
    /// Maildir must keep its signature: both hash the same first bytes. Header lengths
    /// around the cap, CRLF and LF, and a message without a blank line (the server's
    /// `BODY[HEADER]` is then the whole message).
    #[test]
    fn signatures_agree_on_headers_cut_by_the_cap() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for eol in ["\r\n", "\n"] {
            for len in (MAX_HEADER_BYTES - 8..MAX_HEADER_BYTES + 8).chain([3 * MAX_HEADER_BYTES]) {
                let mut m = format!("From: a@x{eol}X-Long: ").into_bytes();
                let fill = len.saturating_sub(m.len() + 2 * eol.len());
                m.extend(std::iter::repeat_n(b'a', fill));
                m.extend_from_slice(format!("{eol}{eol}body text{eol}").as_bytes());
                cases.push(m);
            }
        }
        let mut no_blank = b"From: a@x\r\nX-Long: ".to_vec();
        no_blank.extend(std::iter::repeat_n(b'a', MAX_HEADER_BYTES));
        cases.push(no_blank);
        for m in &cases {
            let size = m.len() as u64;
            let whole = Signature::of_whole(m, size);
            let (h, body) = split_header(m);
            // BODY[HEADER]: the header with its blank line (the whole message if none).
            let block_end = if body.is_empty() && h.len() == m.len() {
                m.len()
            } else {
                m.len() - body.len()
            };
            let block = &m[..block_end];
            let fetched = &block[..block.len().min(MAX_HEADER_BYTES)];
            let text = &body[..body.len().min(SIGNATURE_BODY_BYTES)];
            assert_eq!(
                Signature::of_parts(fetched, size, Some(text)),
                whole,
                "header block of {} bytes",
                block.len()
            );
            assert!(Signature::of_parts(fetched, size, None).matches(&whole));
            // A Maildir reads the first parse-limit bytes (1 MiB or more) of a file.
            let prefix = &m[..m.len().min(1024 * 1024)];
            assert_eq!(Signature::of_whole(prefix, size).header, whole.header);
        }
        // Headers that differ only past the cap are not told apart by it (their size and
        // body still may be); ones that differ before it are.
        let (a, b) = (&cases[0], &cases[1]);
        assert_ne!(
            Signature::of_whole(a, 1).header,
            Signature::of_whole(b, 1).header
        );
    }
}
