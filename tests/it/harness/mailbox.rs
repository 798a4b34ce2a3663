//! Mail-side operations on a running `Dovecot`: delivering, reading back, flags,
//! folders, UIDVALIDITY. Reads and changes go through `doveadm` (direct storage
//! access, no IMAP), except that deliveries write Maildir files themselves.
//!
//! Why deliveries write files: Dovecot normalises line endings when *it* saves a
//! message (`doveadm save`, LMTP, IMAP APPEND all store CRLF as LF), so its copy would
//! not be byte-identical to what the test delivered. A Maildir file holds exactly the
//! bytes written into it, the way a classic MDA (maildrop, procmail) delivers, and
//! Dovecot serves, copies and moves such a file unchanged.

use super::dovecot::Dovecot;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// One message as stored: UID, flags (without the per-session `\Recent`) and the
/// exact bytes of its Maildir file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message's UID in its folder.
    pub uid: u32,
    /// Flags and keywords, e.g. `\Seen`, `$Forwarded`.
    pub flags: Vec<String>,
    /// The stored bytes, exactly.
    pub raw: Vec<u8>,
}

/// Makes Maildir base names unique within this process.
static SEQ: AtomicU64 = AtomicU64::new(0);

impl Dovecot {
    /// Delivers one message like an MDA: writes the exact bytes as a new Maildir file
    /// in `folder` (created if missing), then lets Dovecot index it so it has a UID.
    pub fn deliver(&self, user: &str, folder: &str, raw: &[u8]) {
        let dir = self.folder_dir(user, folder);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        self.write_maildir_file(&dir, now.as_secs(), now.subsec_micros(), raw);
        self.index(user, folder);
    }

    /// Delivers many messages fast (thousands per second): Maildir files named so that
    /// Dovecot assigns UIDs in the order given, then one indexing pass.
    pub fn deliver_many(&self, user: &str, folder: &str, raws: &[Vec<u8>]) {
        let dir = self.folder_dir(user, folder);
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for (i, raw) in raws.iter().enumerate() {
            // Dovecot sorts new files by the seconds and microseconds in their names.
            self.write_maildir_file(
                &dir,
                secs + i as u64 / 1_000_000,
                (i % 1_000_000) as u32,
                raw,
            );
        }
        self.index(user, folder);
    }

    /// Saves through Dovecot itself (`doveadm save`, like its LDA), creating the folder
    /// if missing. Dovecot stores CRLF line endings as LF, so the stored bytes can differ.
    pub fn save_via_doveadm(&self, user: &str, folder: &str, raw: &[u8]) {
        self.folder_dir(user, folder);
        self.doveadm(&["save", "-u", user, "-m", folder], Some(raw));
    }

    /// Adds flags (space-separated, e.g. `\Seen $Label1`) to one message by UID.
    pub fn set_flags(&self, user: &str, folder: &str, uid: u32, flags: &str) {
        let uid = uid.to_string();
        self.doveadm(
            &[
                "flags", "add", "-u", user, flags, "mailbox", folder, "uid", &uid,
            ],
            None,
        );
    }

    /// Creates a folder (and its missing parents).
    pub fn create_folder(&self, user: &str, folder: &str) {
        self.doveadm(&["mailbox", "create", "-u", user, folder], None);
    }

    /// Deletes a folder, with the messages in it.
    pub fn delete_folder(&self, user: &str, folder: &str) {
        self.doveadm(&["mailbox", "delete", "-u", user, folder], None);
    }

