//! Whether a message may be acknowledged (RFC 3834 §2) and the text of the reply.
//!
//! Pure: the caller supplies the message view, the decision and the profile; the "at
//! most one per sender per day" rule is the outbox's unique key (ack, day, sender).

use std::collections::BTreeMap;

use crate::mail::MessageView;
use crate::profile::{Acknowledgement, Profile};
use crate::triage::Decision;

/// Why no acknowledgement is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAck {
    /// The profile does not send acknowledgements.
    Disabled,
    /// No sender address to answer.
    NoSender,
    /// Mailing-list mail (List-Id, List-Unsubscribe, List-Post).
    List,
    /// Precedence: bulk, list or junk.
    Bulk,
    /// Auto-Submitted other than `no`, X-Autoreply and the like, or a delivery report.
    AutoSubmitted,
    /// Empty Return-Path (`<>`): a bounce or other automatic mail.
    NullReturnPath,
    /// noreply, no-reply, mailer-daemon, postmaster, …
    NoReplySender,
    /// From the business's own domains or the watched mailbox itself.
    OwnDomain,
    /// Not routed to a person (nobody to name in the reply).
    NotRouted,
    /// A category the acknowledgement is not for.
    Category,
    /// Mass-mail wording ("unsubscribe", "view in browser"): a newsletter without list headers.
    MassMail,
    /// A mail server the configuration trusts checked the sender and neither DMARC nor
    /// aligned SPF passed: the From: may be forged.
    Unauthenticated,
}

/// Local parts that never get an automatic reply.
fn no_reply_local(local: &str) -> bool {
    let l = local.to_ascii_lowercase();
    let squashed: String = l.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    squashed.starts_with("noreply")
        || squashed.starts_with("donotreply")
        || squashed == "mailerdaemon"
        || squashed == "postmaster"
        || l.starts_with("bounce")
        || crate::mail::list_local_part(&l)
}

/// May this message be acknowledged? Returns the address to answer. `trusted_authserv`
/// are the (lowercased) `authserv-id`s whose `Authentication-Results` are believed.
pub fn eligible<'v>(
    view: &'v MessageView,
    decision: &Decision,
    profile: &Profile,
    own_addresses: &[String],
    trusted_authserv: &[String],
) -> Result<&'v str, NoAck> {
    let ack = profile.acknowledgement.as_ref().ok_or(NoAck::Disabled)?;
    let from = view
        .from_address()
        .map(str::trim)
        .filter(|a| a.contains('@'))
        .ok_or(NoAck::NoSender)?;
    if view.list_id.is_some()
        || view.list_unsubscribe
        || view.list_post
        || view.list_other.is_some()
        || view.list_sender.is_some()
    {
        return Err(NoAck::List);
    }
    if view.precedence.as_deref().is_some_and(|p| {
        matches!(
            p.trim().to_ascii_lowercase().as_str(),
            "bulk" | "list" | "junk"
        )
    }) {
        return Err(NoAck::Bulk);
    }
    if view
        .auto_submitted
        .as_deref()
        .is_some_and(|a| !a.trim().eq_ignore_ascii_case("no"))
        || view.x_autoreply
        || view.report
    {
        return Err(NoAck::AutoSubmitted);
    }
    if view.null_return_path {
        return Err(NoAck::NullReturnPath);
    }
    let (local, domain) = from.rsplit_once('@').unwrap_or((from, ""));
    if no_reply_local(local) {
        return Err(NoAck::NoReplySender);
    }
    let domain = domain.to_ascii_lowercase();
    let own_domain = profile
        .business
        .domains
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")));
    if own_domain || own_addresses.iter().any(|a| a.eq_ignore_ascii_case(from)) {
        return Err(NoAck::OwnDomain);
    }
    if decision.recipient.is_none() {
        return Err(NoAck::NotRouted);
    }
    if decision.signals.mass_mail {
        return Err(NoAck::MassMail);
    }
    let verdict =
        crate::mail::auth_results::verdict(&view.authentication_results, trusted_authserv, &domain);
    if verdict == crate::mail::auth_results::Verdict::NotAuthenticated {
        return Err(NoAck::Unauthenticated);
    }
    if let Some(cats) = &ack.categories {
        let in_list = cats
            .iter()
            .filter_map(|&i| profile.categories.get(i))
            .any(|c| c.name == decision.category);
        if !in_list {
            return Err(NoAck::Category);
        }
    }
    Ok(from)
}

