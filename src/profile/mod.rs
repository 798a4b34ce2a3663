//! Profiles: one YAML file per business, loaded in two stages.
//!
//! 1. `yaml` parses the file into a located tree and `shape` checks it against the JSON
//!    Schema of the `raw` types (unknown keys, missing keys, wrong kinds — all at once).
//! 2. `compile` merges the profile over the built-in rule packs (`rules/*.yaml`, compiled
//!    into the binary), checks meaning (unknown roles, duplicate members, bad regexes,
//!    impossible hours, …) and builds the [`Profile`] the triage core reads: keyword
//!    automaton built, regexes compiled, names resolved to indices.
//!
//! A profile that fails either stage is rejected whole with every problem listed; the
//! caller keeps whatever profile it had before.

pub mod booking_compile;
pub mod compile;
pub mod notices_compile;
pub mod raw;
pub mod rules;
pub mod template;

use std::path::Path as FsPath;

use chrono_tz::Tz;

pub use crate::matching::names::FirstNames;
pub use crate::yaml::diag::{ConfigError, Diagnostic, Loc};
pub use raw::{DateOrder, EscalationMode, ServiceRank};

use crate::matching::matcher::{Matcher, SetId};
use crate::matching::names::NameIndex;
use crate::matching::Level;

/// A validated, compiled profile: everything the triage core needs, nothing it must check.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The file it came from (as given to the loader).
    pub file: String,
    /// Content hash of the profile and the built-in rules; recorded with every decision.
    pub version: String,
    pub business: Business,
    pub members: Vec<Member>,
    pub roles: Vec<Role>,
    /// Categories in tie-break order.
    pub categories: Vec<Category>,
    pub routing: Routing,
    pub escalation: EscalationRules,
    pub senders: Vec<SenderRule>,
    pub booking: Option<Booking>,
    /// Acknowledgements to customers, when enabled.
    pub acknowledgement: Option<Acknowledgement>,
    /// The daily digest, when enabled.
    pub digest: Option<Digest>,
    /// Every keyword set (categories, roles, escalation, urgency, booking) in one automaton.
    pub matcher: Matcher,
    /// Names, first names, titles and aliases of the team, for name mentions.
    pub names: NameIndex,
}

/// Who the business is.
#[derive(Debug, Clone)]
pub struct Business {
    pub name: String,
    /// Lowercased mail domains; mail from these is internal.
    pub domains: Vec<String>,
    pub timezone: Tz,
    /// The industry packs in force over the base, in order (`business.industry`).
    pub industries: Vec<String>,
}

/// A team member.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub email: Option<String>,
    /// Every address of theirs, lowercased (email first).
    pub addresses: Vec<String>,
    /// Indices into [`Profile::roles`], in the order written.
    pub roles: Vec<usize>,
    pub aliases: Vec<String>,
}

/// A role with its keywords and the categories it handles.
#[derive(Debug, Clone)]
pub struct Role {
    /// Identifier as written (e.g. `sales_manager`).
    pub id: String,
    pub label: String,
    pub description: String,
    pub weight: f64,
    /// Indices into [`Profile::categories`].
    pub categories: Vec<usize>,
    pub set: SetId,
}

/// A category with its keywords and threshold.
#[derive(Debug, Clone)]
pub struct Category {
    pub name: String,
    pub description: String,
    pub threshold: f64,
    pub subject_boost: f64,
    pub set: SetId,
}

/// One piece of a folder-name component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Category,
    Member,
    Role,
}

/// A folder template: components (separated by `/` in the template), each a list of pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderTemplate {
    pub source: String,
    pub components: Vec<Vec<Piece>>,
}

impl FolderTemplate {
    /// Fills the template. Substituted values never add levels: a `/` inside a member's
    /// name stays inside one component (the mailbox layer makes it safe for the server).
    pub fn render(&self, category: &str, member: &str, role: &str) -> Vec<String> {
        self.components
            .iter()
            .map(|pieces| {
                pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Text(t) => t.as_str(),
                        Piece::Category => category,
                        Piece::Member => member,
                        Piece::Role => role,
                    })
                    .collect::<String>()
            })
            .filter(|c| !c.is_empty())
            .collect()
    }
}

