//! The decision: the result of triaging one message, with its complete explanation.
//!
//! The JSON form (`explain --format json`, the audit log) starts with the fields of
//! SPEC §5 — category, recipient, folder, reason, total_score, matched_roles,
//! category_scores, escalation — and adds the rest of the breakdown: every keyword that
//! fired with its weight, every candidate's score, the runner-up and margin, the
//! name mention, header signals and the sentiment behind escalation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::matching::Level;

/// Why the recipient was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Addressed to, greeted, or named in the subject or new text.
    NameMention,
    /// A sender rule names the member.
    SenderRule,
    /// Content-matched category; one role of the winner contributed.
    ManagerRoleContentMatch,
    /// Content-matched category; several roles of the winner contributed.
    ManagerMultipleRolesMatched,
    /// The holder of the role that handles the category.
    CategoryRole,
    /// Nobody matched; the fallback role holder takes it.
    Fallback,
    /// Nobody can take it.
    Unassigned,
    /// Mailing-list mail, not routed to a person.
    NotRoutedList,
    /// Bulk mail, not routed to a person.
    NotRoutedBulk,
    /// Automatic reply, not routed to a person.
    NotRoutedAutoReply,
    /// Sent by the watched account itself, not routed to a person.
    NotRoutedOwnMail,
    /// Marked as spam by a filter upstream (X-Spam-Flag, X-Spam-Status, rspamd, Microsoft
    /// SCL), not routed to a person.
    NotRoutedSpam,
    /// Matched no category and the profile leaves such mail alone (`routing.unmatched`).
    NotRoutedUnmatched,
    /// A booking request assigned to a provider (SPEC §7); `booking.strategy` says how.
    BookingProvider,
}

impl Reason {
    /// The reason code as it appears in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NameMention => "name_mention",
            Reason::SenderRule => "sender_rule",
            Reason::ManagerRoleContentMatch => "manager_role_content_match",
            Reason::ManagerMultipleRolesMatched => "manager_multiple_roles_matched",
            Reason::CategoryRole => "category_role",
            Reason::Fallback => "fallback",
            Reason::Unassigned => "unassigned",
            Reason::NotRoutedList => "not_routed_list",
            Reason::NotRoutedBulk => "not_routed_bulk",
            Reason::NotRoutedAutoReply => "not_routed_auto_reply",
            Reason::NotRoutedOwnMail => "not_routed_own_mail",
            Reason::NotRoutedSpam => "not_routed_spam",
            Reason::NotRoutedUnmatched => "not_routed_unmatched",
            Reason::BookingProvider => "booking_provider",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One keyword (or pattern) that fired, with its weight and where it was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeywordHit {
    pub keyword: String,
    /// The keyword's weight as configured.
    pub weight: f64,
    /// What it contributed (weight × subject boost × role weight, as applicable).
    pub points: f64,
    /// "subject", "body" or "subject+body".
    #[serde(rename = "in")]
    pub found_in: String,
}

/// A role's share of a member's content score (SPEC §5 shape, plus the detail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleMatch {
    pub role: String,
    pub score: f64,
    pub keywords: Vec<String>,
    /// The role's weight that multiplied each keyword.
    pub role_weight: f64,
    pub hits: Vec<KeywordHit>,
}

/// One member's content score over all their roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub member: String,
    pub score: f64,
    /// The part of `score` from role keywords that are also words of the message's
    /// category (what made it MANAGER, say): compared before the whole score, so the
    /// matter's own words count for more than incidental trade words.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub category_words: f64,
    /// Assignments over the last 7 days (tie-break), from the history snapshot.
    pub load_7d: u32,
    /// Roles of theirs that handle the category (step 3) or all their roles (step 2).
    pub roles: Vec<RoleMatch>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// A category's score with its threshold and the keywords behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryDetail {
    pub category: String,
    pub score: f64,
    pub threshold: f64,
    pub hits: Vec<KeywordHit>,
}

/// How the category was decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// urgent_threshold | highest_score | tie_break | default_category | sender_rule
    pub rule: String,
    /// Every category with a non-zero score or the winner, in tie-break order.
    pub details: Vec<CategoryDetail>,
    /// The next best category at or above threshold, if any.
    pub runner_up: Option<String>,
}

/// How a member was named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameMention {
    pub member: String,
    /// address | greeting | subject | body
    pub how: String,
    /// The text (or address) that named them.
    pub text: String,
    /// Other members named less strongly, for the receipt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_named: Vec<String>,
}