/// The placeholder values for a message (add a placeholder: add its value here and its
/// name to `template::ACK_PLACEHOLDERS`).
pub fn values<'a>(
    view: &MessageView,
    decision: &Decision,
    profile: &Profile,
) -> BTreeMap<&'a str, String> {
    let mut v = BTreeMap::new();
    // Text from the message goes back out only when it reads as a name or a subject
    // (anyone can forge a From: and choose what we would send): see `reflect`.
    let name = view
        .from_name()
        .and_then(super::reflect::person_name)
        .unwrap_or_else(|| "there".to_string());
    v.insert("customer_name", name);
    v.insert(
        "customer_email",
        view.from_address().unwrap_or_default().to_string(),
    );
    v.insert(
        "member",
        decision
            .recipient
            .clone()
            .unwrap_or_else(|| "our team".into()),
    );
    v.insert("business", profile.business.name.clone());
    v.insert(
        "subject",
        super::reflect::plain_subject(&view.subject).unwrap_or_else(|| "your message".into()),
    );
    v.insert("category", decision.category.clone());
    // Booking requests: the chosen provider, the service and its booking link. Outside
    // booking, {provider} is the recipient; lines with no link or service are left out.
    let booking = decision.booking.as_ref();
    if let Some(p) = booking
        .and_then(|b| b.provider.clone())
        .or_else(|| decision.recipient.clone())
    {
        v.insert("provider", p);
    }
    if let Some(s) = booking.and_then(|b| b.service.clone()) {
        v.insert("service", s);
    }
    if let Some(l) = booking.and_then(|b| b.booking_link.clone()) {
        v.insert("booking_link", l);
    }
    v
}

