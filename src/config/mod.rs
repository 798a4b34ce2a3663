//! The daemon's configuration, `mailtriage.yaml` (SPEC §10a): loaded in two stages like a
//! profile (located YAML tree checked against the schema of the `raw` types, then
//! compiled), so its errors have the same quality: every problem, with file:line:column.

mod oauth;
pub mod raw;
mod secret;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

pub use oauth::{
    is_gmail, is_gmail_special, Oauth, GMAIL_MAX_FOLDERS, OAUTH_CLIENT_ID_ENV,
    OAUTH_CLIENT_SECRET_ENV,
};
pub use raw::{AuthKind, LogFormat, OauthPreset, TlsMode, WatchMode};
pub use secret::{Secret, SecretString};

use crate::yaml::checker::{Checker, DiagExt};
use crate::yaml::diag::{did_you_mean, ConfigError, Diagnostic};
use crate::yaml::durations::parse_duration;
use crate::yaml::shape;
use crate::yaml::{Document, Path, Value};
use raw::{RawAccount, RawConfig, RawImap, RawOauth, RawSecret};

/// Default cap on the text triage reads per message.
pub const DEFAULT_MAX_SCAN_BYTES: usize = crate::mail::DEFAULT_MAX_SCAN_BYTES;

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

/// How to reach and log in to an IMAP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub user: String,
    pub password: Option<Secret>,
    pub auth: AuthKind,
    pub oauth: Option<Oauth>,
    pub ca_file: Option<PathBuf>,
    pub allow_insecure: bool,
    /// Longest wait for one step or command.
    pub timeout: Duration,
}

/// Outgoing mail server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// XOAUTH2 with this account's OAuth2 token instead of a password.
    pub oauth_account: Option<String>,
    pub from: String,
    pub ca_file: Option<PathBuf>,
    pub allow_insecure: bool,
}

/// Where an account's mail lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Imap(Box<ImapConfig>),
    Maildir(PathBuf),
}

/// First start only: how much older mail to triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backfill {
    None,
    All,
    /// Mail delivered within this long before the first start.
    Since(Duration),
}

/// One watched mailbox, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    pub name: String,
    pub profile: PathBuf,
    pub backend: Backend,
    pub folders: Vec<String>,
    pub watch: WatchMode,
    pub poll_interval: Duration,
    pub backfill: Backfill,
    pub dry_run: bool,
    /// Lowercased own addresses.
    pub addresses: Vec<String>,
    /// Lowercased `authserv-id`s whose `Authentication-Results` are believed.
    pub trusted_authserv_ids: Vec<String>,
}

/// The whole configuration, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it came from (None for the built-in demo).
    pub file: Option<PathBuf>,
    pub state: PathBuf,
    pub metrics: Option<SocketAddr>,
    pub log: LogConfig,
    pub smtp: Option<SmtpConfig>,
    pub max_scan_bytes: usize,
    pub accounts: Vec<AccountConfig>,
}

/// Is this host name a loopback address (where unencrypted connections are harmless)?
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Parses sizes such as "256KiB", "1MB", "65536".
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
    let unit = t[digits.len()..].trim().to_ascii_lowercase();
    let n: usize = digits
        .parse()
        .map_err(|_| format!("`{t}` is not a size like 256KiB"))?;
    let mult = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => {
            return Err(format!(
                "`{t}` is not a size like 256KiB (units: B, KiB, MiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{t}` is too large"))
}

