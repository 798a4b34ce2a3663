//! The one-time consent that yields a refresh token (`mailtriage auth ACCOUNT`):
//!
//! - **Browser with a loopback redirect** (Google; any provider with `auth_url`): PKCE
//!   (S256), a random `state`, a listener on 127.0.0.1 at a random port; the user opens
//!   the printed URL, the provider redirects the browser back to us with a code, which is
//!   exchanged for tokens. Every connection is served on its own with a 10 s deadline for
//!   its request, so a silent one holds up nobody; a redirect whose `state` does not
//!   match (a tab from an earlier run, a forged request) gets a 400 and the wait goes on
//!   until the right one arrives or `--timeout` passes.
//! - **Device code** (Microsoft; any provider with `device_url`, RFC 8628): the user
//!   enters a short code on the provider's page, possibly on another device; we poll the
//!   token endpoint, waiting on `authorization_pending`, slowing down on `slow_down`, and
//!   stopping on `expired_token` or `access_denied`.
//!
//! Both print what the user has to do to `out`; nothing is opened automatically, so the
//! command works the same over SSH, in a container or in a test.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use oauth2::{
    AuthorizationCode, CsrfToken, DeviceCodeErrorResponseType, PkceCodeChallenge, RedirectUrl,
    RequestTokenError, Scope, StandardDeviceAuthorizationResponse, TokenResponse,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::{describe_token_error, http_client, provider_client};
use crate::config::{Oauth, OauthPreset, SecretString};

/// What a successful consent yields.
#[derive(Debug)]
pub struct Grant {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_in: Option<Duration>,
}

fn grant<T: TokenResponse>(t: &T) -> Grant {
    Grant {
        access_token: SecretString::new(t.access_token().secret().clone()),
        refresh_token: t
            .refresh_token()
            .map(|r| SecretString::new(r.secret().clone())),
        expires_in: t.expires_in(),
    }
}

/// Which consent flow a provider uses: the device flow when it has a device endpoint.
pub fn uses_device_flow(o: &Oauth) -> bool {
    o.device_url.is_some()
}

/// Runs the provider's consent flow; `login_hint` is the mailbox address.
pub async fn run(
    o: &Oauth,
    login_hint: &str,
    out: &mut (dyn Write + Send),
    timeout: Duration,
) -> Result<Grant> {
    if uses_device_flow(o) {
        device(o, out, timeout).await
    } else if o.auth_url.is_some() {
        loopback(o, login_hint, out, timeout).await
    } else {
        bail!("the provider has neither auth_url nor device_url: no way to ask for consent")
    }
}