/// (subject, body) of the acknowledgement.
pub fn render(ack: &Acknowledgement, values: &BTreeMap<&str, String>) -> (String, String) {
    (ack.subject.render(values), ack.body.render(values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::Context;

    const PROFILE: &str = "business: {name: Hot Tub Man, domains: [hottubman.ca]}
team:
  - {name: Mark Johnson, email: mark@hottubman.ca, roles: [sales_manager, owner]}
acknowledgement:
  template: \"Hi {customer_name}, {member} will answer about {subject}.\"
";

    fn profile(extra: &str) -> Profile {
        Profile::from_bytes("p.yaml", format!("{PROFILE}{extra}").as_bytes()).expect("valid")
    }

    fn check(p: &Profile, headers: &str) -> Result<String, NoAck> {
        let raw = format!(
            "{headers}Subject: Quote\r\nMessage-ID: <q@x>\r\n\r\nA quote for a hot tub please\r\n"
        );
        let view = MessageView::parse(raw.as_bytes(), 65536);
        let d = crate::triage::triage(&view, p, &Context::default());
        eligible(&view, &d, p, &["info@hottubman.ca".to_string()], &[]).map(String::from)
    }

    #[test]
    fn acknowledgements_never_answer_automatic_or_own_mail() {
        let p = profile("");
        let from = "From: Pat <pat@example.com>\r\n";
        let cases: &[(&str, Result<&str, NoAck>)] = &[
            (from, Ok("pat@example.com")),
            (
                "From: Pat <pat@example.com>\r\nAuto-Submitted: no\r\n",
                Ok("pat@example.com"),
            ),
            ("", Err(NoAck::NoSender)),
            (
                "From: x@lists.example\r\nList-Id: <spa.lists.example>\r\n",
                Err(NoAck::List),
            ),
            (
                "From: x@news.example\r\nList-Unsubscribe: <mailto:u@news.example>\r\n",
                Err(NoAck::List),
            ),
            (
                "From: x@example.com\r\nPrecedence: bulk\r\n",
                Err(NoAck::Bulk),
            ),
            (
                "From: x@example.com\r\nPrecedence: list\r\n",
                Err(NoAck::Bulk),
            ),
            (
                "From: x@example.com\r\nPrecedence: junk\r\n",
                Err(NoAck::Bulk),
            ),
            (
                "From: x@example.com\r\nAuto-Submitted: auto-replied\r\n",
                Err(NoAck::AutoSubmitted),
            ),
            (
                "From: x@example.com\r\nAuto-Submitted: auto-generated\r\n",
                Err(NoAck::AutoSubmitted),
            ),
            (
                "From: x@example.com\r\nReturn-Path: <>\r\n",
                Err(NoAck::NullReturnPath),
            ),
            ("From: noreply@shop.example\r\n", Err(NoAck::NoReplySender)),
            ("From: No-Reply@shop.example\r\n", Err(NoAck::NoReplySender)),
            (
                "From: do-not-reply@shop.example\r\n",
                Err(NoAck::NoReplySender),
            ),
            (
                "From: MAILER-DAEMON@mx.example\r\n",
                Err(NoAck::NoReplySender),
            ),
            ("From: postmaster@mx.example\r\n", Err(NoAck::NoReplySender)),
            ("From: sarah@hottubman.ca\r\n", Err(NoAck::OwnDomain)),
            ("From: ops@mail.hottubman.ca\r\n", Err(NoAck::OwnDomain)),
        ];
        for (headers, want) in cases {
            let got = check(&p, headers);
            assert_eq!(
                got.as_deref().map_err(|e| *e),
                *want,
                "headers: {headers:?}"
            );
        }
    }

    #[test]
    fn acknowledgements_never_answer_spam_or_newsletters() {
        let p = profile("");
        let cases: &[(&str, &str, NoAck)] = &[
            (
                "X-Spam-Flag: YES\r\n",
                "A quote for a hot tub please",
                NoAck::NotRouted,
            ),
            (
                "",
                "A quote for a hot tub please.\r\n\r\nTo unsubscribe from these emails click here",
                NoAck::MassMail,
            ),
        ];
        for (headers, body, want) in cases {
            let raw = format!(
                "From: Pat <pat@example.com>\r\n{headers}Subject: Quote\r\nMessage-ID: <q@x>\r\n\r\n{body}\r\n"
            );
            let view = MessageView::parse(raw.as_bytes(), 65536);
            let d = crate::triage::triage(&view, &p, &Context::default());
            assert_eq!(
                eligible(&view, &d, &p, &[], &[]).map(String::from),
                Err(*want),
                "{headers}{body}"
            );
        }
    }

    #[test]
    fn acknowledgements_follow_the_profile_switch_and_categories() {
        let off = Profile::from_bytes(
            "p.yaml",
            PROFILE
                .replace("acknowledgement:\n", "acknowledgement:\n  enabled: false\n")
                .as_bytes(),
        )
        .expect("valid");
        assert_eq!(
            check(&off, "From: pat@example.com\r\n"),
            Err(NoAck::Disabled)
        );
        let support_only = profile("  categories: [SUPPORT]\n");
        assert_eq!(
            check(&support_only, "From: pat@example.com\r\n"),
            Err(NoAck::Category)
        );
    }

    #[test]
    fn sender_text_is_repeated_only_when_it_reads_as_a_name_or_a_subject() {
        let p = profile("");
        // (From display name, Subject) → the acknowledgement's (subject, body)
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "Pat Customer",
                "Quote",
                "Re: Quote",
                "Hi Pat Customer, Mark Johnson will answer about Quote.",
            ),
            (
                "=?utf-8?q?Pat=0D=0ABcc=3A_x=40evil?=",
                "Quote",
                "Re: Quote",
                "Hi there, Mark Johnson will answer about Quote.",
            ),
            (
                "Cheap pills at pills.example",
                "Buy now at www.pills.example, 80% off",
                "Re: your message",
                "Hi there, Mark Johnson will answer about your message.",
            ),
            (
                "=?utf-8?q?Pat=E2=80=AEgpj.exe?=",
                "=?utf-8?q?Quote=E2=80=AE?=",
                "Re: your message",
                "Hi there, Mark Johnson will answer about your message.",
            ),
        ];
        for (name, subject, want_subject, want_body) in cases {
            let raw = format!(
                "From: {name} <pat@example.com>\r\nSubject: {subject}\r\n\r\nA quote for a hot tub please\r\n"
            );
            let view = MessageView::parse(raw.as_bytes(), 65536);
            let d = crate::triage::triage(&view, &p, &Context::default());
            let ack = p.acknowledgement.as_ref().expect("enabled");
            let (s, body) = render(ack, &values(&view, &d, &p));
            assert_eq!(
                (s.as_str(), body.as_str()),
                (*want_subject, *want_body),
                "{name} / {subject}"
            );
        }
    }

    #[test]
    fn list_like_mail_and_failed_authentication_get_no_acknowledgement() {
        let p = profile("");
        let trusted = vec!["mx.hottubman.ca".to_string()];
        let cases: &[(&str, Result<&str, NoAck>)] = &[
            ("List-Help: <mailto:help@lists.example>\r\n", Err(NoAck::List)),
            ("List-Subscribe: <https://lists.example/s>\r\n", Err(NoAck::List)),
            ("Sender: owner-spa@lists.example\r\n", Err(NoAck::List)),
            ("Sender: spa-bounces@lists.example\r\n", Err(NoAck::List)),
            ("Sender: pat@example.com\r\n", Ok("pat@example.com")),
            (
                "Authentication-Results: mx.hottubman.ca; spf=pass smtp.mailfrom=x@spammer.example; dmarc=fail header.from=example.com\r\n",
                Err(NoAck::Unauthenticated),
            ),
            (
                "Authentication-Results: mx.hottubman.ca; dmarc=pass header.from=example.com\r\n",
                Ok("pat@example.com"),
            ),
            (
                "Authentication-Results: mx.hottubman.ca; spf=pass smtp.mailfrom=b@mail.example.com; dmarc=none\r\n",
                Ok("pat@example.com"),
            ),
            // A header from a server nobody trusts changes nothing.
            (
                "Authentication-Results: mx.attacker.example; dmarc=fail\r\n",
                Ok("pat@example.com"),
            ),
        ];
        for (headers, want) in cases {
            let raw = format!(
                "From: Pat <pat@example.com>\r\n{headers}Subject: Quote\r\n\r\nA quote for a hot tub please\r\n"
            );
            let view = MessageView::parse(raw.as_bytes(), 65536);
            let d = crate::triage::triage(&view, &p, &Context::default());
            let got = eligible(&view, &d, &p, &[], &trusted).map(String::from);
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{headers:?}");
        }
    }
}
