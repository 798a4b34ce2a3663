//! Prometheus metrics: the names mailtriage exports, and a minimal `/metrics` endpoint.
//!
//! The `metrics` facade is a no-op until a recorder is installed, so the pipeline records
//! unconditionally and pays nothing when no `metrics:` address is configured.
//!
//! The endpoint is ours rather than the exporter's `http-listener` feature: that would
//! add h2 (an HTTP/2 implementation of ~23,000 lines) to the build for one GET, and its
//! accept loop retries a failing `accept` at once, forever (the busy loop this one
//! avoids), answering each connection on a detached task.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// Messages triaged, by account, category, recipient and reason.
pub const TRIAGED: &str = "mailtriage_messages_triaged_total";
/// Messages moved into their folder, by account.
pub const FILED: &str = "mailtriage_messages_filed_total";
/// Escalations, by account and level.
pub const ESCALATIONS: &str = "mailtriage_escalations_total";
/// Filing failures, by account and kind (refused, broken).
pub const FILING_ERRORS: &str = "mailtriage_filing_errors_total";
/// Reconnections after a lost or failed connection, by account.
pub const RECONNECTS: &str = "mailtriage_reconnects_total";
/// Failed connection attempts, by account and kind (auth, network, tls, oauth, other).
pub const CONNECT_FAILURES: &str = "mailtriage_connect_failures_total";
/// Configuration/profile reloads, by result (success, failure).
pub const RELOADS: &str = "mailtriage_reloads_total";
/// IMAP sessions currently waiting in IDLE.
pub const IDLE_SESSIONS: &str = "mailtriage_idle_sessions";
/// Accounts being watched.
pub const ACCOUNTS: &str = "mailtriage_accounts";
/// Seconds to parse and triage one message.
pub const TRIAGE_SECONDS: &str = "mailtriage_triage_seconds";
/// Seconds to file one group of messages into one folder.
pub const FILING_SECONDS: &str = "mailtriage_filing_seconds";

/// Mail sent (alerts, acknowledgements, digests), by purpose.
pub const MAIL_SENT: &str = "mailtriage_mail_sent_total";
/// Mail given up after permanent refusal or too many attempts, by purpose.
pub const MAIL_FAILED: &str = "mailtriage_mail_failed_total";
/// Mail waiting in the outbox.
pub const MAIL_PENDING: &str = "mailtriage_mail_pending";

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        TRIAGED,
        "Messages triaged, by account, category, recipient and reason."
    );
    describe_counter!(FILED, "Messages moved into their destination folder.");
    describe_counter!(ESCALATIONS, "Escalations, by account and level.");
    describe_counter!(FILING_ERRORS, "Filing failures, by account and kind.");
    describe_counter!(RECONNECTS, "Reconnections after a lost connection.");
    describe_counter!(CONNECT_FAILURES, "Failed connection attempts, by kind.");
    describe_counter!(RELOADS, "Configuration and profile reloads, by result.");
    describe_gauge!(IDLE_SESSIONS, "IMAP sessions waiting in IDLE.");
    describe_gauge!(ACCOUNTS, "Accounts being watched.");
    describe_counter!(
        MAIL_SENT,
        "Mail sent over SMTP, by purpose (alert, ack, digest)."
    );
    describe_counter!(MAIL_FAILED, "Mail given up, by purpose.");
    describe_gauge!(
        MAIL_PENDING,
        "Mail waiting in the outbox (including retries)."
    );
    describe_histogram!(
        TRIAGE_SECONDS,
        Unit::Seconds,
        "Time to parse and triage one message."
    );
    describe_histogram!(
        FILING_SECONDS,
        Unit::Seconds,
        "Time to file one group of messages."
    );
}

/// Longest pause between attempts to accept while accepting fails.
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(5);
/// How long a client has to send its request and read the answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `/metrics` endpoint: the recorder installed and the address bound, not yet serving.
pub struct Endpoint {
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
}