/// What happens to mail that is not routed to a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRouted {
    Leave,
    Folder(Vec<String>),
}

/// Routing settings.
#[derive(Debug, Clone)]
pub struct Routing {
    pub folder: FolderTemplate,
    pub unassigned_folder: FolderTemplate,
    /// Index into categories.
    pub default_category: usize,
    /// Index into roles.
    pub fallback_role: Option<usize>,
    /// Indices into categories.
    pub content_match: Vec<usize>,
    pub first_names: FirstNames,
    pub lists: NotRouted,
    pub bulk: NotRouted,
    /// Mail marked as spam upstream.
    pub spam: NotRouted,
    pub auto_replies: NotRouted,
    pub own_mail: NotRouted,
    /// Mail below every threshold: routed with the default category (None), or not routed.
    pub unmatched: Option<NotRouted>,
}

/// Actions for one escalation level.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Action {
    pub flag: bool,
    pub keywords: Vec<String>,
    /// `recipient`, `fallback`, or a member's name.
    pub notify: Vec<String>,
    pub copy_to: Option<Vec<String>>,
}

/// Escalation settings, merged over rules/base/escalation.yaml and the industry packs.
#[derive(Debug, Clone)]
pub struct EscalationRules {
    pub mode: EscalationMode,
    pub threshold: f64,
    pub urgent_at: f64,
    pub high_at: f64,
    /// Keyword set; `levels[i]` is the level of entry i.
    pub set: SetId,
    pub levels: Vec<Level>,
    /// Urgency words (booking).
    pub urgency_set: SetId,
    /// Lowercased, sorted words whose sentiment valence is ignored.
    pub sentiment_neutral: Vec<String>,
    /// Actions for MEDIUM, HIGH, URGENT (indexed by `Level as usize`).
    pub actions: [Action; 3],
    /// The level mail of each category is escalated at whatever its words (indexed like
    /// `Profile::categories`; built in: URGENT at URGENT).
    pub category_levels: Vec<Option<Level>>,
    /// Lowercased words that, capitalised, are people's names (`escalation.names`).
    pub names: Vec<String>,
    /// Keyword set of mass-mail wording: a message with a hit is never escalated.
    pub mass_mail_set: SetId,
    /// Seconds within which a member is alerted at most once about one sender (0: no limit).
    pub alert_once_per_secs: u64,
}

/// The acknowledgement to customers.
#[derive(Debug, Clone)]
pub struct Acknowledgement {
    pub subject: template::Template,
    pub body: template::Template,
    /// Indices into categories; `None` means every category.
    pub categories: Option<Vec<usize>>,
    /// Hourly caps, in all and per recipient domain (0: none).
    pub max_per_hour: u32,
    pub max_per_domain_per_hour: u32,
}

/// The daily digest.
#[derive(Debug, Clone)]
pub struct Digest {
    /// Minutes after local midnight (business time zone).
    pub at_minute: u16,
    /// Indices into members (each has an email address).
    pub members: Vec<usize>,
}

/// A rule by sender address or domain.
#[derive(Debug, Clone)]
pub struct SenderRule {
    /// Lowercased address or domain.
    pub from: String,
    pub category: Option<usize>,
    pub member: Option<usize>,
}

/// A bookable service.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub set: SetId,
    pub duration_minutes: Option<u32>,
    pub link: Option<String>,
}

/// A provider of services.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Index into members.
    pub member: usize,
    /// (service index, rank).
    pub services: Vec<(usize, ServiceRank)>,
    /// Working ranges per weekday, Monday first, in minutes since midnight.
    pub hours: [Vec<(u16, u16)>; 7],
    /// The busy calendar: a file (resolved against the profile's directory) or a URL.
    pub busy_calendar: Option<CalendarSource>,
    /// The provider's own booking link, if any.
    pub link: Option<String>,
}

/// Where a provider's busy calendar comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CalendarSource {
    /// An .ics file, re-read after `booking.calendar_refresh`.
    File(std::path::PathBuf),
    /// An https:// feed (webcal:// is read as https://), fetched after the same interval.
    Url(String),
}

