//! The typed editing vocabulary over regie-core's dossier documents (goals, actions,
//! agreements, evaluations, record entries with `kind` and `subjects`, triage decisions,
//! consents, partner status updates, maatwerk requests and decisions) and the [`Editor`] every
//! edit goes through. The editor asks [`regie_core::policy::decide`] about each path *before*
//! it writes there, so a forbidden edit fails with the policy's reason before the operation
//! exists; the edit runs on a fork that is dropped on any refusal. Texts are Automerge `Text`
//! objects and are changed with `update_text`, so concurrent edits of one field merge.

use std::fmt;
use std::str::FromStr;

use automerge::transaction::{Transactable, Transaction};
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use regie_core::id::{DocumentKey, OrgId, PersonId};
use regie_core::path::{Path, Segment};
use regie_core::policy::{Action, Decision, decide};
use regie_core::principal::Principal;
use regie_core::relationship::Relationships;
use time::{Date, OffsetDateTime};

use crate::error::{ClientError, Result};

/// Who owns a goal or action (only workers may set it; R8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The resident.
    Resident,
    /// The resident's network.
    Network,
    /// The worker.
    Worker,
    /// A chain partner organisation.
    Partner(OrgId),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Resident => f.write_str("resident"),
            Owner::Network => f.write_str("network"),
            Owner::Worker => f.write_str("worker"),
            Owner::Partner(org) => write!(f, "partner:{org}"),
        }
    }
}

/// Why a value did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {0}")]
pub struct ParseValueError(&'static str);

impl FromStr for Owner {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "resident, network, worker or partner:<org>";
        match s {
            "resident" => Ok(Owner::Resident),
            "network" => Ok(Owner::Network),
            "worker" => Ok(Owner::Worker),
            _ => s
                .strip_prefix("partner:")
                .and_then(|o| OrgId::new(o).ok())
                .map(Owner::Partner)
                .ok_or(ParseValueError(EXPECTED)),
        }
    }
}

macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $expected:literal, { $($(#[$vdoc:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The value as stored in the document.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseValueError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(ParseValueError($expected)),
                }
            }
        }
    };
}

word_enum!(
    /// The state of a goal.
    GoalStatus, "open, achieved or dropped", {
        /// Being worked on.
        Open = "open",
        /// Reached.
        Achieved = "achieved",
        /// Given up.
        Dropped = "dropped",
    }
);

word_enum!(
    /// Whether a record entry states a fact or an opinion (R14).
    EntryKind, "fact or opinion", {
        /// A verifiable fact.
        Fact = "fact",
        /// A professional's opinion.
        Opinion = "opinion",
    }
);

word_enum!(
    /// What kind of record entry.
    EntryCategory, "analysis, conversation or work_note", {
        /// Analysis per life domain.
        Analysis = "analysis",
        /// A conversation report.
        Conversation = "conversation",
        /// A work note.
        WorkNote = "work_note",
    }
);

word_enum!(
    /// A triage moment (R12).
    TriageMoment, "aanmelding, vraagverheldering, plan, evaluatie, afsluiting, overdracht or share", {
        /// First contact.
        Aanmelding = "aanmelding",
        /// Clarifying the question.
        Vraagverheldering = "vraagverheldering",
        /// Making the plan.
        Plan = "plan",
        /// Evaluation.
        Evaluatie = "evaluatie",
        /// Closing.
        Afsluiting = "afsluiting",
        /// Handover.
        Overdracht = "overdracht",
        /// Sharing beyond the worker.
        Share = "share",
    }
);

word_enum!(
    /// A chain partner's progress on an assigned action.
    PartnerState, "accepted, in_progress, done or declined", {
        /// Accepted.
        Accepted = "accepted",
        /// Under way.
        InProgress = "in_progress",
        /// Done.
        Done = "done",
        /// Declined.
        Declined = "declined",
    }
);

word_enum!(
    /// The outcome of a maatwerk decision.
    MaatwerkOutcome, "granted, partially_granted or refused", {
        /// Granted.
        Granted = "granted",
        /// Partially granted.
        PartiallyGranted = "partially_granted",
        /// Refused.
        Refused = "refused",
    }
);