/// Header signals that keep a message away from people.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    pub list: bool,
    pub bulk: bool,
    pub auto_reply: bool,
    pub own_mail: bool,
    /// A spam filter upstream marked it (see [`Reason::NotRoutedSpam`]).
    #[serde(default)]
    pub spam: bool,
    /// Its new text reads like mass mail (unsubscribe instructions, "click here"): still
    /// routed, never escalated.
    #[serde(default)]
    pub mass_mail: bool,
    /// From one of the business's own domains.
    pub internal: bool,
    /// Human-readable evidence ("List-Id: <x>", "Auto-Submitted: auto-replied").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

/// An escalation keyword that fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationKeyword {
    pub keyword: String,
    pub level: Level,
    #[serde(rename = "in")]
    pub found_in: String,
}

/// A word that moved the sentiment score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentimentWord {
    pub word: String,
    pub valence: f64,
}

/// The new text's sentiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub compound: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<SentimentWord>,
}

/// What escalation will do (planned here, carried out by the daemon).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlannedActions {
    pub flag: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Members to alert, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_to: Option<String>,
}

/// An escalation: its level, why, and what happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub level: Level,
    pub mode: String,
    /// What escalated it: "category", "sentiment", "keyword", joined by `+` when several.
    pub by: String,
    /// The category whose mail is escalated at a level of its own (`escalation.categories`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Escalation keywords that were found only as people's names and did not count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names_ignored: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment_level: Option<Level>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<EscalationKeyword>,
    pub actions: PlannedActions,
}

/// The result of triage for one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub category: String,
    /// The member who should handle it; `None` when unassigned or not routed.
    pub recipient: Option<String>,
    /// Destination folder, levels joined by `/`; `None` means leave it where it is.
    pub folder: Option<String>,
    pub reason: Reason,
    /// The recipient's content score (0 when content played no part).
    pub total_score: f64,
    /// The recipient's roles that matched, with subtotals and keywords.
    pub matched_roles: Vec<RoleMatch>,
    pub category_scores: BTreeMap<String, f64>,
    pub escalation: Option<Escalation>,
    /// Destination folder as exact levels (a `/` inside a name stays inside its level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_path: Option<Vec<String>>,
    /// The role placed in the folder template's {role} and shown in the receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub classification: Classification,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_mention: Option<NameMention>,
    /// Members considered for content-based choice, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
    /// The best candidate who did not win, and by how much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_up: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
    /// A human sentence on how ties were broken, when they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_break: Option<String>,
    pub signals: Signals,
    pub sentiment: Option<Sentiment>,
    /// Booking requests (category BOOKING): service, day, provider and how it was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<BookingDecision>,
}

/// How a booking request was assigned (SPEC §7), with every candidate's score terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingDecision {
    /// explicit_request | urgent_availability | preference | service_match | availability
    /// | load_balance | only_candidate; or, when no provider was chosen, no_provider |
    /// staff_named | sender_rule (the normal recipient rules decided).
    pub strategy: String,
    /// The provider chosen (also the decision's recipient); None when the normal rules decided.
    pub provider: Option<String>,
    /// The service asked for, if one was recognised.
    pub service: Option<String>,
    /// The keywords that identified the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_keywords: Vec<String>,
    /// Where the customer can book: the provider's own link, else the service's.
    pub booking_link: Option<String>,
    /// The day asked for, resolved against the message's Date header.
    pub requested_day: Option<RequestedDay>,
    /// The urgency word that fired, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgent: Option<String>,
    /// Every provider considered, best first, with their score terms.
    pub candidates: Vec<ProviderScore>,
    /// The customer's preferred providers at the time of the decision.
    pub preference_snapshot: Vec<PreferenceEntry>,
    /// Sentences worth a human's attention (explicit request outside the provider's
    /// services, unreadable calendar, no provider for the service, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The requested day and how it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestedDay {
    /// The words that asked for it.
    pub text: String,
    /// The day(s) as YYYY-MM-DD (two for a weekend); empty when it could not be resolved.
    pub dates: Vec<String>,
    /// What relative words were resolved against (the Date header, in the business's zone).
    pub resolved_against: String,
}

/// One provider's score for a booking request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderScore {
    pub member: String,
    /// "primary", "secondary", or None when they do not offer the service.
    pub offers: Option<String>,
    pub preference: f64,
    pub service_match: f64,
    pub availability: f64,
    pub total: f64,
    /// Assignments over the last 7 days (tie-break), from the history snapshot.
    pub load_7d: u32,
    /// Free on the requested day; None when no day was asked for.
    pub available: Option<bool>,
    /// Why they are (not) available: hours, calendar.
    pub availability_detail: String,
}

/// One preferred provider in the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceEntry {
    pub member: String,
    /// "profile" (booking.contacts) or "learned" (two or more past assignments).
    pub source: String,
}

/// Rounds a score for reporting and comparison (4 decimals; removes float noise such as
/// 1.2 + 0.9 = 2.0999999999999996).
pub fn round(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}
