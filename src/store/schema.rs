//! Numbered migrations of the state database. Append new ones; never edit old ones.

use rusqlite_migration::{Migrations, M};

/// Every migration, in order.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        // 1: decisions (audit log and filing journal) and per-folder sync state.
        M::up(
            "
        CREATE TABLE folder_state (
            account     TEXT    NOT NULL,
            folder      TEXT    NOT NULL,
            uidvalidity INTEGER NOT NULL,
            last_uid    INTEGER NOT NULL,
            baseline    INTEGER NOT NULL DEFAULT 0,
            updated_at  INTEGER NOT NULL,
            PRIMARY KEY (account, folder)
        ) STRICT;

        CREATE TABLE decisions (
            id              INTEGER PRIMARY KEY,
            account         TEXT    NOT NULL,
            folder          TEXT    NOT NULL,
            uidvalidity     INTEGER NOT NULL DEFAULT 0,
            uid             INTEGER NOT NULL DEFAULT 0,
            source_key      TEXT    NOT NULL,
            message_id      TEXT,
            fingerprint     TEXT    NOT NULL,
            subject         TEXT    NOT NULL DEFAULT '',
            sender          TEXT    NOT NULL DEFAULT '',
            category        TEXT    NOT NULL,
            recipient       TEXT,
            reason          TEXT    NOT NULL,
            escalation      TEXT,
            dest_folder     TEXT,
            dest_path       TEXT,
            decision_json   TEXT    NOT NULL,
            profile_version TEXT    NOT NULL,
            dry_run         INTEGER NOT NULL DEFAULT 0,
            status          TEXT    NOT NULL DEFAULT 'planned',
            attempts        INTEGER NOT NULL DEFAULT 0,
            last_error      TEXT,
            decided_at      INTEGER NOT NULL,
            filed_at        INTEGER,
            UNIQUE (account, folder, source_key)
        ) STRICT;

        CREATE INDEX decisions_fingerprint ON decisions (account, fingerprint);
        CREATE INDEX decisions_pending ON decisions (account, folder, status)
            WHERE status IN ('planned', 'failed');
        CREATE INDEX decisions_time ON decisions (decided_at);
        CREATE INDEX decisions_message_id ON decisions (message_id);
        ",
        ),
        // 2: booking — how often each customer was assigned to each provider; two or more
        // assignments make a learned preference.
        M::up(
            "
        CREATE TABLE contact_providers (
            contact     TEXT    NOT NULL,
            member      TEXT    NOT NULL,
            assignments INTEGER NOT NULL DEFAULT 0,
            first_at    INTEGER NOT NULL,
            last_at     INTEGER NOT NULL,
            learned_at  INTEGER,
            PRIMARY KEY (contact, member)
        ) STRICT;
        ",
        ),
        // 3: escalation actions (the journal that makes flagging and copying exactly-once)
        // and the outbox of mail to send (alerts, acknowledgements, digests).
        M::up(
            "
        CREATE TABLE actions (
            decision_id INTEGER NOT NULL REFERENCES decisions (id) ON DELETE CASCADE,
            kind        TEXT    NOT NULL,
            arg         TEXT    NOT NULL,
            status      TEXT    NOT NULL DEFAULT 'planned',
            attempts    INTEGER NOT NULL DEFAULT 0,
            last_error  TEXT,
            updated_at  INTEGER NOT NULL,
            PRIMARY KEY (decision_id, kind)
        ) STRICT;
        CREATE INDEX actions_open ON actions (status) WHERE status IN ('planned', 'started');

        CREATE TABLE outbox (
            id              INTEGER PRIMARY KEY,
            purpose         TEXT    NOT NULL,
            ref_key         TEXT    NOT NULL,
            rcpt            TEXT    NOT NULL,
            account         TEXT    NOT NULL DEFAULT '',
            envelope_from   TEXT    NOT NULL,
            message         BLOB    NOT NULL,
            status          TEXT    NOT NULL DEFAULT 'pending',
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            last_error      TEXT,
            created_at      INTEGER NOT NULL,
            sent_at         INTEGER,
            UNIQUE (purpose, ref_key, rcpt)
        ) STRICT;
        CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
        ",
        ),
        // 4: cheaper indexes for the per-message work. The fingerprint is the normalised
        // Message-ID, so one index serves the duplicate check (fingerprint + account) and
        // `explain --message-id` (fingerprint alone); the 7-day load is read from a
        // covering index instead of visiting every recent row of the table.
        M::up(
            "
        DROP INDEX decisions_message_id;
        DROP INDEX decisions_fingerprint;
        CREATE INDEX decisions_fingerprint ON decisions (fingerprint, account);
        CREATE INDEX decisions_load ON decisions (decided_at, recipient, status)
            WHERE recipient IS NOT NULL;
        ",
        ),
        // 5: what tells messages apart beyond the Message-ID (size and hashes of header
        // and body start: `mailbox::Signature`; '' for decisions recorded before), and
        // where a move put the message (the destination's UIDVALIDITY and UID, from the
        // server's COPYUID or from recovery), so it can be found there again.
        M::up(
            "
        ALTER TABLE decisions ADD COLUMN signature TEXT NOT NULL DEFAULT '';
        ALTER TABLE decisions ADD COLUMN dest_uidvalidity INTEGER;
        ALTER TABLE decisions ADD COLUMN dest_uid INTEGER;
        ",
        ),
        // 6: what the rate limits of outgoing mail count (an alert's recipient and the
        // sender it is about; an acknowledgement's mailbox): one alert per sender per
        // member per `escalation.alert_once_per`, one acknowledgement per mailbox a day.
        M::up(
            "
        ALTER TABLE outbox ADD COLUMN about TEXT NOT NULL DEFAULT '';
        CREATE INDEX outbox_about ON outbox (purpose, about, created_at) WHERE about != '';
        CREATE INDEX outbox_recent ON outbox (purpose, created_at);
        ",
        ),
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
