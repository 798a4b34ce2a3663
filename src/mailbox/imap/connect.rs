//! Connecting and logging in: TCP, TLS (implicit or STARTTLS) with verified certificates
//! over rustls with the ring provider, the greeting, and authentication.
//!
//! Every step has a timeout (async-imap has none of its own). Errors are typed so the
//! caller can tell "fix your password" (no fast retries) from "the network blinked".

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::anyhow;
use async_imap::imap_proto::{Response, Status};
use async_imap::{Authenticator, Client, Session};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::guard::LiteralGuard;
use crate::config::{is_loopback, AuthKind, ImapConfig, SecretString, TlsMode};

/// The byte stream under an IMAP session: plain TCP (loopback, or before STARTTLS) or
/// TLS, read through a [`LiteralGuard`] (what the server sends can make the reader hold no
/// literal longer than the guard's limit).
#[derive(Debug)]
pub struct Stream {
    link: Link,
    guard: LiteralGuard,
}

#[derive(Debug)]
enum Link {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    fn new(link: Link) -> Stream {
        Stream {
            link,
            guard: LiteralGuard::default(),
        }
    }

    /// The TCP connection of a plain stream (for STARTTLS; bytes not yet read are dropped).
    fn into_plain(self) -> Option<TcpStream> {
        match self.link {
            Link::Plain(tcp) => Some(tcp),
            Link::Tls(_) => None,
        }
    }

