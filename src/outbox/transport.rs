//! The connection to the SMTP server: TCP with Nagle off, implicit TLS (rustls, the
//! same verification as IMAP) or STARTTLS (required, never opportunistic), then LOGIN or
//! PLAIN; lettre speaks the protocol over it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};

use crate::config::SecretString;
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use super::Sender;
use crate::config::{SmtpConfig, TlsMode};

/// Longest wait for one SMTP command or the connection.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// An implicit-TLS stream lettre can speak over.
#[derive(Debug)]
struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// How to reach the configured server: TLS parameters and credentials, resolved once
/// per batch (a password command runs once per batch, not once per message).
pub struct Smtp {
    host: String,
    port: u16,
    mode: TlsMode,
    hello: ClientId,
    /// STARTTLS parameters (lettre upgrades the connection).
    tls: Option<TlsParameters>,
    /// Implicit TLS: the same rustls configuration as IMAP (system roots + `ca_file`).
    implicit: Option<Arc<ClientConfig>>,
    credentials: Option<Credentials>,
    /// PLAIN/LOGIN with a password, XOAUTH2 with an OAuth2 access token.
    mechanisms: &'static [Mechanism],
}

impl Smtp {
    /// Resolves the configuration (password, CA file) for a batch of sends.
    /// `token` is the OAuth2 access token when the login is XOAUTH2 (`oauth_account`).
    pub fn new(cfg: &SmtpConfig, sender: &Sender, token: Option<&SecretString>) -> Result<Smtp> {
        let tls = match cfg.tls {
            TlsMode::None | TlsMode::Implicit => None,
            TlsMode::Starttls => {
                let mut p = TlsParameters::builder(cfg.host.clone());
                if let Some(ca) = &cfg.ca_file {
                    let pem = std::fs::read(ca).with_context(|| {
                        format!("cannot read the SMTP CA file {}", ca.display())
                    })?;
                    p =
                        p.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| {
                            anyhow!("{} is not a PEM certificate: {e}", ca.display())
                        })?);
                }
                Some(
                    p.build_rustls()
                        .map_err(|e| anyhow!("cannot set up TLS for {}: {e}", cfg.host))?,
                )
            }
        };
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
        let implicit = match cfg.tls {
            TlsMode::Implicit => Some(crate::mailbox::imap::connect::tls_config(
                cfg.ca_file.as_deref(),
            )?),
            _ => None,
        };
        Ok(Smtp {
            implicit,
            host: cfg.host.clone(),
            port: cfg.port,
            mode: cfg.tls,
            hello: ClientId::Domain(sender.mailbox.email.domain().to_string()),
            tls,
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
                return Err(Failure {
                    permanent: false,
                    why: format!("cannot connect to {}:{}: {e}", self.host, self.port),
                    auth: false,
                })
            }
            Err(_) => {
                return Err(Failure {
                    permanent: false,
                    why: format!(
                        "no connection to {}:{} within {}s",
                        self.host,
                        self.port,
                        COMMAND_TIMEOUT.as_secs()
                    ),
                    auth: false,
                })
            }
        };
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// Connects, secures (implicit TLS or STARTTLS, required) and logs in (PLAIN or LOGIN).
    pub(super) async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let mut conn = match self.mode {
            TlsMode::Implicit => {
                let tcp = self.tcp().await?;
                let config = self.implicit.clone().ok_or_else(|| Failure {
                    permanent: false,
                    why: "no TLS configuration".into(),
                    auth: false,
                })?;
                let name = ServerName::try_from(self.host.clone()).map_err(|e| Failure {
                    permanent: true,
                    why: format!("`{}` is not a TLS server name: {e}", self.host),
                    auth: false,
                })?;
                let tls = TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| Failure {
                        permanent: false,
                        why: format!("TLS with {}:{} failed: {e}", self.host, self.port),
                        auth: false,
                    })?;
                AsyncSmtpConnection::connect_with_transport(Box::new(TlsTcp(tls)), &self.hello)
                    .await?
            }
            TlsMode::Starttls | TlsMode::None => {
                let tcp = self.tcp().await?;
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?
            }
        };
        if let (TlsMode::Starttls, Some(p)) = (self.mode, &self.tls) {
            conn.starttls(p.clone(), &self.hello).await?;
        }
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
