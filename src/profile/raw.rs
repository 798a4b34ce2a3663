//! The profile and rule packs exactly as written in YAML (first stage of loading).
//!
//! These types only describe shape; meaning is checked and compiled in `compile.rs`.
//! Their doc comments become the descriptions in `mailtriage schema`, so they are
//! written for the owner who edits the file.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Keyword or phrase → weight. A trailing `*` matches any word starting with the stem.
pub type KeywordWeights = BTreeMap<String, f64>;

/// One business: who is on the team, what their roles are, and how mail is routed.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// Who the business is.
    pub business: RawBusiness,
    /// The people mail is routed to. With nobody on the team, all mail stays unassigned.
    #[serde(default)]
    pub team: Vec<RawMember>,
    /// Extends or overrides the built-in role library (rules/base/roles.yaml and the industry
    /// packs), or defines new roles.
    #[serde(default)]
    pub roles: BTreeMap<String, RawRole>,
    /// Extends or overrides the built-in categories (rules/base/categories.yaml and the
    /// industry packs), or adds new ones.
    #[serde(default)]
    pub categories: BTreeMap<String, RawCategory>,
    /// Where routed mail goes and what happens to mail that is not for a person.
    #[serde(default)]
    pub routing: RawRouting,
    /// When a message is escalated, at what priority, and what happens then.
    #[serde(default)]
    pub escalation: RawEscalation,
    /// Rules by sender address or domain that force a category or a recipient.
    #[serde(default)]
    pub senders: Vec<RawSenderRule>,
    /// Services, providers and customer preferences for booking requests.
    #[serde(default)]
    pub booking: Option<RawBooking>,
    /// An automatic reply telling customers their message arrived (off unless given here).
    #[serde(default)]
    pub acknowledgement: Option<RawAcknowledgement>,
    /// A daily summary by email to each member (off unless given here).
    #[serde(default)]
    pub digest: Option<RawDigest>,
}

/// The acknowledgement sent to customers (never to lists, bulk mail, auto-replies,
/// no-reply senders or the business itself; at most one per sender per day).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAcknowledgement {
    /// Send acknowledgements (default true once this section exists).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Subject (default "Re: {subject}"); placeholders as in `template`.
    #[serde(default)]
    pub subject: Option<String>,
    /// The text, with placeholders {customer_name}, {customer_email}, {member},
    /// {business}, {subject}, {category}.
    pub template: String,
    /// Only for mail of these categories (default: every category routed to a person).
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// At most this many acknowledgements an hour in all (default 100; 0 for no cap).
    #[serde(default)]
    pub max_per_hour: Option<u32>,
    /// At most this many an hour to addresses at one domain (default 20; 0 for no cap).
    #[serde(default)]
    pub max_per_domain_per_hour: Option<u32>,
}

/// The daily digest per member: counts per category and the day's escalations.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDigest {
    /// Send digests (default true once this section exists).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Time of day in the business's time zone, e.g. "18:00".
    pub time: String,
    /// Members who get one (default: every member with an email address).
    #[serde(default)]
    pub members: Option<Vec<String>>,
}

/// Who the business is.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBusiness {
    /// The business's name, as customers know it.
    pub name: String,
    /// Mail domains of the business (e.g. hottubman.ca); mail from these is internal.
    #[serde(default)]
    pub domains: Vec<String>,
    /// IANA time zone (e.g. America/Toronto) for business hours and relative dates. Default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// The built-in industry pack(s) whose words apply on top of the business-neutral
    /// base: hot_tubs, trades, clinic, it_services, retail (one name or a list).
    #[serde(default)]
    pub industry: Option<OneOrMany>,
}

/// One name, or a list of names.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The names, in order.
    pub fn names(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A person on the team.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    /// Full name, as it appears on their folder (e.g. "Mark Johnson"). Must be unique.
    pub name: String,
    /// Their own address; mail addressed to it (To/Cc) goes to them.
    #[serde(default)]
    pub email: Option<String>,
    /// Further addresses of theirs that count as addressing them.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The roles they hold (at least one), e.g. [sales_manager, operations_manager].
    pub roles: Vec<String>,
    /// Other words that name them ("owner", "boss", "sales rep"). Matched as whole words.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// A responsibility: what it handles and the words that point to it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    /// Human-readable name (e.g. "Sales Manager").
    #[serde(default)]
    pub label: Option<String>,
    /// One line on what this role handles, shown by `mailtriage check`.
    #[serde(default)]
    pub description: Option<String>,
    /// Multiplies every keyword weight of this role (default 1.0).
    #[serde(default)]
    pub weight: Option<f64>,
    /// Categories whose mail goes to the holder of this role (e.g. [SALES]).
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// Keyword or phrase → weight. Set a built-in keyword to 0 to drop it.
    #[serde(default)]
    pub keywords: KeywordWeights,
    /// Regular expression → weight, for things keywords cannot say.
    #[serde(default)]
    pub patterns: KeywordWeights,
}

