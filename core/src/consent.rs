//! Consent to share with a third party (R16): who must consent for a subject on a given day
//! (under 12 the parents with authority, 12–15 the child and those parents, 16+ the young person
//! alone; a minor of 12+ judged wilsonbekwaam counts as under 12), and whether recorded consents
//! cover a proposed share. Ages are whole years on calendar dates: a person is N on their Nth
//! birthday, and someone born on 29 February turns a year older on 1 March in a common year,
//! because N full years have passed only once 28 February is over. No statute settles the leap
//! day (BW art. 1:2 concerns the unborn child); 1 March is the usual Dutch legal reading and the
//! same rule [`crate::retention`] uses for terms. Missing authority is an error the worker must
//! fix; a share that is not covered is a value listing what is missing.

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::id::{OrgId, PersonId};

time::serde::format_description!(mod iso_date [Date] = "[year]-[month]-[day]");

/// The person whose data would be shared, as known on the day of the share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ConsentSubject {
    /// The household member the data is about.
    pub person: PersonId,
    /// Date of birth.
    #[serde(with = "iso_date")]
    pub born_on: Date,
    /// A minor of 12 or older judged unable to weigh their own interests (WGBO art. 7:465);
    /// they are treated as under 12. Ignored under 12.
    pub wilsonbekwaam: bool,
}

/// Which R16 rule applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentRule {
    /// Under 12: the parents with authority.
    UnderTwelve,
    /// A minor of 12–17 judged wilsonbekwaam: the parents with authority, as under 12.
    TreatedAsUnderTwelve,
    /// 12 to 15: the child and the parents with authority.
    TwelveToFifteen,
    /// 16 or older: the young person (or adult) alone.
    SixteenOrOlder,
}

/// One person whose consent is needed, with the capacity in which they give it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consenter {
    /// The subject themselves.
    Subject(PersonId),
    /// A person holding parental authority (gezag) over the subject.
    ParentWithAuthority(PersonId),
}

impl Consenter {
    /// The person who gives the consent.
    pub fn person(&self) -> &PersonId {
        match self {
            Consenter::Subject(p) | Consenter::ParentWithAuthority(p) => p,
        }
    }
}

/// Who must consent before data about `subject` is shared on a given day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ConsentRequirement {
    /// The person the data is about.
    pub subject: PersonId,
    /// The subject's age in whole years on the day of the share.
    pub age: u32,
    /// The rule that applied.
    pub rule: ConsentRule,
    /// Everyone whose consent is needed: all of them, none optional. The subject comes first,
    /// then the parents in the order given, without duplicates.
    pub from: Vec<Consenter>,
}

/// Why the consenters cannot be determined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    /// The subject is a minor whose consent runs through the parents, and nobody is recorded
    /// as holding parental authority.
    #[error(
        "record who holds parental authority (gezag), verified in the gezagsregister, \
         before asking consent for this child"
    )]
    GezagNotRecorded,
    /// An adult judged wilsonbekwaam consents through a curator, mentor or other
    /// representative (WGBO art. 7:465 lid 3); that representation is not decided here.
    #[error(
        "an adult who cannot weigh their own interests is represented by a curator, mentor or \
         other representative; record that representation and decide with the privacy officer"
    )]
    RepresentativeNeeded,
    /// The share date lies before the subject's birth: the data is wrong.
    #[error("the share date {share_on} lies before the date of birth {born_on}")]
    ShareBeforeBirth {
        /// The recorded date of birth.
        born_on: Date,
        /// The date of the share.
        share_on: Date,
    },
}

