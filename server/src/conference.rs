//! Case conferences (R15): a record entry brought into a conference is recorded with who brought
//! it in, and that contributor's agreement to share it onward is recorded per recipient. Both
//! live in SQL and in `Relationships::contributions`, so `policy::decide` refuses a share of the
//! item to a recipient its contributor did not agree to (`contributor_agreement_missing`);
//! nothing here decides that itself. Standing first (outsiders get `not_found`), then input,
//! then one transaction with its audit row through `Hub::relate` (I8).

use regie_core::id::{DossierId, OrgId, UserId};
use regie_core::policy::{Action, decide};
use regie_core::principal::Principal;
use regie_core::relationship::Contribution;
use time::OffsetDateTime;

use crate::audit::{AuditAction, AuditEvent};
use crate::domain::{DomainError, invalid};
use crate::hub::{Hub, Relating};
use crate::storage::RelationEdit;

/// A contributor as stored: a user id, or `partner:<org>`.
fn contributor(value: &str) -> Result<String, DomainError> {
    let ok = match value.strip_prefix("partner:") {
        Some(org) => org.parse::<OrgId>().is_ok(),
        None => value.parse::<UserId>().is_ok(),
    };
    if ok {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            "invalid_contributor",
            "a contributor is a user id or partner:<org>",
        ))
    }
}

/// A recipient as `Recipient::code` writes it: `backoffice` or `partner:<org>`.
fn recipient(value: &str) -> Result<String, DomainError> {
    let ok = value == "backoffice"
        || value
            .strip_prefix("partner:")
            .is_some_and(|org| org.parse::<OrgId>().is_ok());
    if ok {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            "invalid_recipient",
            "a recipient is backoffice or partner:<org>",
        ))
    }
}

fn event(who: &Principal, at: OffsetDateTime, dossier: DossierId, detail: String) -> AuditEvent {
    let mut ev = AuditEvent::new(
        at,
        who.user.as_str(),
        who.role.as_str(),
        AuditAction::Relate,
    );
    ev.dossier = Some(dossier.to_string());
    ev.detail = Some(detail);
    ev
}

/// Records that record entry `entry` was brought into the case conference of `conference_on`
/// by `by_whom` (an assigned worker records it).
pub async fn contribute(
    hub: &Hub,
    who: &Principal,
    dossier: DossierId,
    entry: &str,
    by_whom: &str,
    conference_on: &str,
    at: OffsetDateTime,
) -> Result<Contribution, DomainError> {
    let found = crate::domain::standing(hub, who, dossier, Action::WorkOn, at).await?;
    let by_whom = contributor(by_whom)?;
    let conference_on = crate::rights::date(conference_on, "conference_on")?.to_string();
    let record = found
        .documents
        .get(&regie_core::id::DocumentKey::Record)
        .copied()
        .ok_or(DomainError::NotFound)?;
    let doc = hub.snapshot(record).await?.ok_or(DomainError::NotFound)?;
    if regie_core::document::rewrite::entry_kind(&doc, entry).is_none() {
        return Err(invalid(
            "no_such_entry",
            "the record has no entry with that id",
        ));
    }
    let made = Contribution {
        entry: entry.to_owned(),
        contributor: by_whom.clone(),
        agreed: Vec::new(),
    };
    let row = RelationEdit::Contribute {
        entry: entry.to_owned(),
        contributor: by_whom,
        conference_on,
        by: who.user.to_string(),
    };
    let ev = event(who, at, dossier, format!("contribution entry={entry}"));
    let stored = made.clone();
    hub.relate::<DomainError>(dossier, at, move |current| {
        if !decide(who, Action::WorkOn, &current.rel, at).is_allowed() {
            return Err(DomainError::NotFound);
        }
        if current
            .rel
            .contributions
            .iter()
            .any(|c| c.entry == stored.entry)
        {
            return Err(DomainError::Conflict {
                code: "contributed_already",
                message: "this entry is recorded as a contribution already".into(),
            });
        }
        let mut next = current.clone();
        std::sync::Arc::make_mut(&mut next.rel)
            .contributions
            .push(stored);
        Ok(Some(Relating::rows(vec![row], next, ev)))
    })
    .await?;
    Ok(made)
}

/// Records the contributor's agreement to share contribution `entry` onward with `to` (the
/// contributor themselves, or an assigned worker recording what they agreed at the table).
pub async fn agree(
    hub: &Hub,
    who: &Principal,
    dossier: DossierId,
    entry: &str,
    to: &str,
    agreed_on: &str,
    at: OffsetDateTime,
) -> Result<Contribution, DomainError> {
    let found = hub
        .current_dossier(dossier)
        .await?
        .ok_or(DomainError::NotFound)?;
    let Some(c) = found
        .rel
        .contributions
        .iter()
        .find(|c| c.entry == entry)
        .cloned()
    else {
        // Whoever could record an agreement here learns the contribution is missing; anyone
        // else gets the answer an unknown dossier gets.
        crate::domain::standing(hub, who, dossier, Action::WorkOn, at).await?;
        return Err(DomainError::Missing {
            code: "no_such_contribution",
            message: "no case-conference contribution is recorded for that entry",
        });
    };
    let action = Action::AgreeOnward {
        contributor: &c.contributor,
    };
    if !decide(who, action, &found.rel, at).is_allowed() {
        return Err(DomainError::NotFound);
    }
    let to = recipient(to)?;
    let agreed_on = crate::rights::date(agreed_on, "agreed_on")?.to_string();
    let row = RelationEdit::AgreeOnward {
        entry: entry.to_owned(),
        recipient: to.clone(),
        agreed_on,
        by: who.user.to_string(),
    };
    let ev = event(
        who,
        at,
        dossier,
        format!("contribution agreed entry={entry} recipient={to}"),
    );
    let mut result = c.clone();
    if !result.agreed.contains(&to) {
        result.agreed.push(to.clone());
    }
    hub.relate::<DomainError>(dossier, at, move |current| {
        let contributor = current
            .rel
            .contributions
            .iter()
            .find(|c| c.entry == entry)
            .map(|c| c.contributor.clone())
            .ok_or(DomainError::NotFound)?;
        let action = Action::AgreeOnward {
            contributor: &contributor,
        };
        if !decide(who, action, &current.rel, at).is_allowed() {
            return Err(DomainError::NotFound);
        }
        let mut next = current.clone();
        if let Some(c) = std::sync::Arc::make_mut(&mut next.rel)
            .contributions
            .iter_mut()
            .find(|c| c.entry == entry)
            && !c.agreed.contains(&to)
        {
            c.agreed.push(to);
        }
        Ok(Some(Relating::rows(vec![row], next, ev)))
    })
    .await?;
    Ok(result)
}
