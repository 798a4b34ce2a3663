//! The IMAP backend: one selected folder of one account, over one session.
//!
//! - fetch: `BODY.PEEK` only (never \Seen); a message within `max_scan_bytes` is fetched
//!   whole in large UID batches; a bigger one gets its header plus only its text parts
//!   (from BODYSTRUCTURE), each capped — attachments are never downloaded;
//! - file: `UID MOVE` (RFC 6851) one set per destination; without MOVE,
//!   `UID COPY` + `UID STORE +FLAGS.SILENT (\Deleted)` + `UID EXPUNGE` of exactly those
//!   UIDs (UIDPLUS) — never a bare EXPUNGE;
//! - folders are created on demand with the server's delimiter, modified UTF-7 names,
//!   and neutralised levels (see `names`);
//! - wait: IDLE with an overall deadline (keepalives reset async-imap's own timer), or NOOP
//!   polling.
//!
//! Every command runs under a timeout; any error leaves the session unusable and the
//! caller reconnects.

pub mod connect;
mod fetch;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use async_imap::extensions::idle::IdleResponse;
use futures_util::TryStreamExt;
use tokio_util::sync::CancellationToken;

pub use connect::{Caps, ConnectError, ImapSession};

use super::names::{encode_mutf7, server_name};
use super::{
    normalize_message_id, storable, uid_sets, Fetched, FileError, MailSource, MessageKey, Permanent,
};

/// Runs a command future under a timeout; a timeout is an error (the session is then dropped).
async fn timed<T, E: Into<anyhow::Error>>(
    what: &str,
    dur: Duration,
    f: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    match tokio::time::timeout(dur, f).await {
        Ok(r) => r.map_err(Into::into).with_context(|| what.to_string()),
        Err(_) => Err(anyhow!("timed out after {}s while {what}", dur.as_secs())),
    }
}

/// The state of a selected folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub exists: u32,
}

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// The server announced a change (new mail, expunge, flags).
    Changed,
    /// The wait's time ran out (time for the safety-net check).
    Timeout,
    /// Shutdown was requested.
    Cancelled,
}

/// One watched folder on an IMAP server.
pub struct ImapFolder {
    account: String,
    folder: String,
    session: Option<ImapSession>,
    caps: Caps,
    delimiter: Option<char>,
    selected: Selected,
    /// The server refused a `.` inside a folder name once: neutralise dots from now on.
    no_dots: bool,
    /// Server names of folders known to exist.
    known: HashSet<String>,
    /// Longest wait for one command.
    timeout: Duration,
    /// What the selected folder's PERMANENTFLAGS allow.
    permanent: Permanent,
}

/// Is this async-imap error the server saying NO (as opposed to a broken connection)?
fn server_no(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .find_map(|c| match c.downcast_ref::<async_imap::error::Error>() {
            Some(async_imap::error::Error::No(m)) => Some(m.clone()),
            _ => None,
        })
}

impl ImapFolder {
    /// Takes over a logged-in session and selects `folder`.
    pub async fn open(
        mut session: ImapSession,
        account: &str,
        folder: &str,
        timeout: Duration,
    ) -> Result<ImapFolder> {
        let caps = connect::capabilities(&mut session, timeout).await?;
        let delimiter = connect::delimiter(&mut session, timeout).await?;
        let mut f = ImapFolder {
            account: account.to_string(),
            folder: folder.to_string(),
            session: Some(session),
            caps,
            delimiter,
            selected: Selected {
                uidvalidity: 0,
                uidnext: 0,
                exists: 0,
            },
            no_dots: false,
            known: HashSet::new(),
            timeout,
            permanent: Permanent::default(),
        };
        f.refresh_known().await?;
        f.selected = f.select().await?;
        Ok(f)
    }

    /// Confirms the last stream-returning command really completed (see `fetch::confirm`).
    async fn confirm(&mut self) -> Result<()> {
        let t = self.timeout;
        fetch::confirm(self.session()?, t).await
    }

    fn session(&mut self) -> Result<&mut ImapSession> {
        self.session
            .as_mut()
            .ok_or_else(|| anyhow!("the IMAP session was lost"))
    }

    /// What the server supports.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// The folder as selected last.
    pub fn selected(&self) -> Selected {
        self.selected
    }