impl Config {
    /// JSON Schema of `mailtriage.yaml`.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(RawConfig)).unwrap_or_default()
    }

    /// Loads and validates a configuration file.
    pub fn load(path: &FsPath) -> Result<Config, ConfigError> {
        let label = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| {
            ConfigError::single(Diagnostic::new(
                &label,
                Default::default(),
                Path::root(),
                format!("cannot read the configuration: {e}"),
            ))
        })?;
        let dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    FsPath::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(FsPath::new("."))
            .to_path_buf();
        let mut cfg = Self::from_bytes(&label, &bytes, &dir)?;
        cfg.file = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Compiles a configuration from bytes; relative paths resolve against `dir`.
    pub fn from_bytes(file: &str, bytes: &[u8], dir: &FsPath) -> Result<Config, ConfigError> {
        let doc = Document::parse(file, bytes).map_err(|d| ConfigError::single(*d))?;
        if matches!(doc.root.value, Value::Null) {
            return Err(ConfigError::single(
                Diagnostic::new(
                    file,
                    doc.root.loc,
                    Path::root(),
                    "the configuration is empty",
                )
                .expected("at least `accounts:` with one mailbox"),
            ));
        }
        let shape_errors = shape::check(file, &doc.root, &Self::json_schema());
        if !shape_errors.is_empty() {
            let mut c = Checker::new(&doc);
            c.out = shape_errors;
            return Err(ConfigError {
                diagnostics: c.finish(),
            });
        }
        let raw: RawConfig = doc
            .typed()
            .map_err(|d| ConfigError::single(d.with_source(&doc.text)))?;
        let mut c = Checker::new(&doc);
        let cfg = compile(&mut c, &raw, dir);
        let diagnostics = c.finish();
        if diagnostics.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError { diagnostics })
        }
    }

    /// The account with this name.
    pub fn account(&self, name: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

fn resolve_path(dir: &FsPath, p: &str) -> PathBuf {
    let path = PathBuf::from(p.trim());
    if path.is_absolute() {
        path
    } else {
        dir.join(path)
    }
}

fn secret(dir: &FsPath, s: &RawSecret) -> Secret {
    match s {
        RawSecret::Env(e) => Secret::Env(e.env.trim().to_string()),
        RawSecret::File(f) => Secret::File(resolve_path(dir, &f.file)),
        RawSecret::Command(c) => Secret::Command(c.command.clone()),
    }
}

fn check_secret(c: &mut Checker<'_>, path: &Path, s: &RawSecret) {
    let empty = match s {
        RawSecret::Env(e) => e.env.trim().is_empty(),
        RawSecret::File(f) => f.file.trim().is_empty(),
        RawSecret::Command(cmd) => cmd.command.trim().is_empty(),
    };
    if empty {
        c.at_value(path, "the secret reference is empty")
            .expect_("{env: VAR}, {file: PATH} or {command: \"...\"}");
    }
}

fn duration(c: &mut Checker<'_>, path: &Path, text: &str, min: u64) -> Option<Duration> {
    match parse_duration(text) {
        Ok(secs) if secs >= min => Some(Duration::from_secs(secs)),
        Ok(_) => {
            c.at_value(path, format!("`{text}` is too short"))
                .expect_(format!("at least {min}s"));
            None
        }
        Err(e) => {
            c.at_value(path, e)
                .expect_("a duration such as 90s, 15m or 7d");
            None
        }
    }
}

fn compile(c: &mut Checker<'_>, raw: &RawConfig, dir: &FsPath) -> Config {
    let root = Path::root();
    let state = resolve_path(
        dir,
        raw.state
            .as_deref()
            .unwrap_or("/var/lib/mailtriage/state.db"),
    );
    let metrics = raw
        .metrics
        .as_ref()
        .and_then(|m| match m.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                c.at_value(
                    &root.key("metrics"),
                    format!("`{m}` is not an address and port"),
                )
                .expect_("an address such as 127.0.0.1:9898");
                None
            }
        });
    let log = LogConfig {
        format: raw
            .log
            .as_ref()
            .and_then(|l| l.format)
            .unwrap_or(LogFormat::Text),
        level: raw
            .log
            .as_ref()
            .and_then(|l| l.level.clone())
            .unwrap_or_else(|| "info".to_string()),
    };
    if tracing_subscriber::EnvFilter::try_new(&log.level).is_err() {
        c.at_value(
            &root.key("log").key("level"),
            format!("`{}` is not a log level", log.level),
        )
        .expect_("error, warn, info, debug, trace, or a filter such as info,mailtriage=debug");
    }
    let max_scan_bytes = match &raw.max_scan_bytes {
        None => DEFAULT_MAX_SCAN_BYTES,
        Some(s) => match parse_size(s) {
            Ok(n) if (4096..=64 * 1024 * 1024).contains(&n) => n,
            Ok(_) => {
                c.at_value(
                    &root.key("max_scan_bytes"),
                    format!("`{s}` is out of range"),
                )
                .expect_("between 4KiB and 64MiB");
                DEFAULT_MAX_SCAN_BYTES
            }
            Err(e) => {
                c.at_value(&root.key("max_scan_bytes"), e)
                    .expect_("a size such as 256KiB");
                DEFAULT_MAX_SCAN_BYTES
            }
        },
    };
    let smtp = raw.smtp.as_ref().map(|s| {
        let p = root.key("smtp");
        let tls = s.tls.unwrap_or(TlsMode::Starttls);
        if tls == TlsMode::None && !is_loopback(&s.host) && !s.allow_insecure.unwrap_or(false) {
            c.at_value(
                &p.key("tls"),
                format!(
                    "unencrypted SMTP to {} would send the password in clear text",
                    s.host
                ),
            )
            .expect_("tls: starttls or implicit, or allow_insecure: true if you really mean it");
        }
        if let Some(pw) = &s.password {
            check_secret(c, &p.key("password"), pw);
        }
        let mut user = s.user.clone();
        if let Some(name) = &s.oauth_account {
            let at = p.key("oauth_account");
            let oauth_imap = |a: &&RawAccount| {
                a.imap.as_ref().is_some_and(|i| {
                    matches!(i.auth, Some(AuthKind::Xoauth2 | AuthKind::Oauthbearer))
                })
            };
            match raw.accounts.iter().find(|a| &a.name == name) {
                Some(a) if oauth_imap(&a) => {
                    if user.is_none() {
                        user = a.imap.as_ref().map(|i| i.user.clone());
                    }
                }
                Some(_) => {
                    c.at_value(&at, format!("account `{name}` does not log in with OAuth2"))
                        .expect_("an account with `auth: xoauth2` or `auth: oauthbearer`");
                }
                None => {
                    let names = raw
                        .accounts
                        .iter()
                        .filter(|a| oauth_imap(a))
                        .map(|a| a.name.as_str());
                    let hint = did_you_mean(name, names.clone())
                        .map(|m| format!(" (did you mean `{m}`?)"))
                        .unwrap_or_default();
                    c.at_value(&at, format!("there is no account `{name}`{hint}"))
                        .expect_(format!(
                            "the name of an account that logs in with OAuth2: {}",
                            names.collect::<Vec<_>>().join(", ")
                        ));
                }
            }
            if s.password.is_some() {
                c.at_value(
                    &p.key("password"),
                    "a password and `oauth_account` both given",
                )
                .expect_("one of them: `oauth_account` logs in with the account's OAuth2 token");
            }
        }
        if !s.from.contains('@') {
            c.at_value(&p.key("from"), format!("`{}` has no address", s.from))
                .expect_("an address, optionally with a name: \"Triage <alerts@example.com>\"");
        }
        SmtpConfig {
            host: s.host.trim().to_string(),
            port: s.port.unwrap_or(match tls {
                TlsMode::Implicit => 465,
                TlsMode::Starttls => 587,
                TlsMode::None => 25,
            }),
            tls,
            user,
            password: s.password.as_ref().map(|p| secret(dir, p)),
            oauth_account: s.oauth_account.clone(),
            from: s.from.clone(),
            ca_file: s.ca_file.as_ref().map(|f| resolve_path(dir, f)),
            allow_insecure: s.allow_insecure.unwrap_or(false),
        }
    });
    if raw.accounts.is_empty() {
        c.at_value(&root.key("accounts"), "no accounts to watch")
            .expect_("at least one account with `imap:` or `maildir:`");
    }
    let mut accounts: Vec<AccountConfig> = Vec::new();
    for (i, a) in raw.accounts.iter().enumerate() {
        let p = root.key("accounts").index(i);
        if let Some(acc) = account(c, &p, a, dir) {
            if accounts.iter().any(|x| x.name == acc.name) {
                c.at_value(
                    &p.key("name"),
                    format!("account `{}` is defined twice", acc.name),
                )
                .expect_("each account name once");
            }
            accounts.push(acc);
        }
    }
    Config {
        file: None,
        state,
        metrics,
        log,
        smtp,
        max_scan_bytes,
        accounts,
    }
}