/// A category: its keywords and the score a message needs to belong to it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCategory {
    /// One line on what belongs here.
    #[serde(default)]
    pub description: Option<String>,
    /// Score a message needs to be put in this category (default 1.0).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Multiplier for keywords found in the subject (default: routing.subject_boost, 1.0).
    #[serde(default)]
    pub subject_boost: Option<f64>,
    /// Keyword or phrase → weight. Set a built-in keyword to 0 to drop it.
    #[serde(default)]
    pub keywords: KeywordWeights,
    /// Regular expression → weight (case-insensitive, linear-time engine).
    #[serde(default)]
    pub patterns: KeywordWeights,
}

/// Where routed mail goes and what happens to mail that is not for a person.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    /// Destination folder template over {category}, {member} and {role}; `/` separates
    /// levels. Default "{category}/{member}".
    #[serde(default)]
    pub folder: Option<String>,
    /// Category for messages below every threshold (default SUPPORT).
    #[serde(default)]
    pub default_category: Option<String>,
    /// Folder for mail nobody can take (default "Unassigned"; may use {category}).
    #[serde(default)]
    pub unassigned_folder: Option<String>,
    /// Tie-break order between categories with equal scores (default URGENT, MANAGER, SALES, SUPPORT, then others).
    #[serde(default)]
    pub category_order: Option<Vec<String>>,
    /// Role that receives MANAGER mail no role keyword matched, and categories nobody handles (default owner).
    #[serde(default)]
    pub fallback_role: Option<String>,
    /// Categories routed by scoring every member's roles on the content (default [MANAGER]).
    #[serde(default)]
    pub content_match_categories: Option<Vec<String>>,
    /// Multiplier for keywords found in the subject, for every category (default 1.0).
    #[serde(default)]
    pub subject_boost: Option<f64>,
    /// How first names match: `capitalized` (default; "Mark" but not "mark this"), `any`, or `off`.
    #[serde(default)]
    pub first_names: Option<RawFirstNames>,
    /// Mailing-list mail (List-Id, List-Unsubscribe): `leave` in the inbox (default) or `{folder: NAME}`.
    #[serde(default)]
    pub lists: Option<RawNotRouted>,
    /// Bulk mail (Precedence: bulk/junk): `leave` (default) or `{folder: NAME}`.
    #[serde(default)]
    pub bulk: Option<RawNotRouted>,
    /// Auto-replies (Auto-Submitted, out-of-office): `leave` (default) or `{folder: NAME}`.
    #[serde(default)]
    pub auto_replies: Option<RawNotRouted>,
    /// Mail sent by the watched account itself: `leave` (default) or `{folder: NAME}`.
    #[serde(default)]
    pub own_mail: Option<RawNotRouted>,
    /// Mail a spam filter upstream marked (X-Spam-Flag: YES, X-Spam-Status: Yes, X-Spam:
    /// yes, rspamd's X-Spam-Action, Microsoft's SCL ≥ 5): `leave` (default) or `{folder: NAME}`.
    #[serde(default)]
    pub spam: Option<RawNotRouted>,
    /// Mail that reaches no category's threshold: `route` (default: it gets
    /// `default_category` and goes to a person), `leave` it in place, or `{folder: NAME}`.
    #[serde(default)]
    pub unmatched: Option<RawUnmatched>,
}

/// What to do with mail that matches no category.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawUnmatched {
    /// `route` or `leave`.
    Word(UnmatchedWord),
    /// `{folder: NAME}`: file it in that folder.
    Folder(RawFolderAction),
}

/// `route` or `leave`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnmatchedWord {
    /// Give it the default category and route it like any other message.
    Route,
    /// Keep it where it is.
    Leave,
}

/// How first names are recognised in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawFirstNames {
    /// Only capitalised ("Mark", not "mark this as urgent").
    Capitalized,
    /// In any case.
    Any,
    /// First names alone never name anyone (full names and aliases still do).
    Off,
}

/// What to do with mail that is not routed to a person.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawNotRouted {
    /// `leave`: keep it where it is.
    Leave(LeaveWord),
    /// `{folder: NAME}`: file it in that folder.
    Folder(RawFolderAction),
}

/// The word `leave`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LeaveWord {
    /// Keep the message where it is.
    Leave,
}

/// File the message in a named folder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFolderAction {
    /// Folder name; `/` separates levels.
    pub folder: String,
}