    /// The user's selectable folders (always INBOX, never `\Noselect` parents), in
    /// UTF-8 with the configured prefix and separator, sorted.
    pub fn folders(&self, user: &str) -> Vec<String> {
        // Every name, then the status of all of them: parents that are no mailboxes
        // drop out. (`mailbox status "*"` lists nothing in a prefixed namespace.)
        let listed = self.doveadm(&["-f", "tab", "mailbox", "list", "-u", user], None);
        let listed = String::from_utf8_lossy(&listed).into_owned();
        let mut args: Vec<&str> = vec!["-f", "tab", "mailbox", "status", "-u", user, "messages"];
        args.extend(listed.lines().skip(1).filter(|l| !l.is_empty()));
        args.push("INBOX");
        let out = self.doveadm(&args, None);
        let text = String::from_utf8_lossy(&out);
        let mut names: Vec<String> = text
            .lines()
            .skip(1) // the "mailbox\tmessages" header
            .filter_map(|l| Some(l.rsplit_once('\t')?.0.to_string()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Every message in `folder`, in UID order, with its exact stored bytes.
    pub fn messages(&self, user: &str, folder: &str) -> Vec<StoredMessage> {
        let fields = "uid flags size.physical text";
        let args = [
            "-f", "pager", "fetch", "-u", user, fields, "mailbox", folder,
        ];
        // While the daemon moves mail, doveadm may find a message expunged under it and
        // exit 75 (EX_TEMPFAIL): look again rather than fail the test.
        let mut out = None;
        for _ in 0..50 {
            match self.try_doveadm(&args, None) {
                Ok(o) if o.status.success() => {
                    out = Some(o.stdout);
                    break;
                }
                Ok(o) if o.status.code() == Some(75) => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Ok(o) => self.fail(&format!(
                    "doveadm {args:?} failed ({}):\n{}",
                    o.status, o.stderr
                )),
                Err(e) => self.fail(&e),
            }
        }
        let Some(out) = out else {
            self.fail(&format!(
                "doveadm {args:?} kept finding expunged messages for 5 s"
            ))
        };
        parse_fetch(&out).unwrap_or_else(|e| {
            self.fail(&format!(
                "parsing doveadm fetch output of {user}/{folder}: {e}"
            ))
        })
    }

    /// The folder's current UIDVALIDITY.
    pub fn uidvalidity(&self, user: &str, folder: &str) -> u32 {
        let out = self.doveadm(
            &[
                "-f",
                "tab",
                "mailbox",
                "status",
                "-u",
                user,
                "uidvalidity",
                folder,
            ],
            None,
        );
        let text = String::from_utf8_lossy(&out);
        let value = text
            .lines()
            .nth(1)
            .and_then(|l| l.rsplit('\t').next()?.trim().parse().ok());
        value.unwrap_or_else(|| {
            self.fail(&format!("no uidvalidity for {user}/{folder} in {text:?}"))
        })
    }

    /// Gives the folder a new UIDVALIDITY (old + 1), as after a server-side rebuild;
    /// sessions that have it selected are disconnected by Dovecot.
    pub fn change_uidvalidity(&self, user: &str, folder: &str) {
        let old = self.uidvalidity(user, folder);
        let new = old.wrapping_add(1).max(1);
        self.doveadm(
            &[
                "mailbox",
                "update",
                "-u",
                user,
                "--uid-validity",
                &new.to_string(),
                folder,
            ],
            None,
        );
        let now = self.uidvalidity(user, folder);
        if now != new {
            self.fail(&format!(
                "change_uidvalidity {user}/{folder}: asked for {new}, still {now}"
            ));
        }
    }

    /// The folder's Maildir directory, creating the folder if it does not exist yet.
    fn folder_dir(&self, user: &str, folder: &str) -> PathBuf {
        let key = (user.to_string(), folder.to_string());
        let cached = self.folder_dirs.lock().unwrap().get(&key).cloned();
        if let Some(dir) = cached.filter(|d| d.join("new").is_dir()) {
            return dir;
        }
        let out = self.doveadm(&["mailbox", "path", "-u", user, folder], None);
        let dir = PathBuf::from(String::from_utf8_lossy(&out).trim());
        if !dir.join("new").is_dir() {
            let create = ["mailbox", "create", "-u", user, folder];
            let status = ["mailbox", "status", "-u", user, "messages", folder];
            // INBOX always exists for Dovecot; opening it makes the directories.
            let args: &[&str] = if folder.eq_ignore_ascii_case("INBOX") {
                &status
            } else {
                &create
            };
            match self.try_doveadm(args, None) {
                Ok(out) if out.status.success() || out.stderr.contains("already exists") => {}
                Ok(out) => self.fail(&format!("doveadm {args:?} failed:\n{}", out.stderr)),
                Err(e) => self.fail(&e),
            }
        }
        if !dir.join("new").is_dir() {
            self.fail(&format!(
                "{user}/{folder}: Dovecot made no Maildir at {}",
                dir.display()
            ));
        }
        self.folder_dirs.lock().unwrap().insert(key, dir.clone());
        dir
    }

    /// Writes `raw` into `dir/tmp`, hands it to the mail uid, renames it into `dir/new`.
    fn write_maildir_file(&self, dir: &Path, secs: u64, micros: u32, raw: &[u8]) {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        // S= is the physical size, which Dovecot trusts instead of stat()ing the file.
        let name = format!(
            "{secs}.M{micros}P{}Q{seq:012}.mailtriage-it,S={}",
            std::process::id(),
            raw.len()
        );
        let tmp = dir.join("tmp").join(&name);
        let new = dir.join("new").join(&name);
        let (uid, gid) = self.owner;
        let written = fs::write(&tmp, raw)
            .and_then(|()| std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)))
            .and_then(|()| fs::rename(&tmp, &new));
        if let Err(e) = written {
            self.fail(&format!("writing {}: {e}", new.display()));
        }
    }

    /// Makes Dovecot notice new Maildir files and assign their UIDs now.
    fn index(&self, user: &str, folder: &str) {
        self.doveadm(&["mailbox", "status", "-u", user, "messages", folder], None);
    }
}

/// Parses `doveadm -f pager fetch "uid flags size.physical text"`: records of
/// `key: value` lines separated by "\f\n", `text:` followed by exactly
/// size.physical raw bytes. Using the size keeps message bytes that look like a
/// separator from confusing us.
fn parse_fetch(out: &[u8]) -> Result<Vec<StoredMessage>, String> {
    fn field(rest: &mut &[u8], key: &str) -> Result<String, String> {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(format!("no end of line for {key}"))?;
        let line = std::str::from_utf8(&rest[..end]).map_err(|e| e.to_string())?;
        let value = line.strip_prefix(key).and_then(|v| v.strip_prefix(':'));
        let value = value
            .ok_or(format!("expected \"{key}:\", got {line:?}"))?
            .trim()
            .to_string();
        *rest = &rest[end + 1..];
        Ok(value)
    }
    let mut messages = Vec::new();
    let mut rest = out;
    while !rest.is_empty() {
        let uid = field(&mut rest, "uid")?
            .parse()
            .map_err(|e| format!("bad uid: {e}"))?;
        let flags: Vec<String> = field(&mut rest, "flags")?
            .split_whitespace()
            .filter(|f| *f != "\\Recent")
            .map(String::from)
            .collect();
        let size: usize = field(&mut rest, "size.physical")?
            .parse()
            .map_err(|e| format!("bad size: {e}"))?;
        rest = rest.strip_prefix(b"text:\n").ok_or("expected \"text:\"")?;
        if rest.len() < size {
            return Err(format!("uid {uid}: text shorter than size.physical {size}"));
        }
        let (raw, after) = rest.split_at(size);
        rest = match after {
            [] => after,
            [b'\x0c', b'\n', next @ ..] => next,
            _ => return Err(format!("uid {uid}: text longer than size.physical {size}")),
        };
        messages.push(StoredMessage {
            uid,
            flags,
            raw: raw.to_vec(),
        });
    }
    Ok(messages)
}
