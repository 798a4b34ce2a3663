//! The server matrix: the same checks against every IMAP server layout small
//! businesses are on. [`Mailstore`] is what a test needs of a server (deliver mail, read
//! it back byte for byte with its flags, list folders); [`Layout`] names the layouts
//! and starts one.

use super::cyrus::Cyrus;
use super::dovecot::{Dovecot, DovecotOptions};
use super::mailbox::StoredMessage;

/// What a test needs of a running mail server, whatever it is. Folder names are as a
/// mail client shows them (UTF-8, the server's own prefix and separator).
pub trait Mailstore {
    /// The plain IMAP port on 127.0.0.1.
    fn port(&self) -> u16;
    /// Every selectable folder of `user`, sorted.
    fn folders(&self, user: &str) -> Vec<String>;
    /// Every message of `folder`, in UID order, with exact bytes and flags.
    fn messages(&self, user: &str, folder: &str) -> Vec<StoredMessage>;
    /// Delivers messages to `folder` (INBOX, usually), in order.
    fn deliver_many(&self, user: &str, folder: &str, raws: &[Vec<u8>]);
    /// Delivers one message.
    fn deliver(&self, user: &str, folder: &str, raw: &[u8]) {
        self.deliver_many(user, folder, &[raw.to_vec()]);
    }
    /// Adds flags (`\Flagged $Custom`) to a message by UID.
    fn set_flags(&self, user: &str, folder: &str, uid: u32, flags: &str);
    /// The name this server gives the folder mailtriage files into for `logical`
    /// (levels separated by `/`, e.g. `SALES/Mark Johnson`).
    fn folder_name(&self, logical: &str) -> String;
}

impl Mailstore for Dovecot {
    fn port(&self) -> u16 {
        Dovecot::port(self)
    }
    fn folders(&self, user: &str) -> Vec<String> {
        Dovecot::folders(self, user)
    }
    fn messages(&self, user: &str, folder: &str) -> Vec<StoredMessage> {
        Dovecot::messages(self, user, folder)
    }
    fn deliver_many(&self, user: &str, folder: &str, raws: &[Vec<u8>]) {
        Dovecot::deliver_many(self, user, folder, raws)
    }
    fn set_flags(&self, user: &str, folder: &str, uid: u32, flags: &str) {
        Dovecot::set_flags(self, user, folder, uid, flags)
    }
    fn folder_name(&self, logical: &str) -> String {
        let sep = self.options().separator.to_string();
        format!("{}{}", self.options().prefix, logical.replace('/', &sep))
    }
}

impl Mailstore for Cyrus {
    fn port(&self) -> u16 {
        Cyrus::port(self)
    }
    fn folders(&self, user: &str) -> Vec<String> {
        Cyrus::folders(self, user)
    }
    fn messages(&self, user: &str, folder: &str) -> Vec<StoredMessage> {
        Cyrus::messages(self, user, folder)
    }
    fn deliver_many(&self, user: &str, folder: &str, raws: &[Vec<u8>]) {
        Cyrus::deliver_many(self, user, folder, raws)
    }
    fn set_flags(&self, user: &str, folder: &str, uid: u32, flags: &str) {
        Cyrus::set_flags(self, user, folder, uid, flags)
    }
    fn folder_name(&self, logical: &str) -> String {
        format!("INBOX.{}", logical.replace('/', "."))
    }
}

/// The server layouts of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Dovecot as the other tests use it: no prefix, separator `/`.
    Dovecot,
    /// Dovecot as shared-hosting panels set it up: `namespace inbox { prefix = INBOX.;
    /// separator = . }`.
    DovecotInboxPrefix,
    /// Cyrus IMAP 3.6 with Debian's stock namespace (`INBOX.`, `.`).
    Cyrus,
}

/// A running server of some layout.
pub enum Server {
    Dovecot(Box<Dovecot>),
    Cyrus(Cyrus),
}

impl Layout {
    /// Starts a server of this layout, with users alice/alicepw and bob/bobpw.
    pub fn start(self) -> Server {
        match self {
            Layout::Dovecot => Server::Dovecot(Box::new(Dovecot::start(DovecotOptions::default()))),
            Layout::DovecotInboxPrefix => {
                Server::Dovecot(Box::new(Dovecot::start(DovecotOptions {
                    separator: '.',
                    prefix: "INBOX.".into(),
                    ..DovecotOptions::default()
                })))
            }
            Layout::Cyrus => Server::Cyrus(Cyrus::start()),
        }
    }
}

impl Server {
    /// The server as a [`Mailstore`].
    pub fn store(&self) -> &dyn Mailstore {
        match self {
            Server::Dovecot(d) => d.as_ref(),
            Server::Cyrus(c) => c,
        }
    }

    /// The Cyrus of this server, if it is one.
    pub fn cyrus(&mut self) -> Option<&mut Cyrus> {
        match self {
            Server::Cyrus(c) => Some(c),
            Server::Dovecot(_) => None,
        }
    }
}

impl std::ops::Deref for Server {
    type Target = dyn Mailstore;
    fn deref(&self) -> &(dyn Mailstore + 'static) {
        match self {
            Server::Dovecot(d) => d.as_ref(),
            Server::Cyrus(c) => c,
        }
    }
}