    fn source_name(&self) -> String {
        if self.folder.eq_ignore_ascii_case("INBOX") {
            "INBOX".to_string()
        } else if self.caps.utf8_accept {
            self.folder.clone()
        } else {
            encode_mutf7(&self.folder)
        }
    }

    /// (Re-)selects the watched folder.
    pub async fn select(&mut self) -> Result<Selected> {
        let name = self.source_name();
        let mb = timed(
            &format!("selecting {name}"),
            self.timeout,
            self.session()?.select(&name),
        )
        .await?;
        self.confirm().await?;
        self.permanent = Permanent {
            any_keyword: mb
                .permanent_flags
                .iter()
                .any(|f| matches!(f, async_imap::types::Flag::MayCreate)),
            listed: mb
                .permanent_flags
                .iter()
                .filter_map(|f| match f {
                    async_imap::types::Flag::Custom(k) => Some(k.to_string()),
                    _ => None,
                })
                .collect(),
        };
        let s = Selected {
            uidvalidity: mb.uid_validity.ok_or_else(|| {
                anyhow!("{name} has no UIDVALIDITY; the server does not support UIDs")
            })?,
            uidnext: mb.uid_next.unwrap_or(0),
            exists: mb.exists,
        };
        self.selected = s;
        Ok(s)
    }

    async fn refresh_known(&mut self) -> Result<()> {
        let names = timed("listing folders", self.timeout, async {
            let s = self.session()?;
            let list = s.list(Some(""), Some("*")).await?;
            let names: Vec<_> = list.try_collect().await?;
            Ok::<_, anyhow::Error>(names)
        })
        .await?;
        self.confirm().await?;
        self.known = names.iter().map(|n| n.name().to_string()).collect();
        Ok(())
    }

