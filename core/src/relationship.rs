//! What ties people to one dossier: its district and team, the assigned workers (R1),
//! break-glass grants with reason and expiry (R2), the persons linked to resident accounts, and
//! the chain partners involved (R5). The server keeps these in storage and hands them to the
//! policy; the policy never looks anything up itself.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{DistrictId, DossierId, OrgId, PersonId, TeamId, UserId};
use crate::principal::Principal;

/// The relationship that makes an access legitimate; recorded in the audit log (NEN 7513).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// An assigned worker (R1).
    Assignment,
    /// A break-glass grant (R2).
    BreakGlass,
    /// A resident linked to a person in the dossier (R4, R7, R8).
    ResidentLink,
    /// A back-office user deciding a maatwerkvoorziening (R6).
    Backoffice,
    /// A member of an involved chain partner (R5).
    PartnerInvolvement,
    /// A team colleague entitled to break the glass (R2).
    TeamMembership,
    /// A functional admin registering a dossier for a team or managing its assignments; never
    /// a reason to see content.
    Administration,
    /// The team's manager: assignments and the team's reports, never content.
    TeamManagement,
    /// The privacy officer (FG): registers, the audit log and named report detail.
    Supervision,
}

/// A time-boxed emergency read access of a team colleague (R2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The colleague who broke the glass.
    pub user: UserId,
    /// The mandatory reason they gave.
    pub reason: String,
    /// When the grant started.
    #[serde(with = "time::serde::rfc3339")]
    pub granted_at: OffsetDateTime,
    /// The first second at which the grant no longer holds.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl Grant {
    /// A grant holds from `granted_at` up to, not including, `expires_at`.
    pub fn holds_at(&self, now: OffsetDateTime) -> bool {
        self.granted_at <= now && now < self.expires_at
    }
}

/// A record entry brought into a case conference (R15): who brought it in, and the recipients
/// (as [`crate::share::Recipient::code`]) they agreed it may be shared onward with. Kept in SQL,
/// never in a document a worker could edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// The record entry's id.
    pub entry: String,
    /// Who brought it in: a user id, or `partner:<org>` for a chain partner.
    pub contributor: String,
    /// The recipients the contributor agreed to.
    pub agreed: Vec<String>,
}

/// Everything the policy needs to know about one dossier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationships {
    /// The dossier.
    pub dossier: DossierId,
    /// Its district (R3).
    pub district: DistrictId,
    /// The team that owns it (R2: colleagues may break the glass).
    pub team: TeamId,
    /// The assigned workers (R1: normally two).
    pub assigned: Vec<UserId>,
    /// Break-glass grants, current and past.
    pub grants: Vec<Grant>,
    /// Persons of this dossier whose resident account is linked to it (R4, R7, R8).
    pub linked_persons: Vec<PersonId>,
    /// Chain partners involved in this dossier (R5).
    pub partners: Vec<OrgId>,
    /// The applicant of each `maatwerk/<n>` (R6, R7): the one resident who reads that extract,
    /// so supporting facts about them never reach another household member.
    #[serde(default)]
    pub applicants: Vec<(u32, PersonId)>,
    /// Closed (R18): kept for reading until its destroy-by date, written by nobody.
    #[serde(default)]
    pub closed: bool,
    /// Persons whose processing is restricted on their request (R21, AVG art. 18): nothing
    /// about them is shared until the restriction is lifted.
    #[serde(default)]
    pub restricted: Vec<PersonId>,
    /// Case-conference contributions (R15): sharing one onward needs its contributor's
    /// agreement for that recipient.
    #[serde(default)]
    pub contributions: Vec<Contribution>,
}

impl Relationships {
    /// A dossier of `team` in `district` with nobody attached yet.
    pub fn new(dossier: DossierId, district: DistrictId, team: TeamId) -> Self {
        Relationships {
            dossier,
            district,
            team,
            assigned: Vec::new(),
            grants: Vec::new(),
            linked_persons: Vec::new(),
            partners: Vec::new(),
            applicants: Vec::new(),
            closed: false,
            restricted: Vec::new(),
            contributions: Vec::new(),
        }
    }

    /// What a question about a whole team (its reports, its access review) is asked against:
    /// the team, no dossier and nobody related to one.
    pub fn of_team(team: TeamId) -> Self {
        Relationships::new(
            DossierId(uuid::Uuid::nil()),
            DistrictId::new("-").expect("a valid id"),
            team,
        )
    }

    /// Whether `user` is one of the assigned workers.
    pub fn is_assigned(&self, user: &UserId) -> bool {
        self.assigned.contains(user)
    }

    /// The grant of `user` that holds at `now`, if any.
    pub fn grant_at(&self, user: &UserId, now: OffsetDateTime) -> Option<&Grant> {
        self.grants
            .iter()
            .find(|g| &g.user == user && g.holds_at(now))
    }

    /// Whether `person` is linked to a resident account in this dossier.
    pub fn is_linked(&self, person: &PersonId) -> bool {
        self.linked_persons.contains(person)
    }

    /// The applicant of `maatwerk/<n>`, if it has one.
    pub fn applicant(&self, n: u32) -> Option<&PersonId> {
        self.applicants
            .iter()
            .find_map(|(m, p)| (*m == n).then_some(p))
    }

    /// Whether `org` is involved as a chain partner.
    pub fn involves(&self, org: &OrgId) -> bool {
        self.partners.contains(org)
    }

    /// The relationships of one dossier as a device can know them: the server tells the device
    /// (`GET /api/v1/me/documents`) the dossier's district and team and the `basis` of its own
    /// access, and this puts `who` in the matching slot — assigned for
    /// [`Basis::Assignment`], a linked person for [`Basis::ResidentLink`], an involved
    /// organisation for [`Basis::PartnerInvolvement`], a grant for [`Basis::BreakGlass`] (open
    /// ended: the server revokes it when it expires); a resident holding `maatwerk/<n>` (`key`)
    /// is its applicant, since the server sends it to nobody else. [`Basis::Backoffice`] and
    /// [`Basis::TeamMembership`] need no slot. [`crate::policy::decide`] then answers for `who`
    /// on the device as the server answers for them, so the client never re-implements a rule.
    pub fn as_seen_by(
        who: &Principal,
        dossier: DossierId,
        district: DistrictId,
        team: TeamId,
        basis: Basis,
        key: &crate::id::DocumentKey,
    ) -> Self {
        let mut rel = Relationships::new(dossier, district, team);
        match basis {
            Basis::Assignment => rel.assigned.push(who.user.clone()),
            Basis::BreakGlass => rel.grants.push(Grant {
                user: who.user.clone(),
                reason: "granted by the server".into(),
                granted_at: OffsetDateTime::UNIX_EPOCH,
                expires_at: time::PrimitiveDateTime::MAX.assume_utc(),
            }),
            Basis::ResidentLink => {
                rel.linked_persons.extend(who.person.iter().cloned());
                if let (crate::id::DocumentKey::Maatwerk(n), Some(p)) = (key, &who.person) {
                    rel.applicants.push((*n, p.clone()));
                }
            }
            Basis::PartnerInvolvement => rel.partners.extend(who.org.iter().cloned()),
            Basis::Backoffice
            | Basis::TeamMembership
            | Basis::Administration
            | Basis::TeamManagement
            | Basis::Supervision => {}
        }
        rel
    }
}

#[cfg(test)]
mod tests;
