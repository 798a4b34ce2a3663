//! The supervisor's set of tasks. Every task the daemon runs — a watch per folder, the
//! outbox, the metrics endpoint — is spawned into one set under a name, so none is
//! detached and none ends unheard: an ending comes back with its name (an error with its
//! chain, a panic with its message), and at shutdown each is awaited until a deadline,
//! past which the rest are aborted, named and awaited as well.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use tokio::task::{Id, JoinError, JoinSet};
use tracing::warn;

/// Whom a task works for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owner {
    /// A watch of an account; `generation` tells a restarted account's tasks apart.
    Account { name: String, generation: u64 },
    /// A service that lives as long as the daemon (the outbox, the metrics endpoint).
    Daemon,
}

/// How a task ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// It returned `Ok`.
    Stopped,
    /// It returned an error.
    Failed(anyhow::Error),
    /// It panicked; the panic's message.
    Panicked(String),
    /// It was aborted (at shutdown, past the deadline).
    Aborted,
}

/// A task that ended: its name, whom it worked for and how it ended.
#[derive(Debug)]
pub(super) struct Ended {
    pub name: String,
    pub owner: Owner,
    pub outcome: Outcome,
}

/// The running tasks, by name.
#[derive(Default)]
pub(super) struct Tasks {
    set: JoinSet<Result<()>>,
    names: HashMap<Id, (String, Owner)>,
}

impl Tasks {
    /// Starts `task` under `name`.
    pub fn spawn<F>(&mut self, name: String, owner: Owner, task: F)
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), (name, owner));
    }

    /// No task is running.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The names of the running tasks, sorted.
    pub fn running(&self) -> Vec<String> {
        let mut names: Vec<String> = self.names.values().map(|(n, _)| n.clone()).collect();
        names.sort();
        names
    }

    /// Waits for the next task to end; `None` when none is running.
    pub async fn next(&mut self) -> Option<Ended> {
        let joined = self.set.join_next_with_id().await?;
        Some(self.ended(joined))
    }

    fn ended(&mut self, joined: Result<(Id, Result<()>), JoinError>) -> Ended {
        let (id, outcome) = match joined {
            Ok((id, Ok(()))) => (id, Outcome::Stopped),
            Ok((id, Err(e))) => (id, Outcome::Failed(e)),
            Err(e) if e.is_panic() => (e.id(), Outcome::Panicked(panic_message(e))),
            Err(e) => (e.id(), Outcome::Aborted),
        };
        let (name, owner) = self
            .names
            .remove(&id)
            .unwrap_or_else(|| (format!("task {id}"), Owner::Daemon));
        Ended {
            name,
            owner,
            outcome,
        }
    }

    /// Waits up to `grace` for every task to end (they have been told to stop), handing
    /// each ending to `report`; then aborts the rest, says which, and waits for them too.
    /// Returns the names of the aborted tasks.
    pub async fn shutdown(
        &mut self,
        grace: Duration,
        mut report: impl FnMut(Ended),
    ) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Some(ended)) => report(ended),
                Ok(None) => return Vec::new(),
                Err(_) => break,
            }
        }
        let late = self.running();
        warn!(
            tasks = ?late,
            "{} did not stop within {}s of shutdown; aborting {} (plans are journalled before their moves and unsent mail stays queued, so this loses nothing)",
            late.join(", "),
            grace.as_secs(),
            if late.len() == 1 { "it" } else { "them" }
        );
        self.set.abort_all();
        while let Some(ended) = self.next().await {
            report(ended);
        }
        late
    }
}

/// The message a panic was raised with.
fn panic_message(e: JoinError) -> String {
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a test task does.
    #[derive(Clone, Copy)]
    enum Does {
        Stop,
        Fail,
        Panic,
        /// Ignores the request to stop.
        Hang,
    }

    async fn task(does: Does) -> Result<()> {
        match does {
            Does::Stop => Ok(()),
            Does::Fail => Err(anyhow::anyhow!("the server went away").context("filing a batch")),
            Does::Panic => panic!("index out of bounds"),
            Does::Hang => {
                std::future::pending::<()>().await;
                Ok(())
            }
        }
    }

    /// How an ending reads in the tests: the outcome and its message with the chain.
    fn shown(e: &Ended) -> String {
        match &e.outcome {
            Outcome::Stopped => format!("{}: stopped", e.name),
            Outcome::Failed(err) => format!("{}: failed: {err:#}", e.name),
            Outcome::Panicked(m) => format!("{}: panicked: {m}", e.name),
            Outcome::Aborted => format!("{}: aborted", e.name),
        }
    }

    #[tokio::test]
    async fn every_ending_is_reported_with_its_name_and_only_late_tasks_are_aborted() {
        /// What the case is, the tasks started, the endings reported, the tasks aborted.
        type Case = (&'static str, &'static [(&'static str, Does)], Strs, Strs);
        type Strs = &'static [&'static str];
        let cases: &[Case] = &[
            ("nothing running", &[], &[], &[]),
            (
                "all stop in time",
                &[("a/INBOX", Does::Stop), ("outbox", Does::Stop)],
                &["a/INBOX: stopped", "outbox: stopped"],
                &[],
            ),
            (
                "an error keeps its chain",
                &[("a/INBOX", Does::Fail)],
                &["a/INBOX: failed: filing a batch: the server went away"],
                &[],
            ),
            (
                "a panic is reported, not lost",
                &[("outbox", Does::Panic)],
                &["outbox: panicked: index out of bounds"],
                &[],
            ),
            (
                "late tasks are aborted and named",
                &[
                    ("metrics endpoint", Does::Hang),
                    ("a/INBOX", Does::Stop),
                    ("outbox", Does::Hang),
                ],
                &[
                    "a/INBOX: stopped",
                    "metrics endpoint: aborted",
                    "outbox: aborted",
                ],
                &["metrics endpoint", "outbox"],
            ),
        ];
        for (what, spawned, reports, aborted) in cases {
            let mut tasks = Tasks::default();
            for (name, does) in *spawned {
                tasks.spawn(name.to_string(), Owner::Daemon, task(*does));
            }
            let mut got = Vec::new();
            let late = tasks
                .shutdown(Duration::from_millis(200), |e| got.push(shown(&e)))
                .await;
            got.sort();
            assert_eq!(got, *reports, "{what}");
            assert_eq!(late, *aborted, "{what}");
            assert!(tasks.is_empty() && tasks.running().is_empty(), "{what}");
        }
    }

    #[tokio::test]
    async fn a_task_that_ends_while_running_says_whose_it_was() {
        let mut tasks = Tasks::default();
        let owner = Owner::Account {
            name: "shop".into(),
            generation: 3,
        };
        tasks.spawn("shop/INBOX".into(), owner.clone(), task(Does::Panic));
        assert_eq!(tasks.running(), ["shop/INBOX"]);
        let ended = tasks.next().await.expect("one task ended");
        assert_eq!(ended.owner, owner);
        assert_eq!(shown(&ended), "shop/INBOX: panicked: index out of bounds");
        assert!(tasks.next().await.is_none());
    }
}