    /// UIDs above `after` (new mail since the last sync).
    pub async fn search_after(&mut self, after: u32) -> Result<Vec<u32>> {
        let query = format!("UID {}:*", after.saturating_add(1));
        let found = timed(
            "searching for new mail",
            self.timeout,
            self.session()?.uid_search(&query),
        )
        .await?;
        self.confirm().await?;
        let mut uids: Vec<u32> = found.into_iter().filter(|&u| u > after).collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// UIDs of mail delivered on or after `date` (backfill).
    pub async fn search_since(&mut self, date: chrono::NaiveDate) -> Result<Vec<u32>> {
        let query = format!("SINCE {}", date.format("%-d-%b-%Y"));
        let found = timed(
            "searching for older mail",
            self.timeout,
            self.session()?.uid_search(&query),
        )
        .await?;
        self.confirm().await?;
        let mut uids: Vec<u32> = found.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Keeps the session alive and collects pending server news (polling mode).
    pub async fn noop(&mut self) -> Result<()> {
        // A plain NOOP ends quietly on a closed connection; this one insists on its OK.
        self.confirm().await
    }

    /// Drops news the server sent so far; true when any of it could mean new mail.
    fn drain_unsolicited(&mut self) -> bool {
        let Some(s) = self.session.as_mut() else {
            return false;
        };
        let mut changed = false;
        while let Ok(r) = s.unsolicited_responses.try_recv() {
            if matches!(
                r,
                async_imap::types::UnsolicitedResponse::Exists(_)
                    | async_imap::types::UnsolicitedResponse::Recent(_)
            ) {
                changed = true;
            }
        }
        changed
    }

    /// Waits in IDLE for at most `max` (re-issued by the caller well before the server's
    /// 29-minute limit), or until `cancel` fires.
    pub async fn idle(&mut self, max: Duration, cancel: &CancellationToken) -> Result<Woke> {
        // News that arrived since the last sync means there is work already: no IDLE.
        if self.drain_unsolicited() {
            return Ok(Woke::Changed);
        }
        let session = self
            .session
            .take()
            .ok_or_else(|| anyhow!("the IMAP session was lost"))?;
        let mut handle = session.idle();
        timed("starting IDLE", self.timeout, handle.init()).await?;
        let woke = {
            let (fut, stop) = handle.wait_with_timeout(max);
            tokio::pin!(fut);
            let mut stop = Some(stop);
            // async-imap's timer restarts on every keepalive; this deadline does not.
            let deadline = tokio::time::sleep(max + Duration::from_secs(5));
            tokio::pin!(deadline);
            let outcome = tokio::select! {
                r = &mut fut => Some(r),
                _ = cancel.cancelled() => None,
                _ = &mut deadline => None,
            };
            let r = match outcome {
                Some(r) => r.context("waiting in IDLE")?,
                None => {
                    drop(stop.take());
                    timed("leaving IDLE", self.timeout, async {
                        Ok::<_, anyhow::Error>(fut.await?)
                    })
                    .await?
                }
            };
            drop(stop);
            match r {
                IdleResponse::NewData(_) => Woke::Changed,
                IdleResponse::Timeout => Woke::Timeout,
                IdleResponse::ManualInterrupt if cancel.is_cancelled() => Woke::Cancelled,
                IdleResponse::ManualInterrupt => Woke::Timeout,
            }
        };
        let session = timed("leaving IDLE", self.timeout, handle.done()).await?;
        self.session = Some(session);
        Ok(woke)
    }

    /// Logs out politely (best effort).
    pub async fn logout(mut self) {
        if let Some(mut s) = self.session.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), s.logout()).await;
        }
    }

    /// The server name of a destination, creating the folder when it does not exist.
    async fn ensure_folder(&mut self, levels: &[String]) -> Result<String, FileError> {
        for attempt in 0..2 {
            let name = server_name(levels, self.delimiter, self.caps.utf8_accept, self.no_dots);
            if self.known.contains(&name) {
                return Ok(name);
            }
            let created = timed(
                &format!("creating {name}"),
                self.timeout,
                self.session()?.create(&name),
            )
            .await;
            match created {
                Ok(()) => {
                    let _ = timed(
                        "subscribing",
                        self.timeout,
                        self.session()?.subscribe(&name),
                    )
                    .await;
                    self.known.insert(name.clone());
                    return Ok(name);
                }
                Err(e) => match server_no(&e) {
                    Some(m)
                        if m.to_ascii_uppercase().contains("ALREADYEXISTS")
                            || m.to_lowercase().contains("already exists") =>
                    {
                        self.known.insert(name.clone());
                        return Ok(name);
                    }
                    Some(m)
                        if attempt == 0
                            && !self.no_dots
                            && levels.iter().any(|l| l.contains('.')) =>
                    {
                        tracing::info!(account = %self.account, "the server refused a '.' in a folder name ({m}); using names without dots");
                        self.no_dots = true;
                    }
                    Some(m) => {
                        return Err(FileError::Refused(format!(
                            "cannot create folder {name}: {m}"
                        )))
                    }
                    None => return Err(FileError::Broken(e)),
                },
            }
        }
        Err(FileError::Refused(
            "cannot find an acceptable folder name".into(),
        ))
    }

    /// Removes exactly these UIDs: \Deleted, then UID EXPUNGE of them only.
    async fn delete_uids(&mut self, set: &str) -> Result<(), FileError> {
        if !self.caps.uidplus {
            return Err(FileError::Refused(
                "the server has neither MOVE nor UIDPLUS; removing only our messages is impossible, so they stay in place".into(),
            ));
        }
        let r = timed("marking copied messages deleted", self.timeout, async {
            let s = self.session()?;
            let stream = s.uid_store(set, "+FLAGS.SILENT (\\Deleted)").await?;
            let _: Vec<_> = stream.try_collect().await?;
            Ok::<_, anyhow::Error>(())
        })
        .await;
        classify(r)?;
        self.confirm().await.map_err(FileError::Broken)?;
        let r = timed("expunging copied messages", self.timeout, async {
            let s = self.session()?;
            let stream = s.uid_expunge(set).await?;
            let _: Vec<_> = stream.try_collect().await?;
            Ok::<_, anyhow::Error>(())
        })
        .await;
        classify(r)?;
        self.confirm().await.map_err(FileError::Broken)
    }

    /// Finds a source message's twin in `dest` by size, date and header (for messages
    /// without a Message-ID after an interrupted copy).
    async fn twin_in(&mut self, dest: &str, uid: u32) -> Result<bool> {
        let t = self.timeout;
        let Some(src) = fetch::identity(self.session()?, uid, t).await? else {
            return Ok(false);
        };
        if let Err(e) = timed("examining", t, self.session()?.examine(dest)).await {
            // As in holds_many: NO means no such folder, anything else a broken session.
            if server_no(&e).is_none() {
                return Err(e);
            }
            self.reselect().await?;
            return Ok(false);
        }
        let query = format!(
            "LARGER {} SMALLER {}",
            src.size.saturating_sub(1),
            src.size + 1
        );
        let candidates = timed("searching", t, self.session()?.uid_search(&query)).await?;
        self.confirm().await?;
        let mut twin = false;
        for c in candidates {
            if fetch::identity(self.session()?, c, t).await?.as_ref() == Some(&src) {
                twin = true;
                break;
            }
        }
        self.reselect().await?;
        Ok(twin)
    }

    /// Re-selects the source after looking into another folder; its UIDVALIDITY must not
    /// have changed meanwhile.
    async fn reselect(&mut self) -> Result<()> {
        let before = self.selected.uidvalidity;
        let now = self.select().await?;
        if now.uidvalidity != before {
            return Err(anyhow!(
                "UIDVALIDITY of {} changed during recovery",
                self.folder
            ));
        }
        Ok(())
    }
}

