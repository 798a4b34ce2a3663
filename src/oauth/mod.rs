//! OAuth2 for XOAUTH2/OAUTHBEARER logins (Gmail, Google Workspace, Microsoft 365, or a
//! custom provider): the refresh token stored by `mailtriage auth`, and access tokens
//! minted from it when a connection needs one.
//!
//! ```text
//! mailtriage auth ACCOUNT ── consent (browser + loopback redirect with PKCE, or device code)
//!        └─ refresh token ──► <state dir>/oauth/ACCOUNT.json (0600, dir 0700)
//! daemon / SMTP ── TokenSource::access_token() ── cached until shortly before expiry,
//!        └─ refreshed at the token endpoint (RFC 6749 §6) ── a rotated refresh token is saved
//! ```
//!
//! Tokens only ever live in [`SecretString`]s (redacted `Debug`, no `Display`); errors
//! carry the provider's error code and description, never a token.

pub mod consent;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthUrl, ClientId, ClientSecret, DeviceAuthorizationUrl, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, ErrorResponse, RefreshToken, RequestTokenError, TokenResponse,
    TokenUrl,
};

use crate::config::{AccountConfig, AuthKind, Backend, Config, Oauth, SecretString};
pub use store::{StoredToken, TokenFile};

/// Longest wait for one request to the provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// An access token is replaced this long before it expires (or after 90 % of its life,
/// whichever comes first), so a login never presents one that runs out mid-handshake.
const REFRESH_MARGIN: Duration = Duration::from_secs(120);
/// Assumed lifetime when the provider does not say (`expires_in` is optional).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The oauth2 client with the endpoints a configuration may or may not have.
pub(crate) type ProviderClient =
    BasicClient<EndpointMaybeSet, EndpointMaybeSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum OauthError {
    /// `mailtriage auth` was never run for this account (or its token file is gone).
    #[error("account {account} has no OAuth2 refresh token yet: run `mailtriage auth {account}`")]
    NotAuthorized { account: String },
    /// The provider refused the refresh token (revoked, expired, password changed).
    #[error("the OAuth2 refresh token of account {account} was refused by the provider ({reason}); re-run `mailtriage auth {account}`")]
    Revoked { account: String, reason: String },
    /// Something only the user can fix: client id missing, client refused, bad token file.
    #[error("OAuth2 for account {account}: {reason}")]
    Setup { account: String, reason: String },
    /// The provider could not be reached or answered nonsense: retry later.
    #[error("cannot refresh the OAuth2 access token of account {account}: {reason}")]
    Transient { account: String, reason: String },
}

impl OauthError {
    /// Errors that retrying soon will not fix: the user has to act.
    pub fn needs_user(&self) -> bool {
        !matches!(self, OauthError::Transient { .. })
    }
}

/// The HTTP client for every OAuth2 request: rustls with ring and the system roots,
/// no redirects (a token endpoint that redirects is misconfigured or hostile), timeouts.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("mailtriage/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client for OAuth2")
}

/// The oauth2 client for a provider, with the client id (and secret) resolved now.
pub(crate) async fn provider_client(o: &Oauth) -> Result<ProviderClient> {
    let id = o
        .client_id
        .resolve()
        .await
        .with_context(|| format!("the OAuth client id (from {})", o.client_id.describe()))?;
    let token_url = TokenUrl::new(o.token_url.clone())
        .with_context(|| format!("token_url `{}`", o.token_url))?;
    let auth_url = o
        .auth_url
        .as_ref()
        .map(|u| AuthUrl::new(u.clone()).with_context(|| format!("auth_url `{u}`")))
        .transpose()?;
    let device_url = o
        .device_url
        .as_ref()
        .map(|u| {
            DeviceAuthorizationUrl::new(u.clone()).with_context(|| format!("device_url `{u}`"))
        })
        .transpose()?;
    let mut client = BasicClient::new(ClientId::new(id.expose().to_string()))
        // Credentials in the form body: what Microsoft's public clients require and
        // what Google and RFC 6749 §2.3.1 accept.
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri_option(auth_url)
        .set_device_authorization_url_option(device_url)
        .set_token_uri(token_url);
    if let Some(s) = &o.client_secret {
        let secret = s
            .resolve()
            .await
            .with_context(|| format!("the OAuth client secret (from {})", s.describe()))?;
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
    }
    Ok(client)
}

/// A token endpoint's refusal, in words: the error code and description, never a token.
pub(crate) fn describe_token_error<RE: std::error::Error + 'static, T: ErrorResponse + 'static>(
    e: &RequestTokenError<RE, T>,
) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => {
            // The error code and description, as the server sent them.
            let v = serde_json::to_value(r).unwrap_or_default();
            let code = v.get("error").and_then(|x| x.as_str()).unwrap_or("error");
            match v.get("error_description").and_then(|x| x.as_str()) {
                Some(d) if !d.is_empty() => format!("{code}: {d}"),
                _ => code.to_string(),
            }
        }
        RequestTokenError::Request(re) => {
            let mut s = re.to_string();
            let mut src = re.source();
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
        RequestTokenError::Parse(pe, _) => {
            format!("the token endpoint's answer is not an OAuth2 token response ({pe})")
        }
        RequestTokenError::Other(o) => o.clone(),
    }
}

