//! The receipt: a decision rendered for a person — every keyword with its weight, each
//! role's subtotal, the runner-up and the margin, and why escalation did or did not fire.

use std::fmt::Write as _;

use super::decision::{BookingDecision, Candidate, Decision, KeywordHit, Reason, RoleMatch};
use crate::mail::MessageView;

fn num(x: f64) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

fn hit_list(hits: &[KeywordHit], role_weight: Option<f64>) -> String {
    hits.iter()
        .map(|h| {
            let w = match role_weight {
                Some(rw) if (rw - 1.0).abs() > f64::EPSILON => {
                    format!("{}×{}", num(h.weight), num(rw))
                }
                _ => num(h.weight),
            };
            let place = if h.found_in == "body" {
                String::new()
            } else {
                format!(" [{}]", h.found_in)
            };
            format!("\"{}\" {}{}", h.keyword, w, place)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn roles_line(roles: &[RoleMatch]) -> String {
    if roles.is_empty() {
        return "no role keyword matched".to_string();
    }
    roles
        .iter()
        .map(|r| {
            format!(
                "{} {} ({})",
                r.role,
                num(r.score),
                hit_list(&r.hits, Some(r.role_weight))
            )
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

fn reason_text(d: &Decision) -> String {
    let who = d.recipient.as_deref().unwrap_or("nobody");
    match d.reason {
        Reason::NameMention => match &d.name_mention {
            Some(n) => format!("{} was named ({}: \"{}\")", n.member, n.how, n.text),
            None => format!("{who} was named"),
        },
        Reason::SenderRule => format!("a sender rule sends this sender's mail to {who}"),
        Reason::ManagerRoleContentMatch => {
            let role = d
                .matched_roles
                .first()
                .map(|r| r.role.as_str())
                .unwrap_or("?");
            format!("{who} scored highest on the content, through one role ({role})")
        }
        Reason::ManagerMultipleRolesMatched => format!(
            "{who} scored highest on the content, through {} of their roles",
            d.matched_roles.len()
        ),
        Reason::CategoryRole => format!(
            "{who} holds the role that handles {} ({})",
            d.category,
            d.role.as_deref().unwrap_or("?")
        ),
        Reason::Fallback => format!(
            "no role keyword matched; {who} holds the fallback role ({})",
            d.role.as_deref().unwrap_or("?")
        ),
        Reason::Unassigned => "nobody on the team can take this category".to_string(),
        Reason::NotRoutedList => "mailing-list mail is not routed to people".to_string(),
        Reason::NotRoutedBulk => "bulk mail is not routed to people".to_string(),
        Reason::NotRoutedAutoReply => "automatic replies are not routed to people".to_string(),
        Reason::NotRoutedOwnMail => "mail sent by the account itself is not routed".to_string(),
        Reason::NotRoutedSpam => {
            "a spam filter upstream marked it; spam is not routed to people".to_string()
        }
        Reason::NotRoutedUnmatched => {
            "no category reached its threshold, and this profile leaves such mail alone".to_string()
        }
        Reason::BookingProvider => format!(
            "booking request assigned to {who} by {}",
            d.booking.as_ref().map_or("?", |b| b.strategy.as_str())
        ),
    }
}

fn strategy_text(s: &str) -> &'static str {
    match s {
        "explicit_request" => "the customer asked for this provider by name",
        "urgent_availability" => "urgent: the provider free earliest wins over preference",
        "preference" => "highest total; the customer's preference is its largest term",
        "service_match" => "highest total; offering the service is its largest term",
        "availability" => "highest total; availability on the requested day is its largest term",
        "load_balance" => "best totals tied: fewest assignments in 7 days, then profile order",
        "only_candidate" => "the only provider offering it, with no score",
        "no_provider" => "no provider could be chosen; the normal rules decided",
        "staff_named" => "a staff member who is not a provider was named; the normal rules decided",
        "sender_rule" => "a sender rule applies; the normal rules decided",
        _ => "",
    }
}

/// The booking block: service, day, preferences, and the candidate table.
fn booking_section(out: &mut String, b: &BookingDecision) {
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Booking   strategy {} — {}",
        b.strategy,
        strategy_text(&b.strategy)
    );
    let service = match &b.service {
        Some(s) if b.service_keywords.is_empty() => s.clone(),
        Some(s) => format!("{s} (\"{}\")", b.service_keywords.join("\", \"")),
        None => "not recognised (every provider is a candidate)".to_string(),
    };
    let _ = writeln!(out, "  service      {service}");
    match &b.requested_day {
        Some(r) if r.dates.is_empty() => {
            let _ = writeln!(
                out,
                "  day          \"{}\" (unresolved; {})",
                r.text, r.resolved_against
            );
        }
        Some(r) => {
            let _ = writeln!(
                out,
                "  day          \"{}\" → {} ({})",
                r.text,
                r.dates.join(" + "),
                r.resolved_against
            );
        }
        None => {
            let _ = writeln!(out, "  day          none requested");
        }
    }
    if let Some(u) = &b.urgent {
        let _ = writeln!(out, "  urgent       \"{u}\"");
    }
    let prefs = if b.preference_snapshot.is_empty() {
        "none".to_string()
    } else {
        b.preference_snapshot
            .iter()
            .map(|p| format!("{} ({})", p.member, p.source))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "  preferences  {prefs}");
    if let Some(p) = &b.provider {
        let _ = writeln!(
            out,
            "  provider     {p}, booking link {}",
            b.booking_link.as_deref().unwrap_or("(none)")
        );
    }
    if !b.candidates.is_empty() {
        let _ = writeln!(
            out,
            "  {:<22} {:>6} {:>8} {:>6} {:>6} {:>7}  availability",
            "candidate", "pref", "service", "avail", "total", "load7d"
        );
        for c in &b.candidates {
            let chosen = b.provider.as_deref() == Some(c.member.as_str());
            let offers = c.offers.as_deref().unwrap_or("does not offer it");
            let _ = writeln!(
                out,
                "  {:<22} {:>6} {:>8} {:>6} {:>6} {:>7}  {} [{offers}]{}",
                c.member,
                num(c.preference),
                num(c.service_match),
                num(c.availability),
                num(c.total),
                c.load_7d,
                c.availability_detail,
                if chosen { "  ← chosen" } else { "" }
            );
        }
    }
    for n in &b.notes {
        let _ = writeln!(out, "  note: {n}");
    }
}

fn rule_text(rule: &str) -> &'static str {
    match rule {
        "urgent_threshold" => "URGENT reached its threshold, and URGENT always wins",
        "highest_score" => "highest score at or above its threshold",
        "tie_break" => "tied on score; the earlier category in the declared order wins",
        "default_category" => "no category reached its threshold; the default category applies",
        "sender_rule" => "forced by a sender rule",
        _ => "",
    }
}

fn candidate_line(out: &mut String, c: &Candidate, chosen: bool) {
    let mark = if chosen { "  ← chosen" } else { "" };
    let load = if c.load_7d > 0 {
        format!("  (load 7d: {})", c.load_7d)
    } else {
        String::new()
    };
    let own = if c.category_words > 0.0 {
        format!("  ({} on the category's own words)", num(c.category_words))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  {:<22} {:>6}  {}{}{}{}",
        c.member,
        num(c.score),
        roles_line(&c.roles),
        own,
        load,
        mark
    );
}

/// What the receipt shows about the message itself.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub message_id: Option<String>,
    pub from: String,
    pub subject: String,
}

impl Header {
    /// The header lines of a parsed message.
    pub fn of(msg: &MessageView) -> Header {
        let from = match (&msg.from_name(), msg.from_address()) {
            (Some(n), Some(a)) => format!("{n} <{a}>"),
            (None, Some(a)) => a.to_string(),
            _ => "(no sender)".to_string(),
        };
        Header {
            message_id: msg.message_id.clone(),
            from,
            subject: msg.subject.clone(),
        }
    }
}

/// Renders the receipt for a decision about `msg`.
pub fn render(msg: &MessageView, d: &Decision) -> String {
    render_with(&Header::of(msg), d)
}

/// Renders the receipt from header lines (e.g. as stored in the audit log).
pub fn render_with(h: &Header, d: &Decision) -> String {
    let mut out = String::new();
    let id = h
        .message_id
        .as_deref()
        .map_or("(no Message-ID)".into(), |m| format!("<{m}>"));
    let _ = writeln!(out, "Message   {id}");
    let _ = writeln!(out, "From      {}", h.from);
    let subject = if h.subject.is_empty() {
        "(none)"
    } else {
        h.subject.as_str()
    };
    let _ = writeln!(out, "Subject   {subject}");
    let _ = writeln!(out);
    let dest = match &d.folder {
        Some(f) => f.clone(),
        None => "(left where it is)".to_string(),
    };
    let _ = writeln!(
        out,
        "Decision  {} → {}  ⇒  folder {}",
        d.category,
        d.recipient.as_deref().unwrap_or("nobody"),
        dest
    );
    let _ = writeln!(out, "Reason    {} — {}", d.reason, reason_text(d));
    if !d.signals.evidence.is_empty() {
        let _ = writeln!(out, "Signals   {}", d.signals.evidence.join("; "));
    }
    if d.signals.internal {
        let _ = writeln!(
            out,
            "          (internal: the sender is on one of the business's domains)"
        );
    }

    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Category  {} ({})",
        d.category,
        rule_text(&d.classification.rule)
    );
    for c in &d.classification.details {
        let mark = if c.category == d.category {
            "  ← chosen"
        } else {
            ""
        };
        let hits = if c.hits.is_empty() {
            "no keywords".to_string()
        } else {
            hit_list(&c.hits, None)
        };
        let _ = writeln!(
            out,
            "  {:<10} {:>5} / {:<4} {}{}",
            c.category,
            num(c.score),
            num(c.threshold),
            hits,
            mark
        );
    }
    if let Some(r) = &d.classification.runner_up {
        let _ = writeln!(out, "  runner-up: {r}");
    }

    let _ = writeln!(out);
    match d.reason {
        Reason::NameMention | Reason::SenderRule | Reason::Fallback => {
            let _ = writeln!(
                out,
                "Recipient {}",
                d.recipient.as_deref().unwrap_or("nobody")
            );
            if let Some(n) = &d.name_mention {
                let _ = writeln!(
                    out,
                    "  named by {}: \"{}\" (address > greeting > subject > body)",
                    n.how, n.text
                );
                if !n.also_named.is_empty() {
                    let _ = writeln!(
                        out,
                        "  also named, less strongly: {}",
                        n.also_named.join(", ")
                    );
                }
            }
            let _ = writeln!(
                out,
                "  content: {} = {}",
                num(d.total_score),
                roles_line(&d.matched_roles)
            );
        }
        Reason::ManagerRoleContentMatch
        | Reason::ManagerMultipleRolesMatched
        | Reason::CategoryRole => {
            let how = if d.reason == Reason::CategoryRole {
                "holders of the role(s) handling the category; content score (the category's own words first), then 7-day load, then profile order"
            } else {
                "every member scored over all their roles: Σ keyword weight × role weight, the category's own words first"
            };
            let _ = writeln!(out, "Recipient {how}");
            for (i, c) in d.candidates.iter().enumerate() {
                candidate_line(&mut out, c, i == 0);
            }
            if let (Some(r), Some(m)) = (&d.runner_up, d.margin) {
                let _ = writeln!(out, "  margin: {} over {r}", num(m));
            }
            if let Some(t) = &d.tie_break {
                let _ = writeln!(out, "  tie: {t}");
            }
        }
        Reason::BookingProvider => {
            let _ = writeln!(
                out,
                "Recipient {} (booking provider; see Booking below)",
                d.recipient.as_deref().unwrap_or("nobody")
            );
        }
        _ => {
            let _ = writeln!(out, "Recipient nobody");
        }
    }
    if let Some(b) = &d.booking {
        booking_section(&mut out, b);
    }

    let _ = writeln!(out);
    match &d.escalation {
        Some(e) => {
            let _ = writeln!(out, "Escalation {} (mode {}, by {})", e.level, e.mode, e.by);
            if let Some(c) = &e.category {
                let _ = writeln!(out, "  category {c} → escalated at {}", e.level);
            }
            if !e.names_ignored.is_empty() {
                let _ = writeln!(
                    out,
                    "  not counted, found only as a name: {}",
                    e.names_ignored.join(", ")
                );
            }
            if let Some(s) = &d.sentiment {
                if e.by.contains("sentiment") {
                    let _ = writeln!(
                        out,
                        "  sentiment {} → {}",
                        num(s.compound),
                        e.sentiment_level.map_or("-".into(), |l| l.to_string())
                    );
                }
            }
            for k in &e.keywords {
                let _ = writeln!(
                    out,
                    "  keyword \"{}\" → {}{}",
                    k.keyword,
                    k.level,
                    if k.found_in == "body" {
                        String::new()
                    } else {
                        format!(" [{}]", k.found_in)
                    }
                );
            }
            let a = &e.actions;
            let mut acts = Vec::new();
            if a.flag {
                acts.push("flag \\Flagged".to_string());
            }
            if !a.keywords.is_empty() {
                acts.push(format!("keywords {}", a.keywords.join(" ")));
            }
            if let Some(f) = &a.copy_to {
                acts.push(format!("copy to {f}"));
            }
            if !a.notify.is_empty() {
                acts.push(format!("alert {}", a.notify.join(", ")));
            }
            let _ = writeln!(
                out,
                "  actions: {}",
                if acts.is_empty() {
                    "none".to_string()
                } else {
                    acts.join("; ")
                }
            );
        }
        None => {
            let _ = write!(out, "Escalation none");
            if let Some(s) = &d.sentiment {
                let _ = write!(out, " (sentiment {})", num(s.compound));
            }
            let _ = writeln!(out);
        }
    }
    if let Some(s) = &d.sentiment {
        if !s.words.is_empty() {
            let words: Vec<String> = s
                .words
                .iter()
                .take(8)
                .map(|w| format!("{} {}", w.word, num(w.valence)))
                .collect();
            let _ = writeln!(out, "  sentiment words: {}", words.join(", "));
        }
    }
    out
}
