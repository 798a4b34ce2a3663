//! The `oauth:` settings of an IMAP account, compiled: presets (Gmail, Microsoft 365)
//! filled in with any overrides, endpoints checked, client id and secret as secret
//! references; plus Gmail's rules for folders and connections.

use std::path::Path as FsPath;

use super::raw::{OauthPreset, RawOauth, RawSecretOrText};
use super::{check_secret, is_loopback, secret, ImapConfig, Secret};
use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::Path;

/// An OAuth2 provider, resolved: a preset's endpoints and scopes with any overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oauth {
    /// The preset it came from (Gmail semantics, consent flow), if any.
    pub provider: Option<OauthPreset>,
    /// Authorization endpoint (browser consent with PKCE and a loopback redirect).
    pub auth_url: Option<String>,
    /// Token endpoint (code exchange, refresh).
    pub token_url: String,
    /// Device-authorization endpoint (RFC 8628); preferred for consent when present.
    pub device_url: Option<String>,
    pub client_id: Secret,
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
}

/// Environment variable a preset reads its OAuth client id from by default.
pub const OAUTH_CLIENT_ID_ENV: &str = "MAILTRIAGE_OAUTH_CLIENT_ID";
/// Environment variable the gmail preset reads its OAuth client secret from by default.
pub const OAUTH_CLIENT_SECRET_ENV: &str = "MAILTRIAGE_OAUTH_CLIENT_SECRET";
/// Gmail refuses more than 15 simultaneous IMAP connections per account; mailtriage opens
/// one per watched folder and leaves the rest for mail clients and SMTP.
pub const GMAIL_MAX_FOLDERS: usize = 8;

impl OauthPreset {
    /// The IMAP server of this provider.
    pub fn imap_host(self) -> &'static str {
        match self {
            OauthPreset::Gmail => "imap.gmail.com",
            OauthPreset::Microsoft => "outlook.office365.com",
        }
    }
}

/// Is this a Gmail / Google Workspace mailbox (labels as folders, `[Gmail]/…` specials)?
pub fn is_gmail(imap: &ImapConfig) -> bool {
    imap.oauth
        .as_ref()
        .is_some_and(|o| o.provider == Some(OauthPreset::Gmail))
        || ["imap.gmail.com", "imap.googlemail.com"]
            .iter()
            .any(|h| imap.host.eq_ignore_ascii_case(h))
}

/// Is this folder one of Gmail's own (`[Gmail]/All Mail`, `[Google Mail]/Spam`, …)?
pub fn is_gmail_special(folder: &str) -> bool {
    let f = folder.trim_start();
    ["[gmail]", "[google mail]"]
        .iter()
        .any(|p| f.len() >= p.len() && f[..p.len()].eq_ignore_ascii_case(p))
}

/// A preset's endpoints and scopes.
fn preset_endpoints(
    preset: OauthPreset,
    tenant: &str,
) -> (Option<String>, String, Option<String>, Vec<String>) {
    match preset {
        OauthPreset::Gmail => (
            Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
            "https://oauth2.googleapis.com/token".into(),
            None,
            vec!["https://mail.google.com/".into()],
        ),
        OauthPreset::Microsoft => {
            let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
            (
                Some(format!("{base}/authorize")),
                format!("{base}/token"),
                Some(format!("{base}/devicecode")),
                vec![
                    "https://outlook.office.com/IMAP.AccessAsUser.All".into(),
                    "offline_access".into(),
                ],
            )
        }
    }
}

/// An endpoint must be https, except on loopback (tests, local proxies).
fn check_url(c: &mut Checker<'_>, path: &Path, url: &str) {
    let problem = match oauth2::url::Url::parse(url.trim()) {
        Err(e) => Some(format!("`{url}` is not a URL: {e}")),
        Ok(u) if u.scheme() == "https" => None,
        Ok(u) if u.scheme() == "http" && u.host_str().is_some_and(is_loopback) => None,
        Ok(u) => Some(format!(
            "`{url}` is not https: tokens would travel over {}",
            u.scheme()
        )),
    };
    if let Some(msg) = problem {
        c.at_value(path, msg)
            .expect_("an https:// URL (http:// only to 127.0.0.1 or localhost)");
    }
}