/// A fresh access token, with when to stop using it.
#[derive(Debug, Clone)]
struct Cached {
    token: SecretString,
    refresh_at: Instant,
}

/// Access tokens for one account: shared by all its connections, refreshed when close to
/// expiry or when the server refuses one.
pub struct TokenSource {
    account: String,
    oauth: Oauth,
    file: TokenFile,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("account", &self.account)
            .field("token_file", &self.file.path())
            .finish_non_exhaustive()
    }
}

/// Where `mailtriage auth` keeps the refresh tokens: next to the state database.
pub fn token_dir(state: &Path) -> PathBuf {
    state
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("oauth")
}

impl TokenSource {
    /// Access tokens for `account`, from the refresh token under `token_dir`.
    pub fn new(account: &str, oauth: &Oauth, token_dir: &Path) -> Result<TokenSource> {
        Ok(TokenSource {
            account: account.to_string(),
            oauth: oauth.clone(),
            file: TokenFile::new(token_dir, account),
            http: http_client()?,
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// The account's token source, if it logs in with OAuth2.
    pub fn for_account(cfg: &Config, account: &AccountConfig) -> Result<Option<Arc<TokenSource>>> {
        let Backend::Imap(imap) = &account.backend else {
            return Ok(None);
        };
        match (imap.auth, &imap.oauth) {
            (AuthKind::Xoauth2 | AuthKind::Oauthbearer, Some(o)) => Ok(Some(Arc::new(
                TokenSource::new(&account.name, o, &token_dir(&cfg.state))?,
            ))),
            _ => Ok(None),
        }
    }

    /// A valid access token: the cached one unless it is about to expire.
    pub async fn access_token(&self) -> Result<SecretString, OauthError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let fresh = self.refresh().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// A new access token after the server refused `rejected`; when another connection
    /// already replaced that token meanwhile, its replacement is used instead.
    pub async fn refreshed(&self, rejected: &SecretString) -> Result<SecretString, OauthError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if c.token != *rejected && Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        *cache = None;
        let fresh = self.refresh().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// RFC 6749 §6: a new access token for the stored refresh token (re-read every time,
    /// so a `mailtriage auth` run while the daemon backs off is picked up).
    async fn refresh(&self) -> Result<Cached, OauthError> {
        let account = self.account.clone();
        let setup = |reason: String| OauthError::Setup {
            account: account.clone(),
            reason,
        };
        let stored = match self.file.load() {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Err(OauthError::NotAuthorized {
                    account: self.account.clone(),
                })
            }
            Err(e) => return Err(setup(format!("{e:#}"))),
        };
        // A refresh token goes only to the endpoint that issued it: after a change of
        // provider it would be handed to a stranger.
        if stored.token_url != self.oauth.token_url {
            return Err(setup(format!(
                "the stored refresh token was issued by {}, but the configuration now uses {}; re-run `mailtriage auth {}`",
                stored.token_url, self.oauth.token_url, self.account
            )));
        }
        let client = provider_client(&self.oauth)
            .await
            .map_err(|e| setup(format!("{e:#}")))?;
        let refresh = RefreshToken::new(stored.refresh_token.expose().to_string());
        let started = Instant::now();
        let response = client
            .exchange_refresh_token(&refresh)
            .request_async(&self.http)
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => return Err(self.classify(&e)),
        };
        let lifetime = response.expires_in().unwrap_or(DEFAULT_LIFETIME);
        let margin = REFRESH_MARGIN.min(lifetime / 10);
        if let Some(rotated) = response.refresh_token() {
            if rotated.secret() != stored.refresh_token.expose() {
                let new = StoredToken {
                    refresh_token: SecretString::new(rotated.secret().clone()),
                    token_url: self.oauth.token_url.clone(),
                };
                if let Err(e) = self.file.save(&new) {
                    tracing::error!(account = %self.account, "the provider issued a new refresh token but it could not be saved: {e:#}; the old one may stop working");
                }
            }
        }
        tracing::info!(account = %self.account, expires_in = lifetime.as_secs(), "OAuth2 access token refreshed");
        Ok(Cached {
            token: SecretString::new(response.access_token().secret().clone()),
            refresh_at: started + lifetime.saturating_sub(margin),
        })
    }

    fn classify(
        &self,
        e: &RequestTokenError<oauth2::HttpClientError<reqwest::Error>, BasicErrorResponse>,
    ) -> OauthError {
        let reason = describe_token_error(e);
        let account = self.account.clone();
        match e {
            RequestTokenError::ServerResponse(r) => match r.error() {
                BasicErrorResponseType::InvalidGrant => OauthError::Revoked { account, reason },
                BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient
                | BasicErrorResponseType::InvalidScope
                | BasicErrorResponseType::UnsupportedGrantType => OauthError::Setup {
                    account,
                    reason: format!("the provider refused this OAuth client ({reason}); check client_id and client_secret"),
                },
                _ => OauthError::Transient { account, reason },
            },
            _ => OauthError::Transient { account, reason },
        }
    }
}

/// One line per OAuth2 account for `mailtriage check`: whether `mailtriage auth` has
/// stored a refresh token yet (the token itself is not read out).
pub fn status_lines(cfg: &Config) -> Vec<String> {
    cfg.accounts
        .iter()
        .filter_map(|a| match &a.backend {
            Backend::Imap(imap) if matches!(imap.auth, AuthKind::Xoauth2 | AuthKind::Oauthbearer) => {
                let o = imap.oauth.as_ref()?;
                let provider = match o.provider {
                    Some(crate::config::OauthPreset::Gmail) => "gmail".to_string(),
                    Some(crate::config::OauthPreset::Microsoft) => "microsoft".to_string(),
                    None => o.token_url.clone(),
                };
                let file = TokenFile::new(&token_dir(&cfg.state), &a.name);
                let state = match file.load() {
                    Ok(Some(t)) if t.token_url == o.token_url => {
                        format!("refresh token stored in {}", file.path().display())
                    }
                    Ok(Some(_)) => format!(
                        "the stored refresh token belongs to another provider: run `mailtriage auth {}`",
                        a.name
                    ),
                    Ok(None) => format!("no refresh token yet: run `mailtriage auth {}`", a.name),
                    Err(e) => format!("{e:#}"),
                };
                Some(format!("account {}: OAuth2 ({provider}), {state}", a.name))
            }
            _ => None,
        })
        .collect()
}

/// The SASL XOAUTH2 initial response (Google, Microsoft; IMAP and SMTP alike):
/// `user=USER^Aauth=Bearer TOKEN^A^A`.
pub fn xoauth2_response(user: &str, token: &SecretString) -> SecretString {
    SecretString::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ))
}