/// A new goal in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGoal {
    /// The goal in words.
    pub title: String,
    /// Who owns it (workers only).
    pub owner: Option<Owner>,
}

/// Changes to an existing goal; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoalChanges {
    /// A new title (merged with concurrent edits of the same title).
    pub title: Option<String>,
    /// A new status.
    pub status: Option<GoalStatus>,
    /// A new owner (workers only).
    pub owner: Option<Owner>,
}

/// A new action under a goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAction {
    /// What is to be done.
    pub description: String,
    /// Who does it (workers only).
    pub owner: Option<Owner>,
    /// When it is due.
    pub due: Option<Date>,
}

/// A new entry of the professional record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Fact or opinion (R14).
    pub kind: EntryKind,
    /// Analysis, conversation report or work note.
    pub category: EntryCategory,
    /// The persons it is about (R7: decides whose view it may reach).
    pub subjects: Vec<PersonId>,
    /// The entry.
    pub text: String,
    /// The life domain of an analysis entry.
    pub life_domain: Option<String>,
}

/// A new triage decision (R12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTriage {
    /// The moment.
    pub moment: TriageMoment,
    /// The purpose.
    pub purpose: String,
    /// The items (entry ids) concerned.
    pub items: Vec<String>,
    /// The doelbinding argument.
    pub doelbinding: String,
    /// The proportionaliteit argument.
    pub proportionaliteit: String,
    /// The subsidiariteit argument.
    pub subsidiariteit: String,
    /// The decision.
    pub decision: String,
    /// Whether it was discussed with the resident.
    pub discussed_with_resident: bool,
    /// Why not, if not.
    pub not_discussed_reason: Option<String>,
    /// The recipient of a share.
    pub recipient: Option<String>,
}

/// A new consent to exchange with a third party (R16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConsent {
    /// The person the data is about.
    pub subject: PersonId,
    /// Who gave consent (the person, parents with authority, or both).
    pub given_by: Vec<PersonId>,
    /// The recipient.
    pub recipient: String,
    /// The purpose.
    pub purpose: String,
    /// The items (entry ids) covered.
    pub items: Vec<String>,
    /// When it was given.
    pub given_on: Date,
    /// When it expires.
    pub expires_on: Option<Date>,
}

/// A short random id for a new item (`g-…`, `a-…`, `e-…`).
pub(crate) fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub(crate) fn date_text(d: Date) -> String {
    d.format(regie_core::document::DATE)
        .expect("dates always format")
}

/// Writes into one document on a fork, asking the policy before every operation.
pub struct Editor<'a> {
    tx: Transaction<'a>,
    who: &'a Principal,
    key: &'a DocumentKey,
    rel: &'a Relationships,
    now: OffsetDateTime,
}

impl<'a> Editor<'a> {
    pub(crate) fn new(
        tx: Transaction<'a>,
        who: &'a Principal,
        key: &'a DocumentKey,
        rel: &'a Relationships,
        now: OffsetDateTime,
    ) -> Self {
        Editor {
            tx,
            who,
            key,
            rel,
            now,
        }
    }

    pub(crate) fn commit(self) {
        self.tx.commit();
    }

    /// The policy's answer for writing at `path`; an error before anything is written.
    pub fn allow(&self, path: &Path) -> Result<()> {
        match decide(
            self.who,
            Action::WritePath(self.key, path),
            self.rel,
            self.now,
        ) {
            Decision::Allow { .. } => Ok(()),
            Decision::Deny(reason) => Err(ClientError::Denied {
                what: format!("{}:{path}", self.key),
                reason,
            }),
        }
    }

    /// The current time the edit is made at.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// The user making the edit.
    pub fn user(&self) -> &str {
        self.who.user.as_str()
    }

