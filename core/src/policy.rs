//! The one policy (I5): [`decide`] answers every authorization question Regie asks — may this
//! principal read, write, sync or export this document, write at this path, break the glass, or
//! register a signal or a dossier — from the principal, the action, the dossier's relationships
//! and the time. It is pure and total; a denial is a [`Decision::Deny`] with a stable reason code,
//! never an error. The server and the client library call it and never decide anything
//! themselves.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{DocumentKey, PersonId};
use crate::path::Path;
use crate::principal::{Principal, Role};
pub use crate::relationship::Basis;
use crate::relationship::Relationships;
use crate::rights::EscalationLevel;

/// What the principal wants to do.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Receive the document's content.
    Read(&'a DocumentKey),
    /// Send changes to the document at all.
    Write(&'a DocumentKey),
    /// Write one operation at `path` inside the document (I2's per-operation check).
    WritePath(&'a DocumentKey, &'a Path),
    /// Sync the document: allowed with the strongest mode the principal has.
    Sync(&'a DocumentKey),
    /// Write an entry of `record` about these persons: refused while the processing of any of
    /// them is restricted on their request (R21), otherwise as writing `record`.
    RecordAbout(&'a [PersonId]),
    /// Export or transfer the dossier's content out of Regie (R19; NEN 7513 "export").
    Export,
    /// Break the glass on the dossier with the given reason (R2).
    BreakGlass {
        /// The mandatory reason; `None` asks whether the principal could break the glass here at
        /// all, before the request's body is read.
        reason: Option<&'a str>,
    },
    /// Share items with a recipient outside the worker's audience (R12, R16, R17).
    Share(crate::share::ShareRequest<'a>),
    /// Approve, as the second professional, a weighing to share without consent (R17).
    ApproveWeighing {
        /// The worker who made the weighing, who cannot approve it themselves; `None` asks
        /// whether the principal may approve this dossier's weighings at all, before any
        /// weighing is looked up.
        decided_by: Option<&'a crate::id::UserId>,
    },
    /// Withdraw a recorded consent (R16), given by these persons.
    WithdrawConsent {
        /// Who gave it; each of them may take it back.
        given_by: &'a [crate::id::PersonId],
    },
    /// Close the dossier (R18) on the triage record of the closing or handover.
    Close {
        /// The triage record, if the worker named one that exists.
        triage: Option<&'a crate::share::Triage>,
    },
    /// Register, list or settle signals, or register a dossier, in the relationships' district
    /// and team (R11).
    Register(Registration),
    /// Assign or unassign a worker (SPEC §1: a functional admin, or the dossier's team manager).
    ManageAssignments,
    /// Link or unlink a person of the dossier to a resident account (an assigned worker of an
    /// open dossier, or a functional admin).
    ManageResidents,
    /// Act on the dossier as one of its assigned workers: see and settle its tasks (R17),
    /// start a share or a maatwerk request (which `Share` then decides).
    WorkOn,
    /// Add an eigen verklaring to an entry about oneself (R20): a resident linked to the dossier.
    AddStatement,
    /// Read a report of the relationships' team at this tier: the break-glass report (R9) and
    /// the overdue rights requests (R27: counts for the manager, detail for the privacy officer).
    ReadReport(ReportTier),
    /// List who can reach the team's dossiers (R10): its manager and the privacy officer.
    ReviewAccess,
    /// Record that the listing was reviewed (R10): the team's manager.
    RecordAccessReview,
    /// Read the registers kept about the system: the audit chain's verification, the
    /// quarantine, the proofs of destruction and the unusual-access report.
    ReadRegisters,
    /// Read the log of who accessed one's own data (R9, NEN 7513 ch. 9).
    ReadOwnAccessLog,
    /// Invoke an AVG right for `subject` (R19–R22): file a request, take the R19 copy, escalate
    /// a refusal. The subject from 12 (R16), a parent with authority for a child under 16, or
    /// an assigned worker on the resident's behalf.
    ExerciseRight(RightsSubject<'a>),
    /// Handle the dossier's rights requests: extend, decide (an assigned worker, also after
    /// closing: rights outlive the help).
    HandleRightsRequest,
    /// Decide an escalated refusal at this level (R22): the dossier's team manager, then the
    /// privacy officer. About the request, never the dossier's content.
    DecideEscalation(crate::rights::EscalationLevel),
    /// Record that `contributor` agreed to an onward share of what they brought into a case
    /// conference (R15): the contributor themselves (the worker, or a user of the chain
    /// partner `partner:<org>`, involved in the dossier), or an assigned worker recording an
    /// agreement given at the table.
    AgreeOnward {
        /// Who brought the item in.
        contributor: &'a str,
    },
    /// Keep the registers the privacy officer keeps (R24 breaches).
    KeepRegisters,
    /// Read the council's accountability report (R27): aggregated counts, no personal data.
    ReadCouncilReport,
}

/// The person a right is invoked for, as `meta` records them on the day.
#[derive(Debug, Clone, Copy)]
pub struct RightsSubject<'a> {
    /// The person.
    pub person: &'a crate::id::PersonId,
    /// Their age in whole years today, if their birth date is recorded.
    pub age: Option<u32>,
    /// Who holds parental authority (gezag) over them.
    pub gezag: &'a [crate::id::PersonId],
}

/// The two tiers of the break-glass report (R9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportTier {
    /// Counts without names, for the team manager.
    Summary,
    /// Named uses, for the privacy officer.
    Detail,
}

/// What [`Action::Register`] registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// A signal: a first contact recorded without a name, and its listing and settling.
    Signal,
    /// A dossier: a household by name (R11 needs the resident's agreement, which the caller
    /// checks and records; the policy only says who may register where).
    Dossier,
}

/// How far an allowed access goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Receive only; incoming changes are ignored (Automerge's read-only sync state).
    Read,
    /// Receive and send changes (each still checked per path).
    Write,
}

/// Why something is denied: a stable code for logs, API errors and `rejected` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// The dossier belongs to another district and the principal is not citywide (R3).
    OtherDistrict,
    /// The role never sees dossier content (manager, privacy officer, admin).
    RoleHasNoDossierAccess,
    /// The principal is not in this document's audience.
    NotInAudience,
    /// The principal's break-glass grant has ended.
    GrantExpired,
    /// The document is written by the server only (`meta`, `view/<person>`).
    ServerWrittenDocument,
    /// The audience may read but not write this document.
    ReadOnlyAccess,
    /// The path is reserved to another role (e.g. a resident writing a worker field in `plan`).
    PathReserved,
    /// Breaking the glass needs a reason.
    ReasonRequired,
    /// Only a worker of the dossier's own team may break the glass (R2).
    NotTeamColleague,
    /// The principal already has access; there is no glass to break.
    AlreadyHasAccess,
    /// A share needs a triage record that names its recipient and items (R12).
    TriageMissing,
    /// The triage record lacks arguments, or neither discussed it with the resident nor says why.
    TriageIncomplete,
    /// Someone whose consent R16 requires has not given it for this recipient, purpose and items.
    ConsentMissing,
    /// Sharing without consent needs a second worker of the team to approve the weighing (R17).
    SecondApprovalMissing,
    /// The ground does not apply to this recipient (an application only reaches the back office).
    GroundNotApplicable,
    /// The dossier's purpose changed after the triage record: re-assess before reuse (R13).
    PurposeChanged,
    /// The dossier is closed: nothing is written or shared any more (R18).
    DossierClosed,
    /// Only a worker of the team registers its signals and dossiers (R11).
    NotTeamMember,
    /// The question concerns another team than the manager's own.
    OtherTeam,
    /// Only the team's manager may do this.
    TeamManagerOnly,
    /// Only the privacy officer may do this (the registers, the named report tier).
    PrivacyOfficerOnly,
    /// Only a team manager or the privacy officer reads reports.
    ManagersAndPrivacyOfficerOnly,
    /// Only a resident has an access log of their own.
    ResidentsOnly,
    /// A child under 12 invokes their rights through a parent with authority (R16).
    TooYoungToActAlone,
    /// From 16 a young person invokes their rights alone; a parent no longer can (R16).
    SubjectActsAlone,
    /// The processing of a person's data is restricted on their request (R21, AVG art. 18).
    ProcessingRestricted,
    /// An item brought into a case conference by someone else is shared onward without its
    /// contributor's recorded agreement for this recipient (R15).
    ContributorAgreementMissing,
}

