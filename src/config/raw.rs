//! `mailtriage.yaml` as written (first stage of loading). Doc comments become the
//! descriptions of the configuration's JSON Schema and its error messages.

use schemars::JsonSchema;
use serde::Deserialize;

/// The daemon's configuration: where state lives, how it logs, and which mailboxes it watches.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// SQLite state file (audit log, filing journal, sync state). Relative paths are
    /// relative to this file's directory. Default: /var/lib/mailtriage/state.db.
    #[serde(default)]
    pub state: Option<String>,
    /// Address for the Prometheus endpoint, e.g. 127.0.0.1:9898 (off when absent).
    #[serde(default)]
    pub metrics: Option<String>,
    /// Logging: {format: text | json, level: error | warn | info | debug | trace}.
    #[serde(default)]
    pub log: Option<RawLog>,
    /// Outgoing mail for alerts, digests and acknowledgements.
    #[serde(default)]
    pub smtp: Option<RawSmtp>,
    /// Most bytes of a message's text that triage reads (e.g. 256KiB). Attachments are never fetched.
    #[serde(default)]
    pub max_scan_bytes: Option<String>,
    /// The mailboxes to watch.
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
}

/// Logging settings.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `text` (human, default) or `json` (one object per line).
    #[serde(default)]
    pub format: Option<LogFormat>,
    /// error, warn, info (default), debug or trace; or a tracing filter such as `info,mailtriage=debug`.
    #[serde(default)]
    pub level: Option<String>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where a secret comes from; secrets are never written in the file itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawSecret {
    /// `{env: VAR}`: an environment variable.
    Env(RawSecretEnv),
    /// `{file: PATH}`: the first line of a file (keep it 0600).
    File(RawSecretFile),
    /// `{command: "pass show x"}`: the first line a command prints.
    Command(RawSecretCommand),
}

/// `{env: VAR}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecretEnv {
    /// Environment variable holding the secret.
    pub env: String,
}

/// `{file: PATH}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecretFile {
    /// File whose first line is the secret.
    pub file: String,
}

/// `{command: "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecretCommand {
    /// Command (run with `sh -c`) whose first output line is the secret.
    pub command: String,
}

/// How a connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS (IMAP 143, submission 587); refused if the server does not offer it.
    Starttls,
    /// No encryption: only allowed to loopback addresses unless `allow_insecure: true`.
    None,
}

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// IMAP LOGIN with user and password.
    Login,
    /// SASL PLAIN with user and password.
    Plain,
    /// SASL XOAUTH2 with an OAuth2 access token (Gmail, Microsoft 365).
    Xoauth2,
    /// SASL OAUTHBEARER (RFC 7628) with an OAuth2 access token.
    Oauthbearer,
}

/// An IMAP server to watch.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawImap {
    /// Server name, e.g. imap.gmail.com (an OAuth2 preset fills it).
    #[serde(default)]
    pub host: Option<String>,
    /// Port (default 993 for implicit TLS, 143 otherwise).
    #[serde(default)]
    pub port: Option<u16>,
    /// implicit (default), starttls or none.
    #[serde(default)]
    pub tls: Option<TlsMode>,
    /// Login name.
    pub user: String,
    /// The password: {env: VAR}, {file: PATH} or {command: "..."}.
    #[serde(default)]
    pub password: Option<RawSecret>,
    /// login (default), plain, xoauth2 or oauthbearer.
    #[serde(default)]
    pub auth: Option<AuthKind>,
    /// OAuth2 provider for xoauth2/oauthbearer: `gmail`, `microsoft`, or custom endpoints.
    #[serde(default)]
    pub oauth: Option<RawOauth>,
    /// Extra CA certificate (PEM) trusted besides the system roots.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Allow an unencrypted connection to a non-loopback host (passwords travel in clear text).
    #[serde(default)]
    pub allow_insecure: Option<bool>,
    /// Longest wait for any step or command before the connection is dropped and retried (default 60s).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// An OAuth2 provider: a preset name or explicit endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawOauth {
    /// `gmail` or `microsoft`; the client id (and secret) come from the environment
    /// variables MAILTRIAGE_OAUTH_CLIENT_ID and MAILTRIAGE_OAUTH_CLIENT_SECRET.
    Preset(OauthPreset),
    /// A preset with settings of its own, or a custom provider's endpoints.
    Custom(RawOauthCustom),
}