    /// The object at `path`, which must exist.
    pub fn object(&self, path: &Path) -> Result<ObjId> {
        let mut obj = ROOT;
        for seg in &path.0 {
            let found = match seg {
                Segment::Key(k) => self.tx.get(&obj, k.as_str())?,
                Segment::Index(i) => self.tx.get(&obj, *i)?,
            };
            match found {
                Some((Value::Object(_), id)) => obj = id,
                _ => return Err(ClientError::NoSuchItem(path.to_string())),
            }
        }
        Ok(obj)
    }

    /// The index of the item of the list at `list` whose `id` field is `id`.
    pub fn find(&self, list: &Path, id: &str) -> Result<usize> {
        let obj = self.object(list)?;
        (0..self.tx.length(&obj))
            .find(|i| {
                self.tx
                    .get(&obj, *i)
                    .ok()
                    .flatten()
                    .and_then(|(_, item)| text_at(&self.tx, &item, "id"))
                    .as_deref()
                    == Some(id)
            })
            .ok_or_else(|| ClientError::NoSuchItem(format!("{list} {id}")))
    }

    /// Sets the text field `field` of the map at `path` to `value`: a new `Text` object if the
    /// field is absent, otherwise the smallest edit that turns the old text into the new one.
    pub fn set_text(&mut self, path: &Path, field: &str, value: &str) -> Result<()> {
        let here = path.child(Segment::Key(field.into()));
        self.allow(&here)?;
        let obj = self.object(path)?;
        match self.tx.get(&obj, field)? {
            Some((Value::Object(ObjType::Text), text)) => self.tx.update_text(&text, value)?,
            _ => {
                let text = self.tx.put_object(&obj, field, ObjType::Text)?;
                self.tx.splice_text(&text, 0, 0, value)?;
            }
        }
        Ok(())
    }

    /// Sets the scalar field `field` of the map at `path`.
    pub fn set(&mut self, path: &Path, field: &str, value: impl Into<ScalarValue>) -> Result<()> {
        self.allow(&path.child(Segment::Key(field.into())))?;
        let obj = self.object(path)?;
        self.tx.put(&obj, field, value)?;
        Ok(())
    }

    /// Sets the field `field` of the map at `path` to a list of strings.
    pub fn set_list(&mut self, path: &Path, field: &str, values: &[String]) -> Result<()> {
        self.allow(&path.child(Segment::Key(field.into())))?;
        let obj = self.object(path)?;
        let list = self.tx.put_object(&obj, field, ObjType::List)?;
        for (i, v) in values.iter().enumerate() {
            self.tx.insert(&list, i, v.as_str())?;
        }
        Ok(())
    }

    /// Appends a new map to the list at `list` (creating the list as field `field` of its parent
    /// if it is absent) and returns its path.
    pub fn push_map(&mut self, list: &Path) -> Result<Path> {
        self.allow(list)?;
        let obj = match self.object(list) {
            Ok(obj) => obj,
            Err(ClientError::NoSuchItem(_)) => {
                let (parent, field) = split_last(list)?;
                let parent_obj = self.object(&parent)?;
                self.tx
                    .put_object(&parent_obj, field.as_str(), ObjType::List)?
            }
            Err(e) => return Err(e),
        };
        let index = self.tx.length(&obj);
        self.tx.insert_object(&obj, index, ObjType::Map)?;
        Ok(list.child(Segment::Index(index)))
    }
}

fn split_last(path: &Path) -> Result<(Path, String)> {
    match path.0.split_last() {
        Some((Segment::Key(k), parent)) => Ok((Path(parent.to_vec()), k.clone())),
        _ => Err(ClientError::NoSuchItem(path.to_string())),
    }
}

/// The string in field `key` of map `obj`, whether a scalar string or `Text`.
pub(crate) fn text_at(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key).ok()?? {
        (Value::Object(ObjType::Text), id) => doc.text(&id).ok(),
        (Value::Scalar(s), _) => s.as_str().map(str::to_owned),
        _ => None,
    }
}

/// The plan edits.
pub(crate) mod plan {
    use super::*;

    pub(crate) fn goals() -> Path {
        Path::parse("goals")
    }

