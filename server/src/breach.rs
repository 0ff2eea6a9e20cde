//! The data-breach register (R24; AVG art. 33/34), kept by the privacy officer: every breach
//! with what happened, when it was discovered, which dossiers and persons, the risk, the
//! measures, and the 72-hour clock to notify the authority, with the decision to inform the
//! residents. A breach is opened from an access-log finding (the row's dossier and persons are
//! taken from the log itself) or from a lost device, which is revoked in the same transaction
//! and then disconnected and refused at every later join.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::audit::{AuditAction, AuditEvent};
use crate::domain::{DomainError, invalid};
use crate::hub::Hub;
use crate::storage::rights::BreachRow;
use regie_core::policy::{Action, Decision, decide};
use regie_core::principal::Principal;
use regie_core::relationship::Relationships;

/// The authority is notified within this long of the discovery (art. 33(1)).
pub const NOTIFY_WITHIN: time::Duration = time::Duration::hours(72);

/// Where a breach was found.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A row of the audit log (e.g. from the unusual-access report).
    AccessLog {
        /// The row's position in the log.
        audit_seq: i64,
    },
    /// A device reported lost: revoked at once.
    LostDevice {
        /// Its user.
        user: String,
        /// Its client storage id.
        device: String,
    },
    /// Anything else.
    Other,
}

/// A new breach.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewBreach {
    /// What happened (1 to 4000 characters).
    pub what: String,
    /// When it was discovered, RFC 3339; now when absent. Not in the future.
    #[serde(default)]
    pub discovered_at: Option<String>,
    /// Where it was found.
    pub source: Source,
    /// Further dossiers concerned (ids).
    #[serde(default)]
    pub dossiers: Vec<String>,
    /// Further persons concerned (ids).
    #[serde(default)]
    pub persons: Vec<String>,
    /// `none`, `risk` or `high`.
    pub risk: String,
    /// The measures taken (up to 4000 characters).
    #[serde(default)]
    pub measures: String,
}

/// A breach as listed: the row and its clock.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BreachView {
    /// The register's row.
    #[serde(flatten)]
    pub breach: BreachRow,
    /// Not yet notified and the 72 hours have passed.
    pub notification_overdue: bool,
    /// Whole hours left to notify, while not notified (negative once overdue).
    pub hours_left: Option<i64>,
}

fn keeps_registers(who: &Principal, at: OffsetDateTime) -> Result<(), DomainError> {
    let nowhere = Relationships::of_team("-".parse().expect("a valid id"));
    match decide(who, Action::KeepRegisters, &nowhere, at) {
        Decision::Allow { .. } => Ok(()),
        Decision::Deny(r) => Err(DomainError::Refused(r.code())),
    }
}

fn view(b: BreachRow, at: OffsetDateTime) -> BreachView {
    let notify_by = OffsetDateTime::parse(&b.notify_by, &Rfc3339).ok();
    let open = b.authority_notified_at.is_none();
    BreachView {
        notification_overdue: open && notify_by.is_some_and(|n| at > n),
        hours_left: notify_by.filter(|_| open).map(|n| (n - at).whole_hours()),
        breach: b,
    }
}

fn ids(list: Vec<String>, what: &'static str) -> Result<Vec<String>, DomainError> {
    if list.len() > 1000 || list.iter().any(|s| s.is_empty() || s.len() > 100) {
        return Err(invalid(
            "invalid_ids",
            format!("{what}: at most 1000 ids of 1 to 100 characters"),
        ));
    }
    Ok(list)
}