/// Authorization code with PKCE and a loopback redirect (RFC 8252 §7.3).
pub async fn loopback(
    o: &Oauth,
    login_hint: &str,
    out: &mut (dyn Write + Send),
    timeout: Duration,
) -> Result<Grant> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot listen on 127.0.0.1 for the browser's redirect")?;
    let port = listener.local_addr().context("loopback listener")?.port();
    let redirect = format!("http://127.0.0.1:{port}/");
    let client = provider_client(o).await?.set_redirect_uri(
        RedirectUrl::new(redirect.clone()).context("the loopback redirect address")?,
    );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(CsrfToken::new_random)
        .context("the provider has no auth_url")?
        .add_scopes(o.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge);
    if o.provider == Some(OauthPreset::Gmail) {
        // Without these Google issues no refresh token on a repeated consent.
        req = req
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent");
    }
    if login_hint.contains('@') {
        req = req.add_extra_param("login_hint", login_hint);
    }
    let (url, state) = req.url();
    writeln!(
        out,
        "Open this address in a web browser and allow access:\n\n  {url}\n\nWaiting up to {} for the browser to come back to {redirect} ...",
        human(timeout)
    )?;
    out.flush()?;
    let code = wait_for_code(&listener, state.secret(), timeout, out).await?;
    let http = http_client()?;
    let token = client
        .exchange_code(AuthorizationCode::new(code.expose().to_string()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .map_err(|e| {
            anyhow!(
                "the token endpoint refused the authorization code: {}",
                describe_token_error(&e)
            )
        })?;
    Ok(grant(&token))
}

/// How long one connection to the loopback listener has to send its request line and
/// headers (a browser sends them at once); then it is closed.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// Most bytes of request line and headers read from one connection.
const REQUEST_MAX: usize = 16 * 1024;

/// How long writing the answer to one connection may take.
const ANSWER_DEADLINE: Duration = Duration::from_secs(5);

/// Most connections served at once; more are closed unanswered.
const MAX_CONNECTIONS: usize = 64;

/// What one connection to the loopback listener brought.
#[derive(Debug)]
enum Visit {
    /// The provider's redirect with our state and a code: the answer.
    Code(SecretString),
    /// The provider's redirect with our state and an error: no consent.
    Denied(String),
    /// A redirect whose state is not ours: a tab from an earlier run, or a forged request.
    WrongState,
    /// Anything else: a favicon, a malformed request, a connection that said nothing.
    Other,
}

/// Serves the loopback listener until the provider's redirect with our `state` arrives,
/// or `timeout` passes. Each connection has a task and a deadline of its own, so a slow
/// or silent one holds up nobody; whatever is not our redirect (a favicon, a stale tab's
/// redirect, garbage) gets a 404 or 400 and the wait goes on. The request target holds
/// the code, so it is never logged.
async fn wait_for_code(
    listener: &TcpListener,
    state: &str,
    timeout: Duration,
    out: &mut (dyn Write + Send),
) -> Result<SecretString> {
    let deadline = tokio::time::Instant::now() + timeout;
    let state: Arc<str> = Arc::from(state);
    // Dropped on return: the connections still open are closed with it.
    let mut visits = JoinSet::new();
    let mut wrong_states = 0usize;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                let refused = match wrong_states {
                    0 => String::new(),
                    1 => " (a redirect with the wrong state was refused: a browser tab from an earlier run?)".to_string(),
                    n => format!(" ({n} redirects with the wrong state were refused: browser tabs from earlier runs?)"),
                };
                bail!(
                    "no answer from the browser within {}{refused}; run the command again",
                    human(timeout)
                );
            }
            accepted = listener.accept() => match accepted {
                Ok((conn, _)) if visits.len() < MAX_CONNECTIONS => {
                    visits.spawn(visit(conn, state.clone(), REQUEST_DEADLINE));
                }
                Ok(_) => tracing::debug!(
                    "{MAX_CONNECTIONS} connections to the loopback listener already; closed one more unanswered"
                ),
                Err(e) => {
                    // Out of file descriptors and the like: pause, then listen on.
                    tracing::debug!("accepting a connection on the loopback listener: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = visits.join_next() => match done {
                Ok(Visit::Code(code)) => return Ok(code),
                Ok(Visit::Denied(why)) => bail!("the provider did not grant access: {why}"),
                Ok(Visit::WrongState) => {
                    wrong_states += 1;
                    if wrong_states == 1 {
                        writeln!(
                            out,
                            "A redirect that does not belong to this request (wrong state: a browser tab from an earlier run?) was refused; still waiting for the right one."
                        )?;
                        out.flush()?;
                    }
                }
                Ok(Visit::Other) => {}
                Err(e) => tracing::warn!("serving a connection on the loopback listener failed: {e}"),
            },
        }
    }
}

/// Reads one request from `conn` within `deadline`, answers it, says what it was.
async fn visit(mut conn: TcpStream, state: Arc<str>, deadline: Duration) -> Visit {
    let target = match tokio::time::timeout(deadline, read_request_target(&mut conn)).await {
        Ok(Ok(target)) => target,
        Ok(Err(e)) => {
            tracing::debug!("a request on the loopback listener was refused: {e:#}");
            answer(&mut conn, &BAD_REQUEST).await;
            return Visit::Other;
        }
        Err(_) => {
            tracing::debug!(
                "a connection to the loopback listener sent no request within {deadline:?}; closed"
            );
            return Visit::Other;
        }
    };
    let (visit, reply) = judge(&target, &state);
    answer(&mut conn, reply).await;
    visit
}

