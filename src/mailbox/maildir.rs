//! The Maildir backend: a Maildir++ tree as Dovecot lays it out.
//!
//! The inbox is the root's `cur/` and `new/`; a folder `MANAGER/Mark Johnson` is the
//! directory `.MANAGER.Mark Johnson/` (levels joined by `.`, each neutralised and encoded
//! in modified UTF-7 exactly as Dovecot stores names), with its own `cur/new/tmp` and a
//! `maildirfolder` marker. Filing is one atomic `rename(2)` into the destination's `cur/`
//! that keeps the message's flags (the `:2,…` suffix) — so a message is always in exactly
//! one place, even if the daemon dies mid-way — and never adds `S` (\Seen).
//!
//! A message's key is its unique file name (the part before `:`), which survives moves.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::names::{encode_mutf7, neutralize};
use super::{
    ended, Fetched, FileError, Found, MailSource, MessageKey, Moved, Signature, Wanted,
    MAX_HEADER_BYTES,
};

/// A Maildir++ tree, watched at its inbox.
pub struct Maildir {
    account: String,
    root: PathBuf,
    /// Owner given to new folders (see `tree_owner`).
    owner: Option<(u32, u32)>,
}

/// A message file in the inbox.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: MessageKey,
    pub path: PathBuf,
    /// Modification time (delivery time for new mail), Unix seconds.
    pub mtime: i64,
}

/// The unique part of a Maildir file name (before the `:2,` info).
pub fn unique_name(file_name: &str) -> &str {
    file_name.split(':').next().unwrap_or(file_name)
}

/// The flags part of a Maildir file name (`S`, `F`, …), empty when there is none.
fn info_flags(file_name: &str) -> &str {
    file_name
        .split_once(":2,")
        .map(|(_, f)| f)
        .unwrap_or_default()
}

fn ensure_maildir(dir: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    let fresh = !dir.exists();
    for sub in ["cur", "new", "tmp"] {
        let d = dir.join(sub);
        fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        if fresh {
            give_to(&d, owner)?;
        }
    }
    if fresh {
        give_to(dir, owner)?;
    }
    Ok(())
}

/// The owner of the tree, when it differs from ours and we may change ownership (root
/// filing mail for a mail user): new folders get it, so the mail server can use them.
#[cfg(unix)]
fn tree_owner(root: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(root).ok()?;
    let me = fs::metadata("/proc/self").ok().map(|m| m.uid());
    (me == Some(0) && meta.uid() != 0).then(|| (meta.uid(), meta.gid()))
}

#[cfg(not(unix))]
fn tree_owner(_root: &Path) -> Option<(u32, u32)> {
    None
}

#[cfg(unix)]
fn give_to(path: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .with_context(|| format!("cannot hand {} to uid {uid}", path.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn give_to(_path: &Path, _owner: Option<(u32, u32)>) -> Result<()> {
    Ok(())
}

/// Dovecot's keyword table of one Maildir folder (`dovecot-keywords`: lines "N name";
/// keyword N is the letter `a`+N in file names' flags). At most 26 keywords.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    names: Vec<Option<String>>,
    changed: bool,
}

/// Letters available for keywords.
const KEYWORD_LETTERS: usize = 26;

impl Keywords {
    /// Reads the table of the folder at `dir` (empty when there is none).
    pub fn load(dir: &Path) -> Result<Keywords> {
        let path = dir.join("dovecot-keywords");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut names: Vec<Option<String>> = Vec::new();
        for line in text.lines() {
            let Some((n, name)) = line.split_once(' ') else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else { continue };
            if n >= KEYWORD_LETTERS || name.is_empty() {
                continue;
            }
            if names.len() <= n {
                names.resize(n + 1, None);
            }
            if let Some(slot) = names.get_mut(n) {
                *slot = Some(name.to_string());
            }
        }
        Ok(Keywords {
            names,
            changed: false,
        })
    }

    /// The name of a keyword letter.
    pub fn name(&self, letter: char) -> Option<&str> {
        let i = (letter as usize).checked_sub('a' as usize)?;
        self.names.get(i)?.as_deref()
    }

    /// The letter of a keyword, adding it to the table when there is room.
    pub fn letter(&mut self, name: &str) -> Option<char> {
        let i = match self.names.iter().position(|n| n.as_deref() == Some(name)) {
            Some(i) => i,
            None => {
                let free = self.names.iter().position(Option::is_none);
                let i = match free {
                    Some(i) => i,
                    None if self.names.len() < KEYWORD_LETTERS => {
                        self.names.push(None);
                        self.names.len() - 1
                    }
                    None => return None,
                };
                self.names[i] = Some(name.to_string());
                self.changed = true;
                i
            }
        };
        char::from_u32('a' as u32 + i as u32)
    }

    /// Writes the table back if a keyword was added (atomically: temporary file, rename).
    pub fn save(&mut self, dir: &Path, owner: Option<(u32, u32)>) -> Result<()> {
        if !self.changed {
            return Ok(());
        }
        let mut text = String::new();
        for (i, n) in self.names.iter().enumerate() {
            if let Some(n) = n {
                text.push_str(&format!("{i} {n}\n"));
            }
        }
        let path = dir.join("dovecot-keywords");
        let tmp = dir.join(format!(
            ".dovecot-keywords.mailtriage.{}",
            std::process::id()
        ));
        fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        give_to(&tmp, owner)?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))?;
        self.changed = false;
        Ok(())
    }
}

