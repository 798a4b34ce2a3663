//! The triage core: classify → escalate → choose recipient, as pure functions of
//! (message view, compiled profile, context snapshot). No I/O, no clock, no randomness:
//! the same inputs always give the same [`Decision`], and the decision carries the full
//! explanation, built while scoring.

pub mod booking;
pub mod classify;
pub mod decision;
pub mod escalate;
pub mod explain;
pub mod recipient;
pub mod sentiment;
pub mod when;

use std::collections::BTreeMap;

pub use crate::matching::Level;
pub use decision::{Decision, Reason};

use crate::mail::MessageView;
use crate::profile::{NotRouted, Profile};
use decision::Signals;

/// A snapshot of history the core may consult (built by the caller, empty offline).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Assignments per member name over the last 7 days (load-balancing tie-break).
    pub load_7d: BTreeMap<String, u32>,
    /// Learned preferences: customer address (lowercased) → providers they were assigned
    /// to at least twice, most assignments first (booking `preference`).
    pub learned: BTreeMap<String, Vec<String>>,
}

impl History {
    /// Assignments of `member` over the last 7 days.
    pub fn load(&self, member: &str) -> u32 {
        self.load_7d.get(member).copied().unwrap_or(0)
    }
}

/// What the core knows beyond the message and the profile.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Addresses of the watched mailbox itself (lowercased); its own mail is not routed.
    pub account_addresses: Vec<String>,
    pub history: History,
    /// Busy calendars of booking providers, by member name (read by the caller).
    pub calendars: BTreeMap<String, booking::BusyCalendar>,
}

/// Only the first this-many bytes of the new text are scored for sentiment (keywords still
/// see all of it): VADER's compound saturates within a few paragraphs, and the mood of a
/// message is set by its opening.
pub const SENTIMENT_SCAN_BYTES: usize = 4 * 1024;

/// Escalation keywords, and the words of a category that escalates on its own (URGENT),
/// count in the subject and the first this-many bytes of the new text: how urgent a
/// message is shows in its opening, and a 30-page news digest that mentions an
/// "emergency" on page eight is not one.
pub const URGENCY_SCAN_BYTES: usize = SENTIMENT_SCAN_BYTES;

/// The subject and new text, folded once for both keyword and name matching.
pub struct Folded<'m> {
    pub subject: &'m str,
    pub body: &'m str,
    pub subject_folded: String,
    pub body_folded: String,
}

impl<'m> Folded<'m> {
    /// Folds the parts of `msg` that triage reads.
    pub fn of(msg: &'m MessageView) -> Self {
        Folded {
            subject: &msg.subject,
            body: &msg.body.new_text,
            subject_folded: crate::matching::matcher::fold_text(&msg.subject),
            body_folded: crate::matching::matcher::fold_text(&msg.body.new_text),
        }
    }
}

/// Header signals: lists, bulk, auto-replies, spam verdicts from upstream, own mail,
/// internal senders.
pub fn signals(msg: &MessageView, profile: &Profile, ctx: &Context) -> Signals {
    let mut s = Signals::default();
    if let Some(id) = &msg.list_id {
        s.list = true;
        s.evidence.push(format!("List-Id: {id}"));
    }
    if msg.list_unsubscribe {
        s.list = true;
        s.evidence.push("List-Unsubscribe present".into());
    }
    if msg.list_post {
        s.list = true;
        s.evidence.push("List-Post present".into());
    }
    if let Some(name) = &msg.list_other {
        s.list = true;
        s.evidence.push(format!("{name} present"));
    }
    if let Some(sender) = &msg.list_sender {
        s.list = true;
        s.evidence
            .push(format!("Sender: {sender} (a list's address)"));
    }
    match msg.precedence.as_deref() {
        Some(p @ ("bulk" | "junk")) => {
            s.bulk = true;
            s.evidence.push(format!("Precedence: {p}"));
        }
        Some("list") => {
            s.list = true;
            s.evidence.push("Precedence: list".into());
        }
        _ => {}
    }
    if let Some(a) = msg
        .auto_submitted
        .as_deref()
        .filter(|a| !a.starts_with("no"))
    {
        s.auto_reply = true;
        s.evidence.push(format!("Auto-Submitted: {a}"));
    }
    if let Some(verdict) = &msg.spam_verdict {
        s.spam = true;
        s.evidence.push(verdict.clone());
    }
    if msg.x_autoreply {
        s.auto_reply = true;
        s.evidence.push("X-Autoreply/X-Autorespond present".into());
    }
    if msg.null_return_path || msg.report {
        s.auto_reply = true;
        s.evidence.push(if msg.report {
            "delivery/disposition report".into()
        } else {
            "Return-Path: <> (automatic mail)".into()
        });
    }
    let subj = msg.subject.to_lowercase();
    if [
        "automatic reply:",
        "auto:",
        "autoreply:",
        "out of office",
        "undeliverable:",
        "delivery status notification",
    ]
    .iter()
    .any(|p| subj.starts_with(p))
    {
        s.auto_reply = true;
        s.evidence.push(format!("subject \"{}\"", msg.subject));
    }
    if let Some(from) = msg.from_address() {
        let local = from.split('@').next().unwrap_or_default();
        if ["mailer-daemon", "postmaster"].contains(&local) {
            s.auto_reply = true;
            s.evidence.push(format!("sender {from}"));
        }
        if ctx.account_addresses.iter().any(|a| a == from) {
            s.own_mail = true;
            s.evidence
                .push(format!("sent by the account itself ({from})"));
        }
        let domain = from.rsplit('@').next().unwrap_or_default();
        s.internal = profile
            .business
            .domains
            .iter()
            .any(|d| domain == d || domain.ends_with(&format!(".{d}")));
    }
    s
}

