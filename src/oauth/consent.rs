//! The one-time consent that yields a refresh token (`mailtriage auth ACCOUNT`):
//!
//! - **Browser with a loopback redirect** (Google; any provider with `auth_url`): PKCE
//!   (S256), a random `state`, a listener on 127.0.0.1 at a random port; the user opens
//!   the printed URL, the provider redirects the browser back to us with a code, which is
//!   exchanged for tokens. A redirect whose `state` does not match is refused.
//! - **Device code** (Microsoft; any provider with `device_url`, RFC 8628): the user
//!   enters a short code on the provider's page, possibly on another device; we poll the
//!   token endpoint, waiting on `authorization_pending`, slowing down on `slow_down`, and
//!   stopping on `expired_token` or `access_denied`.
//!
//! Both print what the user has to do to `out`; nothing is opened automatically, so the
//! command works the same over SSH, in a container or in a test.

use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use oauth2::{
    AuthorizationCode, CsrfToken, DeviceCodeErrorResponseType, PkceCodeChallenge, RedirectUrl,
    RequestTokenError, Scope, StandardDeviceAuthorizationResponse, TokenResponse,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

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
    let code = tokio::time::timeout(timeout, wait_for_code(&listener, state.secret()))
        .await
        .map_err(|_| {
            anyhow!(
                "no answer from the browser within {}; run the command again",
                human(timeout)
            )
        })??;
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

/// Serves the loopback redirect until it brings a code (or an error); other requests
/// (a browser's favicon) get a 404 and are otherwise ignored.
async fn wait_for_code(listener: &TcpListener, state: &str) -> Result<SecretString> {
    loop {
        let (mut conn, _) = listener
            .accept()
            .await
            .context("accepting the browser's connection")?;
        let target = match read_request_target(&mut conn).await {
            Ok(t) => t,
            Err(_) => continue,
        };
        let url = oauth2::url::Url::parse(&format!("http://127.0.0.1{target}"))
            .ok()
            .filter(|u| u.path() == "/");
        let Some(url) = url else {
            respond(&mut conn, "404 Not Found", "Not found.").await;
            continue;
        };
        let param = |k: &str| {
            url.query_pairs()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.into_owned())
        };
        let (code, got_state, error) = (param("code"), param("state"), param("error"));
        if code.is_none() && error.is_none() {
            respond(&mut conn, "404 Not Found", "Not found.").await;
            continue;
        }
        if got_state.as_deref() != Some(state) {
            respond(
                &mut conn,
                "400 Bad Request",
                "This answer does not belong to the request mailtriage made (state mismatch). Nothing was stored.",
            )
            .await;
            bail!("the browser's redirect carried the wrong state parameter (a stale tab or a forged request); nothing was stored: run the command again");
        }
        if let Some(err) = error {
            let desc = param("error_description").unwrap_or_default();
            respond(
                &mut conn,
                "200 OK",
                "Access was not granted. You can close this window.",
            )
            .await;
            bail!(
                "the provider did not grant access: {err}{}{desc}",
                if desc.is_empty() { "" } else { ": " }
            );
        }
        respond(
            &mut conn,
            "200 OK",
            "mailtriage has been authorised. You can close this window.",
        )
        .await;
        return Ok(SecretString::new(code.unwrap_or_default()));
    }
}

/// The request target of an HTTP request (`/?code=…`), read up to the end of its headers.
async fn read_request_target(conn: &mut tokio::net::TcpStream) -> Result<String> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk))
            .await
            .map_err(|_| anyhow!("the browser sent no request"))??;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.len() > 16 * 1024 {
            bail!("request too large");
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

async fn respond(conn: &mut tokio::net::TcpStream, status: &str, text: &str) {
    let body =
        format!("<!doctype html><meta charset=utf-8><title>mailtriage</title><p>{text}</p>\n");
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(msg.as_bytes()).await;
    let _ = conn.shutdown().await;
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