/// Escalation settings; every key is optional and falls back to the built-in rules.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    /// keyword_only | sentiment_only | sentiment_and_keyword | sentiment_then_keyword | manual_only.
    #[serde(default)]
    pub mode: Option<EscalationMode>,
    /// Sentiment (from -1 to 1) at or below which the new text counts as negative (default -0.5).
    #[serde(default)]
    pub sentiment_threshold: Option<f64>,
    /// Sentiment at or below which the priority is URGENT / HIGH (defaults -0.8 / -0.6).
    #[serde(default)]
    pub sentiment_levels: Option<RawSentimentLevels>,
    /// Keyword or phrase → level (URGENT, HIGH, MEDIUM, or none to drop a built-in one).
    #[serde(default)]
    pub keywords: BTreeMap<String, KeywordLevel>,
    /// Words that make a booking request urgent (replaces the built-in list).
    #[serde(default)]
    pub urgency: Option<Vec<String>>,
    /// Words whose sentiment is ignored because they describe a fault or symptom, not a
    /// mood (added to the built-in list; e.g. [error, leak, pain]).
    #[serde(default)]
    pub sentiment_neutral: Vec<String>,
    /// Category → the level at which mail of that category is escalated whatever its
    /// words (built in: URGENT: URGENT); `none` turns one off. Not in manual_only mode.
    #[serde(default)]
    pub categories: BTreeMap<String, KeywordLevel>,
    /// Words that, capitalised, are people's names rather than escalation words (added to
    /// the built-in list: Sue, Bill, Grant, …).
    #[serde(default)]
    pub names: Vec<String>,
    /// Wording of mass mail ("unsubscribe", "click here"): a message whose new text has one
    /// is never escalated (added to the built-in list).
    #[serde(default)]
    pub mass_mail: Vec<String>,
    /// What happens at each level; a level given here replaces the built-in actions for it.
    #[serde(default)]
    pub actions: Option<RawActions>,
    /// At most one alert per sender per team member within this time (default 1h; `0`
    /// alerts on every escalated message). Flags and folders are not limited.
    #[serde(default)]
    pub alert_once_per: Option<String>,
}

/// How escalation is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EscalationMode {
    /// An escalation keyword fires; its level sets the priority.
    KeywordOnly,
    /// The new text's sentiment is at or below the threshold; priority by strength.
    SentimentOnly,
    /// Both must hold; the priority is the higher of the two.
    SentimentAndKeyword,
    /// Sentiment escalates on its own; otherwise keywords do; keywords can raise the priority.
    SentimentThenKeyword,
    /// Never escalates automatically.
    ManualOnly,
}

/// Sentiment boundaries for the URGENT and HIGH priorities.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct RawSentimentLevels {
    /// At or below this sentiment: URGENT.
    #[serde(default)]
    pub URGENT: Option<f64>,
    /// At or below this sentiment: HIGH (otherwise MEDIUM).
    #[serde(default)]
    pub HIGH: Option<f64>,
}

/// The level an escalation keyword sets, or `none` to drop a built-in keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum KeywordLevel {
    URGENT,
    HIGH,
    MEDIUM,
    #[serde(rename = "none")]
    None,
}

/// Actions per escalation level.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct RawActions {
    /// Actions for URGENT messages.
    #[serde(default)]
    pub URGENT: Option<RawAction>,
    /// Actions for HIGH messages.
    #[serde(default)]
    pub HIGH: Option<RawAction>,
    /// Actions for MEDIUM messages.
    #[serde(default)]
    pub MEDIUM: Option<RawAction>,
}

/// What happens to an escalated message (its content is never modified).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    /// Set the \Flagged flag.
    #[serde(default)]
    pub flag: Option<bool>,
    /// IMAP keywords to set where the server allows them (default [$Escalated, $Priority_<LEVEL>]).
    #[serde(default)]
    pub keywords: Option<Vec<String>>,
    /// Who gets an alert by email: `recipient`, `fallback`, or a member's name.
    #[serde(default)]
    pub notify: Option<Vec<String>>,
    /// Also copy (never move) the message into this folder.
    #[serde(default)]
    pub copy_to: Option<String>,
}

/// A rule by sender: mail from an address or domain gets a category and/or a recipient.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSenderRule {
    /// An address (jane@example.com) or a domain (example.com, also matching its subdomains).
    pub from: String,
    /// Category forced for this sender's mail.
    #[serde(default)]
    pub category: Option<String>,
    /// Team member who receives this sender's mail (unless someone else is addressed by name).
    #[serde(default)]
    pub member: Option<String>,
}