/// The age in whole years on `on`, or `None` if `on` is before `born_on`. A person is N on their
/// Nth birthday; someone born on 29 February is N on 1 March of a common year (and on 29
/// February of a leap year).
pub fn age_on(born_on: Date, on: Date) -> Option<u32> {
    if on < born_on {
        return None;
    }
    let mut years = on.year() - born_on.year();
    if (u8::from(on.month()), on.day()) < (u8::from(born_on.month()), born_on.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// Who must consent to sharing data about `subject` on `share_on` (R16), given the persons
/// recorded as holding parental authority (`gezag`). Under 16 (or a wilsonbekwaam minor) with
/// nobody holding authority is [`ConsentError::GezagNotRecorded`]. The subject is never taken as
/// their own parent, and duplicates in `gezag` are dropped.
pub fn required_consent(
    subject: &ConsentSubject,
    gezag: &[PersonId],
    share_on: Date,
) -> Result<ConsentRequirement, ConsentError> {
    let age = age_on(subject.born_on, share_on).ok_or(ConsentError::ShareBeforeBirth {
        born_on: subject.born_on,
        share_on,
    })?;
    let rule = match age {
        0..12 => ConsentRule::UnderTwelve,
        12..18 if subject.wilsonbekwaam => ConsentRule::TreatedAsUnderTwelve,
        12..16 => ConsentRule::TwelveToFifteen,
        _ if subject.wilsonbekwaam => return Err(ConsentError::RepresentativeNeeded),
        _ => ConsentRule::SixteenOrOlder,
    };
    let mut from = Vec::new();
    if matches!(
        rule,
        ConsentRule::TwelveToFifteen | ConsentRule::SixteenOrOlder
    ) {
        from.push(Consenter::Subject(subject.person.clone()));
    }
    if rule != ConsentRule::SixteenOrOlder {
        let mut parents: Vec<Consenter> = Vec::new();
        for p in gezag {
            let parent = Consenter::ParentWithAuthority(p.clone());
            if *p != subject.person && !parents.contains(&parent) {
                parents.push(parent);
            }
        }
        if parents.is_empty() {
            return Err(ConsentError::GezagNotRecorded);
        }
        from.extend(parents);
    }
    Ok(ConsentRequirement {
        subject: subject.person.clone(),
        age,
        rule,
        from,
    })
}

/// One recorded consent (R16): who consented, for whom, to which recipient, purpose and items,
/// and its dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RecordedConsent {
    /// The person who consented.
    pub given_by: PersonId,
    /// The person whose data it concerns.
    pub concerning: PersonId,
    /// The organisation the data may go to.
    pub recipient: OrgId,
    /// The purpose, compared exactly: use the codes from configuration.
    pub purpose: String,
    /// The data items consented to, compared exactly.
    pub items: BTreeSet<String>,
    /// The day consent was given; it covers shares from this day on.
    #[serde(with = "iso_date")]
    pub given_on: Date,
    /// The last day the consent covers; `None` if it does not expire.
    #[serde(with = "iso_date::option", default)]
    pub expires_on: Option<Date>,
    /// The day consent was withdrawn; it covers no share on or after this day.
    #[serde(with = "iso_date::option", default)]
    pub withdrawn_on: Option<Date>,
}

impl RecordedConsent {
    /// Whether this consent is in force on `on`: given on or before it, not expired before it,
    /// not withdrawn on or before it.
    pub fn in_force_on(&self, on: Date) -> bool {
        lapse(self, on).is_none()
    }
}

/// A share a worker proposes to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ProposedShare {
    /// The organisation that would receive the data.
    pub recipient: OrgId,
    /// The purpose of the share.
    pub purpose: String,
    /// The data items to share.
    pub items: BTreeSet<String>,
    /// The day of the share.
    #[serde(with = "iso_date")]
    pub on: Date,
}

/// Why one required consenter's consent does not cover the share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// No consent at all from this person for this subject, recipient and purpose.
    NoConsent,
    /// Their only consents for this recipient and purpose were given after the share date;
    /// `given_on` is the earliest.
    NotYetGiven {
        /// When the earliest of those consents was given.
        #[serde(with = "iso_date")]
        given_on: Date,
    },
    /// Their latest consent (given on or before the share date) was withdrawn by then.
    Withdrawn {
        /// The day of withdrawal.
        #[serde(with = "iso_date")]
        withdrawn_on: Date,
    },
    /// Their latest consent (given on or before the share date) had expired by then.
    Expired {
        /// The last day it covered.
        #[serde(with = "iso_date")]
        expired_on: Date,
    },
    /// Consents in force cover the recipient and purpose but not these items.
    ItemsNotCovered {
        /// The items no consent in force covers.
        items: BTreeSet<String>,
    },
}

