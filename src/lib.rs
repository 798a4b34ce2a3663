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
//! - [`triage`] — the heart: `triage(view, profile, context) → Decision`. Pure functions
//!   of their inputs (no I/O, clock or randomness); the decision carries every keyword,
//!   weight, role subtotal, candidate and tie-break that produced it.
//! - [`oauth`] — OAuth2 for XOAUTH2/OAUTHBEARER logins: consent (`mailtriage auth`), the
//!   stored refresh token, access tokens refreshed before they expire.
//! - [`cli`] — the `mailtriage` command: `check`, `explain`, `triage`, `schema`, `auth`.
//!
//! The triage core never sees a half-loaded profile: callers hold an `Arc<Profile>` per
//! message, so a reload can never change the rules halfway through one.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod mail;
pub mod mailbox;
pub mod oauth;
pub mod pipeline;
pub mod profile;
pub mod store;
pub mod triage;