impl CalendarSource {
    /// For logs and `check`: the file's path, or the feed's scheme and host only —
    /// calendar feed addresses often carry a secret in their path, query or user name.
    pub fn describe(&self) -> String {
        match self {
            CalendarSource::File(p) => p.display().to_string(),
            CalendarSource::Url(u) => {
                let (scheme, rest) = u.split_once("://").unwrap_or(("https", u));
                let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("{scheme}://{host}/…")
            }
        }
    }
}

impl Provider {
    /// How the provider offers service `s`, if at all.
    pub fn rank_of(&self, s: usize) -> Option<ServiceRank> {
        self.services
            .iter()
            .find(|(si, _)| *si == s)
            .map(|(_, r)| *r)
    }
}

/// A known customer's preferences.
#[derive(Debug, Clone)]
pub struct Contact {
    pub email: String,
    /// Indices into members.
    pub prefers: Vec<usize>,
}

/// Score terms for choosing a provider.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BookingWeights {
    pub preference: f64,
    pub primary: f64,
    pub secondary: f64,
    pub available: f64,
}

/// The booking section, compiled.
#[derive(Debug, Clone)]
pub struct Booking {
    pub services: Vec<Service>,
    pub providers: Vec<Provider>,
    pub contacts: Vec<Contact>,
    pub weights: BookingWeights,
    /// Index into categories of BOOKING.
    pub category: usize,
    /// How numeric dates (12/3) are read.
    pub date_order: DateOrder,
    /// Seconds between two reads of a busy calendar.
    pub calendar_refresh_secs: u64,
}

impl Booking {
    /// The provider entry of member `m`, if they provide services.
    pub fn provider_of(&self, m: usize) -> Option<&Provider> {
        self.providers.iter().find(|p| p.member == m)
    }
}

impl Profile {
    /// Loads and compiles a profile file.
    pub fn load(path: &FsPath) -> Result<Profile, ConfigError> {
        let label = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| {
            ConfigError::single(Diagnostic::new(
                &label,
                Loc::default(),
                crate::yaml::Path::root(),
                format!("cannot read the profile: {e}"),
            ))
        })?;
        Self::from_bytes(&label, &bytes)
    }

    /// Compiles a profile from its bytes; `file` names it in error messages.
    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Profile, ConfigError> {
        compile::compile(file, bytes)
    }

    /// The category with this name.
    pub fn category_index(&self, name: &str) -> Option<usize> {
        self.categories.iter().position(|c| c.name == name)
    }

    /// The role with this id.
    pub fn role_index(&self, id: &str) -> Option<usize> {
        self.roles.iter().position(|r| r.id == id)
    }

    /// The member with this name.
    pub fn member_index(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == name)
    }

    /// Members holding role `role`, in profile order.
    pub fn holders(&self, role: usize) -> impl Iterator<Item = usize> + '_ {
        self.members
            .iter()
            .enumerate()
            .filter(move |(_, m)| m.roles.contains(&role))
            .map(|(i, _)| i)
    }

    /// JSON Schema of the profile file, for editors and `mailtriage schema`.
    pub fn json_schema() -> serde_json::Value {
        let schema = schemars::schema_for!(raw::RawProfile);
        serde_json::to_value(&schema).unwrap_or_default()
    }
}

/// The profile in force for an account, replaceable while the daemon runs (hot reload).
/// Triage takes one snapshot per batch, so a reload never changes the rules halfway
/// through a message.
#[derive(Debug)]
pub struct LiveProfile {
    current: std::sync::RwLock<std::sync::Arc<Profile>>,
}

impl LiveProfile {
    /// Starts with `p` in force.
    pub fn new(p: Profile) -> Self {
        LiveProfile {
            current: std::sync::RwLock::new(std::sync::Arc::new(p)),
        }
    }

    /// The profile in force now.
    pub fn snapshot(&self) -> std::sync::Arc<Profile> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts a new profile in force.
    pub fn replace(&self, p: Profile) {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *g = std::sync::Arc::new(p);
    }
}
