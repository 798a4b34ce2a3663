//! Building the mail we send — alerts, acknowledgements, digests — with lettre's
//! builder: every header is encoded by lettre, and text taken from customer mail
//! (subjects, names, Message-IDs) is flattened to one line first, so nothing a customer
//! writes can add a header to our mail.

use anyhow::{anyhow, Context as _, Result};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};

use crate::profile::compile::fingerprint;
use crate::store::outbox::NewMail;
use crate::triage::Decision;

/// The `Auto-Submitted` header (RFC 3834).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AutoSubmitted(&'static str);

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        match s.trim() {
            "auto-replied" => Ok(AutoSubmitted("auto-replied")),
            "auto-generated" => Ok(AutoSubmitted("auto-generated")),
            _ => Ok(AutoSubmitted("no")),
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.to_string())
    }
}

/// Who our mail comes from (the `smtp.from` address).
#[derive(Debug, Clone)]
pub struct Sender {
    pub mailbox: Mailbox,
}

impl Sender {
    /// Parses "Name <address>" or a bare address.
    pub fn parse(from: &str) -> Result<Sender> {
        let mailbox: Mailbox = from
            .trim()
            .parse()
            .map_err(|e| anyhow!("`{from}` is not a sender address: {e}"))?;
        Ok(Sender { mailbox })
    }

    /// The bare address (the envelope sender).
    pub fn address(&self) -> String {
        self.mailbox.email.to_string()
    }

    fn domain(&self) -> String {
        self.mailbox.email.domain().to_string()
    }
}

/// One line of text, at most `max` characters: control characters (CR, LF, tabs, …)
/// become spaces, invisible format characters (bidi overrides, zero-width) are dropped,
/// runs of spaces collapse.
pub fn one_line(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .filter(|c| !super::reflect::is_format_char(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > max {
        out = out.chars().take(max).collect::<String>() + "…";
    }
    out
}

/// A Message-ID fit to be quoted in In-Reply-To/References (`<id>`), or None.
pub fn quoted_id(id: &str) -> Option<String> {
    let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
    let ok = !bare.is_empty()
        && bare.len() <= 250
        && bare.contains('@')
        && bare
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '<' && c != '>');
    ok.then(|| format!("<{bare}>"))
}

/// A recipient's mailbox; the display name is flattened to one line.
fn mailbox(name: Option<&str>, address: &str) -> Result<Mailbox> {
    let email = address
        .trim()
        .parse()
        .map_err(|e| anyhow!("`{address}` is not an email address: {e}"))?;
    Ok(Mailbox::new(
        name.map(|n| one_line(n, 100)).filter(|n| !n.is_empty()),
        email,
    ))
}

/// The original message an alert or acknowledgement refers to.
#[derive(Debug, Clone, Default)]
pub struct Original<'a> {
    pub message_id: Option<&'a str>,
    pub references: &'a [String],
    pub subject: &'a str,
    pub from_name: Option<&'a str>,
    pub from_address: Option<&'a str>,
    /// The new text (quoted history and signature removed).
    pub new_text: &'a str,
}

impl Original<'_> {
    /// "Pat Customer <pat@example.com>", flattened.
    pub fn customer(&self) -> String {
        let addr = self.from_address.unwrap_or("unknown sender");
        match self
            .from_name
            .map(|n| one_line(n, 80))
            .filter(|n| !n.is_empty())
        {
            Some(n) => format!("{n} <{}>", one_line(addr, 120)),
            None => one_line(addr, 120),
        }
    }

    /// (In-Reply-To, References) threading our reply under the original.
    fn threading(&self) -> Option<(String, String)> {
        let id = quoted_id(self.message_id?)?;
        let mut refs: Vec<String> = self
            .references
            .iter()
            .filter_map(|r| quoted_id(r))
            .rev()
            .take(10)
            .collect();
        refs.reverse();
        if !refs.contains(&id) {
            refs.push(id.clone());
        }
        Some((id, refs.join(" ")))
    }
}

/// A queued message: the rendered bytes plus its outbox key.
fn queued(
    purpose: &str,
    ref_key: &str,
    rcpt: &str,
    account: &str,
    sender: &Sender,
    message: Message,
) -> NewMail {
    NewMail {
        purpose: purpose.to_string(),
        ref_key: ref_key.to_string(),
        rcpt: rcpt.to_lowercase(),
        account: account.to_string(),
        envelope_from: sender.address(),
        message: message.formatted(),
        about: String::new(),
        once_per_secs: 0,
        per_hour: 0,
        per_domain_per_hour: 0,
    }
}