/// Maildir flags in the order Dovecot writes them (ASCII), without duplicates.
fn sorted_flags(flags: impl IntoIterator<Item = char>) -> String {
    let mut v: Vec<char> = flags.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v.into_iter().collect()
}

impl Maildir {
    /// Opens the tree at `root`, creating the inbox's directories if missing.
    pub fn open(account: &str, root: &Path) -> Result<Maildir> {
        ensure_maildir(root, None)?;
        Ok(Maildir {
            account: account.to_string(),
            owner: tree_owner(root),
            root: root.to_path_buf(),
        })
    }

    /// The tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directories that receive new inbox mail (for filesystem watches).
    pub fn watch_dirs(&self) -> [PathBuf; 2] {
        [self.root.join("new"), self.root.join("cur")]
    }

    /// The on-disk directory of a folder given as levels (Dovecot's Maildir++ naming).
    pub fn folder_dir(&self, levels: &[String]) -> PathBuf {
        let name: Vec<String> = levels
            .iter()
            .map(|l| encode_mutf7(&neutralize(l, Some('.'), true).replace('/', "-")))
            .collect();
        self.root.join(format!(".{}", name.join(".")))
    }

    /// Every message in the inbox (new/ and cur/), oldest first.
    pub fn scan(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.root.join(sub);
            let rd =
                fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
            for e in rd {
                let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
                let Ok(name) = e.file_name().into_string() else {
                    // Maildir names are ASCII; a client wrote something else: say so.
                    tracing::warn!(
                        "skipping {}: its name is not UTF-8, not a Maildir message name",
                        e.path().display()
                    );
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let meta = match e.metadata() {
                    Ok(m) => m,
                    // Moved or deleted by someone else since the listing: not ours to see.
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(err) => {
                        return Err(anyhow::Error::new(err)
                            .context(format!("cannot read {}", e.path().display())))
                    }
                };
                if !meta.is_file() {
                    continue;
                }
                // A time we cannot read counts as now: new mail, triaged, rather than
                // "older than the first start" and never looked at.
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or_else(crate::store::now, |d| {
                        i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
                    });
                out.push(Entry {
                    key: MessageKey {
                        uid: 0,
                        key: unique_name(&name).to_string(),
                    },
                    path: e.path(),
                    mtime,
                });
            }
        }
        out.sort_by(|a, b| {
            a.mtime
                .cmp(&b.mtime)
                .then_with(|| a.key.key.cmp(&b.key.key))
        });
        Ok(out)
    }

    fn index(&self) -> Result<HashMap<String, PathBuf>> {
        Ok(self
            .scan()?
            .into_iter()
            .map(|e| (e.key.key, e.path))
            .collect())
    }

    /// What moving or copying into `dest` needs: the inbox's index, the destination
    /// (created if missing; a failure is a refusal), and both keyword tables.
    fn destination(
        &self,
        dest: &[String],
    ) -> Result<(HashMap<String, PathBuf>, PathBuf, Keywords, Keywords), FileError> {
        let index = self.index()?;
        let dir = self
            .ensure_folder(dest)
            .map_err(|e| FileError::Refused(format!("{e:#}")))?;
        let from_kw = Keywords::load(&self.root)?;
        let to_kw = Keywords::load(&dir)?;
        Ok((index, dir, from_kw, to_kw))
    }