/// What a request target (`/?code=…&state=…`) is, and the answer it gets.
fn judge(target: &str, state: &str) -> (Visit, &'static Reply) {
    let url = oauth2::url::Url::parse(&format!("http://127.0.0.1{target}"))
        .ok()
        .filter(|u| u.path() == "/");
    let Some(url) = url else {
        return (Visit::Other, &NOT_FOUND);
    };
    let param = |k: &str| {
        url.query_pairs()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.into_owned())
    };
    let (code, got_state, error) = (param("code"), param("state"), param("error"));
    if code.is_none() && error.is_none() {
        return (Visit::Other, &NOT_FOUND);
    }
    if !got_state.is_some_and(|s| same(&s, state)) {
        return (Visit::WrongState, &WRONG_STATE);
    }
    if let Some(err) = error {
        let why = match param("error_description") {
            Some(desc) if !desc.is_empty() => format!("{err}: {desc}"),
            _ => err,
        };
        let why = why.chars().filter(|c| !c.is_control()).collect();
        return (Visit::Denied(why), &DENIED);
    }
    match code {
        Some(code) if !code.is_empty() => (Visit::Code(SecretString::new(code)), &RECEIVED),
        _ => (Visit::Other, &BAD_REQUEST),
    }
}

/// Compares two states without an early exit, so the time taken says nothing about how
/// much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The request target of an HTTP request (`/?code=…`), read up to the end of its headers.
async fn read_request_target(conn: &mut TcpStream) -> Result<String> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).await.context("reading the request")?;
        if n == 0 {
            bail!("the connection was closed before the end of the request");
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.len() > REQUEST_MAX {
            bail!("a request of more than {} KiB", REQUEST_MAX / 1024);
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) if target.starts_with('/') => Ok(target.to_string()),
        _ => bail!("not a GET request"),
    }
}

/// An answer to the browser: its status and the page's title and sentence.
struct Reply {
    status: &'static str,
    title: &'static str,
    text: &'static str,
}

const RECEIVED: Reply = Reply {
    status: "200 OK",
    title: "mailtriage: access granted",
    text: "mailtriage has received the authorisation and is finishing in the terminal, which shows the result. You can close this window.",
};

const DENIED: Reply = Reply {
    status: "200 OK",
    title: "mailtriage: access not granted",
    text: "Access was not granted, so mailtriage stored nothing. You can close this window.",
};

const WRONG_STATE: Reply = Reply {
    status: "400 Bad Request",
    title: "mailtriage: not this request",
    text: "This answer does not belong to the request mailtriage is waiting for (state mismatch): it was ignored and nothing was stored. Use the address the terminal printed last.",
};

const BAD_REQUEST: Reply = Reply {
    status: "400 Bad Request",
    title: "mailtriage: bad request",
    text: "mailtriage did not understand this request.",
};

const NOT_FOUND: Reply = Reply {
    status: "404 Not Found",
    title: "mailtriage: not found",
    text: "Nothing here.",
};

/// Sends `reply` as a small HTML page and closes the connection.
async fn answer(conn: &mut TcpStream, reply: &Reply) {
    let Reply {
        status,
        title,
        text,
    } = reply;
    let body = format!(
        "<!doctype html>\n<html lang=en><meta charset=utf-8><meta name=viewport content=\"width=device-width\"><title>{title}</title>\n<body style=\"font-family:sans-serif;max-width:36em;margin:4em auto;line-height:1.5\"><h1>{title}</h1><p>{text}</p></body></html>\n"
    );
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let sent = tokio::time::timeout(ANSWER_DEADLINE, async {
        conn.write_all(msg.as_bytes()).await?;
        conn.shutdown().await
    })
    .await;
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!("answering on the loopback listener: {e}"),
        Err(_) => tracing::debug!("the answer on the loopback listener was not taken in time"),
    }
}