/// Our Message-ID for one outbox entry: the same on every resend, so a receiving
/// server or client can tell a duplicate.
fn our_id(sender: &Sender, purpose: &str, ref_key: &str, rcpt: &str) -> String {
    let h = fingerprint(&[purpose.as_bytes(), ref_key.as_bytes(), rcpt.as_bytes()]);
    format!("<mailtriage.{purpose}.{h}@{}>", sender.domain())
}

/// The first `n` non-empty lines of a text, each flattened and capped.
fn first_lines(text: &str, n: usize) -> Vec<String> {
    text.lines()
        .map(|l| one_line(l, 200))
        .filter(|l| !l.is_empty())
        .take(n)
        .collect()
}

/// Why a message escalated, in words: keywords with levels, sentiment score.
pub fn why(d: &Decision) -> String {
    let Some(e) = &d.escalation else {
        return String::new();
    };
    let mut parts = Vec::new();
    if !e.keywords.is_empty() {
        let kws: Vec<String> = e
            .keywords
            .iter()
            .map(|k| {
                format!(
                    "\"{}\" ({}, in {})",
                    one_line(&k.keyword, 60),
                    k.level,
                    k.found_in
                )
            })
            .collect();
        parts.push(format!("keywords {}", kws.join(", ")));
    }
    if e.by.contains("sentiment") {
        if let Some(s) = &d.sentiment {
            parts.push(format!("sentiment {:.2} (threshold reached)", s.compound));
        }
    }
    if parts.is_empty() {
        parts.push(format!("escalated by {}", e.by));
    }
    parts.join("; ")
}

/// What an alert says about one escalated message.
pub struct AlertFacts<'a> {
    pub account: &'a str,
    pub business: &'a str,
    /// The outbox reference: the message's fingerprint.
    pub ref_key: &'a str,
    pub original: &'a Original<'a>,
    pub decision: &'a Decision,
    /// A member gets at most one alert per sender within this many seconds (0: no limit).
    pub once_per_secs: u64,
}

/// An alert to one member about an escalated message.
pub fn alert(sender: &Sender, member: &str, address: &str, f: &AlertFacts<'_>) -> Result<NewMail> {
    let d = f.decision;
    let level = d
        .escalation
        .as_ref()
        .map_or("ESCALATED", |e| e.level.as_str());
    let customer = f.original.customer();
    let subject = one_line(f.original.subject, 150);
    let subject_line = if subject.is_empty() {
        "(no subject)".to_string()
    } else {
        subject.clone()
    };
    let filed = d
        .folder
        .as_deref()
        .map_or_else(|| "left where it arrived".to_string(), |f| one_line(f, 200));
    let business = one_line(f.business, 100);
    let rows: [(&str, String); 7] = [
        ("Customer", customer.clone()),
        ("Subject", subject_line.clone()),
        (
            "Level",
            format!(
                "{level} (by {})",
                d.escalation.as_ref().map_or("-", |e| e.by.as_str())
            ),
        ),
        ("Why", why(d)),
        ("Category", d.category.clone()),
        (
            "For",
            d.recipient
                .clone()
                .unwrap_or_else(|| "nobody (unassigned)".into()),
        ),
        ("Filed in", filed),
    ];
    let lines = first_lines(f.original.new_text, 8);
    let footer = "Sent by mailtriage; reply to the customer from the original message.";
    // Plain text …
    let mut text = format!("{level} escalation at {business}\n\n");
    for (k, v) in &rows {
        text.push_str(&format!("{:<10} {v}\n", format!("{k}:")));
    }
    if !lines.is_empty() {
        text.push_str("\nThe new text begins:\n\n");
        for l in &lines {
            text.push_str(&format!("  > {l}\n"));
        }
    }
    text.push_str(&format!("\n-- \n{footer}\n"));
    // … and the same as HTML, every value escaped.
    let mut html = format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\">\n<h2>{} escalation at {}</h2>\n<table>\n",
        esc(level),
        esc(&business)
    );
    for (k, v) in &rows {
        html.push_str(&format!(
            "<tr><th align=\"left\" valign=\"top\">{}</th><td>{}</td></tr>\n",
            esc(k),
            esc(v)
        ));
    }
    html.push_str("</table>\n");
    if !lines.is_empty() {
        html.push_str("<p>The new text begins:</p>\n<blockquote>");
        html.push_str(
            &lines
                .iter()
                .map(|l| esc(l))
                .collect::<Vec<_>>()
                .join("<br>\n"),
        );
        html.push_str("</blockquote>\n");
    }
    html.push_str(&format!(
        "<p><small>{}</small></p>\n</body></html>\n",
        esc(footer)
    ));
    let rcpt = address.trim().to_lowercase();
    let mut b = Message::builder()
        .from(sender.mailbox.clone())
        .to(mailbox(Some(member), address)?)
        .subject(format!("[{level}] {subject_line} - {customer}"))
        .message_id(Some(our_id(sender, "alert", f.ref_key, &rcpt)))
        .header(AutoSubmitted("auto-generated"));
    if let Some((irt, refs)) = f.original.threading() {
        b = b.in_reply_to(irt).references(refs);
    }
    let msg = b
        .multipart(lettre::message::MultiPart::alternative_plain_html(
            text, html,
        ))
        .context("cannot build an alert")?;
    let mut mail = queued("alert", f.ref_key, &rcpt, f.account, sender, msg);
    if let Some(from) = f.original.from_address {
        // One alert per member about one sender: the pair is what is counted.
        mail.about = format!("{rcpt} {}", super::reflect::mailbox_key(from));
        mail.once_per_secs = f.once_per_secs;
    }
    Ok(mail)
}

