//! SQL for signals (R11): a first contact recorded without a name, listed for its team while
//! open, and settled once — closed without a dossier, or turned into a dossier in the same
//! transaction that creates the dossier, so a signal never points at a dossier that was not
//! stored and two workers can never both turn it into one. Its summary and closing reason are
//! sealed (`keys.rs`): with the signal's own key while it is no dossier, with the dossier's key
//! from the moment it becomes one (the signal's key is then destroyed), so the dossier's
//! destruction reaches them too.

use regie_core::document::DATE;
use regie_core::id::{DistrictId, DocumentKey, DossierId, PersonId, SignalId, TeamId, UserId};
use regie_core::relationship::Relationships;
use regie_sync_protocol::DocumentId;
use sqlx::Row;
use time::{Date, OffsetDateTime};

use super::keys::{BlockId, Owner};
use super::{Chain, Result, StorageError, Store, insert_dossier, parse, parse_ts, ts};
use crate::audit::AuditEvent;

/// Where a signal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalStatus {
    /// Recorded, not yet settled.
    Open,
    /// Settled without a dossier.
    Closed,
    /// Turned into a dossier on the resident's agreement.
    Dossier,
}

impl SignalStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalStatus::Open => "open",
            SignalStatus::Closed => "closed",
            SignalStatus::Dossier => "dossier",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "open" => Ok(SignalStatus::Open),
            "closed" => Ok(SignalStatus::Closed),
            "dossier" => Ok(SignalStatus::Dossier),
            other => Err(StorageError::Corrupt {
                table: "signals",
                detail: format!("unknown status {other:?}"),
            }),
        }
    }
}

/// One signal as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRow {
    /// The signal.
    pub id: SignalId,
    /// The district it was registered in.
    pub district: DistrictId,
    /// The team that owns it.
    pub team: TeamId,
    /// The worker who registered it.
    pub registered_by: UserId,
    /// When.
    pub registered_at: OffsetDateTime,
    /// What was signalled, without the person's name.
    pub summary: String,
    /// Who signalled it (`self`, `neighbour`, `school`, …).
    pub source: String,
    /// Where it stands.
    pub status: SignalStatus,
    /// Why it was closed without a dossier.
    pub reason: Option<String>,
    /// When it was settled (closed or turned into a dossier).
    pub closed_at: Option<OffsetDateTime>,
    /// Who settled it.
    pub closed_by: Option<UserId>,
    /// The dossier it became.
    pub dossier: Option<DossierId>,
    /// The day the resident agreed to registration by name.
    pub agreed_on: Option<Date>,
}

/// A signal becoming a dossier: which signal, the resident's agreement, and who registers it.
pub struct Conversion<'a> {
    /// The signal.
    pub signal: SignalId,
    /// The day the resident agreed to registration by name.
    pub agreed_on: Date,
    /// The worker who registers the dossier.
    pub by: &'a UserId,
}

/// A `SELECT` of every column of `signals` followed by `$rest`, as one literal (sqlx takes only
/// static SQL).
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, district, team, registered_by, registered_at, summary, source, status, \
             reason, closed_at, closed_by, dossier, agreed_on FROM signals ",
            $rest
        )
    };
}

fn signal_row(r: &sqlx::any::AnyRow) -> Result<SignalRow> {
    let opt_ts = |column: &str| {
        r.get::<Option<&str>, _>(column)
            .map(|s| parse_ts(s, "signals"))
            .transpose()
    };
    Ok(SignalRow {
        id: parse(r.get::<&str, _>("id"), "signals")?,
        district: parse(r.get::<&str, _>("district"), "signals")?,
        team: parse(r.get::<&str, _>("team"), "signals")?,
        registered_by: parse(r.get::<&str, _>("registered_by"), "signals")?,
        registered_at: parse_ts(r.get::<&str, _>("registered_at"), "signals")?,
        summary: r.get("summary"),
        source: r.get("source"),
        status: SignalStatus::parse(r.get::<&str, _>("status"))?,
        reason: r.get("reason"),
        closed_at: opt_ts("closed_at")?,
        closed_by: r
            .get::<Option<&str>, _>("closed_by")
            .map(|s| parse(s, "signals"))
            .transpose()?,
        dossier: r
            .get::<Option<&str>, _>("dossier")
            .map(|s| parse(s, "signals"))
            .transpose()?,
        agreed_on: r
            .get::<Option<&str>, _>("agreed_on")
            .map(|s| {
                Date::parse(s, DATE).map_err(|e| StorageError::Corrupt {
                    table: "signals",
                    detail: e.to_string(),
                })
            })
            .transpose()?,
    })
}

impl Store {
    /// `row` with its summary and reason opened (I6).
    async fn opened(&self, mut row: SignalRow) -> Result<SignalRow> {
        let id = row.id.to_string();
        let owner = Owner::signal(&id, row.dossier);
        let row_id = || id.clone();
        row.summary = self
            .keys
            .open_text(
                &owner,
                &BlockId::text("signals", "summary", &[&id]),
                &row.summary,
                "signals",
                row_id,
            )
            .await?;
        row.reason = self
            .keys
            .open_opt_text(
                &owner,
                &BlockId::text("signals", "reason", &[&id]),
                row.reason.as_deref(),
                "signals",
                row_id,
            )
            .await?;
        Ok(row)
    }

