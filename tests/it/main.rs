//! Integration tests against a real, throwaway Dovecot (`cargo test --test it`).
//!
//! `harness` starts one Dovecot per test (temp dir, free port, own config, log and
//! sockets) and offers doveadm-backed helpers plus a raw-socket IMAP client;
//! `harness_smoke` proves the harness itself works. Needs `dovecot` (dovecot-core,
//! dovecot-imapd); as root, mail is owned by uid/gid 5000.

mod booking;
mod daemon;
mod daemon_imap;
mod daemon_maildir;
mod escalation;
mod faults;
#[path = "../common/feed.rs"]
mod feed;
mod harness;
mod harness_smoke;
mod matrix;
mod oauth;
mod ops;
mod proxy;
mod reliability;
mod reload;
mod security;
mod security_fetch;
mod security_http;
mod security_local;
mod security_smtp;
