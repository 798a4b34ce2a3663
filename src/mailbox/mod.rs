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
    /// Flags other than \Deleted survive; \Seen is never set.
    async fn file(&mut self, keys: &[MessageKey], dest: &[String]) -> Result<(), FileError>;
    /// Which of these messages are still in the source folder.
    async fn present(&mut self, keys: &[MessageKey]) -> Result<Vec<MessageKey>>;
    /// Are moves atomic (UID MOVE, a rename)? Then a message still in the source was not
    /// moved, and recovery need not look for a copy in the destination.
    fn atomic_moves(&self) -> bool;
    /// Which of these Message-IDs (normalised: trimmed, lowercase, no angle brackets) the
    /// folder given as levels holds — one round of searching per folder, not per message.
    async fn holds_many(
        &mut self,
        dest: &[String],
        message_ids: &[String],
    ) -> Result<std::collections::HashSet<String>>;
    /// Does the folder given as levels hold this very message (same key)? Only backends
    /// whose keys survive a move (Maildir file names) can say; others answer false.
    async fn holds_key(&mut self, dest: &[String], key: &MessageKey) -> Result<bool>;
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
}
