//! One Maildir account's task: filesystem events on the inbox plus a periodic rescan.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::backoff::Backoff;
use super::{log_report, pause, Shared, BATCH};
use crate::config::Backfill;
use crate::mailbox::maildir::Maildir;
use crate::mailbox::MessageKey;
use crate::pipeline::{self, Account};
use crate::store::{self, FolderState};

/// Watches a Maildir inbox until `cancel` fires (or, with `once`, one pass).
pub async fn task(
    acct: Arc<Account>,
    root: PathBuf,
    cancel: CancellationToken,
    shared: Arc<Shared>,
) -> Result<()> {
    let name = acct.config.name.clone();
    let mut md = Maildir::open(&name, &root)?;
    let st = match acct.store.folder_state(&name, "INBOX")? {
        Some(s) => s,
        None => {
            let now = store::now();
            let baseline = match acct.config.backfill {
                Backfill::None => now,
                Backfill::All => 0,
                Backfill::Since(d) => now - i64::try_from(d.as_secs()).unwrap_or(0),
            };
            let s = FolderState {
                uidvalidity: 0,
                last_uid: 0,
                baseline,
            };
            acct.store.set_folder_state(&name, "INBOX", s)?;
            s
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(64);
    let _watcher = if shared.once {
        None
    } else {
        Some(watch_dirs(&name, &md.watch_dirs(), tx)?)
    };
    let mut seen = acct.store.decided_keys(&name, "INBOX")?;
    let mut backoff = Backoff::new(&name);
    let mut first = true;
    info!(account = %name, maildir = %root.display(), "watching Maildir");
    loop {
        let pass = async {
            let mut report = pipeline::recover(&mut md, &acct, None).await?;
            let fresh: Vec<MessageKey> = md
                .scan()?
                .into_iter()
                .filter(|e| e.mtime >= st.baseline && !seen.contains(&e.key.key))
                .map(|e| e.key)
                .collect();
            for chunk in fresh.chunks(BATCH) {
                let r = pipeline::process_new_mail(&mut md, &acct, chunk, None, None).await?;
                report.add(r);
                seen.extend(chunk.iter().map(|k| k.key.clone()));
                if cancel.is_cancelled() {
                    break;
                }
            }
            Ok::<_, anyhow::Error>(report)
        };
        match pass.await {
            Ok(r) => {
                backoff.reset();
                log_report(&shared, &name, "INBOX", &r);
                if first {
                    shared.ready.done(&name);
                    first = false;
                }
            }
            Err(e) if shared.once => return Err(e),
            Err(e) => {
                let d = backoff.next(false);
                warn!(account = %name, "Maildir pass failed: {e:#}; retrying in {}s", d.as_secs());
                if !pause(d, &cancel).await {
                    return Ok(());
                }
                continue;
            }
        }
        if shared.once || cancel.is_cancelled() {
            return Ok(());
        }
        tokio::select! {
            Some(()) = rx.recv() => {
                // Let a burst of deliveries settle, then take them in one pass.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while rx.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(acct.config.poll_interval) => {}
            _ = cancel.cancelled() => return Ok(()),
        }
    }
}

/// Filesystem events on the inbox's directories, as a wake-up signal.
fn watch_dirs(
    account: &str,
    dirs: &[PathBuf],
    tx: tokio::sync::mpsc::Sender<()>,
) -> Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let account = account.to_string();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
        Ok(_) => {
            let _ = tx.try_send(());
        }
        Err(e) => warn!(
            account,
            "watching the Maildir for new mail: {e}; new mail may wait for the next poll"
        ),
    })
    .context("cannot watch the Maildir for new mail")?;
    for d in dirs {
        w.watch(d, notify::RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {}", d.display()))?;
    }
    Ok(w)
}
