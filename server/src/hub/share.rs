//! Shares that rest on consent hold only while the consent does (R16): whenever `record`'s
//! consents change — through a worker's sync or a withdrawal through the API — every partner
//! share of the dossier resting on consent is asked again with today's date, and a partner whose
//! share no longer holds loses the document at once (`revoked`, R28), its row kept as history.

use std::sync::Arc;

use regie_core::consent::ProposedShare;
use regie_core::document;
use regie_core::id::{DocumentKey, DossierId, OrgId};
use regie_core::principal::Principal;
use regie_core::share;

use super::{Hub, HubError, now};
use crate::audit::{AuditAction, AuditEvent};

impl Hub {
    /// Ends every consent-based partner share of `dossier` that today's consents no longer
    /// carry, on behalf of `by` (whose change or withdrawal caused it). Returns the partners
    /// whose access ended.
    pub async fn reassess_consent_shares(
        &self,
        dossier: DossierId,
        by: &Principal,
    ) -> Result<Vec<OrgId>, HubError> {
        let shares = self.store.consent_shares(dossier).await?;
        let Some(mut entry) = self.dossier(dossier) else {
            return Ok(Vec::new());
        };
        let (Some(record), Some(meta)) = (
            entry.documents.get(&DocumentKey::Record).copied(),
            entry.documents.get(&DocumentKey::Meta).copied(),
        ) else {
            return Ok(Vec::new());
        };
        if shares.is_empty() {
            return Ok(Vec::new());
        }
        let (Some(record), Some(meta)) = (self.snapshot(record).await?, self.snapshot(meta).await?)
        else {
            return Ok(Vec::new());
        };
        let persons = document::persons(&meta);
        let recorded = share::consents(&record);
        let t = now();
        let mut ended = Vec::new();
        for s in shares {
            let proposed = ProposedShare {
                recipient: s.org.clone(),
                purpose: s.purpose.clone(),
                items: s.items.clone(),
                on: t.date(),
            };
            // A consent that can no longer be worked out (a birth date removed) holds no more.
            let holds = share::consent_coverages(&persons, &recorded, &s.subjects, &proposed)
                .is_ok_and(|c| share::consent_holds(&c));
            if holds {
                continue;
            }
            self.store
                .end_partner(dossier, &s.org, "consent_no_longer_holds", t)
                .await?;
            let mut ev =
                AuditEvent::new(t, by.user.as_str(), by.role.as_str(), AuditAction::Relate);
            ev.dossier = Some(dossier.to_string());
            ev.detail = Some(format!(
                "partner:{} share ended: consent no longer holds",
                s.org
            ));
            self.audit(&ev).await?;
            ended.push(s.org);
        }
        if !ended.is_empty() {
            let mut rel = (*entry.rel).clone();
            rel.partners.retain(|o| !ended.contains(o));
            entry.rel = Arc::new(rel);
            self.put_dossier(entry).await;
        }
        Ok(ended)
    }
}
