//! Shares that rest on consent hold only while the consent does (R16): whenever `record`'s
//! consents change — through a worker's sync or a withdrawal through the API — every partner
//! share of the dossier resting on consent is asked again with today's date, and a partner whose
//! share no longer holds loses the document at once (`revoked`, R28), its row kept as history.
//! Consents also lapse by the calendar (`expires_on`), so the server sweeps every consent share
//! once an hour as well.

use std::sync::Arc;

use regie_core::consent::ProposedShare;
use regie_core::document;
use regie_core::id::{DocumentKey, DossierId, OrgId};
use regie_core::share;

use super::{Hub, HubError, Relating, now};
use crate::audit::{AuditAction, AuditEvent};
use crate::storage::RelationEdit;

impl Hub {
    /// Asks every dossier with a consent share again on day `on`: consents that expired end
    /// their shares. Returns how many shares ended.
    pub async fn sweep_consent_shares(&self, on: time::Date) -> Result<usize, HubError> {
        let mut ended = 0;
        for dossier in self.store.dossiers_with_consent_shares().await? {
            ended += self
                .reassess_consent_shares(dossier, ("regie-server", "system"), on)
                .await?
                .len();
        }
        Ok(ended)
    }

    /// Ends every consent-based partner share of `dossier` that the consents no longer carry on
    /// day `on`, on behalf of `by` (user and role whose change or withdrawal caused it, or the
    /// server's sweep). Returns the partners whose access ended.
    pub async fn reassess_consent_shares(
        &self,
        dossier: DossierId,
        by: (&str, &str),
        on: time::Date,
    ) -> Result<Vec<OrgId>, HubError> {
        let shares = self.store.consent_shares(dossier).await?;
        let Some(entry) = self.dossier(dossier).filter(|_| !shares.is_empty()) else {
            return Ok(Vec::new());
        };
        let (Some(record), Some(meta)) = (
            entry.documents.get(&DocumentKey::Record).copied(),
            entry.documents.get(&DocumentKey::Meta).copied(),
        ) else {
            return Ok(Vec::new());
        };
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
                on,
            };
            // A consent that can no longer be worked out (a birth date removed) holds no more.
            let holds = share::consent_coverages(&persons, &recorded, &s.subjects, &proposed)
                .is_ok_and(|c| share::consent_holds(&c));
            if holds {
                continue;
            }
            ended.push(s.org);
        }
        if ended.is_empty() {
            return Ok(ended);
        }
        // One change: every share that ended, with its audit rows; memory follows the commit.
        self.relate::<HubError>(dossier, t, |current| {
            let mut after = current.clone();
            Arc::make_mut(&mut after.rel)
                .partners
                .retain(|o| !ended.contains(o));
            let audit = ended
                .iter()
                .map(|org| {
                    let mut ev = AuditEvent::new(t, by.0, by.1, AuditAction::Relate);
                    ev.dossier = Some(dossier.to_string());
                    ev.detail = Some(format!(
                        "partner:{org} share ended: consent no longer holds"
                    ));
                    ev
                })
                .collect();
            let edits = ended
                .iter()
                .map(|org| RelationEdit::EndPartner {
                    org: org.clone(),
                    because: "consent_no_longer_holds",
                })
                .collect();
            Ok(Some(Relating {
                edits,
                entry: after,
                edit: None,
                new_document: None,
                audit,
            }))
        })
        .await?;
        Ok(ended)
    }
}