    pub(crate) fn set_hulpvraag(e: &mut Editor<'_>, text: &str) -> Result<()> {
        e.set_text(&Path::root(), "hulpvraag", text)
    }

    pub(crate) fn add_goal(e: &mut Editor<'_>, goal: &NewGoal) -> Result<String> {
        let id = new_id("g");
        let at = e.push_map(&goals())?;
        e.set(&at, "id", id.as_str())?;
        e.set_text(&at, "title", &goal.title)?;
        e.set(&at, "status", GoalStatus::Open.as_str())?;
        if let Some(owner) = &goal.owner {
            e.set(&at, "owner", owner.to_string())?;
        }
        Ok(id)
    }

    pub(crate) fn edit_goal(e: &mut Editor<'_>, goal: &str, changes: &GoalChanges) -> Result<()> {
        let at = goals().child(Segment::Index(e.find(&goals(), goal)?));
        if let Some(owner) = &changes.owner {
            e.set(&at, "owner", owner.to_string())?;
        }
        if let Some(title) = &changes.title {
            e.set_text(&at, "title", title)?;
        }
        if let Some(status) = changes.status {
            e.set(&at, "status", status.as_str())?;
        }
        Ok(())
    }

    pub(crate) fn add_action(e: &mut Editor<'_>, goal: &str, action: &NewAction) -> Result<String> {
        let id = new_id("a");
        let g = goals().child(Segment::Index(e.find(&goals(), goal)?));
        let at = e.push_map(&g.child(Segment::Key("actions".into())))?;
        e.set(&at, "id", id.as_str())?;
        e.set_text(&at, "description", &action.description)?;
        if let Some(owner) = &action.owner {
            e.set(&at, "owner", owner.to_string())?;
        }
        if let Some(due) = action.due {
            e.set(&at, "due", date_text(due))?;
        }
        Ok(id)
    }

    pub(crate) fn add_agreement(e: &mut Editor<'_>, text: &str, made_on: Date) -> Result<String> {
        let id = new_id("ag");
        let at = e.push_map(&Path::parse("agreements"))?;
        e.set(&at, "id", id.as_str())?;
        e.set_text(&at, "text", text)?;
        e.set(&at, "made_on", date_text(made_on))?;
        Ok(id)
    }

    pub(crate) fn add_evaluation(
        e: &mut Editor<'_>,
        date: Date,
        summary: Option<&str>,
    ) -> Result<String> {
        let id = new_id("ev");
        let at = e.push_map(&Path::parse("evaluations"))?;
        e.set(&at, "id", id.as_str())?;
        e.set(&at, "date", date_text(date))?;
        if let Some(s) = summary {
            e.set_text(&at, "summary", s)?;
        }
        Ok(id)
    }
}

/// The record edits.
pub(crate) mod record {
    use super::*;