/// Does a NO say the destination folder does not exist?
fn folder_missing(m: &str) -> bool {
    let l = m.to_lowercase();
    m.contains("TRYCREATE") || l.contains("doesn't exist") || l.contains("does not exist")
}

impl ImapFolder {
    /// One UID set into one folder: MOVE, or COPY then remove exactly those UIDs.
    async fn move_set(&mut self, set: &str, name: &str) -> Result<(), FileError> {
        let has_move = self.caps.r#move;
        let timeout = self.timeout;
        let session = self.session().map_err(FileError::Broken)?;
        if has_move {
            let r = timed(
                &format!("moving to {name}"),
                timeout,
                session.uid_mv(set, name),
            )
            .await;
            classify(r)
        } else {
            let r = timed(
                &format!("copying to {name}"),
                timeout,
                session.uid_copy(set, name),
            )
            .await;
            classify(r)?;
            self.delete_uids(set).await
        }
    }
}

/// Maps a command outcome to "the server refused" versus "the session is broken".
fn classify(r: Result<()>) -> Result<(), FileError> {
    match r {
        Ok(()) => Ok(()),
        Err(e) => match server_no(&e) {
            Some(m) => Err(FileError::Refused(m)),
            None => Err(FileError::Broken(e)),
        },
    }
}

impl MailSource for ImapFolder {
    fn account(&self) -> &str {
        &self.account
    }

    fn folder(&self) -> &str {
        &self.folder
    }

    async fn fetch(
        &mut self,
        keys: &[MessageKey],
        max_scan_bytes: usize,
        dates: bool,
    ) -> Result<Vec<Fetched>> {
        let uidvalidity = self.selected.uidvalidity;
        let uids: Vec<u32> = keys.iter().map(|k| k.uid).collect();
        let t = self.timeout;
        let session = self.session()?;
        fetch::fetch(session, uidvalidity, &uids, max_scan_bytes, dates, t).await
    }

