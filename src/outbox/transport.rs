//! The connection to the SMTP server: TCP with Nagle off, then implicit TLS or STARTTLS
//! (required, never opportunistic) over rustls with the same verification as IMAP
//! (system roots plus `ca_file`), then LOGIN, PLAIN or XOAUTH2; lettre speaks the
//! protocol over it.
//!
//! lettre is handed the connection only once TLS has started: the clear-text steps of
//! STARTTLS are ours ([`super::starttls`]), because lettre's own keeps bytes read before
//! the upgrade and reads them as answers over TLS (issue 19).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use super::starttls;
use super::Sender;
use crate::config::{SecretString, SmtpConfig, TlsMode};

/// Longest wait for one SMTP command or the connection.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What lettre reads first after STARTTLS. lettre's connection starts by reading the
/// server's greeting, but after STARTTLS the server sends none: RFC 3207 §4.2 resets the
/// session to the state after the `220` greeting and the client speaks first, with
/// EHLO. So the TLS stream begins with a greeting of ours.
const GREETING_AFTER_STARTTLS: &[u8] = b"220 TLS started\r\n";

/// A TLS stream lettre can speak over, with what it should read before the server's
/// first byte (nothing for implicit TLS, [`GREETING_AFTER_STARTTLS`] after STARTTLS).
#[derive(Debug)]
struct TlsTcp {
    tls: TlsStream<TcpStream>,
    unread: &'static [u8],
}

impl AsyncRead for TlsTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.unread.is_empty() && buf.remaining() > 0 {
            let (now, later) = this.unread.split_at(this.unread.len().min(buf.remaining()));
            buf.put_slice(now);
            this.unread = later;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tls).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.tls.get_ref().0.peer_addr()
    }
}

/// How the connection is protected, with the TLS configuration when it is.
enum Security {
    /// TLS from the first byte.
    Implicit(Arc<ClientConfig>),
    /// Clear text until STARTTLS, required.
    Starttls(Arc<ClientConfig>),
    /// No encryption (loopback, or `allow_insecure`).
    None,
}

/// How to reach the configured server: TLS parameters and credentials, resolved once
/// per batch (a password command runs once per batch, not once per message).
pub struct Smtp {
    host: String,
    port: u16,
    /// The TLS configuration is the IMAP side's (system roots + `ca_file`).
    security: Security,
    hello: ClientId,
    credentials: Option<Credentials>,
    /// PLAIN/LOGIN with a password, XOAUTH2 with an OAuth2 access token.
    mechanisms: &'static [Mechanism],
}

impl Smtp {
    /// Resolves the configuration (password, CA file) for a batch of sends.
    /// `token` is the OAuth2 access token when the login is XOAUTH2 (`oauth_account`).
    pub async fn new(
        cfg: &SmtpConfig,
        sender: &Sender,
        token: Option<&SecretString>,
    ) -> Result<Smtp> {
        let credentials = match (&cfg.user, token) {
            (Some(user), Some(token)) => {
                Some(Credentials::new(user.clone(), token.expose().to_string()))
            }
            (None, Some(_)) => {
                return Err(anyhow!(
                    "smtp.oauth_account needs a user to log in as (smtp.user)"
                ))
            }
            (None, None) => None,
            (Some(user), None) => {
                let password = match &cfg.password {
                    Some(s) => s
                        .resolve()
                        .await
                        .with_context(|| {
                            format!("cannot get the SMTP password ({})", s.describe())
                        })?
                        .expose()
                        .to_string(),
                    None => String::new(),
                };
                Some(Credentials::new(user.clone(), password))
            }
        };
        let tls = || {
            crate::mailbox::imap::connect::tls_config(cfg.ca_file.as_deref())
                .with_context(|| format!("cannot set up TLS for the SMTP server {}", cfg.host))
        };
        let security = match cfg.tls {
            TlsMode::Implicit => Security::Implicit(tls()?),
            TlsMode::Starttls => Security::Starttls(tls()?),
            TlsMode::None => Security::None,
        };
        Ok(Smtp {
            host: cfg.host.clone(),
            port: cfg.port,
            security,
            hello: ClientId::Domain(sender.mailbox.email.domain().to_string()),
            mechanisms: if token.is_some() {
                &[Mechanism::Xoauth2]
            } else {
                &[Mechanism::Plain, Mechanism::Login]
            },
            credentials,
        })
    }

    /// A TCP connection with Nagle off: lettre's own leaves it on, and Nagle against the
    /// server's delayed ACK costs ~40 ms per message (measured: 300 alerts took 13.5 s,
    /// 0.44 s without it).
    async fn tcp(&self) -> Result<TcpStream, Failure> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let tcp = match tokio::time::timeout(COMMAND_TIMEOUT, connect).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                return Err(Failure::temporary(format!(
                    "cannot connect to {}:{}: {e}",
                    self.host, self.port
                )))
            }
            Err(_) => {
                return Err(Failure::temporary(format!(
                    "no connection to {}:{} within {}s",
                    self.host,
                    self.port,
                    COMMAND_TIMEOUT.as_secs()
                )))
            }
        };
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// The TLS handshake over `tcp` (after the TCP connect or after STARTTLS).
    async fn tls(
        &self,
        tcp: TcpStream,
        config: &Arc<ClientConfig>,
    ) -> Result<TlsStream<TcpStream>, Failure> {
        let name = ServerName::try_from(self.host.clone()).map_err(|e| Failure {
            permanent: true,
            why: format!("`{}` is not a TLS server name: {e}", self.host),
            auth: false,
        })?;
        let handshake = TlsConnector::from(config.clone()).connect(name, tcp);
        match tokio::time::timeout(COMMAND_TIMEOUT, handshake).await {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err(Failure::temporary(format!(
                "TLS with {}:{} failed: {e}",
                self.host, self.port
            ))),
            Err(_) => Err(Failure::temporary(format!(
                "no TLS with {}:{} within {}s",
                self.host,
                self.port,
                COMMAND_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Connects, secures (implicit TLS or STARTTLS, required) and logs in (PLAIN or LOGIN,
    /// or XOAUTH2).
    pub(super) async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let tcp = self.tcp().await?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Implicit(config) => Box::new(TlsTcp {
                tls: self.tls(tcp, config).await?,
                unread: b"",
            }),
            Security::Starttls(config) => {
                let server = format!("{}:{}", self.host, self.port);
                let tcp = starttls::negotiate(tcp, &self.hello, &server).await?;
                Box::new(TlsTcp {
                    tls: self.tls(tcp, config).await?,
                    unread: GREETING_AFTER_STARTTLS,
                })
            }
            Security::None => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
        if let Some(c) = &self.credentials {
            conn.auth(self.mechanisms, c).await?;
        }
        Ok(conn)
    }
}

/// Why a send failed, and whether trying again can help.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) permanent: bool,
    pub(super) why: String,
    /// The server refused the login (worth a new OAuth2 token).
    pub(super) auth: bool,
}

impl Failure {
    /// A failure that trying again may cure.
    pub(super) fn temporary(why: String) -> Failure {
        Failure {
            permanent: false,
            why,
            auth: false,
        }
    }
}

impl From<lettre::transport::smtp::Error> for Failure {
    /// A refusal is final on 5xx, except authentication trouble (a fixed password helps).
    fn from(e: lettre::transport::smtp::Error) -> Failure {
        let auth = matches!(e.status().map(u16::from), Some(530 | 534 | 535 | 538));
        Failure {
            permanent: e.is_permanent() && !auth,
            why: e.to_string(),
            auth,
        }
    }
}