    /// Literals the server announces from now on are cut to `limit` bytes.
    pub fn limit_literals(&mut self, limit: usize) {
        self.guard.set_limit(limit);
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.guard.pending() > 0 {
                let n = this.guard.take(buf.initialize_unfilled());
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut chunk);
            let polled = match &mut this.link {
                Link::Plain(s) => Pin::new(s).poll_read(cx, &mut read),
                Link::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, &mut read),
            };
            match polled {
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // The end: what the guard held back, then the end itself.
                    this.guard.finish();
                    if this.guard.pending() == 0 {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Ok(())) => this.guard.feed(read.filled()),
                other => return other,
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().link {
            Link::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Link::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().link {
            Link::Plain(s) => Pin::new(s).poll_flush(cx),
            Link::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().link {
            Link::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Link::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A logged-in IMAP session.
pub type ImapSession = Session<Stream>;

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server could not be reached (DNS, refused, unreachable).
    #[error("cannot reach {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    /// TLS failed: unknown CA, wrong host name, protocol error.
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    /// STARTTLS was required but refused (possibly stripped by an attacker).
    #[error("{host} refused STARTTLS ({reason}); not continuing without encryption")]
    StarttlsRefused { host: String, reason: String },
    /// The server rejected the credentials.
    #[error("login refused for {user}: {reason}")]
    Auth { user: String, reason: String },
    /// A step took too long.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// Anything else (unexpected responses, connection closed).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl ConnectError {
    /// Authentication failures will not fix themselves by retrying quickly.
    pub fn is_auth(&self) -> bool {
        matches!(self, ConnectError::Auth { .. })
    }
}

async fn step<T, F: std::future::Future<Output = T>>(
    timeout: Duration,
    what: &'static str,
    f: F,
) -> Result<T, ConnectError> {
    tokio::time::timeout(timeout, f)
        .await
        .map_err(|_| ConnectError::Timeout(what))
}

/// The TLS client configuration for a server: system roots plus an optional CA file,
/// ring provider, safe protocol versions.
pub fn tls_config(ca_file: Option<&std::path::Path>) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow!("cannot read CA file {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert =
                cert.map_err(|e| anyhow!("CA file {} is not valid PEM: {e}", path.display()))?;
            roots.add(cert).map_err(|e| {
                anyhow!(
                    "CA file {} holds an unusable certificate: {e}",
                    path.display()
                )
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(anyhow!("CA file {} holds no certificate", path.display()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Which step a TLS handshake follows: the TCP connect (implicit TLS) or STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsStart {
    Implicit,
    AfterStarttls,
}

/// A certificate name as rustls shows it (`DnsName("mail.test")`), without the wrapper.
fn bare_name(presented: &str) -> &str {
    presented
        .split_once("(\"")
        .and_then(|(_, rest)| rest.strip_suffix("\")"))
        .unwrap_or(presented)
}

/// Explains a TLS failure in words an operator can act on.
///
/// Matches on rustls's typed error, never on its message text: rustls 0.23 reports a
/// wrong name or an expired certificate as `NotValidForNameContext`/`ExpiredContext`,
/// whose messages no longer carry the variant's name.
fn tls_reason(e: &io::Error, host: &str, port: u16, start: TlsStart) -> String {
    use rustls::{CertificateError as C, Error as E};
    let text = e.to_string();
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<E>()) else {
        return match (e.kind(), start) {
            (io::ErrorKind::UnexpectedEof, TlsStart::Implicit) => format!(
                "the server closed the connection during the TLS handshake ({text}); is port {port} an implicit-TLS port? (use tls: starttls for a plain IMAP port such as 143)"
            ),
            (io::ErrorKind::UnexpectedEof, TlsStart::AfterStarttls) => format!(
                "the server accepted STARTTLS but closed the connection instead of starting TLS ({text})"
            ),
            _ => text,
        };
    };
    match tls {
        E::InvalidCertificate(C::UnknownIssuer) => format!(
            "the certificate is not signed by a trusted CA ({text}); set imap.ca_file to the CA's PEM file if this server uses a private CA"
        ),
        E::InvalidCertificate(C::NotValidForNameContext { presented, .. }) => {
            let names: Vec<&str> = presented.iter().map(|n| bare_name(n)).collect();
            format!(
                "the certificate is not valid for the name {host}: it is only valid for {} ({text}); set imap.host to a name the certificate lists",
                if names.is_empty() {
                    "no name at all".to_string()
                } else {
                    names.join(", ")
                }
            )
        }
        E::InvalidCertificate(C::NotValidForName) => format!(
            "the certificate is not valid for the name {host} ({text}); set imap.host to a name the certificate lists"
        ),
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            format!("the certificate has expired ({text})")
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => format!(
            "the certificate is not valid yet ({text}); is this machine's clock right?"
        ),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => match start {
            TlsStart::Implicit => format!(
                "the server does not speak TLS on port {port} ({text}); use tls: starttls for a plain IMAP port such as 143"
            ),
            TlsStart::AfterStarttls => format!(
                "the server accepted STARTTLS but did not start TLS ({text}); a broken server, or someone in between stripping encryption"
            ),
        },
        _ => text,
    }
}

async fn tls_wrap(
    tcp: TcpStream,
    cfg: &ImapConfig,
    tls: &Arc<ClientConfig>,
    start: TlsStart,
) -> Result<Stream, ConnectError> {
    let host = cfg.host.as_str();
    let name = ServerName::try_from(host.to_string()).map_err(|e| ConnectError::Tls {
        host: host.to_string(),
        reason: format!("invalid server name: {e}"),
    })?;
    let connector = TlsConnector::from(tls.clone());
    let stream = step(cfg.timeout, "negotiating TLS", connector.connect(name, tcp))
        .await?
        .map_err(|e| ConnectError::Tls {
            host: host.to_string(),
            reason: tls_reason(&e, host, cfg.port, start),
        })?;
    Ok(Stream::new(Link::Tls(Box::new(stream))))
}

/// Reads the server greeting; anything but OK ends the attempt.
async fn greeting(client: &mut Client<Stream>, timeout: Duration) -> Result<(), ConnectError> {
    let resp = step(timeout, "waiting for the greeting", client.read_response())
        .await?
        .map_err(|e| ConnectError::Other(anyhow!("reading the greeting: {e}")))?
        .ok_or_else(|| {
            ConnectError::Other(anyhow!("the server closed the connection before greeting"))
        })?;
    match resp.parsed() {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(()),
        Response::Data {
            status: Status::PreAuth,
            ..
        } => Err(ConnectError::Other(anyhow!(
            "the server pre-authenticated the connection; refusing (it would skip our login)"
        ))),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(ConnectError::Other(anyhow!(
            "the server said goodbye: {}",
            outcome.information.as_deref().unwrap_or("-")
        ))),
        other => Err(ConnectError::Other(anyhow!(
            "unexpected greeting: {other:?}"
        ))),
    }
}

/// SASL PLAIN.
struct Plain<'a> {
    user: &'a str,
    password: &'a str,
}

impl Authenticator for Plain<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        format!("\0{}\0{}", self.user, self.password).into_bytes()
    }
}

/// SASL XOAUTH2 / OAUTHBEARER: the initial response, then an empty answer to the server's
/// error challenge so that it sends its `NO` (the challenge's JSON is kept for the message).
struct Bearer<'a> {
    initial: Option<Vec<u8>>,
    error: &'a std::sync::Mutex<Option<String>>,
}

impl Authenticator for Bearer<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        match self.initial.take() {
            Some(first) => first,
            None => {
                if let Ok(mut e) = self.error.lock() {
                    *e = Some(challenge_text(challenge));
                }
                Vec::new()
            }
        }
    }
}

/// The JSON error a server sends in its SASL challenge, fit for one log line: control
/// characters dropped, at most 300 characters.
fn challenge_text(challenge: &[u8]) -> String {
    String::from_utf8_lossy(challenge)
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect()
}

/// A failed LOGIN/AUTHENTICATE: a refusal only when the server said NO or BAD; a
/// connection that broke meanwhile is a connection error and is retried as one, not
/// held back for minutes as if the password were wrong.
fn login_error(user: &str, e: &async_imap::error::Error, detail: Option<String>) -> ConnectError {
    match e {
        async_imap::error::Error::No(m) | async_imap::error::Error::Bad(m) => ConnectError::Auth {
            user: user.to_string(),
            reason: match detail {
                Some(json) => format!("{m} (server said: {json})"),
                None => m.clone(),
            },
        },
        other => ConnectError::Other(anyhow::anyhow!("connection lost while logging in: {other}")),
    }
}

/// Connects, secures, and logs in. `secret` is the password (login/plain) or the OAuth2
/// access token (xoauth2/oauthbearer).
pub async fn connect(
    cfg: &ImapConfig,
    tls: &Arc<ClientConfig>,
    secret: &SecretString,
) -> Result<ImapSession, ConnectError> {
    if cfg.tls == TlsMode::None && !is_loopback(&cfg.host) && !cfg.allow_insecure {
        return Err(ConnectError::Other(anyhow!(
            "refusing an unencrypted connection to {} (set allow_insecure to override)",
            cfg.host
        )));
    }
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let tcp = step(
        cfg.timeout,
        "connecting",
        TcpStream::connect((cfg.host.as_str(), cfg.port)),
    )
    .await?
    .map_err(|e| ConnectError::Unreachable {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let _ = tcp.set_nodelay(true);
    let stream = match cfg.tls {
        TlsMode::Implicit => tls_wrap(tcp, cfg, tls, TlsStart::Implicit).await?,
        TlsMode::Starttls | TlsMode::None => Stream::new(Link::Plain(tcp)),
    };
    let mut client = Client::new(stream);
    greeting(&mut client, cfg.timeout).await?;
    if cfg.tls == TlsMode::Starttls {
        step(
            cfg.timeout,
            "starting TLS",
            client.run_command_and_check_ok("STARTTLS", None),
        )
        .await?
        .map_err(|e| match e {
            async_imap::error::Error::No(m) | async_imap::error::Error::Bad(m) => {
                ConnectError::StarttlsRefused {
                    host: cfg.host.clone(),
                    reason: m,
                }
            }
            other => ConnectError::Other(anyhow!("connection lost during STARTTLS: {other}")),
        })?;
        // Anything the server sent after its OK is discarded with the plain stream.
        let Some(tcp) = client.into_inner().into_plain() else {
            return Err(ConnectError::Other(anyhow!("STARTTLS on a TLS stream")));
        };
        client = Client::new(tls_wrap(tcp, cfg, tls, TlsStart::AfterStarttls).await?);
    }
    let user = cfg.user.as_str();
    let session = match cfg.auth {
        AuthKind::Login => step(
            cfg.timeout,
            "logging in",
            client.login(user, secret.expose()),
        )
        .await?
        .map_err(|(e, _)| login_error(user, &e, None))?,
        AuthKind::Plain => step(
            cfg.timeout,
            "authenticating",
            client.authenticate(
                "PLAIN",
                Plain {
                    user,
                    password: secret.expose(),
                },
            ),
        )
        .await?
        .map_err(|(e, _)| login_error(user, &e, None))?,
        AuthKind::Xoauth2 | AuthKind::Oauthbearer => {
            let (mech, initial) = if cfg.auth == AuthKind::Xoauth2 {
                ("XOAUTH2", crate::oauth::xoauth2_response(user, secret))
            } else {
                (
                    "OAUTHBEARER",
                    crate::oauth::oauthbearer_response(user, &cfg.host, cfg.port, secret),
                )
            };
            let error = std::sync::Mutex::new(None);
            let r = step(
                cfg.timeout,
                "authenticating",
                client.authenticate(
                    mech,
                    Bearer {
                        initial: Some(initial.expose().as_bytes().to_vec()),
                        error: &error,
                    },
                ),
            )
            .await?;
            match r {
                Ok(s) => s,
                Err((e, _)) => {
                    let detail = error.lock().ok().and_then(|mut g| g.take());
                    return Err(login_error(user, &e, detail));
                }
            }
        }
    };
    Ok(session)
}

/// What the server can do, from its post-login CAPABILITY.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    pub idle: bool,
    pub r#move: bool,
    pub uidplus: bool,
    pub utf8_accept: bool,
    /// RFC 2342: the server says where a user's own folders live.
    pub namespace: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{CertificateError, Error as TlsError};

    fn imap(host: &str, port: u16, tls: TlsMode, allow_insecure: bool) -> ImapConfig {
        ImapConfig {
            host: host.to_string(),
            port,
            tls,
            user: "alice".to_string(),
            password: None,
            auth: AuthKind::Login,
            oauth: None,
            ca_file: None,
            allow_insecure,
            timeout: Duration::from_secs(2),
        }
    }

    async fn try_connect(cfg: &ImapConfig) -> ConnectError {
        let tls = tls_config(None).expect("TLS config");
        let secret = SecretString::new("pw-never-sent".to_string());
        match connect(cfg, &tls, &secret).await {
            Ok(_) => panic!("connected to {}", cfg.host),
            Err(e) => e,
        }
    }

    /// Plaintext to a host that is not loopback is refused before any name lookup or
    /// socket: `mail.invalid` (RFC 2606) cannot resolve, so any attempt to reach it
    /// would end in `Unreachable` or `Timeout` instead of the refusal.
    #[tokio::test]
    async fn connect_refuses_plaintext_to_a_remote_host_before_opening_a_socket() {
        let started = std::time::Instant::now();
        let e = try_connect(&imap("mail.invalid", 143, TlsMode::None, false)).await;
        assert!(
            matches!(&e, ConnectError::Other(_)),
            "not refused up front: {e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains("refusing an unencrypted connection to mail.invalid")
                && text.contains("allow_insecure"),
            "{text}"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    /// The refusal is about the host, not plaintext as such: loopback is allowed, so
    /// this attempt goes to the network (a closed port on 127.0.0.1).
    #[tokio::test]
    async fn connect_allows_plaintext_to_loopback() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let e = try_connect(&imap("127.0.0.1", port, TlsMode::None, false)).await;
        assert!(
            matches!(e, ConnectError::Unreachable { .. }),
            "loopback was refused: {e}"
        );
    }

    /// The XOAUTH2 error challenge is answered with an empty response and kept for the
    /// message; its JSON is shown as the server sent it, minus control characters.
    #[test]
    fn bearer_answers_the_error_challenge_empty_and_keeps_its_text() {
        let error = std::sync::Mutex::new(None);
        let mut b = Bearer {
            initial: Some(b"user=u\x01auth=Bearer t\x01\x01".to_vec()),
            error: &error,
        };
        assert_eq!(b.process(b""), b"user=u\x01auth=Bearer t\x01\x01".to_vec());
        assert_eq!(b.process(b"{\"status\":\"401\"}\r\n"), Vec::<u8>::new());
        assert_eq!(
            error.lock().expect("lock").as_deref(),
            Some("{\"status\":\"401\"}")
        );
    }

    fn reason(err: TlsError, start: TlsStart) -> String {
        let e = io::Error::new(io::ErrorKind::InvalidData, err);
        tls_reason(&e, "127.0.0.1", 993, start)
    }

    /// Regression: rustls 0.23 reports a wrong name as `NotValidForNameContext`, whose
    /// message lacks "NotValidForName", so the explanation was never used.
    #[test]
    fn regression_wrong_name_certificate_was_not_explained() {
        let expected = ServerName::try_from("127.0.0.1")
            .expect("an IP address")
            .to_owned();
        let r = reason(
            TlsError::InvalidCertificate(CertificateError::NotValidForNameContext {
                expected,
                presented: vec!["DnsName(\"mail.test\")".to_string()],
            }),
            TlsStart::Implicit,
        );
        assert!(
            r.starts_with(
                "the certificate is not valid for the name 127.0.0.1: it is only valid for mail.test"
            ),
            "{r}"
        );
        assert!(r.contains("imap.host"), "{r}");
    }

    /// Regression: an expired certificate (`ExpiredContext` in rustls 0.23) was not
    /// recognised either.
    #[test]
    fn regression_expired_certificate_was_not_explained() {
        let r = reason(
            TlsError::InvalidCertificate(CertificateError::ExpiredContext {
                time: rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(200)),
                not_after: rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(100)),
            }),
            TlsStart::Implicit,
        );
        assert!(r.starts_with("the certificate has expired"), "{r}");
    }

    #[test]
    fn unknown_ca_names_ca_file() {
        let r = reason(
            TlsError::InvalidCertificate(CertificateError::UnknownIssuer),
            TlsStart::AfterStarttls,
        );
        assert!(
            r.contains("not signed by a trusted CA") && r.contains("imap.ca_file"),
            "{r}"
        );
    }

    /// Regression: a server that says OK to STARTTLS and then carries on in clear text
    /// was reported only as "received corrupt message of type InvalidContentType".
    #[test]
    fn regression_starttls_acknowledged_but_not_started_was_unexplained() {
        let corrupt = || TlsError::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let r = reason(corrupt(), TlsStart::AfterStarttls);
        assert!(
            r.starts_with("the server accepted STARTTLS but did not start TLS"),
            "{r}"
        );
        let r = reason(corrupt(), TlsStart::Implicit);
        assert!(
            r.starts_with("the server does not speak TLS on port 993") && r.contains("starttls"),
            "{r}"
        );
    }
}
