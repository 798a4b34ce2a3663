//! The IMAP backend: one selected folder of one account, over one session.
//!
//! - folders live in the server's personal namespace (RFC 2342 NAMESPACE: `INBOX.` on
//!   Cyrus and many hosting servers), with its delimiter, modified UTF-7 names and
//!   neutralised levels (see `names`); created on demand;
//! - new mail is found with one `UID FETCH last+1:* (UID RFC822.SIZE)`, which also gives
//!   the sizes the body fetch needs; the server's UIDNEXT and EXISTS are trusted, so a
//!   sync that nothing new interrupted ends without a further command;
//! - fetch: `BODY.PEEK` only (never \Seen); a message within `max_scan_bytes` is fetched
//!   whole in large UID batches; a bigger one gets its header plus only its text parts
//!   (from BODYSTRUCTURE), each capped, the header too — attachments are never
//!   downloaded; and no literal the server announces is held beyond the parse limit
//!   (`guard`);
//! - file: `UID MOVE` (RFC 6851) one set per destination, its COPYUID kept; without
//!   MOVE, `UID COPY` + `UID STORE +FLAGS.SILENT (\Deleted)` + `UID EXPUNGE` of exactly
//!   those UIDs (UIDPLUS) — never a bare EXPUNGE;
//! - wait: IDLE with an overall deadline, left with `DONE` whose answer is read together
//!   with the next command's; or NOOP polling.
//!
//! Commands go through [`command::Conn`]: every answer is read up to its tagged
//! completion, untagged warnings (`* NO [ALERT] …`) are logged once and counted, never
//! taken for failures. Every command runs under a timeout; any error leaves the session
//! unusable and the caller reconnects.

mod command;
pub mod connect;
mod fetch;
mod guard;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use async_imap::imap_proto::{Capability, MailboxDatum, Response, ResponseCode};
use tokio_util::sync::CancellationToken;

pub use command::ServerSaid;
pub use connect::{Caps, ConnectError, ImapSession};

use super::names::{encode_mutf7, Naming};
use super::{
    storable, uid_sets, Fetched, FileError, Found, MailSource, MessageKey, Moved, Permanent, Wanted,
};
use command::Conn;
use fetch::Meta;

/// Warnings the server sent inside commands that then succeeded (an untagged NO or BAD,
/// an `[ALERT]`), by account and kind (alert, no, bad).
pub const SERVER_WARNINGS: &str = "mailtriage_imap_server_warnings_total";

/// The same server warning is logged at most once in this long (Cyrus repeats a quota
/// warning on every SELECT).
const WARN_EVERY: Duration = Duration::from_secs(10 * 60);

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
    /// The watched folder's name on the server.
    source: String,
    conn: Option<Conn>,
    caps: Caps,
    naming: Naming,
    /// The prefix came from NAMESPACE; without it, a refused top-level CREATE makes us
    /// try inside `INBOX<delimiter>` once.
    namespace_known: bool,
    selected: Selected,
    /// Server names of folders known to exist.
    known: HashSet<String>,
    /// Longest wait for one command.
    timeout: Duration,
    /// What the selected folder's PERMANENTFLAGS allow.
    permanent: Permanent,
    /// Sizes and dates from the FETCH that found the new mail, for the body fetch.
    meta: HashMap<u32, Meta>,
    /// Server warnings logged lately, and when.
    warned: HashMap<String, Instant>,
}

/// Is this error the server saying NO or BAD (as opposed to a broken connection)?
fn server_said(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .find_map(|c| c.downcast_ref::<ServerSaid>())
        .map(|s| s.text.clone())
}

