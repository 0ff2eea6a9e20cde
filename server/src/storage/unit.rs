//! One state change as the store commits it (I8): the rows around a dossier's relationships
//! (assignments, resident links, grants, partner shares, maatwerk applicants, tasks, approvals,
//! closing), a new document, the changes of documents the server edits with it and the audit
//! rows, all in one transaction or none. The caller plans the whole change first, so a refusal
//! anywhere leaves nothing behind; memory follows only once this returns. Its free texts (a
//! grant's reason, a share's purpose, a decision's reasons) are sealed with the dossier's key.

use regie_core::id::{DocumentKey, DossierId, OrgId, PersonId, TeamId, UserId};
use regie_core::relationship::Grant;
use regie_sync_protocol::DocumentId;
use time::OffsetDateTime;

use super::keys::{BlockId, Owner};
use super::share::PartnerShareRow;
use super::{Chain, Result, StorageError, Store, insert_document, ts};
use crate::audit::AuditEvent;

/// A row a state change writes.
#[derive(Debug, Clone)]
pub enum RelationEdit {
    /// Assign a worker (R1); nothing when assigned already.
    Assign(UserId),
    /// End a worker's assignment.
    Unassign(UserId),
    /// Link a person of the dossier to a resident account; nothing when linked already.
    Link(PersonId),
    /// Remove a resident link.
    Unlink(PersonId),
    /// A break-glass grant (R2).
    Grant(Grant),
    /// Record (or renew, after it ended) a chain partner's involvement and its ground (R5, R16).
    Partner(PartnerShareRow),
    /// End a partner's involvement, with the reason.
    EndPartner {
        /// The partner.
        org: OrgId,
        /// Why, e.g. `consent_no_longer_holds`.
        because: &'static str,
    },
    /// The applicant of `maatwerk/<n>` (R6).
    Applicant(u32, PersonId),
    /// An open task, e.g. `inform_resident` after a share without consent (R17).
    Task {
        /// What kind.
        kind: &'static str,
        /// What it is about: ids only, no content.
        about: String,
    },
    /// Mark a task done.
    FinishTask {
        /// The task's row id.
        task: i64,
        /// Who did it.
        by: UserId,
    },
    /// A second worker's approval of a weighing (R17); the first approval stands.
    Approval {
        /// The weighing's id in `record`.
        weighing: String,
        /// Who approved.
        approver: UserId,
        /// Their team.
        team: TeamId,
    },
    /// Restrict the processing of a person's data on request `request` (R21).
    Restrict {
        /// The person.
        person: PersonId,
        /// The granted request.
        request: String,
    },
    /// Lift a person's restriction.
    Lift(PersonId),
    /// Decide a rights request still undecided (with the restriction it grants, R21).
    DecideRights {
        /// The request.
        request: String,
        /// `granted` or `refused`.
        verdict: &'static str,
        /// The reasons.
        reasons: String,
        /// Who decided.
        by: String,
        /// The day, `YYYY-MM-DD`.
        on: String,
    },
    /// Use up the warned break-glass request under this confirmation-token hash (R2): its
    /// grant commits only if the request is still there, so a token grants once.
    ConsumeBreakGlass(String),
    /// A case-conference contribution (R15): record entry `entry`, brought in by
    /// `contributor` at the conference of `conference_on`; nothing when recorded already.
    Contribute {
        /// The record entry.
        entry: String,
        /// A user id, or `partner:<org>`.
        contributor: String,
        /// The day of the conference, `YYYY-MM-DD`.
        conference_on: String,
        /// Who recorded it.
        by: String,
    },
    /// The contributor's agreement to share `entry` onward with `recipient` (R15).
    AgreeOnward {
        /// The record entry.
        entry: String,
        /// The recipient, as `Recipient::code`.
        recipient: String,
        /// The day the agreement was given.
        agreed_on: String,
        /// Who recorded it.
        by: String,
    },
    /// Close the dossier (R18) with its destroy-by date, if it has one (R23).
    Close {
        /// The date the dossier is destroyed.
        destroy_by: Option<time::Date>,
    },
}

impl RelationEdit {
    /// The table whose one row this edit must change, for edits that settle something (a task
    /// done, a request decided, a token used): if a concurrent change settled it first, the
    /// unit fails whole instead of writing its audit row for nothing.
    fn needs_its_row(&self) -> Option<&'static str> {
        match self {
            RelationEdit::ConsumeBreakGlass(_) => Some("break_glass_requests"),
            RelationEdit::FinishTask { .. } => Some("tasks"),
            RelationEdit::DecideRights { .. } => Some("rights_requests"),
            _ => None,
        }
    }
}

