//! Test harness: throwaway Dovecot and Cyrus servers (the server matrix: `server`), a
//! raw-socket IMAP client, and an SMTP server (aiosmtpd) that keeps what it receives.
//!
//! ```ignore
//! let dc = Dovecot::start(DovecotOptions::default());      // alice/alicepw, bob/bobpw
//! dc.deliver("alice", "INBOX", b"Subject: hi\r\n\r\nbody\r\n");
//! // ... run the daemon against 127.0.0.1:dc.port() ...
//! let stored = dc.messages("alice", "Triage/Urgent");      // exact bytes, UID order
//! ```
//!
//! Each `Dovecot` is self-contained (own temp dir, config, sockets, log, ports), so
//! tests may run many at once. Mail-side helpers use `doveadm` and need the server
//! running. Set `MAILTRIAGE_KEEP_TESTBED=1` to keep the temp dirs for inspection.

// A shared library for every test module: not each one uses every helper.
#![allow(dead_code)]

mod cyrus;
mod dovecot;
mod imap;
mod mailbox;
mod oauth;
mod process;
mod server;
mod smtp;
mod tls;
mod tmp;

// Re-exported for the test modules; each uses only some of them.
#[allow(unused_imports)]
pub use cyrus::Cyrus;
#[allow(unused_imports)]
pub use dovecot::{Dovecot, DovecotOptions, POST_LOGIN_CAPABILITIES};
#[allow(unused_imports)]
pub use imap::{imap_append, imap_command, mutf7, quote, ImapClient, IMAP_TIMEOUT};
#[allow(unused_imports)]
pub use mailbox::StoredMessage;
#[allow(unused_imports)]
pub use oauth::{OauthProvider, Seen};
#[allow(unused_imports)]
pub use process::{poll, run, signal, Output};
#[allow(unused_imports)]
pub use server::{Layout, Mailstore, Server};
#[allow(unused_imports)]
pub use smtp::{Received, SmtpSink};
#[allow(unused_imports)]
pub use tls::make_certs;
#[allow(unused_imports)]
pub use tmp::TempDir;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// A TCP port on 127.0.0.1 that was free just now (never the same one twice per process).
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"))
            .port();
        if HANDED_OUT.lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("no fresh free port after 100 tries");
}