/// Text made safe for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An acknowledgement to a customer (RFC 3834: `Auto-Submitted: auto-replied`, threaded
/// under their message). `ref_key` is the day, so each sender gets at most one per day.
/// How many acknowledgements may go out, and how often to one mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckLimits {
    pub per_hour: u32,
    pub per_domain_per_hour: u32,
}

/// One acknowledgement per mailbox (whatever its `+tag` or Gmail dots) in this time.
pub const ACK_ONCE_PER_SECS: u64 = 24 * 3600;

pub fn acknowledgement(
    sender: &Sender,
    account: &str,
    ref_key: &str,
    original: &Original<'_>,
    subject: &str,
    body: &str,
    limits: AckLimits,
) -> Result<NewMail> {
    let address = original
        .from_address
        .ok_or_else(|| anyhow!("the message has no sender to acknowledge"))?;
    let rcpt = address.trim().to_lowercase();
    // The display name is the sender's own text: repeated only when it reads as a name.
    let name = original.from_name.and_then(super::reflect::person_name);
    let mut b = Message::builder()
        .from(sender.mailbox.clone())
        .to(mailbox(name.as_deref(), address)?)
        .subject(one_line(subject, 200))
        .message_id(Some(our_id(sender, "ack", ref_key, &rcpt)))
        .header(AutoSubmitted("auto-replied"))
        .header(lettre::message::header::ContentType::TEXT_PLAIN);
    if let Some((irt, refs)) = original.threading() {
        b = b.in_reply_to(irt).references(refs);
    }
    let msg = b
        .body(body.to_string())
        .context("cannot build an acknowledgement")?;
    let mut mail = queued("ack", ref_key, &rcpt, account, sender, msg);
    mail.about = super::reflect::mailbox_key(&rcpt);
    mail.once_per_secs = ACK_ONCE_PER_SECS;
    mail.per_hour = limits.per_hour;
    mail.per_domain_per_hour = limits.per_domain_per_hour;
    Ok(mail)
}