/// Everything one state change writes.
pub struct Unit<'a> {
    /// The dossier it concerns.
    pub dossier: DossierId,
    /// When.
    pub at: OffsetDateTime,
    /// Its rows, in order.
    pub edits: &'a [RelationEdit],
    /// A document created with it (e.g. `view/<person>` on linking), with its first snapshot.
    pub new_document: Option<(DocumentId, &'a DocumentKey, &'a [u8])>,
    /// Changes appended to documents, each after the sequence number the caller holds.
    pub changes: Vec<(DocumentId, i64, Vec<&'a [u8]>)>,
    /// Its audit rows, in order.
    pub audit: &'a [AuditEvent],
}

impl Store {
    /// Commits `unit` in one transaction; returns, per entry of `unit.changes`, the document's
    /// last sequence number afterwards.
    pub async fn commit_unit(&self, unit: &Unit<'_>) -> Result<Vec<i64>> {
        let dossier = unit.dossier.to_string();
        // The free texts among the rows, sealed with the dossier's key before the transaction
        // begins (I6; on SQLite a transaction must begin with its write).
        let owner = Owner::Dossier(unit.dossier);
        let mut sealed = Vec::with_capacity(unit.edits.len());
        for edit in unit.edits {
            let text = match edit {
                RelationEdit::Grant(g) => Some((
                    BlockId::text(
                        "grants",
                        "reason",
                        &[&dossier, g.user.as_str(), &ts(g.granted_at)],
                    ),
                    g.reason.as_str(),
                )),
                RelationEdit::Partner(share) => Some((
                    BlockId::text("partners", "purpose", &[&dossier, share.org.as_str()]),
                    share.purpose.as_str(),
                )),
                RelationEdit::DecideRights {
                    request, reasons, ..
                } => Some((
                    BlockId::text("rights_requests", "verdict_reasons", &[request]),
                    reasons.as_str(),
                )),
                _ => None,
            };
            sealed.push(match text {
                Some((field, text)) => self.keys.seal_text(&owner, &field, text).await?,
                None => String::new(),
            });
        }
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        // Other instances load the dossier again (issue 17); first, so the feed's lock is
        // taken before any row this unit writes. A unit of document changes only (a server
        // edit with its audit rows) is announced by its changes' entries.
        if !unit.edits.is_empty() || unit.new_document.is_some() {
            super::feed::dossier_changed(&mut tx, self.dialect, &self.instance, unit.dossier)
                .await?;
        }
        let at = ts(unit.at);
        let list = |v: Vec<&str>| serde_json::to_string(&v).expect("strings serialize");
        for (edit, sealed) in unit.edits.iter().zip(&sealed) {
            let query = match edit {
                RelationEdit::Assign(u) => sqlx::query(
                    "INSERT INTO assignments (dossier, user_id, assigned_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(&dossier)
                .bind(u.as_str())
                .bind(&at),
                RelationEdit::Unassign(u) => {
                    sqlx::query("DELETE FROM assignments WHERE dossier = $1 AND user_id = $2")
                        .bind(&dossier)
                        .bind(u.as_str())
                }
                RelationEdit::Link(p) => sqlx::query(
                    "INSERT INTO resident_links (dossier, person, linked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(&dossier)
                .bind(p.as_str())
                .bind(&at),
                RelationEdit::Unlink(p) => {
                    sqlx::query("DELETE FROM resident_links WHERE dossier = $1 AND person = $2")
                        .bind(&dossier)
                        .bind(p.as_str())
                }
                RelationEdit::Grant(g) => sqlx::query(
                    "INSERT INTO grants (dossier, user_id, reason, granted_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&dossier)
                .bind(g.user.as_str())
                .bind(sealed)
                .bind(ts(g.granted_at))
                .bind(ts(g.expires_at)),
                RelationEdit::Partner(share) => sqlx::query(
                    "INSERT INTO partners (dossier, org, ground, purpose, items, subjects) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (dossier, org) DO UPDATE SET ground = excluded.ground, purpose = excluded.purpose,
                     items = excluded.items, subjects = excluded.subjects, ended_at = NULL, ended_because = NULL",
                )
                .bind(&dossier)
                .bind(share.org.as_str())
                .bind(&share.ground)
                .bind(sealed)
                .bind(list(share.items.iter().map(String::as_str).collect()))
                .bind(list(share.subjects.iter().map(PersonId::as_str).collect())),
                RelationEdit::EndPartner { org, because } => sqlx::query(
                    "UPDATE partners SET ended_at = $1, ended_because = $2 WHERE dossier = $3 AND org = $4 AND ended_at IS NULL",
                )
                .bind(&at)
                .bind(*because)
                .bind(&dossier)
                .bind(org.as_str()),
                RelationEdit::Applicant(n, person) => {
                    sqlx::query("INSERT INTO maatwerk_applicants (dossier, n, person) VALUES ($1, $2, $3)")
                        .bind(&dossier)
                        .bind(i64::from(*n))
                        .bind(person.as_str())
                }
                RelationEdit::Task { kind, about } => sqlx::query(
                    "INSERT INTO tasks (dossier, kind, about, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&dossier)
                .bind(*kind)
                .bind(about)
                .bind(&at),
                RelationEdit::FinishTask { task, by } => sqlx::query(
                    "UPDATE tasks SET done_at = $1, done_by = $2 WHERE id = $3 AND dossier = $4 AND done_at IS NULL",
                )
                .bind(&at)
                .bind(by.as_str())
                .bind(*task)
                .bind(&dossier),
                RelationEdit::Approval {
                    weighing,
                    approver,
                    team,
                } => sqlx::query(
                    "INSERT INTO approvals (dossier, weighing, approver, team, approved_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(&dossier)
                .bind(weighing)
                .bind(approver.as_str())
                .bind(team.as_str())
                .bind(&at),
                RelationEdit::Restrict { person, request } => sqlx::query(
                    "INSERT INTO restrictions (dossier, person, request, since) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (dossier, person) DO UPDATE SET request = excluded.request,
                     since = excluded.since, lifted_at = NULL",
                )
                .bind(&dossier)
                .bind(person.as_str())
                .bind(request)
                .bind(&at),
                RelationEdit::Lift(person) => sqlx::query(
                    "UPDATE restrictions SET lifted_at = $1 WHERE dossier = $2 AND person = $3 AND lifted_at IS NULL",
                )
                .bind(&at)
                .bind(&dossier)
                .bind(person.as_str()),
                RelationEdit::DecideRights {
                    request,
                    verdict,
                    by,
                    on,
                    ..
                } => sqlx::query(
                    "UPDATE rights_requests SET verdict = $1, verdict_reasons = $2, decided_by = $3,
                     decided_on = $4 WHERE id = $5 AND dossier = $6 AND verdict IS NULL",
                )
                .bind(*verdict)
                .bind(sealed)
                .bind(by)
                .bind(on)
                .bind(request)
                .bind(&dossier),
                RelationEdit::Contribute {
                    entry,
                    contributor,
                    conference_on,
                    by,
                } => sqlx::query(
                    "INSERT INTO contributions (dossier, entry, contributor, conference_on, recorded_by, recorded_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(&dossier)
                .bind(entry)
                .bind(contributor)
                .bind(conference_on)
                .bind(by)
                .bind(&at),
                RelationEdit::AgreeOnward {
                    entry,
                    recipient,
                    agreed_on,
                    by,
                } => sqlx::query(
                    "INSERT INTO contribution_agreements (dossier, entry, recipient, agreed_on, recorded_by)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(&dossier)
                .bind(entry)
                .bind(recipient)
                .bind(agreed_on)
                .bind(by),
                RelationEdit::ConsumeBreakGlass(token_hash) => sqlx::query(
                    "DELETE FROM break_glass_requests WHERE token_hash = $1 AND dossier = $2",
                )
                .bind(token_hash)
                .bind(&dossier),
                RelationEdit::Close { destroy_by } => sqlx::query(
                    "UPDATE dossiers SET status = 'closed', closed_at = $1, destroy_by = $2 WHERE id = $3",
                )
                .bind(&at)
                .bind(destroy_by.map(|d| d.format(regie_core::document::DATE).expect("dates format")))
                .bind(&dossier),
            };
            let done = query.execute(&mut *tx).await?;
            if let Some(table) = edit.needs_its_row()
                && done.rows_affected() != 1
            {
                // Another change used or settled that row first: nothing of this unit is kept.
                return Err(StorageError::Stale(table));
            }
        }
        if let Some((id, key, snapshot)) = unit.new_document {
            insert_document(
                &mut tx,
                &self.keys,
                id,
                unit.dossier,
                key,
                snapshot,
                unit.at,
            )
            .await?;
        }
        let mut seqs = Vec::with_capacity(unit.changes.len());
        for (doc, after, changes) in &unit.changes {
            seqs.push(
                super::feed::append_changes(
                    &mut tx,
                    self.dialect,
                    &self.keys,
                    &self.instance,
                    *doc,
                    *after,
                    changes,
                )
                .await?,
            );
        }
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append_all(&mut tx, unit.audit).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        Ok(seqs)
    }
}