impl Endpoint {
    /// Installs the Prometheus recorder and binds `addr`; an address in use is an error
    /// here, before the daemon starts.
    pub async fn bind(addr: SocketAddr) -> Result<Endpoint> {
        let handle = PrometheusBuilder::new()
            .set_buckets(&[
                0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
            ])
            .context("metrics buckets")?
            .install_recorder()
            .context("cannot install the metrics recorder")?;
        describe();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for metrics on {addr}"))?;
        info!(%addr, "serving Prometheus metrics at /metrics");
        Ok(Endpoint { listener, handle })
    }

    /// Serves `GET /metrics` until cancelled. When accepting fails (out of file
    /// descriptors, say), waits before trying again — from 0.1 s, doubling to 5 s — so the
    /// failure costs neither a core nor a flood of log lines. Connections being answered
    /// belong to this task and end with it.
    pub async fn serve(self, cancel: CancellationToken) -> Result<()> {
        let mut answering = JoinSet::new();
        let mut failures = 0u32;
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                Some(done) = answering.join_next() => {
                    answered(done);
                    continue;
                }
                _ = cancel.cancelled() => return Ok(()),
            };
            match accepted {
                Ok((stream, _)) => {
                    failures = 0;
                    let h = self.handle.clone();
                    answering.spawn(tokio::time::timeout(RESPONSE_TIMEOUT, respond(stream, h)));
                }
                // The client gave up before we took its connection: nothing to wait for.
                Err(e) if client_gone(&e) => debug!("a metrics client left early: {e}"),
                Err(e) => {
                    let pause = accept_pause(failures);
                    failures = failures.saturating_add(1);
                    warn!(
                        "cannot accept a metrics connection: {e}; trying again in {:.1}s",
                        pause.as_secs_f64()
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = cancel.cancelled() => return Ok(()),
                    }
                }
            }
        }
    }
}

/// Notes how answering one request went (a client's trouble is not ours: debug level).
fn answered(done: Result<Result<std::io::Result<()>, tokio::time::error::Elapsed>, JoinError>) {
    match done {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => debug!("answering a metrics request: {e}"),
        Ok(Err(_)) => debug!(
            "a metrics client took more than {}s; dropped it",
            RESPONSE_TIMEOUT.as_secs()
        ),
        Err(e) if e.is_panic() => error!("answering a metrics request crashed: {e}"),
        Err(_) => {}
    }
}

/// Errors of one connection that ended before it was accepted: accept again at once.
fn client_gone(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    )
}

/// The pause after the `failures`+1st failure in a row to accept.
fn accept_pause(failures: u32) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << failures.min(16))
        .min(MAX_ACCEPT_PAUSE)
}

async fn respond(
    mut stream: tokio::net::TcpStream,
    handle: PrometheusHandle,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&buf);
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = if path == "/metrics" || path.starts_with("/metrics?") {
        handle.run_upkeep();
        ("200 OK", handle.render())
    } else {
        ("404 Not Found", "try /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_pause_longer_each_time_up_to_five_seconds() {
        for (failures, ms) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (5, 3200),
            (6, 5000),
            (40, 5000),
            (u32::MAX, 5000),
        ] {
            assert_eq!(
                accept_pause(failures),
                Duration::from_millis(ms),
                "{failures}"
            );
        }
    }

    #[test]
    fn only_a_client_that_left_is_retried_at_once() {
        use std::io::{Error, ErrorKind};
        for (kind, gone) in [
            (ErrorKind::ConnectionAborted, true),
            (ErrorKind::ConnectionReset, true),
            (ErrorKind::ConnectionRefused, true),
            (ErrorKind::Other, false),
            (ErrorKind::OutOfMemory, false),
            (ErrorKind::PermissionDenied, false),
        ] {
            assert_eq!(client_gone(&Error::from(kind)), gone, "{kind:?}");
        }
        // EMFILE ("Too many open files") has no kind of its own: it must pause.
        assert!(!client_gone(&Error::from_raw_os_error(24)));
    }
}