/// A member's daily digest; `ref_key` names the account and day.
pub fn digest(
    sender: &Sender,
    account: &str,
    ref_key: &str,
    member: &str,
    address: &str,
    subject: &str,
    body: String,
) -> Result<NewMail> {
    let rcpt = address.trim().to_lowercase();
    let msg = Message::builder()
        .from(sender.mailbox.clone())
        .to(mailbox(Some(member), address)?)
        .subject(one_line(subject, 200))
        .message_id(Some(our_id(sender, "digest", ref_key, &rcpt)))
        .header(AutoSubmitted("auto-generated"))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(body)
        .context("cannot build a digest")?;
    Ok(queued("digest", ref_key, &rcpt, account, sender, msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::MessageView;

    fn decision() -> Decision {
        let profile = crate::profile::Profile::from_bytes(
            "p.yaml",
            b"business: {name: Hot Tub Man}\nteam:\n  - {name: Mark Johnson, email: mark@example.com, roles: [owner]}\n",
        )
        .expect("valid profile");
        let view = MessageView::parse(
            b"From: a@example.com\r\nSubject: lawyer\r\n\r\nI will call my lawyer, this is unacceptable\r\n",
            65536,
        );
        crate::triage::triage(&view, &profile, &crate::triage::Context::default())
    }

    /// The header lines of a rendered message (unfolded).
    fn headers(raw: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(raw);
        let head = text
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_string();
        let mut out: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.push_str(line);
                }
            } else {
                out.push(line.to_string());
            }
        }
        out
    }

    /// The message with quoted-printable undone (soft breaks joined, `=XX` decoded).
    fn unqp(raw: &[u8]) -> String {
        let t = String::from_utf8_lossy(raw).replace("=\r\n", "");
        let b = t.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (b[i], hex) {
                (b'=', Some(v)) => {
                    out.push(v);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn header_injection_in_subject_name_or_message_id_adds_no_header() {
        let d = decision();
        let refs = vec!["<a@b>\r\nBcc: refs@evil.example".to_string()];
        let o = Original {
            message_id: Some("x@y>\r\nBcc: id@evil.example"),
            references: &refs,
            subject: "Refund\r\nBcc: subject@evil.example\r\nX-Injected: yes",
            from_name: Some("Eve\r\nBcc: name@evil.example"),
            from_address: Some("eve@example.com"),
            new_text: "line one\r\nBcc: body@evil.example",
        };
        let sender = Sender::parse("Triage <alerts@hottubman.ca>").expect("sender");
        let facts = AlertFacts {
            once_per_secs: 3600,
            account: "a",
            business: "Hot\r\nX-Biz: 1",
            ref_key: "k",
            original: &o,
            decision: &d,
        };
        let alert = alert(
            &sender,
            "Mark\r\nBcc: member@evil.example",
            "mark@example.com",
            &facts,
        )
        .expect("builds");
        let ack = acknowledgement(
            &sender,
            "a",
            "2026-03-02",
            &o,
            "Re: Refund\r\nBcc: x@evil.example",
            "Thanks",
            AckLimits {
                per_hour: 0,
                per_domain_per_hour: 0,
            },
        )
        .expect("builds");
        for m in [alert, ack] {
            let h = headers(&m.message);
            let names: Vec<String> = h
                .iter()
                .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
                .collect();
            for bad in ["bcc", "x-injected", "x-biz"] {
                assert!(!names.contains(&bad.to_string()), "{bad} in {h:#?}");
            }
            // Exactly one of each header we set.
            for one in ["from", "to", "subject", "message-id", "auto-submitted"] {
                assert_eq!(
                    names.iter().filter(|n| *n == one).count(),
                    1,
                    "{one} in {h:#?}"
                );
            }
            // A malformed Message-ID is not quoted at all.
            assert!(!names.contains(&"in-reply-to".to_string()), "{h:#?}");
        }
    }

    #[test]
    fn alert_names_customer_level_reason_folder_and_threads_under_the_original() {
        let d = decision();
        let refs = vec!["<first@example.com>".to_string()];
        let o = Original {
            message_id: Some("<orig@example.com>"),
            references: &refs,
            subject: "Broken heater",
            from_name: Some("Pat Customer"),
            from_address: Some("pat@example.com"),
            new_text: "I will call my lawyer.\nThis is unacceptable.",
        };
        let sender = Sender::parse("Triage <alerts@hottubman.ca>").expect("sender");
        let facts = AlertFacts {
            once_per_secs: 3600,
            account: "a",
            business: "Hot Tub Man",
            ref_key: "orig@example.com",
            original: &o,
            decision: &d,
        };
        let m = alert(&sender, "Mark Johnson", "Mark@Example.com", &facts).expect("builds");
        assert_eq!(m.rcpt, "mark@example.com");
        assert_eq!(m.envelope_from, "alerts@hottubman.ca");
        let text = unqp(&m.message);
        for want in [
            "In-Reply-To: <orig@example.com>",
            "References: <first@example.com> <orig@example.com>",
            "Auto-Submitted: auto-generated",
            "Pat Customer <pat@example.com>",
            "\"my lawyer\" (URGENT",
            "> I will call my lawyer.",
        ] {
            assert!(text.contains(want), "{want} missing in\n{text}");
        }
        // The HTML part says the same, escaped.
        assert!(text.contains("Content-Type: text/html"), "{text}");
        assert!(
            text.contains("Pat Customer &lt;pat@example.com&gt;"),
            "{text}"
        );
        assert!(!text.contains("<pat@example.com></td>"), "{text}");
        // Resending renders the same Message-ID.
        let again = alert(&sender, "Mark Johnson", "mark@example.com", &facts).expect("builds");
        let id = |t: &[u8]| {
            headers(t)
                .into_iter()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        };
        assert_eq!(id(&m.message), id(&again.message));
    }
}