/// What is missing for one required consenter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Gap {
    /// The person whose consent is missing or insufficient.
    pub consenter: Consenter,
    /// Why.
    pub reason: GapReason,
}

/// Whether recorded consents cover a proposed share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Coverage {
    /// Every required consenter has consent in force covering the recipient, purpose and items.
    Covered,
    /// At least one consenter's consent is missing or insufficient; one gap per such
    /// consenter, in the order of [`ConsentRequirement::from`].
    NotCovered {
        /// What is missing, per consenter.
        gaps: Vec<Gap>,
    },
}

impl Coverage {
    /// Whether the share may proceed on the basis of consent.
    pub fn is_covered(&self) -> bool {
        matches!(self, Coverage::Covered)
    }
}

/// Checks `consents` against `share` for everyone in `required`. A consenter is satisfied when
/// the consents they gave about the subject, to the share's recipient and for its purpose, that
/// are in force on the share date, together cover all its items (consent may be given in
/// parts). Otherwise their gap says why: no such consent; items not covered by the consents in
/// force; or, when none is in force, their latest consent given by the share date was withdrawn
/// (checked first) or expired, or all were given after it.
pub fn check_coverage(
    required: &ConsentRequirement,
    consents: &[RecordedConsent],
    share: &ProposedShare,
) -> Coverage {
    let gaps: Vec<Gap> = required
        .from
        .iter()
        .filter_map(|consenter| {
            gap_for(consenter, &required.subject, consents, share).map(|reason| Gap {
                consenter: consenter.clone(),
                reason,
            })
        })
        .collect();
    if gaps.is_empty() {
        Coverage::Covered
    } else {
        Coverage::NotCovered { gaps }
    }
}

fn gap_for(
    consenter: &Consenter,
    subject: &PersonId,
    consents: &[RecordedConsent],
    share: &ProposedShare,
) -> Option<GapReason> {
    let relevant: Vec<&RecordedConsent> = consents
        .iter()
        .filter(|c| {
            c.given_by == *consenter.person()
                && c.concerning == *subject
                && c.recipient == share.recipient
                && c.purpose == share.purpose
        })
        .collect();
    if relevant.is_empty() {
        return Some(GapReason::NoConsent);
    }
    let in_force: Vec<&RecordedConsent> = relevant
        .iter()
        .copied()
        .filter(|c| c.in_force_on(share.on))
        .collect();
    if !in_force.is_empty() {
        let missing: BTreeSet<String> = share
            .items
            .iter()
            .filter(|item| !in_force.iter().any(|c| c.items.contains(*item)))
            .cloned()
            .collect();
        return (!missing.is_empty()).then_some(GapReason::ItemsNotCovered { items: missing });
    }
    // None is in force: explain by the latest consent given by the share date, or else by the
    // earliest one given after it.
    let explaining = relevant
        .iter()
        .filter(|c| c.given_on <= share.on)
        .max_by_key(|c| c.given_on)
        .or_else(|| relevant.iter().min_by_key(|c| c.given_on));
    explaining.and_then(|c| lapse(c, share.on))
}

/// Why `c` is not in force on `on`, or `None` if it is.
fn lapse(c: &RecordedConsent, on: Date) -> Option<GapReason> {
    if on < c.given_on {
        return Some(GapReason::NotYetGiven {
            given_on: c.given_on,
        });
    }
    if let Some(withdrawn_on) = c.withdrawn_on
        && withdrawn_on <= on
    {
        return Some(GapReason::Withdrawn { withdrawn_on });
    }
    if let Some(expired_on) = c.expires_on
        && expired_on < on
    {
        return Some(GapReason::Expired { expired_on });
    }
    None
}