/// An IMAP quoted string (RFC 3501 §4.3): `"` and `\` escaped. Names that could break
/// the line never get here (see `names`); a watched folder configured with CR or LF is
/// refused.
fn quote(s: &str) -> Result<String> {
    if s.contains(['\r', '\n', '\0']) {
        return Err(anyhow!("a folder name with a line break: {s:?}"));
    }
    Ok(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

impl ImapFolder {
    /// Takes over a logged-in session: learns what the server can do and how it names
    /// folders, then selects `folder`.
    pub async fn open(
        session: ImapSession,
        account: &str,
        folder: &str,
        timeout: Duration,
    ) -> Result<ImapFolder> {
        let mut conn = Conn::new(session);
        let caps = capabilities(&mut conn, timeout).await?;
        // NAMESPACE goes first: nothing of async-imap's may be buffered when it is read.
        let namespace = if caps.namespace {
            command::namespace(conn.session(timeout).await?, timeout).await?
        } else {
            None
        };
        let mut f = ImapFolder {
            account: account.to_string(),
            folder: folder.to_string(),
            source: String::new(),
            conn: Some(conn),
            caps,
            naming: Naming {
                utf8: caps.utf8_accept,
                ..Naming::default()
            },
            namespace_known: namespace.is_some(),
            selected: Selected {
                uidvalidity: 0,
                uidnext: 0,
                exists: 0,
            },
            known: HashSet::new(),
            timeout,
            permanent: Permanent::default(),
            meta: HashMap::new(),
            warned: HashMap::new(),
        };
        match namespace {
            Some(ns) => {
                f.naming.prefix = ns.prefix;
                f.naming.delimiter = ns.delimiter;
            }
            None => f.naming.delimiter = f.list_delimiter().await?,
        }
        f.refresh_known().await?;
        if !f.namespace_known {
            f.guess_prefix();
        }
        f.source = f.source_name();
        f.selected = f.select().await?;
        tracing::debug!(account, folder, prefix = %f.naming.prefix,
            delimiter = ?f.naming.delimiter, namespace = f.namespace_known, "folder names");
        Ok(f)
    }

    fn conn(&mut self) -> Result<&mut Conn> {
        self.conn
            .as_mut()
            .ok_or_else(|| anyhow!("the IMAP session was lost"))
    }

    /// Runs a command whose untagged answers are only news; NO and BAD are errors.
    async fn simple(&mut self, what: &str, command: &str) -> Result<()> {
        let t = self.timeout;
        let done = self.conn()?.simple(what, command, t).await;
        self.report_news();
        done?.ok()?;
        Ok(())
    }

    /// Logs what the server warned about (once per text per [`WARN_EVERY`]) and counts it.
    fn report_news(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let warnings = std::mem::take(&mut conn.news.warnings);
        for w in warnings {
            metrics::counter!(SERVER_WARNINGS, "account" => self.account.clone(), "kind" => w.kind)
                .increment(1);
            let now = Instant::now();
            let due = self
                .warned
                .get(&w.text)
                .is_none_or(|t| now.duration_since(*t) >= WARN_EVERY);
            if due {
                self.warned.insert(w.text.clone(), now);
                tracing::warn!(account = %self.account, folder = %self.folder, kind = w.kind,
                    "the server warns: {} (carrying on; repeated warnings are logged every {} minutes)",
                    w.text, WARN_EVERY.as_secs() / 60);
            }
        }
    }

    /// What the server supports.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// How the server names folders.
    pub fn naming(&self) -> &Naming {
        &self.naming
    }

    /// The folder as selected last.
    pub fn selected(&self) -> Selected {
        self.selected
    }

    /// Did the server announce new mail since the last look (an EXISTS during a command)?
    pub fn news_of_mail(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.news.arrived)
    }

    /// Makes the next [`ImapFolder::new_mail`] look whatever the server announced: the
    /// safety net after a quiet IDLE or poll interval.
    pub fn look_anyway(&mut self) {
        if let Some(c) = self.conn.as_mut() {
            c.news.arrived = true;
        }
    }

    /// The watched folder's server name: INBOX as is; another name as configured when the
    /// server has it, else inside the personal namespace (`Orders` → `INBOX.Orders`).
    fn source_name(&self) -> String {
        if self.folder.eq_ignore_ascii_case("INBOX") {
            return "INBOX".to_string();
        }
        let as_configured = if self.caps.utf8_accept {
            self.folder.clone()
        } else {
            encode_mutf7(&self.folder)
        };
        if self.known.contains(&as_configured) {
            return as_configured;
        }
        let levels: Vec<String> = self.folder.split('/').map(str::to_string).collect();
        let inside = self.naming.server_name(&levels);
        if self.known.contains(&inside) {
            inside
        } else {
            as_configured
        }
    }

    /// (Re-)selects the watched folder.
    pub async fn select(&mut self) -> Result<Selected> {
        let name = self.source.clone();
        let (s, permanent) = self.select_as(&name, "SELECT").await?;
        self.permanent = permanent;
        self.selected = s;
        Ok(s)
    }

    /// SELECT or EXAMINE `name`: its UIDVALIDITY, UIDNEXT and count, and PERMANENTFLAGS.
    async fn select_as(&mut self, name: &str, verb: &str) -> Result<(Selected, Permanent)> {
        let mut uidvalidity = None;
        let mut uidnext = 0;
        let mut exists = 0;
        let mut permanent = Permanent::default();
        let command = format!("{verb} {}", quote(name)?);
        let what = format!("selecting {}", self.naming.shown(name));
        let t = self.timeout;
        let done = self
            .conn()?
            .run(&what, &command, t, &mut |r| match r {
                Response::Data { outcome, .. } => match &outcome.code {
                    Some(ResponseCode::UidValidity(v)) => {
                        uidvalidity = Some(*v);
                        true
                    }
                    Some(ResponseCode::UidNext(n)) => {
                        uidnext = *n;
                        true
                    }
                    Some(ResponseCode::PermanentFlags(flags)) => {
                        permanent = Permanent {
                            any_keyword: flags.iter().any(|f| f == "\\*"),
                            listed: flags
                                .iter()
                                .filter(|f| !f.starts_with('\\'))
                                .map(|f| f.to_string())
                                .collect(),
                        };
                        true
                    }
                    _ => false,
                },
                Response::MailboxData(MailboxDatum::Exists(n)) => {
                    exists = *n;
                    true
                }
                _ => false,
            })
            .await;
        self.report_news();
        done?.ok()?;
        if let Some(c) = self.conn.as_mut() {
            // What SELECT reports is the starting point, not news.
            c.news.arrived = false;
            c.news.exists = Some(exists);
        }
        let uidvalidity = uidvalidity.ok_or_else(|| {
            anyhow!(
                "{} has no UIDVALIDITY; the server does not support UIDs",
                self.naming.shown(name)
            )
        })?;
        Ok((
            Selected {
                uidvalidity,
                uidnext,
                exists,
            },
            permanent,
        ))
    }

    /// LIST "" "*": every folder's server name, and the delimiter LIST reports.
    async fn list(&mut self, pattern: &str) -> Result<Vec<(String, Option<char>)>> {
        let mut names = Vec::new();
        let t = self.timeout;
        let command = format!("LIST \"\" {pattern}");
        let done = self
            .conn()?
            .run("listing folders", &command, t, &mut |r| match r {
                Response::MailboxData(MailboxDatum::List(l)) => {
                    names.push((
                        l.name.to_string(),
                        l.delimiter.as_deref().and_then(|d| d.chars().next()),
                    ));
                    true
                }
                _ => false,
            })
            .await;
        self.report_news();
        done?.ok()?;
        Ok(names)
    }

    /// The hierarchy delimiter (`LIST "" ""`), for servers without NAMESPACE.
    async fn list_delimiter(&mut self) -> Result<Option<char>> {
        Ok(self.list("\"\"").await?.first().and_then(|(_, d)| *d))
    }

    async fn refresh_known(&mut self) -> Result<()> {
        let names = self.list("\"*\"").await?;
        self.known = names.into_iter().map(|(n, _)| n).collect();
        Ok(())
    }

    /// Without NAMESPACE: when every folder but INBOX lives under `INBOX<delimiter>`, that
    /// is where ours go too.
    fn guess_prefix(&mut self) {
        let Some(d) = self.naming.delimiter else {
            return;
        };
        let prefix = format!("INBOX{d}");
        let others: Vec<&String> = self
            .known
            .iter()
            .filter(|n| !n.eq_ignore_ascii_case("INBOX"))
            .collect();
        let under = |n: &&String| {
            n.len() > prefix.len()
                && n.is_char_boundary(prefix.len())
                && n[..prefix.len()].eq_ignore_ascii_case(&prefix)
        };
        if !others.is_empty() && others.iter().all(under) {
            self.naming.prefix = prefix;
        }
    }

    /// New mail: the UIDs above `after`, with their sizes (and, with `dates`, delivery
    /// dates) kept for the body fetch. One command, where a SEARCH and a FETCH were two.
    /// With nothing announced since SELECT and UIDNEXT saying nothing is new, none.
    pub async fn new_mail(&mut self, after: u32, dates: bool) -> Result<Vec<u32>> {
        let sel = self.selected;
        if let Some(c) = self.conn.as_mut() {
            if !c.news.arrived && sel.uidnext != 0 && sel.uidnext <= after.saturating_add(1) {
                return Ok(Vec::new());
            }
            // From here on, an EXISTS means mail this look may have missed.
            c.news.arrived = false;
            if c.news.exists == Some(0) {
                return Ok(Vec::new());
            }
        }
        // Stale sizes (of mail filed meanwhile) are dropped: UIDs are never reused.
        self.meta.clear();
        let set = format!("{}:*", after.saturating_add(1));
        let t = Duration::from_secs(120).max(self.timeout);
        let found = fetch::meta(self.conn()?, &set, dates, t).await;
        self.report_news();
        // `n:*` names the last message even when its UID is below n.
        let mut found: Vec<(u32, Meta)> = found?.into_iter().filter(|(u, _)| *u > after).collect();
        found.sort_unstable_by_key(|(u, _)| *u);
        let uids = found.iter().map(|(u, _)| *u).collect();
        self.meta = found.into_iter().collect();
        Ok(uids)
    }

    /// UIDs found by a UID SEARCH.
    async fn search(&mut self, what: &str, query: &str) -> Result<Vec<u32>> {
        let mut uids = Vec::new();
        let t = self.timeout;
        let command = format!("UID SEARCH {query}");
        let done = self
            .conn()?
            .run(what, &command, t, &mut |r| match r {
                Response::MailboxData(MailboxDatum::Search(found)) => {
                    uids.extend_from_slice(found);
                    true
                }
                _ => false,
            })
            .await;
        self.report_news();
        done?.ok()?;
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// UIDs above `after` (the first start, on a server that did not say UIDNEXT).
    pub async fn search_after(&mut self, after: u32) -> Result<Vec<u32>> {
        let q = format!("UID {}:*", after.saturating_add(1));
        let mut uids = self.search("searching for new mail", &q).await?;
        uids.retain(|&u| u > after);
        Ok(uids)
    }

    /// UIDs of mail delivered on or after `date` (backfill).
    pub async fn search_since(&mut self, date: chrono::NaiveDate) -> Result<Vec<u32>> {
        let q = format!("SINCE {}", date.format("%-d-%b-%Y"));
        self.search("searching for older mail", &q).await
    }

    /// Keeps the session alive and collects pending server news (polling mode).
    pub async fn noop(&mut self) -> Result<()> {
        self.simple("checking for news", "NOOP").await
    }

    /// Waits in IDLE for at most `max` (re-issued by the caller well before the server's
    /// 29-minute limit), or until `cancel` fires. News that came during the last sync
    /// (an EXISTS) ends it at once.
    pub async fn idle(&mut self, max: Duration, cancel: &CancellationToken) -> Result<Woke> {
        let t = self.timeout;
        let woke = self.conn()?.idle(max, t, cancel).await;
        self.report_news();
        woke
    }

    /// Logs out politely (best effort).
    pub async fn logout(mut self) {
        if let Some(c) = self.conn.take() {
            c.logout().await;
        }
    }

    /// The server name of a destination.
    fn dest_name(&self, levels: &[String]) -> String {
        self.naming.server_name(levels)
    }

    /// Creates a destination folder, or learns that it exists. Returns whether naming
    /// changed (dots refused, or a top-level folder refused by a server without NAMESPACE
    /// whose folders live under INBOX): then the caller names the folder again.
    async fn create(&mut self, name: &str, levels: &[String]) -> Result<bool, FileError> {
        let t = self.timeout;
        let commands = vec![
            format!("CREATE {}", quote(name).map_err(FileError::Broken)?),
            format!("SUBSCRIBE {}", quote(name).map_err(FileError::Broken)?),
        ];
        let what = format!("creating {}", self.naming.shown(name));
        let done = self
            .conn()
            .map_err(FileError::Broken)?
            .pipelined(&what, &commands, t, &mut |_, _| false)
            .await;
        self.report_news();
        let done = done.map_err(FileError::Broken)?;
        let Some(said) = done.into_iter().next().and_then(|d| d.refused) else {
            self.known.insert(name.to_string());
            return Ok(false);
        };
        let m = said.text;
        if m.to_ascii_uppercase().contains("ALREADYEXISTS")
            || m.to_lowercase().contains("already exists")
        {
            self.known.insert(name.to_string());
            return Ok(false);
        }
        if !self.naming.no_dots && levels.iter().any(|l| l.contains('.')) {
            tracing::info!(account = %self.account, "the server refused a '.' in a folder name ({m}); using names without dots");
            self.naming.no_dots = true;
            return Ok(true);
        }
        if !self.namespace_known && self.naming.prefix.is_empty() {
            if let Some(d) = self.naming.delimiter {
                tracing::info!(account = %self.account, "the server refused the top-level folder {} ({m}); creating folders under INBOX{d} instead",
                    self.naming.shown(name));
                self.naming.prefix = format!("INBOX{d}");
                return Ok(true);
            }
        }
        Err(FileError::Refused(format!(
            "cannot create folder {}: {m}",
            self.naming.shown(name)
        )))
    }

    /// The server name of a destination, creating the folder when it does not exist.
    async fn ensure_folder(&mut self, levels: &[String]) -> Result<String, FileError> {
        for _ in 0..3 {
            let name = self.dest_name(levels);
            if self.known.contains(&name) {
                return Ok(name);
            }
            if !self.create(&name, levels).await? {
                return Ok(name);
            }
        }
        Err(FileError::Refused(format!(
            "cannot find a folder name the server accepts for {}",
            levels.join("/")
        )))
    }

    /// Runs a filing command: NO is a refusal (the message stays), anything else broken.
    async fn file_command(
        &mut self,
        what: &str,
        command: &str,
    ) -> Result<command::Done, FileError> {
        let t = self.timeout;
        let done = self
            .conn()
            .map_err(FileError::Broken)?
            .simple(what, command, t)
            .await;
        self.report_news();
        let done = done.map_err(FileError::Broken)?;
        match &done.refused {
            Some(said) => Err(FileError::Refused(said.text.clone())),
            None => Ok(done),
        }
    }

    /// Removes exactly these UIDs: \Deleted, then UID EXPUNGE of them only (pipelined).
    async fn delete_uids(&mut self, set: &str) -> Result<(), FileError> {
        if !self.caps.uidplus {
            return Err(FileError::Refused(
                "the server has neither MOVE nor UIDPLUS; removing only our messages is impossible, so they stay in place".into(),
            ));
        }
        let t = self.timeout;
        let commands = vec![
            format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
            format!("UID EXPUNGE {set}"),
        ];
        let done = self
            .conn()
            .map_err(FileError::Broken)?
            .pipelined("removing copied messages", &commands, t, &mut |_, _| false)
            .await;
        self.report_news();
        for d in done.map_err(FileError::Broken)? {
            if let Some(said) = d.refused {
                return Err(FileError::Refused(said.text));
            }
        }
        Ok(())
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

    /// One UID set into one folder: MOVE, or COPY then remove exactly those UIDs.
    async fn move_set(&mut self, set: &str, name: &str) -> Result<Moved, FileError> {
        let q = quote(name).map_err(FileError::Broken)?;
        let shown = self.naming.shown(name);
        let done = if self.caps.r#move {
            self.file_command(
                &format!("moving to {shown}"),
                &format!("UID MOVE {set} {q}"),
            )
            .await?
        } else {
            let d = self
                .file_command(
                    &format!("copying to {shown}"),
                    &format!("UID COPY {set} {q}"),
                )
                .await?;
            self.delete_uids(set).await?;
            d
        };
        Ok(done
            .copyuid
            .map(|c| Moved {
                uidvalidity: c.uidvalidity,
                uids: c.pairs.into_iter().collect(),
            })
            .unwrap_or_default())
    }
}

/// Does a NO say the destination folder does not exist?
fn folder_missing(m: &str) -> bool {
    let l = m.to_lowercase();
    m.contains("TRYCREATE") || l.contains("doesn't exist") || l.contains("does not exist")
}

/// Asks the server what it supports.
async fn capabilities(conn: &mut Conn, timeout: Duration) -> Result<Caps> {
    let mut caps = Caps::default();
    let done = conn
        .run("asking for capabilities", "CAPABILITY", timeout, &mut |r| {
            let Response::Capabilities(list) = r else {
                return false;
            };
            for c in list {
                let Capability::Atom(a) = c else { continue };
                let a = a.to_ascii_uppercase();
                match a.as_str() {
                    "IDLE" => caps.idle = true,
                    "MOVE" => caps.r#move = true,
                    "UIDPLUS" => caps.uidplus = true,
                    "UTF8=ACCEPT" | "UTF8=ONLY" => caps.utf8_accept = true,
                    "NAMESPACE" => caps.namespace = true,
                    _ => {}
                }
            }
            true
        })
        .await?;
    done.ok()?;
    Ok(caps)
}

impl MailSource for ImapFolder {
    fn account(&self) -> &str {
        &self.account
    }

    fn folder(&self) -> &str {
        &self.folder
    }

    fn naming(&self) -> Naming {
        self.naming.clone()
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
        let meta = std::mem::take(&mut self.meta);
        let conn = self.conn()?;
        let got = fetch::fetch(conn, uidvalidity, &uids, &meta, max_scan_bytes, dates, t).await;
        self.meta = meta;
        for u in &uids {
            self.meta.remove(u);
        }
        self.report_news();
        got
    }

    async fn file(&mut self, keys: &[MessageKey], dest: &[String]) -> Result<Moved, FileError> {
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
        let mut moved = Moved::default();
        for set in uid_sets(&uids) {
            let mut retried = false;
            loop {
                let name = self.ensure_folder(dest).await?;
                match self.move_set(&set, &name).await {
                    // The folder was deleted under us (our cache said it existed): create it again, once.
                    Err(FileError::Refused(m)) if !retried && folder_missing(&m) => {
                        tracing::info!(account = %self.account, folder = %self.naming.shown(&name), "destination folder disappeared; creating it again");
                        self.known.remove(&name);
                        retried = true;
                    }
                    other => {
                        let m = other?;
                        moved.uidvalidity = m.uidvalidity;
                        moved.uids.extend(m.uids);
                        break;
                    }
                }
            }
        }
        Ok(moved)
    }

    async fn present(&mut self, keys: &[MessageKey]) -> Result<Vec<MessageKey>> {
        let uids: Vec<u32> = keys.iter().map(|k| k.uid).collect();
        let mut found: HashSet<u32> = HashSet::new();
        for set in uid_sets(&uids) {
            found.extend(
                self.search("checking messages", &format!("UID {set}"))
                    .await?,
            );
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

    async fn find_copies(
        &mut self,
        dest: &[String],
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<Option<Found>>> {
        let mut out = vec![None; wanted.len()];
        // What can be searched for: a Message-ID (quotable), else the exact size.
        let ids: Vec<&str> = wanted
            .iter()
            .filter_map(|w| w.message_id)
            .filter(|id| !id.is_empty() && !id.contains(['"', '\\', '\r', '\n']))
            .collect();
        let mut sizes: Vec<u64> = wanted
            .iter()
            .filter(|w| w.message_id.is_none())
            .filter_map(|w| w.signature.map(|s| s.size))
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        if ids.is_empty() && sizes.is_empty() {
            return Ok(out);
        }
        let name = self.dest_name(dest);
        let examined = self.select_as(&name, "EXAMINE").await;
        let dest_uidvalidity = match examined {
            Ok((s, _)) => s.uidvalidity,
            Err(e) => {
                // A NO means there is no such folder: it holds nothing. Anything else is a
                // broken session, and "nothing found" would be a lie.
                if server_said(&e).is_none() {
                    return Err(e);
                }
                self.reselect().await?;
                return Ok(out);
            }
        };
        let mut uids: Vec<u32> = Vec::new();
        for chunk in ids.chunks(40) {
            // IMAP's OR takes two keys: OR a OR b OR c d.
            let mut query = String::new();
            for (i, id) in chunk.iter().enumerate() {
                if i + 1 < chunk.len() {
                    query.push_str("OR ");
                }
                query.push_str(&format!("HEADER Message-ID \"{id}\" "));
            }
            uids.extend(
                self.search("searching by Message-ID", query.trim_end())
                    .await?,
            );
        }
        for chunk in sizes.chunks(40) {
            let mut query = String::new();
            for (i, s) in chunk.iter().enumerate() {
                if i + 1 < chunk.len() {
                    query.push_str("OR ");
                }
                query.push_str(&format!(
                    "(LARGER {} SMALLER {}) ",
                    s.saturating_sub(1),
                    s + 1
                ));
            }
            uids.extend(self.search("searching by size", query.trim_end()).await?);
        }
        uids.sort_unstable();
        uids.dedup();
        // The search matches substrings and sizes: compare each hit's exact Message-ID
        // and signature.
        let bodies = wanted
            .iter()
            .any(|w| w.signature.is_some_and(|s| s.body.is_some()));
        let t = self.timeout;
        let mut candidates = Vec::new();
        for set in uid_sets(&uids) {
            let got = fetch::candidates(self.conn()?, &set, bodies, t).await;
            self.report_news();
            candidates.extend(got?);
        }
        let mut taken: HashSet<u32> = HashSet::new();
        for (slot, w) in out.iter_mut().zip(wanted) {
            let hit = candidates.iter().find(|c| {
                !taken.contains(&c.uid)
                    && match w.message_id {
                        Some(id) => c
                            .message_id
                            .as_deref()
                            .is_some_and(|m| super::normalize_message_id(m) == id),
                        None => c.message_id.is_none(),
                    }
                    && w.signature.is_none_or(|s| s.matches(&c.signature))
            });
            if let Some(c) = hit {
                taken.insert(c.uid);
                *slot = Some(Found {
                    position: Some((dest_uidvalidity, c.uid)),
                });
            }
        }
        self.reselect().await?;
        Ok(out)
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
        let uids: Vec<u32> = keys.iter().map(|k| k.uid).collect();
        for set in uid_sets(&uids) {
            let command = format!("UID STORE {set} +FLAGS.SILENT ({})", flags.join(" "));
            self.file_command("flagging escalated messages", &command)
                .await?;
        }
        Ok(skipped)
    }

    async fn copy_to(&mut self, keys: &[MessageKey], dest: &[String]) -> Result<(), FileError> {
        let uids: Vec<u32> = keys.iter().map(|k| k.uid).collect();
        for set in uid_sets(&uids) {
            let mut retried = false;
            loop {
                let name = self.ensure_folder(dest).await?;
                let q = quote(&name).map_err(FileError::Broken)?;
                let what = format!("copying to {}", self.naming.shown(&name));
                let r = self
                    .file_command(&what, &format!("UID COPY {set} {q}"))
                    .await;
                match r {
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