fn imap(c: &mut Checker<'_>, p: &Path, m: &RawImap, dir: &FsPath) -> ImapConfig {
    let tls = m.tls.unwrap_or(TlsMode::Implicit);
    let preset = match &m.oauth {
        Some(RawOauth::Preset(pr)) => Some(*pr),
        Some(RawOauth::Custom(cu)) => cu.provider,
        None => None,
    };
    let host = match (&m.host, preset) {
        (Some(h), _) => h.trim().to_string(),
        (None, Some(pr)) => pr.imap_host().to_string(),
        (None, None) => {
            c.at_value(p, "the IMAP server's `host` is missing")
                .expect_("host: imap.example.com (or an oauth: preset, which knows its server)");
            String::new()
        }
    };
    if m.host.is_some() && (host.is_empty() || host.contains(char::is_whitespace)) {
        c.at_value(&p.key("host"), format!("`{host}` is not a host name"))
            .expect_("a server name such as imap.example.com");
    }
    let allow_insecure = m.allow_insecure.unwrap_or(false);
    if tls == TlsMode::None && !is_loopback(&host) && !allow_insecure {
        c.at_value(
            &p.key("tls"),
            format!("an unencrypted connection to {host} would send the password in clear text"),
        )
        .expect_("tls: implicit or starttls, or allow_insecure: true if you really mean it");
    }
    let auth = m.auth.unwrap_or(AuthKind::Login);
    match auth {
        AuthKind::Login | AuthKind::Plain => {
            if m.password.is_none() {
                c.at_value(
                    p,
                    format!("{:?} login needs a password", auth).to_lowercase(),
                )
                .expect_("password: {env: VAR}, {file: PATH} or {command: \"...\"}");
            }
        }
        AuthKind::Xoauth2 | AuthKind::Oauthbearer => {
            if m.oauth.is_none() {
                c.at_value(p, "OAuth2 login needs an `oauth:` provider")
                    .expect_("oauth: gmail, oauth: microsoft, or {token_url: ..., client_id: ...}");
            }
        }
    }
    if let Some(pw) = &m.password {
        check_secret(c, &p.key("password"), pw);
    }
    let oauth = m
        .oauth
        .as_ref()
        .and_then(|o| oauth::oauth(c, &p.key("oauth"), o, dir));
    let ca_file = m.ca_file.as_ref().map(|f| resolve_path(dir, f));
    if let Some(f) = &ca_file {
        if !f.is_file() {
            c.at_value(&p.key("ca_file"), format!("{} does not exist", f.display()))
                .expect_("a PEM file with the CA certificate");
        }
    }
    let timeout = m
        .timeout
        .as_ref()
        .and_then(|t| duration(c, &p.key("timeout"), t, 1))
        .unwrap_or(Duration::from_secs(60));
    ImapConfig {
        timeout,
        port: m
            .port
            .unwrap_or(if tls == TlsMode::Implicit { 993 } else { 143 }),
        host,
        tls,
        user: m.user.clone(),
        password: m.password.as_ref().map(|s| secret(dir, s)),
        auth,
        oauth,
        ca_file,
        allow_insecure,
    }
}

