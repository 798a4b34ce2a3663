//! Mail the daemon sends: escalation alerts, acknowledgements to customers, daily
//! digests — queued in the state database, sent over SMTP by one worker.
//!
//! - [`plan_mail`] (pure but for rendering) decides what a decision sends; the pipeline
//!   records the result in the same transaction as the decision, so a message is alerted
//!   about at most once (unique key per purpose, reference and recipient) and nothing
//!   queued is lost by a crash or an SMTP outage.
//! - [`run`] sends what is due, one message at a time, each under a timeout; a failure is
//!   retried with exponential backoff (2 s doubling to 30 min, ~2 days in all); a
//!   permanent refusal (5xx other than authentication) gives up at once.
//! - Exactly-once is "at least once, with a tiny window": the row is marked sent by one
//!   SQLite write immediately after the server accepted the message. A crash between
//!   the server's 250 and that write resends the message after restart — with the same
//!   Message-ID, so clients can tell. No protocol can close that window (SMTP has no
//!   two-phase commit); it is one local write long.

pub mod ack;
pub mod compose;
pub mod digest;
pub mod reflect;
mod starttls;
mod transport;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::SecretString;
use crate::config::SmtpConfig;
use crate::daemon::metrics as m;
use crate::mail::MessageView;
use crate::oauth::TokenSource;
use crate::profile::{LiveProfile, Profile};
use crate::store::outbox::NewMail;
use crate::store::{now, Store};
use crate::triage::Decision;

pub use compose::Sender;
use transport::{Failure, Smtp, COMMAND_TIMEOUT};

/// Longest time one message may take to send (lettre's own timeout covers each
/// command, not the whole exchange).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts before a message is given up (about two days of retries).
pub const MAX_SEND_ATTEMPTS: i64 = 100;
/// Messages read from the outbox at a time.
const BATCH: usize = 200;
/// Longest pause between attempts, seconds.
const MAX_RETRY_SECS: i64 = 1800;

/// What accounts share for sending: the sender, a wake-up for the worker, and the
/// accounts whose profiles may ask for digests.
pub struct MailSettings {
    pub sender: Sender,
    pub wake: tokio::sync::Notify,
    pub accounts: Mutex<Vec<(String, Arc<LiveProfile>)>>,
    /// XOAUTH2 (`smtp.oauth_account`): the account's token source, shared with its IMAP
    /// sessions, and the token the server last refused (refreshed before the next try).
    pub tokens: Option<Arc<TokenSource>>,
    refused: tokio::sync::Mutex<Option<SecretString>>,
}

impl MailSettings {
    /// Settings for the `smtp.from` sender.
    pub fn new(from: &str) -> Result<MailSettings> {
        Ok(MailSettings {
            sender: Sender::parse(from)?,
            wake: tokio::sync::Notify::new(),
            accounts: Mutex::new(Vec::new()),
            tokens: None,
            refused: tokio::sync::Mutex::new(None),
        })
    }

    /// Registers (or replaces) an account's profile for digests.
    pub fn set_account(&self, name: &str, profile: Option<Arc<LiveProfile>>) {
        if let Ok(mut a) = self.accounts.lock() {
            a.retain(|(n, _)| n != name);
            if let Some(p) = profile {
                a.push((name.to_string(), p));
            }
        }
    }
}

/// Everything plan_mail needs to know about one message.
pub struct MailInput<'a> {
    pub account: &'a str,
    pub profile: &'a Profile,
    pub view: &'a MessageView,
    pub decision: &'a Decision,
    /// The message's dedupe key (Message-ID or header hash).
    pub fingerprint: &'a str,
    pub own_addresses: &'a [String],
    /// `authserv-id`s whose `Authentication-Results` are believed (lowercased).
    pub trusted_authserv: &'a [String],
    /// Today in the business's time zone (YYYY-MM-DD): the acknowledgement's day.
    pub today: &'a str,
}