/// The SASL OAUTHBEARER initial response (RFC 7628 §3.1):
/// `n,a=USER,^Ahost=HOST^Aport=PORT^Aauth=Bearer TOKEN^A^A`.
pub fn oauthbearer_response(
    user: &str,
    host: &str,
    port: u16,
    token: &SecretString,
) -> SecretString {
    SecretString::new(format!(
        "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        gs2_saslname(user),
        token.expose()
    ))
}

/// A user name inside a GS2 header (RFC 5801 §4): `,` and `=` would end or corrupt the
/// field, so they are written `=2C` and `=3D`.
fn gs2_saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// A fresh access token for a configured account: for any code that logs in on the
/// account's behalf (IMAP here, SMTP alerts later).
pub async fn access_token(cfg: &Config, account: &str) -> Result<SecretString> {
    let acct = cfg
        .account(account)
        .ok_or_else(|| anyhow!("no account named {account} in the configuration"))?;
    let source = TokenSource::for_account(cfg, acct)?
        .ok_or_else(|| anyhow!("account {account} does not log in with OAuth2"))?;
    Ok(source.access_token().await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn oauth(token_url: &str) -> Oauth {
        Oauth {
            provider: None,
            auth_url: None,
            token_url: token_url.into(),
            device_url: Some("http://127.0.0.1:9/device".into()),
            client_id: Secret::Literal("id".into()),
            client_secret: None,
            scopes: vec![],
        }
    }

    /// Regression: OAUTHBEARER put the user into the GS2 header unescaped, so a login
    /// name with `,` or `=` broke the header (RFC 7628 §3.1, RFC 5801 §4).
    #[test]
    fn regression_oauthbearer_user_was_not_escaped_in_the_gs2_header() {
        let t = SecretString::new("T".into());
        assert_eq!(
            oauthbearer_response("a,b=c", "imap.example.com", 993, &t).expose(),
            "n,a=a=2Cb=3Dc,\x01host=imap.example.com\x01port=993\x01auth=Bearer T\x01\x01"
        );
        assert_eq!(
            xoauth2_response("alice@example.com", &t).expose(),
            "user=alice@example.com\x01auth=Bearer T\x01\x01"
        );
        assert_eq!(format!("{:?}", xoauth2_response("u", &t)), "<redacted>");
    }

    /// A refresh token is never sent to a token endpoint other than its issuer's, and a
    /// missing one asks for `mailtriage auth`; neither touches the network (port 9).
    #[tokio::test]
    async fn refresh_tokens_stay_with_their_issuer() {
        let dir = std::env::temp_dir().join(format!("mt-oauth-src-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let src =
            TokenSource::new("acct", &oauth("http://127.0.0.1:9/token"), &dir).expect("source");
        let e = src.access_token().await.expect_err("no token yet");
        assert!(matches!(e, OauthError::NotAuthorized { .. }), "{e}");
        assert!(e.to_string().contains("run `mailtriage auth acct`"), "{e}");
        TokenFile::new(&dir, "acct")
            .save(&StoredToken {
                refresh_token: SecretString::new("rt-secret".into()),
                token_url: "https://other.example/token".into(),
            })
            .expect("saved");
        let e = src.access_token().await.expect_err("other issuer");
        let text = e.to_string();
        assert!(
            e.needs_user() && text.contains("issued by https://other.example/token"),
            "{text}"
        );
        assert!(!text.contains("rt-secret") && !format!("{src:?}").contains("rt-secret"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