/// Records a breach (the privacy officer); a lost device is revoked with it.
pub async fn record(
    hub: &Hub,
    who: &Principal,
    new: NewBreach,
    at: OffsetDateTime,
) -> Result<BreachView, DomainError> {
    keeps_registers(who, at)?;
    let what = new.what.trim().to_owned();
    if what.is_empty() || what.chars().count() > 4000 {
        return Err(invalid("text_required", "what is 1 to 4000 characters"));
    }
    if new.measures.chars().count() > 4000 {
        return Err(invalid(
            "text_too_long",
            "measures is at most 4000 characters",
        ));
    }
    if !matches!(new.risk.as_str(), "none" | "risk" | "high") {
        return Err(invalid("invalid_risk", "risk is none, risk or high"));
    }
    let discovered = match &new.discovered_at {
        None => at,
        Some(s) => OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .filter(|d| *d <= at)
            .ok_or_else(|| {
                invalid(
                    "invalid_time",
                    "discovered_at is an RFC 3339 time, not in the future",
                )
            })?,
    };
    let mut dossiers = ids(new.dossiers, "dossiers")?;
    let mut persons = ids(new.persons, "persons")?;
    let (mut audit_seq, mut device_user, mut device) = (None, None, None);
    let source = match new.source {
        Source::AccessLog { audit_seq: seq } => {
            let row =
                hub.store().audit_row_at(seq).await?.ok_or_else(|| {
                    invalid("no_such_log_row", "no audit-log row at that position")
                })?;
            dossiers.extend(row.dossier);
            persons.extend(
                row.persons
                    .iter()
                    .flat_map(|p| p.split(',').map(str::to_owned)),
            );
            audit_seq = Some(seq);
            "access_log"
        }
        Source::LostDevice { user, device: d } => {
            if user.parse::<regie_core::id::UserId>().is_err() || d.is_empty() || d.len() > 200 {
                return Err(invalid(
                    "invalid_device",
                    "a lost device is a user id and a storage id",
                ));
            }
            device_user = Some(user);
            device = Some(d);
            "lost_device"
        }
        Source::Other => "other",
    };
    dossiers.sort();
    dossiers.dedup();
    persons.sort();
    persons.dedup();
    let fmt = crate::report::utc_rfc3339;
    let row = BreachRow {
        id: format!("br-{}", uuid::Uuid::new_v4().simple()),
        what,
        discovered_at: fmt(discovered),
        recorded_at: fmt(at),
        recorded_by: who.user.to_string(),
        source: source.to_owned(),
        audit_seq,
        device_user,
        device,
        dossiers,
        persons,
        risk: new.risk,
        measures: new.measures.trim().to_owned(),
        notify_by: fmt(discovered + NOTIFY_WITHIN),
        authority_notified_at: None,
        inform_residents: None,
        residents_reason: None,
    };
    let mut ev = AuditEvent::new(
        at,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::Breach,
    );
    ev.detail = Some(format!("{} recorded source={source}", row.id));
    hub.store().record_breach(&row, &[ev]).await?;
    if let (Some(user), Some(d)) = (&row.device_user, &row.device)
        && let Ok(user) = user.parse()
    {
        hub.revoke_device(&user, d);
    }
    Ok(view(row, at))
}

/// Every breach with its clock (the privacy officer; audited).
pub async fn list(
    hub: &Hub,
    who: &Principal,
    at: OffsetDateTime,
) -> Result<Vec<BreachView>, DomainError> {
    keeps_registers(who, at)?;
    let mut ev = AuditEvent::new(
        at,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::AuditRead,
    );
    ev.detail = Some("breach_register".into());
    hub.store().append_audit(&ev).await?;
    Ok(hub
        .store()
        .breaches()
        .await?
        .into_iter()
        .map(|b| view(b, at))
        .collect())
}

/// Records that the authority was notified (now, unless `notified` says when) and whether the
/// residents are informed, with the reason.
pub async fn notify(
    hub: &Hub,
    who: &Principal,
    id: &str,
    authority_notified: bool,
    inform_residents: bool,
    reason: &str,
    at: OffsetDateTime,
) -> Result<BreachView, DomainError> {
    keeps_registers(who, at)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 4000 {
        return Err(invalid("text_required", "reason is 1 to 4000 characters"));
    }
    let notified = authority_notified.then(|| crate::report::utc_rfc3339(at));
    let mut ev = AuditEvent::new(
        at,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::Breach,
    );
    ev.detail = Some(format!(
        "{id} notification authority={authority_notified} residents={inform_residents}"
    ));
    if !hub
        .store()
        .record_breach_notification(id, notified.as_deref(), inform_residents, reason, &[ev])
        .await?
    {
        return Err(DomainError::Missing {
            code: "no_such_breach",
            message: "no breach with that id",
        });
    }
    let row = hub
        .store()
        .breaches()
        .await?
        .into_iter()
        .find(|b| b.id == id)
        .ok_or(DomainError::NotFound)?;
    Ok(view(row, at))
}