/// Device authorization grant (RFC 8628).
pub async fn device(o: &Oauth, out: &mut (dyn Write + Send), timeout: Duration) -> Result<Grant> {
    let client = provider_client(o).await?;
    let http = http_client()?;
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .context("the provider has no device_url")?
        .add_scopes(o.scopes.iter().cloned().map(Scope::new))
        .request_async(&http)
        .await
        .map_err(|e| {
            anyhow!(
                "the device-authorization endpoint refused: {}",
                describe_token_error(&e)
            )
        })?;
    let valid = details.expires_in().min(timeout);
    writeln!(
        out,
        "To allow mailtriage to read this mailbox, open\n\n  {}\n\nand enter the code\n\n  {}\n\nWaiting up to {} (checking every {}s) ...",
        details.verification_uri().as_str(),
        details.user_code().secret(),
        human(valid),
        details.interval().as_secs()
    )?;
    out.flush()?;
    let token = client
        .exchange_device_access_token(&details)
        .request_async(&http, tokio::time::sleep, Some(valid))
        .await
        .map_err(|e| match &e {
            RequestTokenError::ServerResponse(r) => match r.error() {
                DeviceCodeErrorResponseType::AccessDenied => {
                    anyhow!("access was declined on the provider's page; nothing was stored")
                }
                DeviceCodeErrorResponseType::ExpiredToken => anyhow!(
                    "the code expired before the sign-in was finished; run the command again"
                ),
                _ => anyhow!("the token endpoint refused: {}", describe_token_error(&e)),
            },
            _ => anyhow!(
                "polling the token endpoint failed: {}",
                describe_token_error(&e)
            ),
        })?;
    Ok(grant(&token))
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 120 {
        format!("{} minutes", s / 60)
    } else {
        format!("{s} seconds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_judged_by_path_state_and_code() {
        let ours = "s3cr3t-state";
        let cases = [
            ("/favicon.ico", "Other", "404"),
            ("/", "Other", "404"),
            ("/?code=c1", "WrongState", "400"),
            ("/?code=c1&state=", "WrongState", "400"),
            ("/?code=c1&state=s3cr3t-stat", "WrongState", "400"),
            ("/?code=c1&state=s3cr3t-statf", "WrongState", "400"),
            ("/?error=access_denied&state=forged", "WrongState", "400"),
            ("/?code=&state=s3cr3t-state", "Other", "400"),
            ("/?code=c1&state=s3cr3t-state", "Code", "200"),
            ("/?state=s3cr3t-state&code=c1&scope=mail", "Code", "200"),
            (
                "/?error=access_denied&error_description=no%0Athanks&state=s3cr3t-state",
                "Denied",
                "200",
            ),
            ("/other?code=c1&state=s3cr3t-state", "Other", "404"),
        ];
        for (target, kind, status) in cases {
            let (visit, reply) = judge(target, ours);
            let got = format!("{visit:?}");
            assert!(got.starts_with(kind), "{target}: {got}");
            assert!(
                reply.status.starts_with(status),
                "{target}: {}",
                reply.status
            );
            match visit {
                Visit::Code(c) => assert_eq!(c.expose(), "c1"),
                Visit::Denied(why) => assert_eq!(why, "access_denied: nothanks"),
                _ => {}
            }
        }
    }

    #[test]
    fn states_compare_equal_only_when_equal() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }

    /// Issue 19: the 10 s limit was per read, so a client sending a byte every few
    /// seconds held the connection (and, serving one at a time, the listener) for ever.
    #[tokio::test]
    async fn a_trickling_connection_is_closed_at_its_deadline() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            for b in b"GET /?code=1&state=2 HTTP/1.1\r\n".iter() {
                if c.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest).await;
            rest
        });
        let (conn, _) = listener.accept().await.expect("accept");
        let started = tokio::time::Instant::now();
        let visit = visit(conn, Arc::from("2"), Duration::from_millis(300)).await;
        assert!(matches!(visit, Visit::Other), "{visit:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let answered = client.await.expect("client");
        assert!(
            answered.is_empty(),
            "{}",
            String::from_utf8_lossy(&answered)
        );
    }
}