    fn ensure_folder(&self, levels: &[String]) -> Result<PathBuf> {
        let dir = self.folder_dir(levels);
        ensure_maildir(&dir, self.owner)?;
        let marker = dir.join("maildirfolder");
        if !marker.exists() {
            fs::write(&marker, b"")
                .with_context(|| format!("cannot create {}", marker.display()))?;
            give_to(&marker, self.owner)?;
        }
        Ok(dir)
    }

    /// Does this folder (levels) hold a file with this unique name? A folder that does
    /// not exist holds nothing; one that cannot be read is an error, not a "no" — a "no"
    /// would make a second copy.
    fn folder_holds(&self, levels: &[String], key: &str) -> Result<bool> {
        let dir = self.folder_dir(levels);
        for sub in ["cur", "new"] {
            let path = dir.join(sub);
            let rd = match fs::read_dir(&path) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("cannot read {}", path.display()))
                    )
                }
            };
            for e in rd {
                let e = e.with_context(|| format!("cannot read {}", path.display()))?;
                if e.file_name()
                    .to_str()
                    .is_some_and(|n| unique_name(n) == key)
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

impl Maildir {
    /// A file's flags for another folder: system flags as they are, keyword letters
    /// renumbered into the destination's keyword table (each folder has its own).
    fn flags_for(&self, flags: &str, from: &Keywords, to: &mut Keywords) -> String {
        sorted_flags(flags.chars().filter_map(|f| {
            if f.is_ascii_lowercase() {
                from.name(f).and_then(|name| to.letter(name))
            } else {
                Some(f)
            }
        }))
    }
}

/// Reads what triage needs of a message file, at most `limit` bytes (a parse limit, at
/// least [`MAX_HEADER_BYTES`]): its first bytes. A header longer than
/// [`MAX_HEADER_BYTES`] is cut there and ended where it was cut, and the rest of it read
/// through without being kept: then come the body's first bytes, so a header of any size
/// neither costs memory nor hides the text (as an IMAP server's `BODY[TEXT]` does not).
fn read_capped(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut f = BufReader::with_capacity(64 * 1024, fs::File::open(path)?);
    let mut buf = Vec::new();
    (&mut f)
        .take(MAX_HEADER_BYTES as u64)
        .read_to_end(&mut buf)?;
    let whole_header = memchr::memmem::find(&buf, b"\r\n\r\n").is_some()
        || memchr::memmem::find(&buf, b"\n\n").is_some();
    if buf.len() < MAX_HEADER_BYTES || whole_header {
        let rest = limit.saturating_sub(buf.len());
        (&mut f).take(rest as u64).read_to_end(&mut buf)?;
        return Ok(buf);
    }
    // The blank line may begin in the bytes already read: start from their last three.
    let mut blank = BlankLine::default();
    for &b in buf.iter().rev().take(3).rev() {
        blank.sees(b);
    }
    // The bytes read through while they may be only the rest of the blank line (three
    // at most); `None` once header bytes were skipped.
    let mut rest_of_blank: Option<Vec<u8>> = Some(Vec::new());
    loop {
        let chunk = f.fill_buf()?;
        if chunk.is_empty() {
            // No blank line: the message is all header.
            return Ok(buf);
        }
        let found = blank.find(chunk);
        let used = found.map_or(chunk.len(), |i| i + 1);
        rest_of_blank = rest_of_blank.filter(|r| r.len() + used <= 3).map(|mut r| {
            r.extend_from_slice(&chunk[..used]);
            r
        });
        f.consume(used);
        if found.is_some() {
            break;
        }
    }
    let mut raw = match rest_of_blank {
        // Only the rest of the blank line was past the cap: the header is whole.
        Some(rest) => {
            buf.extend_from_slice(&rest);
            buf
        }
        None => ended(&buf).into_owned(),
    };
    let rest = limit.saturating_sub(raw.len());
    f.take(rest as u64).read_to_end(&mut raw)?;
    Ok(raw)
}

/// Finds the blank line that ends a header, a byte at a time (CRLF or LF).
#[derive(Default)]
struct BlankLine {
    /// The last byte was a line's end.
    line_start: bool,
    /// A line began with CR.
    cr: bool,
}

impl BlankLine {
    /// Takes the next byte; true when it ends the blank line.
    fn sees(&mut self, b: u8) -> bool {
        let at_start = self.line_start;
        let cr = std::mem::take(&mut self.cr);
        self.line_start = b == b'\n';
        match b {
            b'\n' => at_start || cr,
            b'\r' if at_start => {
                self.cr = true;
                false
            }
            _ => false,
        }
    }

    /// Where in `chunk` the blank line ends, if it does.
    fn find(&mut self, chunk: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < chunk.len() {
            if !self.line_start && !self.cr {
                // Nothing but a line's end matters until one comes.
                i += memchr::memchr(b'\n', &chunk[i..])?;
            }
            if self.sees(chunk[i]) {
                return Some(i);
            }
            i += 1;
        }
        None
    }
}

impl MailSource for Maildir {
    fn account(&self) -> &str {
        &self.account
    }

    fn folder(&self) -> &str {
        "INBOX"
    }

    fn naming(&self) -> super::names::Naming {
        // Maildir++: levels joined by `.`, dots inside a level made spaces (`.SALES.Mark`).
        super::names::Naming {
            prefix: String::new(),
            delimiter: Some('.'),
            utf8: false,
            no_dots: true,
        }
    }

    /// The delivery date is the file's mtime, read with its size whether asked for or not.
    async fn fetch(
        &mut self,
        keys: &[MessageKey],
        max_scan_bytes: usize,
        _dates: bool,
    ) -> Result<Vec<Fetched>> {
        let index = self.index()?;
        let limit = crate::mail::parse_limit(max_scan_bytes);
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let Some(path) = index.get(&k.key) else {
                continue;
            };
            let raw = match read_capped(path, limit) {
                Ok(r) => r,
                // Moved away between the scan and now: simply not ours to triage any more.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            let meta = fs::metadata(path).ok();
            let size = meta.as_ref().map_or(raw.len() as u64, |m| m.len());
            out.push(Fetched {
                signature: Signature::of_whole(&raw, size),
                key: k.clone(),
                internal_date: meta
                    .as_ref()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_secs()).ok()),
                size,
                raw,
            });
        }
        Ok(out)
    }

    async fn file(&mut self, keys: &[MessageKey], dest: &[String]) -> Result<Moved, FileError> {
        let (index, dir, from_kw, mut to_kw) = self.destination(dest)?;
        let mut missing = Vec::new();
        for k in keys {
            let Some(src) = index.get(&k.key) else {
                // Already moved (by us before a crash, or by someone else); reported below so
                // that recovery looks and records which of the two it was.
                missing.push(k.key.as_str());
                continue;
            };
            let name = src.file_name().and_then(|n| n.to_str()).unwrap_or(&k.key);
            let flags = self.flags_for(info_flags(name), &from_kw, &mut to_kw);
            // The keyword table first: a file never names a letter its folder lacks.
            to_kw
                .save(&dir, self.owner)
                .map_err(|e| FileError::Refused(format!("{e:#}")))?;
            let target = dir.join("cur").join(format!("{}:2,{flags}", k.key));
            if target.exists() {
                return Err(FileError::Refused(format!(
                    "{} already exists",
                    target.display()
                )));
            }
            fs::rename(src, &target).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    FileError::Refused(format!("{} vanished", src.display()))
                }
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::StorageFull => {
                    FileError::Refused(format!(
                        "cannot move {} to {}: {e}",
                        src.display(),
                        target.display()
                    ))
                }
                _ => FileError::Broken(anyhow::anyhow!(
                    "cannot move {} to {}: {e}",
                    src.display(),
                    target.display()
                )),
            })?;
        }
        if missing.is_empty() {
            Ok(Moved::default())
        } else {
            Err(FileError::Refused(format!(
                "{} message(s) left the inbox before they could be filed: {}",
                missing.len(),
                missing.join(", ")
            )))
        }
    }

    async fn present(&mut self, keys: &[MessageKey]) -> Result<Vec<MessageKey>> {
        let index = self.index()?;
        Ok(keys
            .iter()
            .filter(|k| index.contains_key(&k.key))
            .cloned()
            .collect())
    }

    fn atomic_moves(&self) -> bool {
        true
    }

    async fn find_copies(
        &mut self,
        dest: &[String],
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<Option<Found>>> {
        // A rename is atomic and keeps the file's unique name: a message is in the
        // destination exactly when a file of that name is.
        wanted
            .iter()
            .map(|w| {
                Ok(self
                    .folder_holds(dest, &w.key.key)?
                    .then_some(Found { position: None }))
            })
            .collect()
    }

    async fn file_remove_source(&mut self, _keys: &[MessageKey]) -> Result<(), FileError> {
        // Never needed (see `holds`); refuse rather than delete mail.
        Err(FileError::Refused(
            "Maildir moves are atomic; nothing to remove".into(),
        ))
    }

    async fn mark(
        &mut self,
        keys: &[MessageKey],
        flag: bool,
        keywords: &[String],
    ) -> Result<Vec<String>, FileError> {
        let index = self.index()?;
        let mut table = Keywords::load(&self.root)?;
        let mut letters = Vec::new();
        let mut skipped = Vec::new();
        for k in keywords {
            match table.letter(k) {
                Some(l) => letters.push(l),
                None => skipped.push(k.clone()),
            }
        }
        if !skipped.is_empty() {
            tracing::debug!(account = %self.account, skipped = ?skipped,
                "the folder's keyword table is full (26); not setting these keywords");
        }
        table
            .save(&self.root, self.owner)
            .map_err(|e| FileError::Refused(format!("{e:#}")))?;
        for k in keys {
            let Some(src) = index.get(&k.key) else {
                continue;
            };
            let name = src.file_name().and_then(|n| n.to_str()).unwrap_or(&k.key);
            let old = info_flags(name);
            let flags = sorted_flags(
                old.chars()
                    .chain(flag.then_some('F'))
                    .chain(letters.iter().copied()),
            );
            let target = self.root.join("cur").join(format!("{}:2,{flags}", k.key));
            if &target == src {
                continue;
            }
            // A rename within the inbox: the message is never absent, only renamed.
            fs::rename(src, &target).map_err(|e| {
                FileError::Broken(anyhow::anyhow!(
                    "cannot flag {} as {}: {e}",
                    src.display(),
                    target.display()
                ))
            })?;
        }
        Ok(skipped)
    }

    async fn copy_to(&mut self, keys: &[MessageKey], dest: &[String]) -> Result<(), FileError> {
        let (index, dir, from_kw, mut to_kw) = self.destination(dest)?;
        for k in keys {
            if self.folder_holds(dest, &k.key).map_err(FileError::Broken)? {
                continue;
            }
            let Some(src) = index.get(&k.key) else {
                continue;
            };
            let name = src.file_name().and_then(|n| n.to_str()).unwrap_or(&k.key);
            let flags = self.flags_for(info_flags(name), &from_kw, &mut to_kw);
            to_kw
                .save(&dir, self.owner)
                .map_err(|e| FileError::Refused(format!("{e:#}")))?;
            // Written under tmp/, then renamed into cur/: the copy appears whole or not at all.
            let tmp = dir.join("tmp").join(&k.key);
            let target = dir.join("cur").join(format!("{}:2,{flags}", k.key));
            let _ = fs::remove_file(&tmp);
            if fs::hard_link(src, &tmp).is_err() {
                fs::copy(src, &tmp).map_err(|e| {
                    FileError::Refused(format!(
                        "cannot copy {} to {}: {e}",
                        src.display(),
                        tmp.display()
                    ))
                })?;
            }
            give_to(&tmp, self.owner).map_err(|e| FileError::Refused(format!("{e:#}")))?;
            fs::rename(&tmp, &target).map_err(|e| {
                FileError::Refused(format!("cannot place the copy {}: {e}", target.display()))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_tables_round_trip_and_renumber_between_folders() {
        let base = std::env::temp_dir().join(format!("mt-kw-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        for d in [&a, &b] {
            fs::create_dir_all(d).expect("mkdir");
        }
        fs::write(b.join("dovecot-keywords"), "0 $Other\n").expect("write");
        let mut ka = Keywords::load(&a).expect("loads");
        assert_eq!(ka.letter("$Escalated"), Some('a'));
        assert_eq!(ka.letter("$Priority_URGENT"), Some('b'));
        assert_eq!(ka.letter("$Escalated"), Some('a'));
        ka.save(&a, None).expect("saves");
        assert_eq!(
            fs::read_to_string(a.join("dovecot-keywords")).expect("reads"),
            "0 $Escalated\n1 $Priority_URGENT\n"
        );
        let ka = Keywords::load(&a).expect("loads again");
        let mut kb = Keywords::load(&b).expect("loads");
        let md = Maildir {
            account: "x".into(),
            root: a.clone(),
            owner: None,
        };
        // In b, `a` is already $Other: our keywords get b and c there.
        assert_eq!(md.flags_for("FSab", &ka, &mut kb), "FSbc");
        assert_eq!(kb.name('c'), Some("$Priority_URGENT"));
        let _ = fs::remove_dir_all(&base);
    }

    /// Issue 19: a Maildir message is read up to the parse limit; a header longer than the
    /// cap is cut there, the rest of it skipped (a blank line across any read boundary
    /// found), and the body's first bytes follow, so its text is read; the signature is
    /// the one an IMAP server's copy of the message gets.
    #[test]
    fn a_header_of_any_size_is_cut_and_the_text_still_read() {
        use crate::mail::{MessageView, DEFAULT_MAX_SCAN_BYTES};
        let dir = std::env::temp_dir().join(format!("mt-read-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("m");
        let limit = 1024 * 1024;
        let text = "Could you send a quote for a new hot tub?";
        for (junk, eol) in [
            (0, "\r\n"),
            (MAX_HEADER_BYTES - 120, "\r\n"),
            (MAX_HEADER_BYTES - 100, "\n"),
            (3 * 1024 * 1024, "\r\n"),
            (3 * 1024 * 1024, "\n"),
        ] {
            let mut m =
                format!("From: Pat <pat@example.com>{eol}Subject: Hello{eol}X-Junk: ").into_bytes();
            m.extend(std::iter::repeat_n(b'a', junk));
            m.extend_from_slice(format!("{eol}{eol}{text}{eol}").as_bytes());
            fs::write(&path, &m).expect("write");
            let raw = read_capped(&path, limit).expect("reads");
            assert!(
                raw.len() <= limit.max(MAX_HEADER_BYTES + 4),
                "{}",
                raw.len()
            );
            if m.len() <= limit {
                assert_eq!(raw, m, "junk {junk}");
            }
            let v = MessageView::parse(&raw, DEFAULT_MAX_SCAN_BYTES);
            assert_eq!(v.subject, "Hello", "junk {junk}");
            assert_eq!(v.text.trim(), text, "junk {junk} {eol:?}");
            let size = m.len() as u64;
            assert_eq!(
                Signature::of_whole(&raw, size),
                Signature::of_whole(&m, size),
                "junk {junk}"
            );
        }
        // The blank line straddling the end of the first read; none at all.
        for split in 0..4 {
            let mut m = b"X-Junk: ".to_vec();
            m.resize(MAX_HEADER_BYTES - 4 + split, b'a');
            m.extend_from_slice(b"\r\n\r\nbody\r\n");
            fs::write(&path, &m).expect("write");
            let raw = read_capped(&path, limit).expect("reads");
            assert_eq!(raw, m, "split {split}");
        }
        let m = vec![b'a'; 2 * MAX_HEADER_BYTES];
        fs::write(&path, &m).expect("write");
        assert_eq!(
            read_capped(&path, limit).expect("reads"),
            &m[..MAX_HEADER_BYTES]
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn folder_dirs_follow_dovecot_maildir_plus_plus() {
        let md = Maildir {
            account: "a".into(),
            root: PathBuf::from("/m"),
            owner: None,
        };
        let cases: &[(&[&str], &str)] = &[
            (&["MANAGER", "Mark Johnson"], "/m/.MANAGER.Mark Johnson"),
            (
                &["MANAGER", "Sinéad O'Brien"],
                "/m/.MANAGER.Sin&AOk-ad O'Brien",
            ),
            (&["MANAGER", "Dr. J. Smith"], "/m/.MANAGER.Dr J Smith"),
            (&["SUPPORT", "AC/DC"], "/m/.SUPPORT.AC-DC"),
        ];
        for (levels, want) in cases {
            let l: Vec<String> = levels.iter().map(|s| s.to_string()).collect();
            assert_eq!(md.folder_dir(&l), PathBuf::from(want));
        }
        assert_eq!(
            unique_name("1700.M1P2.host,S=12:2,FS"),
            "1700.M1P2.host,S=12"
        );
        assert_eq!(info_flags("1700.M1P2.host:2,FS"), "FS");
        assert_eq!(info_flags("1700.M1P2.host"), "");
    }
}