/// The alerts and the acknowledgement a decision sends. Problems with one recipient
/// (no address, an address lettre rejects) are logged and skip only that recipient.
pub fn plan_mail(sender: &Sender, i: &MailInput<'_>) -> Vec<NewMail> {
    let mut out = Vec::new();
    let original = compose::Original {
        message_id: i.view.message_id.as_deref(),
        references: &i.view.references,
        subject: &i.view.subject,
        from_name: i.view.from_name(),
        from_address: i.view.from_address(),
        new_text: &i.view.body.new_text,
    };
    if let Some(e) = &i.decision.escalation {
        let facts = compose::AlertFacts {
            account: i.account,
            business: &i.profile.business.name,
            ref_key: i.fingerprint,
            original: &original,
            decision: i.decision,
            once_per_secs: i.profile.escalation.alert_once_per_secs,
        };
        for name in &e.actions.notify {
            let Some(member) = i.profile.members.iter().find(|m| &m.name == name) else {
                continue;
            };
            let Some(addr) = member.email.as_deref() else {
                warn!(account = i.account, member = %name, "cannot alert {name}: no email address in the profile");
                continue;
            };
            match compose::alert(sender, name, addr, &facts) {
                Ok(mail) => out.push(mail),
                Err(e) => warn!(account = i.account, member = %name, "cannot alert {name}: {e:#}"),
            }
        }
    }
    match ack::eligible(
        i.view,
        i.decision,
        i.profile,
        i.own_addresses,
        i.trusted_authserv,
    ) {
        Ok(_) => {
            if let Some(a) = &i.profile.acknowledgement {
                let (subject, body) = ack::render(a, &ack::values(i.view, i.decision, i.profile));
                let limits = compose::AckLimits {
                    per_hour: a.max_per_hour,
                    per_domain_per_hour: a.max_per_domain_per_hour,
                };
                match compose::acknowledgement(
                    sender, i.account, i.today, &original, &subject, &body, limits,
                ) {
                    Ok(mail) => out.push(mail),
                    Err(e) => warn!(account = i.account, "cannot acknowledge: {e:#}"),
                }
            }
        }
        Err(ack::NoAck::Disabled) => {}
        Err(why) => debug!(account = i.account, "no acknowledgement: {why:?}"),
    }
    out
}

/// Seconds to wait after the `attempts`-th failure: 2 s doubling, at most 30 min.
pub fn retry_delay(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 11) - 1;
    (2i64 << exp).min(MAX_RETRY_SECS)
}

/// What one pass over the outbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub failed: usize,
    pub deferred: usize,
}

/// Sends every message due at `at`. A temporary failure (server down, timeout, 4xx,
/// authentication) defers the rest of the queue to the same retry time, so an outage
/// costs one attempt per pass, not one per message.
pub async fn pass(
    store: &Store,
    cfg: &SmtpConfig,
    settings: &MailSettings,
    at: i64,
) -> Result<Pass> {
    let mut total = Pass::default();
    loop {
        let p = batch(store, cfg, settings, at).await?;
        total.sent += p.sent;
        total.failed += p.failed;
        total.deferred += p.deferred;
        // Done when nothing was due, or an outage deferred the rest.
        if p.sent + p.failed == 0 || p.deferred > 0 {
            return Ok(total);
        }
    }
}

/// The access token for XOAUTH2, when the SMTP login uses one: a fresh one after the
/// server refused the last.
async fn xoauth2_token(settings: &MailSettings) -> Result<Option<SecretString>> {
    let Some(tokens) = &settings.tokens else {
        return Ok(None);
    };
    let refused = settings.refused.lock().await.take();
    let token = match refused {
        Some(r) => tokens.refreshed(&r).await?,
        None => tokens.access_token().await?,
    };
    Ok(Some(token))
}