/// A link whose address is about leaving a mailing (`…/remove.html`, `…/unsubscribe?…`,
/// `mailto:…?subject=Remove`): the mark of mass mail, shortened for the evidence.
fn removal_link(text: &str) -> Option<String> {
    static LINK: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)(?:https?://|mailto:)[^\s<>\x22]*?(?:remove|unsubscri|opt-?out)")
            .ok()
    });
    let m = LINK.as_ref()?.find(text)?;
    Some(m.as_str().chars().take(60).collect())
}

/// The sender rule that applies to this message, if any (exact address beats domain).
fn sender_rule(msg: &MessageView, profile: &Profile) -> Option<(Option<usize>, Option<usize>)> {
    let from = msg.from_address()?;
    let domain = from.rsplit('@').next().unwrap_or_default();
    let exact = profile.senders.iter().find(|r| r.from == from);
    let by_domain = || {
        profile
            .senders
            .iter()
            .filter(|r| !r.from.contains('@'))
            .find(|r| domain == r.from || domain.ends_with(&format!(".{}", r.from)))
    };
    exact.or_else(by_domain).map(|r| (r.category, r.member))
}

/// Triage one message: the heart of mailtriage.
pub fn triage(msg: &MessageView, profile: &Profile, ctx: &Context) -> Decision {
    let text = Folded::of(msg);
    let scan = profile.matcher.scan_folded(
        text.subject,
        text.body,
        &text.subject_folded,
        &text.body_folded,
    );
    let mut signals = signals(msg, profile, ctx);
    if let Some(link) = removal_link(&msg.body.new_text) {
        signals.mass_mail = true;
        signals.evidence.push(format!("a removal link ({link})"));
    } else if let Some(h) = scan.set(profile.escalation.mass_mail_set).first() {
        signals.mass_mail = true;
        signals.evidence.push(format!(
            "mass-mail wording \"{}\"",
            profile
                .matcher
                .label(profile.escalation.mass_mail_set, h.entry)
        ));
    }
    let (forced_category, forced_member) = sender_rule(msg, profile).unwrap_or((None, None));
    let classified = classify::classify(profile, &scan, forced_category);
    let category = profile
        .categories
        .get(classified.category)
        .map(|c| c.name.clone())
        .unwrap_or_default();

    let not_routed = if signals.own_mail {
        Some((Reason::NotRoutedOwnMail, &profile.routing.own_mail))
    } else if signals.spam {
        Some((Reason::NotRoutedSpam, &profile.routing.spam))
    } else if signals.auto_reply {
        Some((Reason::NotRoutedAutoReply, &profile.routing.auto_replies))
    } else if signals.list {
        Some((Reason::NotRoutedList, &profile.routing.lists))
    } else if signals.bulk {
        Some((Reason::NotRoutedBulk, &profile.routing.bulk))
    } else if classified.explanation.rule == "default_category" {
        profile
            .routing
            .unmatched
            .as_ref()
            .map(|action| (Reason::NotRoutedUnmatched, action))
    } else {
        None
    };

    // Mail that is not for a person is never escalated: no need to read its mood.
    let sentiment = if not_routed.is_none() && escalate::uses_sentiment(profile.escalation.mode) {
        let text = msg.body.new_text.as_str();
        let mut end = text.len().min(SENTIMENT_SCAN_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Some(escalate::sentiment_of(
            profile,
            text.get(..end).unwrap_or_default(),
            msg.from_name(),
        ))
    } else {
        None
    };

    if let Some((reason, action)) = not_routed {
        let folder_path = match action {
            NotRouted::Leave => None,
            NotRouted::Folder(p) => Some(p.clone()),
        };
        return Decision {
            category,
            recipient: None,
            folder: folder_path.as_ref().map(|p| p.join("/")),
            reason,
            total_score: 0.0,
            matched_roles: Vec::new(),
            category_scores: classified.scores,
            escalation: None,
            folder_path,
            role: None,
            classification: classified.explanation,
            name_mention: None,
            candidates: Vec::new(),
            runner_up: None,
            margin: None,
            tie_break: None,
            signals,
            sentiment,
            booking: None,
        };
    }

    // Booking requests go to a provider (SPEC §7) unless booking hands back to §5. An
    // urgent booking request (URGENT won, BOOKING also reached its threshold) is one too:
    // it keeps its URGENT category and escalation, and goes to the provider free earliest.
    let booking_reached = |b: &crate::profile::Booking| {
        profile.categories.get(b.category).is_some_and(|c| {
            classified
                .scores
                .get(&c.name)
                .is_some_and(|&s| s > 0.0 && s >= c.threshold)
        })
    };
    let booked = profile
        .booking
        .as_ref()
        .filter(|b| {
            b.category == classified.category || (category == "URGENT" && booking_reached(b))
        })
        .map(|b| {
            booking::choose(
                profile,
                b,
                msg,
                &text,
                &scan,
                &ctx.history,
                &ctx.calendars,
                forced_member,
            )
        });
    let (routed, booking) = match booked {
        Some(booking::Outcome::Provider(member, b)) => {
            let mut r = recipient::Routed::simple(
                Some(member),
                Reason::BookingProvider,
                recipient::role_for(profile, member, classified.category),
            );
            let c = recipient::content_score(
                profile,
                &scan,
                member,
                &profile.members[member].roles,
                &ctx.history,
                &recipient::category_words(profile, &scan, classified.category),
            );
            r.total_score = c.score;
            r.matched_roles = c.roles;
            (r, Some(b))
        }
        other => (
            recipient::choose(
                profile,
                msg,
                &text,
                &scan,
                classified.category,
                forced_member,
                &ctx.history,
            ),
            other.map(|o| match o {
                booking::Outcome::Provider(_, b) | booking::Outcome::Normal(b) => b,
            }),
        ),
    };
    let member_name = routed.member.map(|m| profile.members[m].name.clone());
    let role_id = routed
        .role
        .and_then(|r| profile.roles.get(r))
        .map(|r| r.id.clone());
    let folder_path = match &member_name {
        Some(name) => {
            profile
                .routing
                .folder
                .render(&category, name, role_id.as_deref().unwrap_or_default())
        }
        None => profile.routing.unassigned_folder.render(&category, "", ""),
    };
    let escalation = (!signals.mass_mail)
        .then(|| {
            escalate::escalate(
                profile,
                &scan,
                &escalate::Seen {
                    sentiment: sentiment.as_ref(),
                    category: classified.category,
                    text: &text,
                    sender_name: msg.from_name(),
                },
                member_name.as_deref(),
                &recipient::fallback_names(profile),
            )
        })
        .flatten();
    Decision {
        category,
        recipient: member_name,
        folder: Some(folder_path.join("/")),
        reason: routed.reason,
        total_score: routed.total_score,
        matched_roles: routed.matched_roles,
        category_scores: classified.scores,
        escalation,
        folder_path: Some(folder_path),
        role: role_id,
        classification: classified.explanation,
        name_mention: routed.name_mention,
        candidates: routed.candidates,
        runner_up: routed.runner_up,
        margin: routed.margin,
        tie_break: routed.tie_break,
        signals,
        sentiment,
        booking,
    }
}