/// Known OAuth2 providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OauthPreset {
    /// Google (Gmail, Google Workspace): consent in a browser with a loopback redirect.
    Gmail,
    /// Microsoft 365 / Outlook.com: consent with the device-code flow.
    Microsoft,
}

/// OAuth2 settings: a preset (`provider:`) with overrides, or a custom provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOauthCustom {
    /// `gmail` or `microsoft`: fills endpoints, scopes and the IMAP server name.
    #[serde(default)]
    pub provider: Option<OauthPreset>,
    /// Microsoft only: the directory (tenant) id or domain; default `common`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Token endpoint (refresh and code exchange); required without `provider`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Authorization endpoint (consent in a browser, loopback redirect with PKCE).
    #[serde(default)]
    pub auth_url: Option<String>,
    /// Device-authorization endpoint (RFC 8628); when set, `mailtriage auth` uses the device flow.
    #[serde(default)]
    pub device_url: Option<String>,
    /// OAuth client id: inline, or {env: VAR} / {file: PATH} (default {env: MAILTRIAGE_OAUTH_CLIENT_ID}).
    #[serde(default)]
    pub client_id: Option<RawSecretOrText>,
    /// OAuth client secret: {env: VAR} / {file: PATH} (gmail default {env: MAILTRIAGE_OAUTH_CLIENT_SECRET}; none for public clients).
    #[serde(default)]
    pub client_secret: Option<RawSecret>,
    /// Scopes to request (presets fill them).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// A value given inline or as a secret reference.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawSecretOrText {
    /// Written inline (fine for a client id).
    Text(String),
    /// From the environment, a file or a command.
    Secret(RawSecret),
}

/// Outgoing mail server.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    /// Server name.
    pub host: String,
    /// Port (default 587 for starttls, 465 for implicit, 25 for none).
    #[serde(default)]
    pub port: Option<u16>,
    /// implicit, starttls (default) or none.
    #[serde(default)]
    pub tls: Option<TlsMode>,
    /// Login name (no login when absent).
    #[serde(default)]
    pub user: Option<String>,
    /// The password: {env: VAR}, {file: PATH} or {command: "..."}.
    #[serde(default)]
    pub password: Option<RawSecret>,
    /// Log in with XOAUTH2, using the OAuth2 token of this account (Gmail, Microsoft 365):
    /// the account must log in with xoauth2 or oauthbearer; `user` defaults to its user.
    #[serde(default)]
    pub oauth_account: Option<String>,
    /// Sender of alerts, e.g. "Hot Tub Man triage <alerts@hottubman.ca>".
    pub from: String,
    /// Extra CA certificate (PEM).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Allow an unencrypted connection to a non-loopback host.
    #[serde(default)]
    pub allow_insecure: Option<bool>,
}

/// How new mail is noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// IMAP IDLE (push), with polling as a safety net (default when the server has IDLE).
    Idle,
    /// Poll every `poll_interval`.
    Poll,
}

/// One watched mailbox.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    /// A short name for logs, metrics and the state file (letters, digits, -, _).
    pub name: String,
    /// The business profile that triages this mailbox's mail.
    pub profile: String,
    /// An IMAP server (give `imap` or `maildir`, not both).
    #[serde(default)]
    pub imap: Option<RawImap>,
    /// A local Maildir++ directory (give `imap` or `maildir`, not both).
    #[serde(default)]
    pub maildir: Option<String>,
    /// Folders to watch (default [INBOX]).
    #[serde(default)]
    pub folders: Option<Vec<String>>,
    /// idle (default) or poll.
    #[serde(default)]
    pub watch: Option<WatchMode>,
    /// How often to poll (and, with IDLE, the safety-net check), e.g. 60s (default 60s).
    #[serde(default)]
    pub poll_interval: Option<String>,
    /// First start only: also triage older mail: `7d`, `all`, or `none` (default).
    #[serde(default)]
    pub backfill: Option<String>,
    /// Decide and record, never move (shadow mode for onboarding).
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// The mailbox's own addresses (its own mail is not routed). Default: the IMAP user if it is an address.
    #[serde(default)]
    pub addresses: Option<Vec<String>>,
    /// The `authserv-id`s of the mail servers that write `Authentication-Results` on this
    /// mailbox's incoming mail (e.g. mx.google.com). With such a header, a message is
    /// acknowledged only if DMARC (or aligned SPF) passed.
    #[serde(default)]
    pub trusted_authserv_ids: Vec<String>,
}
