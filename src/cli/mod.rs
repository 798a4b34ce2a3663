//! The `mailtriage` command line (SPEC §11). Each subcommand is one call into its module.
//!
//! Exit codes: 0 success, 1 invalid input (the error is printed), 2 usage errors.

mod auth;
mod check;
mod history;
mod inputs;
mod run;
mod triage_cmd;

/// Writes to stdout; a closed pipe (`mailtriage triage … | head`) ends the command quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, $($arg)*).map_err(anyhow::Error::from)?;
    }};
}
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        write!(out, $($arg)*).map_err(anyhow::Error::from)?;
    }};
}
pub(crate) use {out, outln};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Files every new business email into the folder of the team member who should handle it.
#[derive(Debug, Parser)]
#[command(name = "mailtriage", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of `explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    Text,
    Json,
}

/// Output format of `triage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TriageFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch the configured mailboxes and file new mail.
    ///
    /// Without a configuration (no --config, no $MAILTRIAGE_CONFIG, no ./mailtriage.yaml,
    /// no /etc/mailtriage/mailtriage.yaml) and inside a checkout of the repository, runs
    /// the bundled demo: the hottub profile over var/demo-mail, seeded from sample-mail/.
    Run {
        /// The daemon configuration (mailtriage.yaml).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Process what is there now and exit.
        #[arg(long)]
        once: bool,
        /// Decide and record, never move (shadow mode).
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate profiles or mailtriage.yaml and preview each member's responsibilities.
    Check {
        /// Profile files or a mailtriage.yaml (default: every profiles/*.yaml).
        files: Vec<PathBuf>,
        /// List every keyword in force with its weight and the rule pack it came from.
        #[arg(long)]
        words: bool,
    },
    /// Explain the decision for one message: every keyword, weight and score behind it.
    Explain {
        /// The message (.eml file); or use --message-id for a past decision.
        #[arg(required_unless_present = "message_id")]
        message: Option<PathBuf>,
        /// Reprint the recorded decision about this Message-ID from the audit log.
        #[arg(long, conflicts_with = "message")]
        message_id: Option<String>,
        /// State database to read (default: the configuration's).
        #[arg(long)]
        state: Option<PathBuf>,
        /// The daemon configuration, to find the state database.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The business profile to triage against.
        #[arg(long, short)]
        profile: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = ExplainFormat::Text)]
        format: ExplainFormat,
        /// An address of the watched mailbox (its own mail is not routed); repeatable.
        #[arg(long = "account-address")]
        account_addresses: Vec<String>,
    },
    /// Triage messages offline: .eml files, directories, Maildirs or mbox files.
    Triage {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long, short)]
        profile: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = TriageFormat::Table)]
        format: TriageFormat,
        /// An address of the watched mailbox (its own mail is not routed); repeatable.
        #[arg(long = "account-address")]
        account_addresses: Vec<String>,
    },
    /// OAuth2 consent for an account (Gmail, Microsoft 365, ...): stores its refresh token.
    ///
    /// Prints an address to open in a browser (Google: the browser then comes back to a
    /// listener on 127.0.0.1) or a code to enter on the provider's page (Microsoft), waits,
    /// stores the refresh token under the state directory (0600) and tries a login.
    Auth {
        /// The account's name in mailtriage.yaml.
        account: String,
        /// The daemon configuration (mailtriage.yaml).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// How long to wait for the consent, e.g. 5m.
        #[arg(long, default_value = "5m")]
        timeout: String,
    },
    /// Print the JSON Schema of the profile file (for editors).
    Schema {
        /// Print the schema of mailtriage.yaml instead.
        #[arg(long)]
        config: bool,
    },
    /// Recent decisions from the audit log.
    History {
        /// How far back, e.g. 24h, 7d.
        #[arg(long, default_value = "7d")]
        since: String,
        /// Only decisions for this member.
        #[arg(long)]
        member: Option<String>,
        /// Only mail from this customer address, with the providers they were assigned
        /// to and their learned booking preferences.
        #[arg(long)]
        contact: Option<String>,
        /// Most rows to print (0: all).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = history::Format::Table)]
        format: history::Format,
        /// State database to read (default: the configuration's).
        #[arg(long)]
        state: Option<PathBuf>,
        /// The daemon configuration, to find the state database.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Per-member statistics from the audit log: messages by category, escalations, top reasons.
    Stats {
        /// How far back, e.g. 24h, 7d.
        #[arg(long, default_value = "7d")]
        since: String,
        #[arg(long, value_enum, default_value_t = history::Format::Table)]
        format: history::Format,
        /// State database to read (default: the configuration's).
        #[arg(long)]
        state: Option<PathBuf>,
        /// The daemon configuration, to find the state database.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let broken_pipe = e
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            config,
            once,
            dry_run,
        } => run::run(config.as_deref(), once, dry_run),
        Command::Check { files, words } => check::run(&files, words),
        Command::Auth {
            account,
            config,
            timeout,
        } => auth::run(&account, config.as_deref(), &timeout),
        Command::Explain {
            message,
            message_id,
            state,
            config,
            profile,
            format,
            account_addresses,
        } => match (message, message_id) {
            (_, Some(id)) => history::explain_stored(
                &history::state_path(state.as_deref(), config.as_deref())?,
                &id,
                format == ExplainFormat::Json,
            ),
            (Some(m), None) => {
                triage_cmd::explain(&m, profile.as_deref(), format, &account_addresses)
            }
            (None, None) => anyhow::bail!("give a message file or --message-id"),
        },
        Command::History {
            since,
            member,
            contact,
            limit,
            format,
            state,
            config,
        } => history::history(
            &history::state_path(state.as_deref(), config.as_deref())?,
            &history::Filter {
                since: &since,
                member: member.as_deref(),
                contact: contact.as_deref(),
                limit,
            },
            format,
        ),
        Command::Stats {
            since,
            format,
            state,
            config,
        } => history::stats(
            &history::state_path(state.as_deref(), config.as_deref())?,
            &since,
            format,
        ),
        Command::Triage {
            paths,
            profile,
            format,
            account_addresses,
        } => triage_cmd::triage(&paths, profile.as_deref(), format, &account_addresses),
        Command::Schema { config } => {
            let schema = if config {
                crate::config::Config::json_schema()
            } else {
                crate::profile::Profile::json_schema()
            };
            outln!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