    /// Records a new open signal (the row's settlement fields are ignored) with its audit row, in
    /// one transaction.
    pub async fn create_signal(&self, signal: &SignalRow, audit: &AuditEvent) -> Result<()> {
        let id = signal.id.to_string();
        let summary = self
            .keys
            .seal_text(
                &Owner::signal(&id, None),
                &BlockId::text("signals", "summary", &[&id]),
                &signal.summary,
            )
            .await?;
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO signals (id, district, team, registered_by, registered_at, summary, \
             source) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(signal.district.as_str())
        .bind(signal.team.as_str())
        .bind(signal.registered_by.as_str())
        .bind(ts(signal.registered_at))
        .bind(&summary)
        .bind(&signal.source)
        .execute(&mut *tx)
        .await?;
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append(&mut tx, audit).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        Ok(())
    }

    /// One signal, whatever its status.
    pub async fn signal(&self, id: SignalId) -> Result<Option<SignalRow>> {
        let row = sqlx::query(select!("WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(self.opened(signal_row(&r)?).await?)),
            None => Ok(None),
        }
    }

    /// The open signals of a team, oldest first.
    pub async fn open_signals(&self, team: &TeamId) -> Result<Vec<SignalRow>> {
        let rows = sqlx::query(select!(
            "WHERE team = $1 AND status = 'open' ORDER BY registered_at, id"
        ))
        .bind(team.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.opened(signal_row(r)?).await?);
        }
        Ok(out)
    }

    /// Closes an open signal without a dossier, with its audit row, in one transaction; false
    /// (and nothing stored) if it was not open (already settled).
    pub async fn close_signal(
        &self,
        id: SignalId,
        reason: &str,
        by: &UserId,
        at: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<bool> {
        let signal = id.to_string();
        let reason = self
            .keys
            .seal_text(
                &Owner::signal(&signal, None),
                &BlockId::text("signals", "reason", &[&signal]),
                reason,
            )
            .await?;
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE signals SET status = 'closed', reason = $1, closed_at = $2, closed_by = $3 \
             WHERE id = $4 AND status = 'open'",
        )
        .bind(&reason)
        .bind(ts(at))
        .bind(by.as_str())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append(&mut tx, audit).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        Ok(true)
    }

    /// Creates the dossier a signal becomes and marks the signal, in one transaction; false
    /// (and nothing stored) if the signal was not open.
    pub async fn create_dossier_from_signal(
        &self,
        conversion: &Conversion<'_>,
        rel: &Relationships,
        persons: &[PersonId],
        documents: &[(DocumentId, DocumentKey, Vec<u8>)],
        at: OffsetDateTime,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        let agreed_on = conversion
            .agreed_on
            .format(DATE)
            .expect("dates always format");
        let key_created = self.keys.create_for(rel.dossier, at).await?;
        let mut tail = self.audit_tail.lock().await;
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE signals SET status = 'dossier', dossier = $1, agreed_on = $2, closed_at = $3, \
             closed_by = $4 WHERE id = $5 AND status = 'open'",
        )
        .bind(rel.dossier.to_string())
        .bind(agreed_on)
        .bind(ts(at))
        .bind(conversion.by.as_str())
        .bind(conversion.signal.to_string())
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        // Its summary now belongs to the dossier: sealed again with the dossier's key.
        let id = conversion.signal.to_string();
        let field = BlockId::text("signals", "summary", &[&id]);
        let stored: String = sqlx::query("SELECT summary FROM signals WHERE id = $1")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?
            .get(0);
        let summary = self
            .keys
            .open_text(
                &Owner::signal(&id, None),
                &field,
                &stored,
                "signals",
                || id.clone(),
            )
            .await?;
        let summary = self
            .keys
            .seal_text(&Owner::Dossier(rel.dossier), &field, &summary)
            .await?;
        sqlx::query("UPDATE signals SET summary = $1 WHERE id = $2")
            .bind(&summary)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        super::feed::dossier_changed(&mut tx, self.dialect, &self.instance, rel.dossier).await?;
        insert_dossier(&mut tx, &self.keys, rel, persons, documents, at).await?;
        let mut chain = Chain::new(self.dialect, &tail);
        chain.append_all(&mut tx, audit).await?;
        chain.append(&mut tx, &key_created).await?;
        tx.commit().await?;
        chain.commit_to(&mut tail);
        drop(tail);
        // No word of it is left under the signal's own key, in this store or a backup's.
        if let Owner::Own(scope) = Owner::signal(&id, None)
            && let Some(key_id) = self.keys.destroy_scope(&scope, &ts(at)).await?
        {
            let ev = super::keys::key_event(
                at,
                rel.dossier,
                &format!("key {key_id} of signal {id} destroyed: sealed again with the dossier's"),
            );
            self.append_audit(&ev).await?;
        }
        Ok(true)
    }
}