    async fn file(&mut self, keys: &[MessageKey], dest: &[String]) -> Result<(), FileError> {
        // Gmail's own folders (All Mail, Spam, Trash, ...) are never a destination: a
        // move there would delete, spam or archive the mail instead of routing it.
        if dest
            .first()
            .is_some_and(|top| crate::config::is_gmail_special(top))
        {
            return Err(FileError::Refused(format!(
                "{} is under Gmail's own [Gmail] folder; mailtriage never files there (change the profile's folder names)",
                dest.join("/")
            )));
        }
        let uids: Vec<u32> = keys.iter().map(|k| k.uid).collect();
        for set in uid_sets(&uids) {
            let mut retried = false;
            loop {
                let name = self.ensure_folder(dest).await?;
                match self.move_set(&set, &name).await {
                    // The folder was deleted under us (our cache said it existed): create it again, once.
                    Err(FileError::Refused(m)) if !retried && folder_missing(&m) => {
                        tracing::info!(account = %self.account, folder = %name, "destination folder disappeared; creating it again");
                        self.known.remove(&name);
                        retried = true;
                    }
                    other => {
                        other?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    async fn present(&mut self, keys: &[MessageKey]) -> Result<Vec<MessageKey>> {
        let uids: Vec<u32> = keys.iter().map(|k| k.uid).collect();
        let mut found: HashSet<u32> = HashSet::new();
        for set in uid_sets(&uids) {
            let r = timed(
                "checking messages",
                self.timeout,
                self.session()?.uid_search(format!("UID {set}")),
            )
            .await?;
            self.confirm().await?;
            found.extend(r);
        }
        Ok(keys
            .iter()
            .filter(|k| found.contains(&k.uid))
            .cloned()
            .collect())
    }

    fn atomic_moves(&self) -> bool {
        self.caps.r#move
    }

    async fn holds_many(
        &mut self,
        dest: &[String],
        message_ids: &[String],
    ) -> Result<HashSet<String>> {
        let wanted: Vec<String> = message_ids
            .iter()
            .map(|id| normalize_message_id(id))
            .filter(|id| !id.is_empty() && !id.contains(['"', '\\', '\r', '\n']))
            .collect();
        let mut found = HashSet::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        let name = server_name(dest, self.delimiter, self.caps.utf8_accept, self.no_dots);
        let t = self.timeout;
        if let Err(e) = timed("examining", t, self.session()?.examine(&name)).await {
            // A NO means there is no such folder: it holds nothing. Anything else is a
            // broken session, and "nothing found" would be a lie.
            if server_no(&e).is_none() {
                return Err(e);
            }
            self.reselect().await?;
            return Ok(found);
        }
        let mut uids: Vec<u32> = Vec::new();
        for chunk in wanted.chunks(40) {
            // IMAP's OR takes two keys: OR a OR b OR c d.
            let mut query = String::new();
            for (i, id) in chunk.iter().enumerate() {
                if i + 1 < chunk.len() {
                    query.push_str("OR ");
                }
                query.push_str(&format!("HEADER Message-ID \"{id}\" "));
            }
            let r = timed(
                "searching by Message-ID",
                t,
                self.session()?.uid_search(query.trim_end()),
            )
            .await?;
            self.confirm().await?;
            uids.extend(r);
        }
        // The search matches substrings: confirm each hit's exact Message-ID.
        for set in uid_sets(&uids) {
            let got = fetch::message_ids(self.session()?, &set, t).await?;
            found.extend(
                got.into_iter()
                    .map(|id| normalize_message_id(&id))
                    .filter(|id| wanted.contains(id)),
            );
        }
        self.reselect().await?;
        Ok(found)
    }

    async fn holds_key(&mut self, dest: &[String], key: &MessageKey) -> Result<bool> {
        let name = server_name(dest, self.delimiter, self.caps.utf8_accept, self.no_dots);
        self.twin_in(&name, key.uid).await
    }

    async fn file_remove_source(&mut self, keys: &[MessageKey]) -> Result<(), FileError> {
        let uids: Vec<u32> = keys.iter().map(|k| k.uid).collect();
        for set in uid_sets(&uids) {
            self.delete_uids(&set).await?;
        }
        Ok(())
    }

    async fn mark(
        &mut self,
        keys: &[MessageKey],
        flag: bool,
        keywords: &[String],
    ) -> Result<Vec<String>, FileError> {
        let (flags, skipped) = storable(flag, keywords, &self.permanent);
        if !skipped.is_empty() {
            tracing::debug!(account = %self.account, folder = %self.folder, skipped = ?skipped,
                "the folder's PERMANENTFLAGS do not allow these keywords; not setting them");
        }
        if flags.is_empty() {
            return Ok(skipped);
        }
        let command = format!("+FLAGS.SILENT ({})", flags.join(" "));
        let uids: Vec<u32> = keys.iter().map(|k| k.uid).collect();
        for set in uid_sets(&uids) {
            let r = timed("flagging escalated messages", self.timeout, async {
                let s = self.session()?;
                let stream = s.uid_store(&set, &command).await?;
                let _: Vec<_> = stream.try_collect().await?;
                Ok::<_, anyhow::Error>(())
            })
            .await;
            classify(r)?;
            self.confirm().await.map_err(FileError::Broken)?;
        }
        Ok(skipped)
    }

    async fn copy_to(&mut self, keys: &[MessageKey], dest: &[String]) -> Result<(), FileError> {
        let uids: Vec<u32> = keys.iter().map(|k| k.uid).collect();
        for set in uid_sets(&uids) {
            let mut retried = false;
            loop {
                let name = self.ensure_folder(dest).await?;
                let timeout = self.timeout;
                let session = self.session().map_err(FileError::Broken)?;
                let r = timed(
                    &format!("copying to {name}"),
                    timeout,
                    session.uid_copy(&set, &name),
                )
                .await;
                match classify(r) {
                    // Deleted under us: create it again, once (as when filing).
                    Err(FileError::Refused(m)) if !retried && folder_missing(&m) => {
                        self.known.remove(&name);
                        retried = true;
                    }
                    other => {
                        other?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}
