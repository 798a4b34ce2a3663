//! # mailtriage
//!
//! Files every new business email into the folder of the team member who should handle
//! it, and can always say why.
//!
//! ## The pipeline
//!
//! ```text
//! watch → fetch → parse → classify → escalate → choose recipient → file → record → notify
//!                 └─ mail ─┘ └────────────── triage (pure) ──────────────┘
//! ```
//!
//! - [`profile`] — one YAML file per business, loaded in two stages: raw serde types,
//!   checked against their own JSON Schema (every unknown key, every missing key, with
//!   file:line:column), then compiled over the built-in rule packs in `rules/` into an
//!   immutable [`profile::Profile`]: one keyword automaton, compiled regexes, names
//!   resolved to indices.
//! - [`mail`] — the message view: decoded headers, the body as text (HTML converted), and
//!   the new text split from quoted replies and the signature.
//! - [`matching`] — keyword and name matching and escalation levels: what both the
//!   profile compiler and the triage core use, so it depends on neither.
//! - [`yaml`] — YAML files with source locations: parsing, the shape check against a JSON
//!   Schema, diagnostics with file:line:column, durations and hours.
//! - [`triage`] — the heart: `triage(view, profile, context) → Decision`. Pure functions
//!   of their inputs (no I/O, clock or randomness); the decision carries every keyword,
//!   weight, role subtotal, candidate and tie-break that produced it.
//! - [`calendar`] — busy calendars of booking providers: a small iCalendar reader and a
//!   cache re-read on an interval; its snapshot enters triage through the context.
//! - [`outbox`] — mail the daemon sends (escalation alerts, acknowledgements, digests):
//!   queued in the state database with the decision, sent over SMTP by one worker with
//!   retries. Escalation *actions* on the mailbox (\Flagged, keywords, a copy) are
//!   journalled the same way and carried out by the pipeline before the message moves.
//! - [`oauth`] — OAuth2 for XOAUTH2/OAUTHBEARER logins: consent (`mailtriage auth`), the
//!   stored refresh token, access tokens refreshed before they expire.
//! - [`cli`] — the `mailtriage` command: `check`, `explain`, `triage`, `schema`, `auth`.
//!
//! The triage core never sees a half-loaded profile: callers hold an `Arc<Profile>` per
//! message, so a reload can never change the rules halfway through one.

pub mod calendar;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod mail;
pub mod mailbox;
pub mod matching;
pub mod oauth;
pub mod outbox;
pub mod pipeline;
pub mod profile;
pub mod store;
pub mod triage;
pub mod yaml;