fn account(c: &mut Checker<'_>, p: &Path, a: &RawAccount, dir: &FsPath) -> Option<AccountConfig> {
    let name = a.name.trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.')
    {
        c.at_value(
            &p.key("name"),
            format!("`{}` cannot be an account name", a.name),
        )
        .expect_("letters, digits, - and _ (e.g. info or sales-inbox)");
    }
    let profile = resolve_path(dir, &a.profile);
    if !profile.is_file() {
        let candidates: Vec<String> = std::fs::read_dir(profile.parent().unwrap_or(dir))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        let file_name = profile
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        c.at_value(
            &p.key("profile"),
            format!("profile {} does not exist", profile.display()),
        )
        .expect_("the path of a profile YAML file, relative to this file")
        .suggest_(did_you_mean(
            &file_name,
            candidates.iter().map(String::as_str),
        ));
    }
    let backend = match (&a.imap, &a.maildir) {
        (Some(m), None) => Backend::Imap(Box::new(imap(c, &p.key("imap"), m, dir))),
        (None, Some(md)) => Backend::Maildir(resolve_path(dir, md)),
        (Some(_), Some(_)) => {
            c.at_key(
                &p.key("maildir"),
                "an account is either `imap:` or `maildir:`, not both",
            )
            .expect_("one mail backend per account");
            return None;
        }
        (None, None) => {
            c.at_value(p, format!("account `{name}` has no mailbox"))
                .expect_("`imap: {host, user, password}` or `maildir: PATH`");
            return None;
        }
    };
    let folders = a
        .folders
        .clone()
        .unwrap_or_else(|| vec!["INBOX".to_string()]);
    for (i, f) in folders.iter().enumerate() {
        if f.trim().is_empty() || f.contains(['\r', '\n', '*', '%']) {
            c.at_value(
                &p.key("folders").index(i),
                format!("`{f}` is not a folder name"),
            )
            .expect_("a folder such as INBOX");
        }
    }
    if let Backend::Imap(m) = &backend {
        if is_gmail(m) {
            for (i, f) in folders.iter().enumerate() {
                if is_gmail_special(f) {
                    c.at_value(
                        &p.key("folders").index(i),
                        format!("`{f}` is one of Gmail's own folders; mailtriage never reads or files into [Gmail]/…"),
                    )
                    .expect_("INBOX or one of your own labels");
                }
            }
            if folders.len() > GMAIL_MAX_FOLDERS {
                c.at_value(
                    &p.key("folders"),
                    format!(
                        "{} folders would open {} connections; Gmail allows 15 per account and mail clients need some",
                        folders.len(),
                        folders.len()
                    ),
                )
                .expect_(format!("at most {GMAIL_MAX_FOLDERS} watched folders on a Gmail account"));
            }
        }
    }
    if matches!(backend, Backend::Maildir(_)) && folders.iter().any(|f| f != "INBOX") {
        c.at_value(
            &p.key("folders"),
            "a Maildir account watches its INBOX only",
        )
        .expect_("folders: [INBOX] or no `folders:` key");
    }
    let poll_interval = a
        .poll_interval
        .as_ref()
        .and_then(|t| duration(c, &p.key("poll_interval"), t, 1))
        .unwrap_or(Duration::from_secs(60));
    let backfill = match a.backfill.as_deref().map(str::trim) {
        None | Some("none") => Backfill::None,
        Some("all") => Backfill::All,
        Some(t) => duration(c, &p.key("backfill"), t, 60)
            .map(Backfill::Since)
            .unwrap_or(Backfill::None),
    };
    let mut addresses: Vec<String> = a
        .addresses
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|s| s.trim().to_lowercase())
        .collect();
    if a.addresses.is_none() {
        if let Backend::Imap(m) = &backend {
            if m.user.contains('@') {
                addresses.push(m.user.trim().to_lowercase());
            }
        }
    }
    Some(AccountConfig {
        name,
        profile,
        backend,
        folders,
        watch: a.watch.unwrap_or(WatchMode::Idle),
        poll_interval,
        backfill,
        dry_run: a.dry_run.unwrap_or(false),
        addresses,
        trusted_authserv_ids: a
            .trusted_authserv_ids
            .iter()
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_loopback() {
        assert_eq!(parse_size("256KiB"), Ok(262_144));
        assert_eq!(parse_size("1 MB"), Ok(1_048_576));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(is_loopback("127.0.0.1") && is_loopback("::1") && is_loopback("localhost"));
        assert!(!is_loopback("imap.example.com") && !is_loopback("10.0.0.1"));
    }

    #[test]
    fn plaintext_to_a_remote_host_is_refused() {
        let dir = std::env::temp_dir();
        let yaml = "accounts:\n  - name: x\n    profile: nope.yaml\n    imap: {host: imap.example.com, tls: none, user: u, password: {env: P}}\n";
        let err = Config::from_bytes("m.yaml", yaml.as_bytes(), &dir).expect_err("rejected");
        let text = err.to_string();
        assert!(text.contains("clear text"), "{text}");
        assert!(text.contains("profile"), "{text}");
    }
}
