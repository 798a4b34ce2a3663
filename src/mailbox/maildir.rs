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
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::names::{encode_mutf7, neutralize};
use super::{Fetched, FileError, MailSource, MessageKey};

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
                let Ok(e) = e else { continue };
                let Ok(name) = e.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let Ok(meta) = e.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
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

    /// Does this folder (levels) hold a file with this unique name?
    fn folder_holds(&self, levels: &[String], key: &str) -> bool {
        let dir = self.folder_dir(levels);
        ["cur", "new"].iter().any(|sub| {
            fs::read_dir(dir.join(sub))
                .map(|rd| {
                    rd.filter_map(|e| e.ok()).any(|e| {
                        e.file_name()
                            .to_str()
                            .is_some_and(|n| unique_name(n) == key)
                    })
                })
                .unwrap_or(false)
        })
    }
}

/// Reads at most `limit` bytes of a file.
fn read_capped(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    let f = fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(limit as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

impl MailSource for Maildir {
    fn account(&self) -> &str {
        &self.account
    }

    fn folder(&self) -> &str {
        "INBOX"
    }

    async fn fetch(&mut self, keys: &[MessageKey], max_scan_bytes: usize) -> Result<Vec<Fetched>> {
        let index = self.index()?;
        let limit = max_scan_bytes.saturating_mul(4).max(1024 * 1024);
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
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let meta = fs::metadata(path).ok();
            out.push(Fetched {
                key: k.clone(),
                flags: info_flags(name).chars().map(String::from).collect(),
                internal_date: meta
                    .as_ref()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_secs()).ok()),
                size: meta.map_or(raw.len() as u64, |m| m.len()),
                raw,
            });
        }
        Ok(out)
    }

    async fn file(&mut self, keys: &[MessageKey], dest: &[String]) -> Result<(), FileError> {
        let index = self.index()?;
        let dir = self
            .ensure_folder(dest)
            .map_err(|e| FileError::Refused(format!("{e:#}")))?;
        let mut missing = Vec::new();
        for k in keys {
            let Some(src) = index.get(&k.key) else {
                // Already moved (by us before a crash, or by someone else); reported below so
                // that recovery looks and records which of the two it was.
                missing.push(k.key.as_str());
                continue;
            };
            let name = src.file_name().and_then(|n| n.to_str()).unwrap_or(&k.key);
            let target = dir
                .join("cur")
                .join(format!("{}:2,{}", k.key, info_flags(name)));
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
            Ok(())
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

    async fn holds_many(
        &mut self,
        _dest: &[String],
        _message_ids: &[String],
    ) -> Result<std::collections::HashSet<String>> {
        // A rename is atomic: a message is never half-moved, so there is never a copy to
        // find by Message-ID. `holds_key` answers the question exactly.
        Ok(std::collections::HashSet::new())
    }

    async fn holds_key(&mut self, dest: &[String], key: &MessageKey) -> Result<bool> {
        Ok(self.folder_holds(dest, &key.key))
    }

    async fn file_remove_source(&mut self, _keys: &[MessageKey]) -> Result<(), FileError> {
        // Never needed (see `holds`); refuse rather than delete mail.
        Err(FileError::Refused(
            "Maildir moves are atomic; nothing to remove".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