pub(super) fn oauth(c: &mut Checker<'_>, p: &Path, o: &RawOauth, dir: &FsPath) -> Option<Oauth> {
    let custom = match o {
        RawOauth::Preset(pr) => {
            let (auth_url, token_url, device_url, scopes) = preset_endpoints(*pr, "common");
            return Some(Oauth {
                provider: Some(*pr),
                auth_url,
                token_url,
                device_url,
                client_id: Secret::Env(OAUTH_CLIENT_ID_ENV.into()),
                client_secret: (*pr == OauthPreset::Gmail)
                    .then(|| Secret::Env(OAUTH_CLIENT_SECRET_ENV.into())),
                scopes,
            });
        }
        RawOauth::Custom(cu) => cu,
    };
    if let Some(t) = &custom.tenant {
        if custom.provider != Some(OauthPreset::Microsoft) {
            c.at_key(&p.key("tenant"), "`tenant` only applies to Microsoft")
                .expect_("provider: microsoft, or no tenant");
        } else if t.trim().is_empty()
            || !t
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '.' | '_'))
        {
            c.at_value(&p.key("tenant"), format!("`{t}` is not a tenant"))
                .expect_("a directory (tenant) id, a domain such as contoso.com, common or organizations");
        }
    }
    let (mut auth_url, mut token_url, mut device_url, mut scopes) = match custom.provider {
        Some(pr) => {
            let (a, t, d, s) =
                preset_endpoints(pr, custom.tenant.as_deref().unwrap_or("common").trim());
            (a, Some(t), d, s)
        }
        None => (None, None, None, Vec::new()),
    };
    if let Some(u) = &custom.auth_url {
        check_url(c, &p.key("auth_url"), u);
        auth_url = Some(u.trim().to_string());
    }
    if let Some(u) = &custom.token_url {
        check_url(c, &p.key("token_url"), u);
        token_url = Some(u.trim().to_string());
    }
    if let Some(u) = &custom.device_url {
        check_url(c, &p.key("device_url"), u);
        device_url = Some(u.trim().to_string());
    }
    if let Some(s) = &custom.scopes {
        scopes = s.iter().map(|x| x.trim().to_string()).collect();
        if scopes
            .iter()
            .any(|x| x.is_empty() || x.contains(char::is_whitespace))
        {
            c.at_value(&p.key("scopes"), "a scope is empty or contains a space")
                .expect_("a list of scopes, one per item");
        }
    }
    let Some(token_url) = token_url else {
        c.at_value(p, "a custom OAuth2 provider needs a `token_url`")
            .expect_("token_url: https://..., or provider: gmail | microsoft");
        return None;
    };
    if auth_url.is_none() && device_url.is_none() {
        c.at_value(
            p,
            "no way to ask for consent: neither `auth_url` nor `device_url` is set",
        )
        .expect_("auth_url (browser, loopback redirect) or device_url (device code)");
    }
    if let Some(s) = &custom.client_secret {
        check_secret(c, &p.key("client_secret"), s);
    }
    let client_id = match &custom.client_id {
        Some(RawSecretOrText::Text(t)) if t.trim().is_empty() => {
            c.at_value(&p.key("client_id"), "the client id is empty")
                .expect_("the id of your OAuth client, or {env: VAR}");
            Secret::Literal(String::new())
        }
        Some(RawSecretOrText::Text(t)) => Secret::Literal(t.trim().to_string()),
        Some(RawSecretOrText::Secret(s)) => {
            check_secret(c, &p.key("client_id"), s);
            secret(dir, s)
        }
        None => Secret::Env(OAUTH_CLIENT_ID_ENV.into()),
    };
    let client_secret = match (&custom.client_secret, custom.provider) {
        (Some(s), _) => Some(secret(dir, s)),
        (None, Some(OauthPreset::Gmail)) => Some(Secret::Env(OAUTH_CLIENT_SECRET_ENV.into())),
        (None, _) => None,
    };
    Some(Oauth {
        provider: custom.provider,
        auth_url,
        token_url,
        device_url,
        client_id,
        client_secret,
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backend, Config};

    fn compile_yaml(yaml: &str) -> Result<Config, String> {
        let dir = std::env::temp_dir().join(format!("mt-cfg-oauth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("p.yaml"), "business: {name: X}\n").map_err(|e| e.to_string())?;
        Config::from_bytes("m.yaml", yaml.as_bytes(), &dir).map_err(|e| e.to_string())
    }

    #[test]
    fn oauth_presets_fill_server_endpoints_scopes_and_client() {
        let cfg = compile_yaml(
            "accounts:\n  - name: g\n    profile: p.yaml\n    imap: {user: info@example.com, auth: xoauth2, oauth: gmail}\n  - name: m\n    profile: p.yaml\n    imap: {user: info@example.com, auth: xoauth2, oauth: {provider: microsoft, tenant: contoso.com, client_id: abc}}\n",
        )
        .expect("valid");
        let Backend::Imap(g) = &cfg.accounts[0].backend else {
            panic!("imap")
        };
        assert_eq!((g.host.as_str(), g.port), ("imap.gmail.com", 993));
        let o = g.oauth.as_ref().expect("oauth");
        assert_eq!(o.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(o.scopes, vec!["https://mail.google.com/".to_string()]);
        assert_eq!(o.client_id, Secret::Env(OAUTH_CLIENT_ID_ENV.into()));
        assert_eq!(
            o.client_secret,
            Some(Secret::Env(OAUTH_CLIENT_SECRET_ENV.into()))
        );
        assert!(is_gmail(g));
        let Backend::Imap(m) = &cfg.accounts[1].backend else {
            panic!("imap")
        };
        assert_eq!(m.host, "outlook.office365.com");
        let o = m.oauth.as_ref().expect("oauth");
        assert_eq!(
            o.device_url.as_deref(),
            Some("https://login.microsoftonline.com/contoso.com/oauth2/v2.0/devicecode")
        );
        assert_eq!(
            o.scopes.join(" "),
            "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
        );
        assert_eq!(o.client_id, Secret::Literal("abc".into()));
        assert_eq!(o.client_secret, None);
    }

    #[test]
    fn gmail_special_folders_and_too_many_connections_are_refused() {
        let err = compile_yaml(
            "accounts:\n  - name: g\n    profile: p.yaml\n    imap: {user: u@example.com, auth: xoauth2, oauth: gmail}\n    folders: [INBOX, \"[Gmail]/All Mail\"]\n",
        )
        .expect_err("refused");
        assert!(
            err.contains("`[Gmail]/All Mail` is one of Gmail's own folders"),
            "{err}"
        );
        let many: Vec<String> = (0..9).map(|i| format!("L{i}")).collect();
        let err = compile_yaml(&format!(
            "accounts:\n  - name: g\n    profile: p.yaml\n    imap: {{host: imap.gmail.com, user: u, password: {{env: P}}}}\n    folders: [{}]\n",
            many.join(", ")
        ))
        .expect_err("refused");
        assert!(err.contains("Gmail allows 15 per account"), "{err}");
        assert!(err.contains("at most 8 watched folders"), "{err}");
        assert!(is_gmail_special("[Google Mail]/Spam") && !is_gmail_special("Gmail stuff"));
    }

    #[test]
    fn smtp_oauth_account_must_name_an_oauth_account_and_lends_its_user() {
        let accounts = "accounts:\n  - name: gmail\n    profile: p.yaml\n    imap: {user: info@example.com, auth: xoauth2, oauth: gmail}\n  - name: local\n    profile: p.yaml\n    maildir: m\n";
        let cfg = compile_yaml(&format!(
            "smtp: {{host: smtp.gmail.com, from: \"T <info@example.com>\", oauth_account: gmail}}\n{accounts}"
        ))
        .expect("valid");
        let smtp = cfg.smtp.expect("smtp");
        assert_eq!(smtp.oauth_account.as_deref(), Some("gmail"));
        assert_eq!(smtp.user.as_deref(), Some("info@example.com"));
        let err = compile_yaml(&format!(
            "smtp: {{host: smtp.gmail.com, from: \"T <info@example.com>\", oauth_account: gmial, password: {{env: P}}}}\n{accounts}"
        ))
        .expect_err("refused");
        assert!(
            err.contains("there is no account `gmial` (did you mean `gmail`?)"),
            "{err}"
        );
        assert!(
            err.contains("a password and `oauth_account` both given"),
            "{err}"
        );
        let err = compile_yaml(&format!(
            "smtp: {{host: smtp.gmail.com, from: \"T <info@example.com>\", oauth_account: local}}\n{accounts}"
        ))
        .expect_err("refused");
        assert!(
            err.contains("account `local` does not log in with OAuth2"),
            "{err}"
        );
    }

    #[test]
    fn custom_oauth_endpoints_must_be_https_and_complete() {
        let err = compile_yaml(
            "accounts:\n  - name: c\n    profile: p.yaml\n    imap: {host: mail.example.com, user: u, auth: oauthbearer, oauth: {token_url: \"http://idp.example.com/token\", client_id: x}}\n",
        )
        .expect_err("refused");
        assert!(err.contains("is not https"), "{err}");
        assert!(err.contains("neither `auth_url` nor `device_url`"), "{err}");
        let err = compile_yaml(
            "accounts:\n  - name: c\n    profile: p.yaml\n    imap: {host: mail.example.com, user: u, auth: xoauth2, oauth: {auth_url: \"https://idp.example.com/auth\"}}\n",
        )
        .expect_err("refused");
        assert!(err.contains("needs a `token_url`"), "{err}");
        compile_yaml(
            "accounts:\n  - name: c\n    profile: p.yaml\n    imap: {host: 127.0.0.1, tls: none, user: u, auth: xoauth2, oauth: {token_url: \"http://127.0.0.1:8080/token\", device_url: \"http://localhost:8080/device\", client_id: x}}\n",
        )
        .expect("http is fine on loopback");
    }
}