/// Booking: services, the providers who offer them, and customer preferences.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBooking {
    /// What can be booked.
    #[serde(default)]
    pub services: Vec<RawService>,
    /// Team members who provide services.
    #[serde(default)]
    pub providers: Vec<RawProvider>,
    /// Known customers and the providers they prefer.
    #[serde(default)]
    pub contacts: Vec<RawContact>,
    /// Score terms for choosing a provider.
    #[serde(default)]
    pub weights: Option<RawBookingWeights>,
    /// Words that signal a booking request (added to the built-in ones), with weights.
    #[serde(default)]
    pub keywords: KeywordWeights,
    /// How numeric dates such as 12/3 are read: `dmy` (12 March, the default) or `mdy` (3 December).
    #[serde(default)]
    pub date_order: Option<DateOrder>,
    /// How often busy calendars are read again, e.g. 15m (the default).
    #[serde(default)]
    pub calendar_refresh: Option<String>,
}

/// The order of day and month in numeric dates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DateOrder {
    /// Day first: 12/3 is 12 March (most of the world).
    #[default]
    Dmy,
    /// Month first: 12/3 is 3 December (United States, Canada in English).
    Mdy,
}

/// A bookable service.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// Service name (e.g. "Deep Tissue Massage"); unique.
    pub name: String,
    /// Words that identify a request for this service (the name itself always counts).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Length of an appointment, e.g. 60m or 1h30m.
    #[serde(default)]
    pub duration: Option<String>,
    /// Booking link sent in acknowledgements (e.g. a Cal.com event-type URL).
    #[serde(default)]
    pub link: Option<String>,
}

/// A team member who provides services.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// The team member's name, exactly as under `team:`.
    pub member: String,
    /// Service name → primary or secondary.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceRank>,
    /// Weekly working hours in the business's time zone, e.g. {mon: "09:00-17:00"}.
    #[serde(default)]
    pub hours: RawHours,
    /// iCalendar (.ics) file whose events mark busy time; a relative path is read from the profile's directory.
    #[serde(default)]
    pub busy_calendar: Option<String>,
    /// This provider's own booking link (e.g. their Cal.com page); else the service's link is used.
    #[serde(default)]
    pub link: Option<String>,
}

/// How central a service is to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceRank {
    /// Their main service.
    Primary,
    /// They offer it too.
    Secondary,
}

/// Working hours per weekday: "09:00-17:00", several ranges "09:00-12:00, 13:00-17:00", or "closed".
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHours {
    /// Monday.
    #[serde(default)]
    pub mon: Option<String>,
    /// Tuesday.
    #[serde(default)]
    pub tue: Option<String>,
    /// Wednesday.
    #[serde(default)]
    pub wed: Option<String>,
    /// Thursday.
    #[serde(default)]
    pub thu: Option<String>,
    /// Friday.
    #[serde(default)]
    pub fri: Option<String>,
    /// Saturday.
    #[serde(default)]
    pub sat: Option<String>,
    /// Sunday.
    #[serde(default)]
    pub sun: Option<String>,
}

impl RawHours {
    /// The seven days in order, Monday first, with their YAML key.
    pub fn days(&self) -> [(&'static str, &Option<String>); 7] {
        [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ]
    }
}

/// A known customer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawContact {
    /// The customer's address.
    pub email: String,
    /// Providers they prefer, most preferred first.
    #[serde(default)]
    pub prefers: Vec<String>,
}

/// Score terms for choosing a booking provider.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBookingWeights {
    /// For a provider the customer prefers (default 100).
    #[serde(default)]
    pub preference: Option<f64>,
    /// For a provider whose primary service it is (default 50).
    #[serde(default)]
    pub primary: Option<f64>,
    /// For a provider who offers it as a secondary service (default 25).
    #[serde(default)]
    pub secondary: Option<f64>,
    /// For a provider available on the requested day (default 30).
    #[serde(default)]
    pub available: Option<f64>,
}

/// An industry pack (rules/industries/NAME.yaml): the same sections as a profile's, applied
/// over the base pack.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIndustryPack {
    /// One line on the businesses it fits.
    pub description: String,
    #[serde(default)]
    pub categories: BTreeMap<String, RawCategory>,
    #[serde(default)]
    pub roles: BTreeMap<String, RawRole>,
    #[serde(default)]
    pub escalation: RawEscalation,
    /// Words that signal a booking request (added to the BOOKING category's).
    #[serde(default)]
    pub booking: Option<RawPackBooking>,
}

/// The booking words of an industry pack.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackBooking {
    #[serde(default)]
    pub keywords: KeywordWeights,
}

/// rules/base/categories.yaml: category order and the built-in categories.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCategoryPack {
    /// Tie-break order.
    pub order: Vec<String>,
    /// The built-in categories.
    pub categories: BTreeMap<String, RawCategory>,
}