/// Up to BATCH due messages over one connection: each is recorded as sent the moment
/// the server's 250 arrives, before the next one (or QUIT) is sent.
async fn batch(store: &Store, cfg: &SmtpConfig, settings: &MailSettings, at: i64) -> Result<Pass> {
    let mut report = Pass::default();
    let due = store.due_mail(at, BATCH)?;
    if due.is_empty() {
        return Ok(report);
    }
    let ready = match xoauth2_token(settings).await {
        Ok(token) => Smtp::new(cfg, &settings.sender, token.as_ref())
            .await
            .map(|smtp| (smtp, token)),
        Err(e) => Err(e),
    };
    let (smtp, token) = match ready {
        Ok(r) => r,
        Err(e) => {
            // A configuration problem (password command failing), a revoked refresh token
            // or an unreachable OAuth2 provider: keep the mail queued, retry like an outage.
            let first = due.first().map_or(1, |d| d.attempts + 1);
            let until = now() + retry_delay(first);
            warn!("cannot send mail: {e:#}; retrying in {}s", until - now());
            report.deferred = store.defer_due(until)?;
            return Ok(report);
        }
    };
    let mut conn: Option<AsyncSmtpConnection> = None;
    for mail in due {
        let envelope = match (mail.envelope_from.parse(), mail.rcpt.parse()) {
            (Ok(from), Ok(to)) => Envelope::new(Some(from), vec![to]),
            _ => Err(lettre::error::Error::MissingTo),
        };
        let outcome: Result<(), (bool, String)> = match envelope {
            Err(e) => Err((true, format!("invalid envelope: {e}"))),
            Ok(env) => {
                let send = async {
                    let c = match conn.take() {
                        Some(c) => c,
                        None => smtp.connect().await?,
                    };
                    conn.insert(c)
                        .send(&env, &mail.message)
                        .await
                        .map(|_| ())
                        .map_err(Failure::from)
                };
                match tokio::time::timeout(SEND_TIMEOUT, send).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(f)) => {
                        if f.auth {
                            // An expired or revoked access token: refresh before retrying.
                            *settings.refused.lock().await = token.clone();
                        }
                        Err((f.permanent, f.why))
                    }
                    Err(_) => Err((
                        false,
                        format!("no answer within {}s", SEND_TIMEOUT.as_secs()),
                    )),
                }
            }
        };
        match outcome {
            Ok(()) => {
                // The one write between the server's acceptance and "sent".
                store.mark_sent(mail.id)?;
                report.sent += 1;
                metrics::counter!(m::MAIL_SENT, "purpose" => mail.purpose.clone()).increment(1);
                info!(purpose = %mail.purpose, rcpt = %mail.rcpt, attempts = mail.attempts + 1, "sent the {} to {}", mail.purpose, mail.rcpt);
            }
            Err((permanent, why)) => {
                // A failed exchange leaves the session in doubt: start the next one afresh.
                if let Some(mut c) = conn.take() {
                    let _ = tokio::time::timeout(COMMAND_TIMEOUT, c.abort()).await;
                }
                let attempts = mail.attempts + 1;
                let give_up = permanent || attempts >= MAX_SEND_ATTEMPTS;
                let next = now() + retry_delay(attempts);
                store.mark_attempt_failed(mail.id, &why, next, give_up)?;
                if give_up {
                    report.failed += 1;
                    metrics::counter!(m::MAIL_FAILED, "purpose" => mail.purpose.clone())
                        .increment(1);
                    warn!(purpose = %mail.purpose, rcpt = %mail.rcpt, attempts, "giving up on the {} to {}: {why}", mail.purpose, mail.rcpt);
                    continue;
                }
                warn!(purpose = %mail.purpose, rcpt = %mail.rcpt, attempts,
                    "cannot send the {} to {}: {why}; retrying in {}s", mail.purpose, mail.rcpt, next - now());
                report.deferred += 1 + store.defer_due(next)?;
                break;
            }
        }
    }
    if let Some(mut c) = conn {
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, c.quit()).await;
    }
    Ok(report)
}

fn set_pending_gauge(store: &Store) {
    if let Ok(c) = store.outbox_counts() {
        metrics::gauge!(m::MAIL_PENDING).set(c.pending as f64);
    }
}

/// The outbox worker: sends due mail, queues digests when their time comes, sleeps
/// until the next due message, new mail (`wake`), or at most a minute.
pub async fn run(
    store: Arc<Store>,
    cfg: SmtpConfig,
    settings: Arc<MailSettings>,
    cancel: CancellationToken,
) {
    info!(host = %cfg.host, port = cfg.port, "outbox ready");
    loop {
        if let Err(e) = digest::queue_due(&store, &settings, now()) {
            warn!("cannot queue digests: {e:#}");
        }
        match pass(&store, &cfg, &settings, now()).await {
            Ok(p) if p.sent + p.failed > 0 => debug!(?p, "outbox pass"),
            Ok(_) => {}
            Err(e) => warn!("outbox pass failed: {e:#}"),
        }
        set_pending_gauge(&store);
        let wait = match store.next_due() {
            Ok(Some(t)) => (t - now()).clamp(1, 60),
            _ => 60,
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(wait as u64)) => {}
            _ = settings.wake.notified() => {}
            _ = cancel.cancelled() => break,
        }
    }
}

/// `run --once`: one attempt at everything pending — also what is waiting for a retry
/// (a one-shot run is a deliberate "try now") — then return.
pub async fn drain_once(store: &Store, cfg: &SmtpConfig, settings: &MailSettings) -> Result<Pass> {
    digest::queue_due(store, settings, now())?;
    let p = pass(store, cfg, settings, i64::MAX).await?;
    set_pending_gauge(store);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_half_an_hour() {
        let delays: Vec<i64> = (1..=13).map(retry_delay).collect();
        assert_eq!(
            delays,
            vec![2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 1800, 1800, 1800]
        );
        assert_eq!(retry_delay(0), 2);
        let total: i64 = (1..MAX_SEND_ATTEMPTS).map(retry_delay).sum();
        assert!(total > 36 * 3600, "retries cover a long outage: {total}s");
    }
}