    fn ids(v: &[PersonId]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    fn timestamp(e: &Editor<'_>) -> String {
        crate::store::ts(e.now())
    }

    pub(crate) fn add_entry(e: &mut Editor<'_>, entry: &NewEntry) -> Result<String> {
        let id = new_id("e");
        let at = e.push_map(&Path::parse("entries"))?;
        e.set(&at, "id", id.as_str())?;
        e.set(&at, "kind", entry.kind.as_str())?;
        e.set(&at, "category", entry.category.as_str())?;
        if let Some(domain) = &entry.life_domain {
            e.set_text(&at, "life_domain", domain)?;
        }
        e.set_list(&at, "subjects", &ids(&entry.subjects))?;
        e.set_text(&at, "text", &entry.text)?;
        let (user, now) = (e.user().to_owned(), timestamp(e));
        e.set(&at, "author", user)?;
        e.set(&at, "at", now)?;
        Ok(id)
    }

    pub(crate) fn add_triage(e: &mut Editor<'_>, t: &NewTriage) -> Result<String> {
        let id = new_id("t");
        let at = e.push_map(&Path::parse("triage"))?;
        e.set(&at, "id", id.as_str())?;
        e.set(&at, "moment", t.moment.as_str())?;
        e.set_list(&at, "items", &t.items)?;
        for (field, value) in [
            ("purpose", &t.purpose),
            ("doelbinding", &t.doelbinding),
            ("proportionaliteit", &t.proportionaliteit),
            ("subsidiariteit", &t.subsidiariteit),
            ("decision", &t.decision),
        ] {
            e.set_text(&at, field, value)?;
        }
        e.set(&at, "discussed_with_resident", t.discussed_with_resident)?;
        if let Some(reason) = &t.not_discussed_reason {
            e.set_text(&at, "not_discussed_reason", reason)?;
        }
        if let Some(recipient) = &t.recipient {
            e.set(&at, "recipient", recipient.as_str())?;
        }
        let (user, now) = (e.user().to_owned(), timestamp(e));
        e.set(&at, "author", user)?;
        e.set(&at, "at", now)?;
        Ok(id)
    }

    pub(crate) fn add_consent(e: &mut Editor<'_>, c: &NewConsent) -> Result<String> {
        let id = new_id("c");
        let at = e.push_map(&Path::parse("consents"))?;
        e.set(&at, "id", id.as_str())?;
        e.set(&at, "subject", c.subject.as_str())?;
        e.set_list(&at, "given_by", &ids(&c.given_by))?;
        e.set(&at, "recipient", c.recipient.as_str())?;
        e.set_text(&at, "purpose", &c.purpose)?;
        e.set_list(&at, "items", &c.items)?;
        e.set(&at, "given_on", date_text(c.given_on))?;
        if let Some(exp) = c.expires_on {
            e.set(&at, "expires_on", date_text(exp))?;
        }
        Ok(id)
    }

    pub(crate) fn withdraw_consent(e: &mut Editor<'_>, consent: &str, on: Date) -> Result<()> {
        let list = Path::parse("consents");
        let at = list.child(Segment::Index(e.find(&list, consent)?));
        e.set(&at, "withdrawn_on", date_text(on))
    }
}

/// Edits of `partner/<org>` and `maatwerk/<n>`.
pub(crate) mod extract {
    use super::*;

    pub(crate) fn partner_status(
        e: &mut Editor<'_>,
        action: &str,
        state: PartnerState,
        note: Option<&str>,
    ) -> Result<()> {
        let at = e.push_map(&Path::parse("status/updates"))?;
        e.set(&at, "action", action)?;
        e.set(&at, "state", state.as_str())?;
        if let Some(n) = note {
            e.set_text(&at, "note", n)?;
        }
        let now = crate::store::ts(e.now());
        e.set(&at, "at", now)
    }

    pub(crate) fn partner_action(
        e: &mut Editor<'_>,
        description: &str,
        agreed_on: Date,
    ) -> Result<String> {
        let id = new_id("pa");
        let at = e.push_map(&Path::parse("assignment/actions"))?;
        e.set(&at, "id", id.as_str())?;
        e.set_text(&at, "description", description)?;
        e.set(&at, "agreed_on", date_text(agreed_on))?;
        Ok(id)
    }

    pub(crate) fn maatwerk_request(
        e: &mut Editor<'_>,
        requested: &str,
        assessed_need: Option<&str>,
        proposed: Option<&str>,
    ) -> Result<()> {
        let at = Path::parse("request");
        e.set_text(&at, "requested", requested)?;
        if let Some(need) = assessed_need {
            e.set_text(&at, "assessed_need", need)?;
        }
        if let Some(p) = proposed {
            e.set_text(&at, "proposed_voorziening", p)?;
        }
        Ok(())
    }

    pub(crate) fn maatwerk_decision(
        e: &mut Editor<'_>,
        outcome: MaatwerkOutcome,
        motivation: &str,
        on: Date,
    ) -> Result<()> {
        let at = Path::parse("decision");
        e.set(&at, "outcome", outcome.as_str())?;
        e.set_text(&at, "motivation", motivation)?;
        e.set(&at, "decided_on", date_text(on))?;
        let user = e.user().to_owned();
        e.set(&at, "decided_by", user)
    }
}
