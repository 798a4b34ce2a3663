//! Refusals to file: the server said no (a folder it will not create, a quota, a name
//! it rejects). The messages stay where they are and are retried, so the same refusal
//! comes back every sync: it is reported as one clear error per account per
//! [`REPORT_EVERY`] with what to change, not one line per message group, and tallied so
//! that `run --once` can end with the same explanation and a failing exit status.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::error;

/// One error line per account per this long, however many refusals come.
pub const REPORT_EVERY: Duration = Duration::from_secs(10 * 60);

/// Refusals seen, per account.
#[derive(Default)]
pub struct Refusals {
    by_account: Mutex<BTreeMap<String, Tally>>,
}

/// What one account was refused.
#[derive(Default)]
struct Tally {
    /// When the last error line was written.
    reported: Option<Instant>,
    /// Messages refused since that line (not yet reported).
    unreported: usize,
    /// Every message refused in this run, by the server's reason.
    total: BTreeMap<String, usize>,
    /// Destinations refused in this run.
    folders: BTreeSet<String>,
    /// The watched folders the refused messages stay in.
    watched: BTreeSet<String>,
}

/// What one account was refused in this run (for `run --once`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub account: String,
    pub messages: usize,
    pub folders: Vec<String>,
    /// Where the messages stay.
    pub watched: Vec<String>,
    /// The server's reasons, most frequent first.
    pub reasons: Vec<String>,
}

impl Summary {
    /// The summary as one paragraph: what stayed, why, and what to change.
    pub fn explain(&self) -> String {
        let reasons = self.reasons.join("; ");
        let watched = self.watched.join(", ");
        format!(
            "account {}: {} message(s) could not be filed into {} and stay in {watched} (they are retried on the next run). The server said: {reasons}. {}",
            self.account,
            self.messages,
            shorten(&self.folders),
            advice(self.reasons.first().map_or("", String::as_str))
        )
    }
}

impl Refusals {
    /// Notes `count` messages of `account` refused for `dest`; logs an error when none was
    /// logged for the account in the last [`REPORT_EVERY`].
    pub fn note(&self, account: &str, watched: &str, dest: &str, count: usize, why: &str) {
        let Ok(mut all) = self.by_account.lock() else {
            return;
        };
        let t = all.entry(account.to_string()).or_default();
        *t.total.entry(why.to_string()).or_default() += count;
        t.folders.insert(dest.to_string());
        t.watched.insert(watched.to_string());
        t.unreported += count;
        let now = Instant::now();
        if t.reported
            .is_some_and(|r| now.duration_since(r) < REPORT_EVERY)
        {
            tracing::debug!(
                account,
                folder = watched,
                dest,
                count,
                "the server refused again: {why}"
            );
            return;
        }
        let since = match t.reported {
            None => String::new(),
            Some(_) => format!(
                " ({} message(s) refused since the last report)",
                t.unreported
            ),
        };
        error!(account, folder = watched, dest, count,
            "the server refused to file {count} message(s) into {dest}: {why}{since}; they stay in {watched} and are retried. {} (reported again in {} minutes if it goes on)",
            advice(why), REPORT_EVERY.as_secs() / 60);
        t.reported = Some(now);
        t.unreported = 0;
    }

    /// Every account refused anything in this run, with what it was refused.
    pub fn summaries(&self) -> Vec<Summary> {
        let Ok(all) = self.by_account.lock() else {
            return Vec::new();
        };
        all.iter()
            .filter(|(_, t)| !t.total.is_empty())
            .map(|(account, t)| {
                let mut reasons: Vec<(&String, &usize)> = t.total.iter().collect();
                reasons.sort_by(|a, b| b.1.cmp(a.1));
                Summary {
                    account: account.clone(),
                    messages: t.total.values().sum(),
                    folders: t.folders.iter().cloned().collect(),
                    watched: t.watched.iter().cloned().collect(),
                    reasons: reasons.into_iter().map(|(r, _)| r.clone()).collect(),
                }
            })
            .collect()
    }
}

/// A few folder names, then how many more.
fn shorten(folders: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = folders
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if folders.len() > SHOWN {
        s.push_str(&format!(" and {} more folder(s)", folders.len() - SHOWN));
    }
    s
}

/// What to change, from what the server said.
pub fn advice(why: &str) -> &'static str {
    let l = why.to_lowercase();
    if l.contains("quota") {
        "The mailbox is full: free space in it or raise its quota."
    } else if l.contains("permission")
        || l.contains("noperm")
        || l.contains("not allowed")
        || l.contains("denied")
    {
        "The account may not create or write these folders: give it that right on the server, or point `routing.folder` (and the other folder settings of the profile) at folders it may use."
    } else if l.contains("invalid")
        || l.contains("name")
        || l.contains("character")
        || l.contains("hierarchy")
    {
        "The server rejects the folder name: simplify `routing.folder` or the member's name, and check the name the log shows."
    } else if l.contains("[gmail]") {
        "Change the profile's folder names: Gmail's own folders are never a destination."
    } else if l.contains("left the inbox") || l.contains("vanished") {
        "Someone else moved these messages first; nothing to change."
    } else {
        "Check the server's message above; the messages are safe where they are."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_tallied_per_account_most_frequent_reason_first() {
        let r = Refusals::default();
        r.note(
            "info",
            "INBOX",
            "SUPPORT/Sarah",
            3,
            "cannot create folder SUPPORT.Sarah: Permission denied",
        );
        r.note(
            "info",
            "INBOX",
            "SALES/Mark",
            5,
            "[OVERQUOTA] Quota exceeded",
        );
        r.note(
            "info",
            "INBOX",
            "SALES/Mark",
            1,
            "[OVERQUOTA] Quota exceeded",
        );
        let s = r.summaries();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].messages, 9);
        assert_eq!(s[0].folders, vec!["SALES/Mark", "SUPPORT/Sarah"]);
        assert_eq!(s[0].reasons[0], "[OVERQUOTA] Quota exceeded");
        let text = s[0].explain();
        assert!(
            text.contains("9 message(s)") && text.contains("stay in INBOX"),
            "{text}"
        );
        assert!(text.contains("raise its quota"), "{text}");
    }

    #[test]
    fn advice_names_what_to_change() {
        assert!(advice("cannot create folder X: Permission denied").contains("routing.folder"));
        assert!(advice("NO [NOPERM] no").contains("right"));
        assert!(advice("Mailbox is over quota").contains("quota"));
        assert!(advice("Invalid mailbox name").contains("folder name"));
        assert!(advice("something else").contains("safe"));
    }
}
