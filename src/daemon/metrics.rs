//! Prometheus metrics: the names mailtriage exports, and a minimal `/metrics` endpoint.
//!
//! The `metrics` facade is a no-op until a recorder is installed, so the pipeline records
//! unconditionally and pays nothing when no `metrics:` address is configured.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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

/// Installs the Prometheus recorder and serves `GET /metrics` on `addr` until cancelled.
pub async fn serve(addr: SocketAddr, cancel: CancellationToken) -> Result<()> {
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
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = cancel.cancelled() => return,
            };
            match accepted {
                Ok((stream, _)) => {
                    let h = handle.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            respond(stream, h),
                        )
                        .await;
                    });
                }
                Err(e) => warn!("metrics listener: {e}"),
            }
        }
    });
    Ok(())
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