impl DenyReason {
    /// The stable code, e.g. `path_reserved`.
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::OtherDistrict => "other_district",
            DenyReason::RoleHasNoDossierAccess => "role_has_no_dossier_access",
            DenyReason::NotInAudience => "not_in_audience",
            DenyReason::GrantExpired => "grant_expired",
            DenyReason::ServerWrittenDocument => "server_written_document",
            DenyReason::ReadOnlyAccess => "read_only_access",
            DenyReason::PathReserved => "path_reserved",
            DenyReason::ReasonRequired => "reason_required",
            DenyReason::NotTeamColleague => "not_team_colleague",
            DenyReason::AlreadyHasAccess => "already_has_access",
            DenyReason::TriageMissing => "triage_missing",
            DenyReason::TriageIncomplete => "triage_incomplete",
            DenyReason::ConsentMissing => "consent_missing",
            DenyReason::SecondApprovalMissing => "second_approval_missing",
            DenyReason::GroundNotApplicable => "ground_not_applicable",
            DenyReason::PurposeChanged => "purpose_changed",
            DenyReason::DossierClosed => "dossier_closed",
            DenyReason::NotTeamMember => "not_team_member",
            DenyReason::OtherTeam => "other_team",
            DenyReason::TeamManagerOnly => "team_manager_only",
            DenyReason::PrivacyOfficerOnly => "privacy_officer_only",
            DenyReason::ManagersAndPrivacyOfficerOnly => "managers_and_privacy_officer_only",
            DenyReason::ResidentsOnly => "residents_only",
            DenyReason::TooYoungToActAlone => "too_young_to_act_alone",
            DenyReason::SubjectActsAlone => "subject_acts_alone",
            DenyReason::ProcessingRestricted => "processing_restricted",
            DenyReason::ContributorAgreementMissing => "contributor_agreement_missing",
        }
    }
}

/// The policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, on this basis, this far.
    Allow {
        /// The legitimacy basis for the audit log.
        basis: Basis,
        /// Read-only or read-write.
        mode: Mode,
    },
    /// Denied, for this reason.
    Deny(DenyReason),
}

impl Decision {
    /// Whether the decision allows.
    pub fn is_allowed(self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// Decides `action` by `who` on the dossier described by `rel` at `now`.
pub fn decide(
    who: &Principal,
    action: Action<'_>,
    rel: &Relationships,
    now: OffsetDateTime,
) -> Decision {
    // Oversight and administration: questions about who is related and who looked, answered
    // for roles that never see content.
    if let Some(decision) = oversight(who, action, rel) {
        return decision;
    }
    // A functional admin sets dossiers up for teams (SPEC §1) without ever seeing them.
    let admin_registers =
        who.role == Role::Admin && matches!(action, Action::Register(Registration::Dossier));
    if matches!(who.role, Role::Manager | Role::PrivacyOfficer | Role::Admin) && !admin_registers {
        return Decision::Deny(DenyReason::RoleHasNoDossierAccess);
    }
    // R3 comes before every relationship: a worker moved to another district loses the old
    // caseload even while the assignment row still exists.
    if matches!(who.role, Role::Worker | Role::Backoffice)
        && !who.citywide
        && who.district.as_ref() != Some(&rel.district)
    {
        return Decision::Deny(DenyReason::OtherDistrict);
    }
    match action {
        Action::Read(key) => {
            audience(who, key, rel, now).map_or_else(Decision::Deny, |(basis, _)| Decision::Allow {
                basis,
                mode: Mode::Read,
            })
        }
        Action::Sync(key) => match audience(who, key, rel, now) {
            Ok((basis, mode)) => Decision::Allow { basis, mode },
            Err(reason) => Decision::Deny(reason),
        },
        Action::Write(key) => write(who, key, rel, now, None),
        Action::WritePath(key, path) => write(who, key, rel, now, Some(path)),
        Action::RecordAbout(subjects) => {
            // R21: a restricted person's data is stored, not processed further.
            if subjects.iter().any(|p| rel.restricted.contains(p)) {
                Decision::Deny(DenyReason::ProcessingRestricted)
            } else {
                write(who, &DocumentKey::Record, rel, now, None)
            }
        }
        Action::Export => export(who, rel),
        Action::BreakGlass { reason } => break_glass(who, rel, now, reason),
        Action::Share(request) => share(who, rel, &request),
        Action::ApproveWeighing { decided_by } => {
            if who.role == Role::Worker
                && decided_by != Some(&who.user)
                && who.team.as_ref() == Some(&rel.team)
            {
                Decision::Allow {
                    basis: Basis::TeamMembership,
                    mode: Mode::Read,
                }
            } else {
                Decision::Deny(DenyReason::SecondApprovalMissing)
            }
        }
        Action::WithdrawConsent { given_by } => {
            let giver = who.role == Role::Resident
                && who
                    .person
                    .as_ref()
                    .is_some_and(|p| rel.is_linked(p) && given_by.contains(p));
            if who.role == Role::Worker && rel.is_assigned(&who.user) {
                Decision::Allow {
                    basis: Basis::Assignment,
                    mode: Mode::Write,
                }
            } else if giver {
                // Withdrawing is always possible, also after closing: it only stops sharing.
                Decision::Allow {
                    basis: Basis::ResidentLink,
                    mode: Mode::Write,
                }
            } else {
                Decision::Deny(absent(who, rel))
            }
        }
        Action::Close { triage } => close(who, rel, triage),
        Action::Register(what) => register(who, rel, what),
        Action::ManageResidents => {
            if who.role != Role::Worker || !rel.is_assigned(&who.user) {
                Decision::Deny(absent(who, rel))
            } else if rel.closed {
                Decision::Deny(DenyReason::DossierClosed)
            } else {
                Decision::Allow {
                    basis: Basis::Assignment,
                    mode: Mode::Write,
                }
            }
        }
        Action::WorkOn => {
            if who.role == Role::Worker && rel.is_assigned(&who.user) {
                Decision::Allow {
                    basis: Basis::Assignment,
                    mode: Mode::Write,
                }
            } else {
                Decision::Deny(absent(who, rel))
            }
        }
        Action::AddStatement => match &who.person {
            Some(p) if who.role == Role::Resident && rel.is_linked(p) => Decision::Allow {
                basis: Basis::ResidentLink,
                mode: Mode::Write,
            },
            _ => Decision::Deny(DenyReason::NotInAudience),
        },
        Action::ExerciseRight(subject) => exercise_right(who, rel, subject),
        Action::AgreeOnward { contributor } => {
            let own_partner = who.role == Role::Partner
                && who.org.as_ref().is_some_and(|o| {
                    rel.partners.contains(o) && format!("partner:{o}") == contributor
                });
            if who.role == Role::Worker && rel.is_assigned(&who.user) {
                Decision::Allow {
                    basis: Basis::Assignment,
                    mode: Mode::Write,
                }
            } else if own_partner {
                Decision::Allow {
                    basis: Basis::PartnerInvolvement,
                    mode: Mode::Write,
                }
            } else {
                Decision::Deny(absent(who, rel))
            }
        }
        Action::HandleRightsRequest => {
            if who.role == Role::Worker && rel.is_assigned(&who.user) {
                Decision::Allow {
                    basis: Basis::Assignment,
                    mode: Mode::Write,
                }
            } else {
                Decision::Deny(absent(who, rel))
            }
        }
        // Answered by `oversight` above for every role.
        Action::ManageAssignments
        | Action::ReadReport(_)
        | Action::ReviewAccess
        | Action::RecordAccessReview
        | Action::ReadRegisters
        | Action::ReadOwnAccessLog
        | Action::DecideEscalation(_)
        | Action::KeepRegisters
        | Action::ReadCouncilReport => Decision::Deny(DenyReason::NotInAudience),
    }
}

/// Oversight and administration questions (SPEC §1: managers see their team's reports, the
/// privacy officer the registers and named detail, functional admins manage assignments);
/// `None` for every other action, which [`decide`] answers on content access.
fn oversight(who: &Principal, action: Action<'_>, rel: &Relationships) -> Option<Decision> {
    let allow = |basis| Decision::Allow {
        basis,
        mode: Mode::Read,
    };
    let own_team = who.team.as_ref() == Some(&rel.team);
    Some(match (action, who.role) {
        (Action::ManageAssignments, Role::Admin) => allow(Basis::Administration),
        (Action::ManageAssignments, Role::Manager) if own_team => allow(Basis::TeamManagement),
        (Action::ManageAssignments, _) => Decision::Deny(DenyReason::NotInAudience),
        (Action::ManageResidents, Role::Admin) => allow(Basis::Administration),
        (Action::ReadReport(_), Role::Manager) if !own_team => {
            Decision::Deny(DenyReason::OtherTeam)
        }
        (Action::ReadReport(ReportTier::Summary), Role::Manager) => allow(Basis::TeamManagement),
        (Action::ReadReport(ReportTier::Detail), Role::Manager) => {
            Decision::Deny(DenyReason::PrivacyOfficerOnly)
        }
        (Action::ReadReport(_), Role::PrivacyOfficer) => allow(Basis::Supervision),
        (Action::ReadReport(_), _) => Decision::Deny(DenyReason::ManagersAndPrivacyOfficerOnly),
        (Action::ReviewAccess, Role::Manager) if own_team => allow(Basis::TeamManagement),
        (Action::ReviewAccess, Role::Manager) => Decision::Deny(DenyReason::OtherTeam),
        (Action::ReviewAccess, Role::PrivacyOfficer) => allow(Basis::Supervision),
        (Action::ReviewAccess, _) => Decision::Deny(DenyReason::TeamManagerOnly),
        (Action::RecordAccessReview, Role::Manager) if own_team => allow(Basis::TeamManagement),
        (Action::RecordAccessReview, Role::Manager) => Decision::Deny(DenyReason::OtherTeam),
        (Action::RecordAccessReview, _) => Decision::Deny(DenyReason::TeamManagerOnly),
        (Action::ReadRegisters, Role::PrivacyOfficer) => allow(Basis::Supervision),
        (Action::ReadRegisters, _) => Decision::Deny(DenyReason::PrivacyOfficerOnly),
        (Action::ReadOwnAccessLog, Role::Resident) if who.person.is_some() => {
            allow(Basis::ResidentLink)
        }
        (Action::ReadOwnAccessLog, _) => Decision::Deny(DenyReason::ResidentsOnly),
        (Action::DecideEscalation(EscalationLevel::Manager), Role::Manager) if own_team => {
            allow(Basis::TeamManagement)
        }
        (Action::DecideEscalation(EscalationLevel::Manager), Role::Manager) => {
            Decision::Deny(DenyReason::OtherTeam)
        }
        (Action::DecideEscalation(EscalationLevel::Manager), _) => {
            Decision::Deny(DenyReason::TeamManagerOnly)
        }
        (Action::DecideEscalation(EscalationLevel::PrivacyOfficer), Role::PrivacyOfficer) => {
            allow(Basis::Supervision)
        }
        (Action::DecideEscalation(EscalationLevel::PrivacyOfficer), _) => {
            Decision::Deny(DenyReason::PrivacyOfficerOnly)
        }
        (Action::KeepRegisters, Role::PrivacyOfficer) => allow(Basis::Supervision),
        (Action::KeepRegisters, _) => Decision::Deny(DenyReason::PrivacyOfficerOnly),
        (Action::ReadCouncilReport, Role::Manager) => allow(Basis::TeamManagement),
        (Action::ReadCouncilReport, Role::PrivacyOfficer) => allow(Basis::Supervision),
        (Action::ReadCouncilReport, _) => Decision::Deny(DenyReason::ManagersAndPrivacyOfficerOnly),
        _ => return None,
    })
}

/// R16's ages applied to the rights (R19–R22): the subject acts alone from 12 and a parent with
/// authority for a child under 16, both when linked to the dossier; an assigned worker files on
/// anyone's behalf. An unknown birth date lets the subject act (adults are the rule) but not a
/// parent, who must show the child is under 16.
fn exercise_right(who: &Principal, rel: &Relationships, subject: RightsSubject<'_>) -> Decision {
    if who.role == Role::Worker && rel.is_assigned(&who.user) {
        return Decision::Allow {
            basis: Basis::Assignment,
            mode: Mode::Write,
        };
    }
    let linked = match &who.person {
        Some(p) if who.role == Role::Resident && rel.is_linked(p) => p,
        _ => return Decision::Deny(absent(who, rel)),
    };
    let allow = Decision::Allow {
        basis: Basis::ResidentLink,
        mode: Mode::Write,
    };
    if linked == subject.person {
        if subject.age.is_some_and(|a| a < 12) {
            Decision::Deny(DenyReason::TooYoungToActAlone)
        } else {
            allow
        }
    } else if subject.gezag.contains(linked) {
        if subject.age.is_some_and(|a| a < 16) {
            allow
        } else {
            Decision::Deny(DenyReason::SubjectActsAlone)
        }
    } else {
        Decision::Deny(DenyReason::NotInAudience)
    }
}

/// An assigned worker closes an open dossier on a complete triage record of the closing or
/// handover moment, which says what goes along to a successor (R12, R18).
fn close(who: &Principal, rel: &Relationships, triage: Option<&crate::share::Triage>) -> Decision {
    if who.role != Role::Worker || !rel.is_assigned(&who.user) {
        return Decision::Deny(absent(who, rel));
    }
    if rel.closed {
        return Decision::Deny(DenyReason::DossierClosed);
    }
    match triage.filter(|t| matches!(t.moment.as_str(), "afsluiting" | "overdracht")) {
        None => Decision::Deny(DenyReason::TriageMissing),
        Some(t) if !t.argued || !t.discussed_or_explained => {
            Decision::Deny(DenyReason::TriageIncomplete)
        }
        Some(_) => Decision::Allow {
            basis: Basis::Assignment,
            mode: Mode::Write,
        },
    }
}

/// Only an assigned worker shares, only on a complete triage record for exactly this recipient
/// and these items, and only on a ground that holds (R12, R16, R17).
fn share(
    who: &Principal,
    rel: &Relationships,
    request: &crate::share::ShareRequest<'_>,
) -> Decision {
    use crate::share::{Ground, Recipient};
    if who.role != Role::Worker || !rel.is_assigned(&who.user) {
        // A break-glass grant reads in an emergency; it never passes data on.
        return Decision::Deny(absent(who, rel));
    }
    if rel.closed {
        return Decision::Deny(DenyReason::DossierClosed);
    }
    // R21: a restricted person's data is stored, not processed further, until it is lifted.
    if request.subjects.iter().any(|p| rel.restricted.contains(p)) {
        return Decision::Deny(DenyReason::ProcessingRestricted);
    }
    // R15: what someone else brought into a case conference goes on only with their agreement.
    let recipient = request.recipient.code();
    if rel.contributions.iter().any(|c| {
        request.items.contains(&c.entry)
            && c.contributor != who.user.as_str()
            && !c.agreed.contains(&recipient)
    }) {
        return Decision::Deny(DenyReason::ContributorAgreementMissing);
    }
    // Every share is its own triage moment (R12): a plan or evaluation record is no share.
    let Some(triage) = request.triage.filter(|t| {
        t.moment == "share"
            && t.recipient.as_deref() == Some(request.recipient.code().as_str())
            && request.items.is_subset(&t.items)
    }) else {
        return Decision::Deny(DenyReason::TriageMissing);
    };
    if !triage.argued || !triage.discussed_or_explained {
        return Decision::Deny(DenyReason::TriageIncomplete);
    }
    if triage.superseded {
        return Decision::Deny(DenyReason::PurposeChanged);
    }
    let ground_holds = match request.ground {
        Ground::Application => {
            if *request.recipient != Recipient::Backoffice {
                return Decision::Deny(DenyReason::GroundNotApplicable);
            }
            true
        }
        Ground::Consent(coverages) => {
            if !crate::share::consent_holds(coverages) {
                return Decision::Deny(DenyReason::ConsentMissing);
            }
            true
        }
        Ground::FourEyes(approver) => approver.is_some_and(|a| {
            a.role == Role::Worker && a.user != who.user && a.team.as_ref() == Some(&rel.team)
        }),
    };
    if ground_holds {
        Decision::Allow {
            basis: Basis::Assignment,
            mode: Mode::Write,
        }
    } else {
        Decision::Deny(DenyReason::SecondApprovalMissing)
    }
}

/// The read audience of each document (SPEC §2 "read" column) and the strongest mode.
fn audience(
    who: &Principal,
    key: &DocumentKey,
    rel: &Relationships,
    now: OffsetDateTime,
) -> Result<(Basis, Mode), DenyReason> {
    let assigned = who.role == Role::Worker && rel.is_assigned(&who.user);
    let granted = who.role == Role::Worker && rel.grant_at(&who.user, now).is_some();
    let linked =
        who.role == Role::Resident && who.person.as_ref().is_some_and(|p| rel.is_linked(p));
    // A closed dossier is read, never written (R18).
    let write_or_read = |writes: bool| {
        if writes && !rel.closed {
            Mode::Write
        } else {
            Mode::Read
        }
    };
    match key {
        DocumentKey::Plan | DocumentKey::Record | DocumentKey::Meta => {
            let writable = !matches!(key, DocumentKey::Meta);
            if assigned {
                Ok((Basis::Assignment, write_or_read(writable)))
            } else if granted {
                // R2: breaking the glass is for reading in an emergency, never for writing.
                Ok((Basis::BreakGlass, Mode::Read))
            } else if linked && matches!(key, DocumentKey::Plan) {
                Ok((Basis::ResidentLink, write_or_read(true)))
            } else {
                Err(absent(who, rel))
            }
        }
        DocumentKey::View(person) => {
            if linked && who.person.as_ref() == Some(person) {
                Ok((Basis::ResidentLink, Mode::Read))
            } else {
                Err(DenyReason::NotInAudience)
            }
        }
        DocumentKey::Maatwerk(n) => {
            if assigned {
                Ok((Basis::Assignment, write_or_read(true)))
            } else if who.role == Role::Backoffice {
                Ok((Basis::Backoffice, write_or_read(true)))
            } else if linked && who.person.as_ref() == rel.applicant(*n) {
                // R7: the extract holds facts about its applicant, so only they read it.
                Ok((Basis::ResidentLink, Mode::Read))
            } else {
                Err(absent(who, rel))
            }
        }
        DocumentKey::Partner(org) => {
            if assigned {
                Ok((Basis::Assignment, write_or_read(true)))
            } else if who.role == Role::Partner
                && who.org.as_ref() == Some(org)
                && rel.involves(org)
            {
                Ok((Basis::PartnerInvolvement, write_or_read(true)))
            } else {
                Err(DenyReason::NotInAudience)
            }
        }
    }
}

/// Distinguishes an ended grant from never having had one, for a clearer `revoked` reason.
fn absent(who: &Principal, rel: &Relationships) -> DenyReason {
    if who.role == Role::Worker && rel.grants.iter().any(|g| g.user == who.user) {
        DenyReason::GrantExpired
    } else {
        DenyReason::NotInAudience
    }
}

/// The "write" column of SPEC §2, down to paths.
fn write(
    who: &Principal,
    key: &DocumentKey,
    rel: &Relationships,
    now: OffsetDateTime,
    path: Option<&Path>,
) -> Decision {
    if matches!(key, DocumentKey::Meta | DocumentKey::View(_)) {
        return Decision::Deny(DenyReason::ServerWrittenDocument);
    }
    let (basis, mode) = match audience(who, key, rel, now) {
        Ok(found) => found,
        Err(reason) => return Decision::Deny(reason),
    };
    if rel.closed {
        return Decision::Deny(DenyReason::DossierClosed);
    }
    if mode == Mode::Read {
        return Decision::Deny(DenyReason::ReadOnlyAccess);
    }
    let Some(path) = path else {
        return Decision::Allow { basis, mode };
    };
    let permitted = match (key, basis) {
        (DocumentKey::Plan, Basis::ResidentLink) => !RESIDENT_RESERVED_IN_PLAN
            .iter()
            .any(|p| path.starts_with_pattern(p)),
        (DocumentKey::Maatwerk(_), Basis::Assignment) => path.starts_with_pattern("request"),
        (DocumentKey::Maatwerk(_), Basis::Backoffice) => path.starts_with_pattern("decision"),
        (DocumentKey::Partner(_), Basis::Assignment) => path.starts_with_pattern("assignment"),
        (DocumentKey::Partner(_), Basis::PartnerInvolvement) => path.starts_with_pattern("status"),
        (DocumentKey::Plan | DocumentKey::Record, Basis::Assignment) => true,
        _ => false,
    };
    if permitted {
        Decision::Allow { basis, mode }
    } else {
        Decision::Deny(DenyReason::PathReserved)
    }
}

/// Fields of `plan` only workers write (R8 lets residents co-edit everything else): who owns a
/// goal or action commits a professional or partner, and evaluation moments are professional
/// appointments.
pub const RESIDENT_RESERVED_IN_PLAN: [&str; 3] =
    ["goals/*/owner", "goals/*/actions/*/owner", "evaluations"];

fn export(who: &Principal, rel: &Relationships) -> Decision {
    if who.role == Role::Worker && rel.is_assigned(&who.user) {
        Decision::Allow {
            basis: Basis::Assignment,
            mode: Mode::Read,
        }
    } else if who.role == Role::Resident && who.person.as_ref().is_some_and(|p| rel.is_linked(p)) {
        // R19: the export itself is redacted to the resident's own data by the exporter.
        Decision::Allow {
            basis: Basis::ResidentLink,
            mode: Mode::Read,
        }
    } else {
        Decision::Deny(DenyReason::NotInAudience)
    }
}

fn break_glass(
    who: &Principal,
    rel: &Relationships,
    now: OffsetDateTime,
    reason: Option<&str>,
) -> Decision {
    if who.role != Role::Worker {
        return Decision::Deny(DenyReason::NotTeamColleague);
    }
    if !who.citywide && who.team.as_ref() != Some(&rel.team) {
        return Decision::Deny(DenyReason::NotTeamColleague);
    }
    if rel.is_assigned(&who.user) || rel.grant_at(&who.user, now).is_some() {
        return Decision::Deny(DenyReason::AlreadyHasAccess);
    }
    if reason.is_some_and(|r| r.trim().is_empty()) {
        return Decision::Deny(DenyReason::ReasonRequired);
    }
    Decision::Allow {
        basis: Basis::TeamMembership,
        mode: Mode::Read,
    }
}

/// A team registers its own signals and dossiers, a citywide worker too but only for their own
/// team (R11); a functional admin registers dossiers for any team. R3 was checked before.
fn register(who: &Principal, rel: &Relationships, what: Registration) -> Decision {
    match who.role {
        Role::Admin if what == Registration::Dossier => Decision::Allow {
            basis: Basis::Administration,
            mode: Mode::Write,
        },
        Role::Worker if who.team.as_ref() == Some(&rel.team) => Decision::Allow {
            basis: Basis::TeamMembership,
            mode: Mode::Write,
        },
        _ => Decision::Deny(DenyReason::NotTeamMember),
    }
}

/// One line of an access review (R10): who can reach the dossier, on what basis, which documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewLine {
    /// `worker:<user>`, `person:<person>`, `backoffice:<district>` or `org:<org>`.
    pub who: String,
    /// The relationship.
    pub basis: Basis,
    /// The documents it reaches; `maatwerk/*` stands for every maatwerk extract.
    pub documents: Vec<String>,
}

/// Lists who can reach the dossier at `now` and why (R10), by asking [`decide`] for each recorded
/// relationship, so the review can never disagree with the policy it reviews.
pub fn access_review(rel: &Relationships, now: OffsetDateTime) -> Vec<ReviewLine> {
    let keys = |people: &Principal| -> (Option<Basis>, Vec<String>) {
        let mut candidates = vec![DocumentKey::Plan, DocumentKey::Record];
        candidates.extend(people.person.iter().cloned().map(DocumentKey::View));
        // Residents read the extracts they applied for; the others every extract, `maatwerk/*`.
        if people.role == Role::Resident {
            candidates.extend(
                rel.applicants
                    .iter()
                    .map(|(n, _)| DocumentKey::Maatwerk(*n)),
            );
        } else {
            candidates.push(DocumentKey::Maatwerk(0));
        }
        candidates.extend(rel.partners.iter().cloned().map(DocumentKey::Partner));
        candidates.push(DocumentKey::Meta);
        let mut basis = None;
        let mut documents = Vec::new();
        for key in candidates {
            if let Decision::Allow { basis: b, .. } = decide(people, Action::Read(&key), rel, now) {
                basis.get_or_insert(b);
                documents.push(match key {
                    DocumentKey::Maatwerk(_) if people.role != Role::Resident => {
                        "maatwerk/*".to_owned()
                    }
                    other => other.to_string(),
                });
            }
        }
        (basis, documents)
    };
    let as_worker = |user: &crate::id::UserId| Principal {
        user: user.clone(),
        role: Role::Worker,
        district: Some(rel.district.clone()),
        team: Some(rel.team.clone()),
        org: None,
        person: None,
        citywide: false,
    };
    let mut lines = Vec::new();
    let mut push = |who: String, p: Principal| {
        if let (Some(basis), documents) = keys(&p) {
            lines.push(ReviewLine {
                who,
                basis,
                documents,
            });
        }
    };
    for user in &rel.assigned {
        push(format!("worker:{user}"), as_worker(user));
    }
    for grant in rel
        .grants
        .iter()
        .filter(|g| g.holds_at(now) && !rel.is_assigned(&g.user))
    {
        push(format!("worker:{}", grant.user), as_worker(&grant.user));
    }
    for person in &rel.linked_persons {
        let mut p = as_worker(&crate::id::UserId::new("resident").expect("valid id"));
        (p.role, p.district, p.team, p.person) = (Role::Resident, None, None, Some(person.clone()));
        push(format!("person:{person}"), p);
    }
    let mut bo = as_worker(&crate::id::UserId::new("backoffice").expect("valid id"));
    (bo.role, bo.team) = (Role::Backoffice, None);
    push(format!("backoffice:{}", rel.district), bo);
    for org in &rel.partners {
        let mut p = as_worker(&crate::id::UserId::new("partner").expect("valid id"));
        (p.role, p.district, p.team, p.org) = (Role::Partner, None, None, Some(org.clone()));
        push(format!("org:{org}"), p);
    }
    lines
}

#[cfg(test)]
mod tests;
