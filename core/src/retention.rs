//! Retention (R23): each part of a dossier has a legal regime and a trigger date, and is
//! destroyed on its trigger date plus the regime's term in years; a household dossier takes the
//! latest date of its parts, pushed later only by an extension with a recorded reason. Years
//! are counted like ages: the destroy-by date is the first day on which the full term has
//! passed, so from 29 February it is 1 March of a common year. 28 February would destroy data
//! a day before the statutory term is complete; 1 March keeps it exactly that term and no
//! longer. A part whose trigger has not happened yet (an open Wmo case, a running benefit) has
//! no destroy-by date, and then neither has its dossier: that part's term is still unbounded,
//! so no date can be the longest, and the data of an open case must not be destroyed.

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use time::{Date, Month};

time::serde::format_description!(mod iso_date [Date] = "[year]-[month]-[day]");

/// The legal regime that sets a part's retention term and its trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// Wmo 2015 plans and voorzieningen: 15 years after the case is closed.
    Wmo2015,
    /// Jeugdwet jeugdhulp: 20 years after the last change to the part. The special terms
    /// (Veilig Thuis, OTS/voogdij) are not modelled.
    Jeugdwet,
    /// WGBO medical-treatment records: 20 years after the last change (BW art. 7:454 lid 3).
    Wgbo,
    /// Participatiewet benefit files: 10 years after the benefit ends.
    Participatiewet,
    /// A refused request or a plan never adopted: 5 years after the decision or refusal.
    RefusedOrNotAdopted,
}

impl Regime {
    /// Every regime.
    pub const ALL: [Regime; 5] = [
        Regime::Wmo2015,
        Regime::Jeugdwet,
        Regime::Wgbo,
        Regime::Participatiewet,
        Regime::RefusedOrNotAdopted,
    ];

    /// How `meta` names the regime (`wmo2015`, …, `refused_or_not_adopted`).
    pub const fn code(self) -> &'static str {
        match self {
            Regime::Wmo2015 => "wmo2015",
            Regime::Jeugdwet => "jeugdwet",
            Regime::Wgbo => "wgbo",
            Regime::Participatiewet => "participatiewet",
            Regime::RefusedOrNotAdopted => "refused_or_not_adopted",
        }
    }

    /// The regime `meta` names `code`.
    pub fn from_code(code: &str) -> Option<Regime> {
        Regime::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The retention term in years, counted from the trigger date.
    pub const fn term_years(self) -> u16 {
        match self {
            Regime::Wmo2015 => 15,
            Regime::Jeugdwet | Regime::Wgbo => 20,
            Regime::Participatiewet => 10,
            Regime::RefusedOrNotAdopted => 5,
        }
    }
}

/// One part of a dossier under one regime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct DossierPart {
    /// The regime that applies.
    pub regime: Regime,
    /// The day the term starts: case closed (Wmo 2015), last change (Jeugdwet, WGBO), benefit
    /// ended (Participatiewet), decision or refusal (refused or not adopted). `None` while that
    /// has not happened yet.
    #[serde(with = "iso_date::option", default)]
    pub trigger_on: Option<Date>,
}

/// `date` plus `years` whole years: the same month and day, except that 29 February becomes
/// 1 March in a common year. Beyond the last representable date it saturates at [`Date::MAX`].
pub fn add_years(date: Date, years: u16) -> Date {
    let year = date.year() + i32::from(years);
    Date::from_calendar_date(year, date.month(), date.day())
        .or_else(|_| Date::from_calendar_date(year, Month::March, 1))
        .unwrap_or(Date::MAX)
}

/// The day `part` is destroyed: its trigger date plus its regime's term, or `None` while the
/// trigger has not happened.
pub fn destroy_by(part: &DossierPart) -> Option<Date> {
    part.trigger_on
        .map(|trigger| add_years(trigger, part.regime.term_years()))
}

/// A recorded reason to keep a dossier longer than its term; never empty or blank.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExtensionReason(String);

impl ExtensionReason {
    /// Parses a reason; blank text is [`ExtensionError::EmptyReason`].
    pub fn new(reason: impl Into<String>) -> Result<Self, ExtensionError> {
        let reason = reason.into();
        if reason.trim().is_empty() {
            Err(ExtensionError::EmptyReason)
        } else {
            Ok(Self(reason))
        }
    }

    /// The reason as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ExtensionReason {
    type Error = ExtensionError;
    fn try_from(reason: String) -> Result<Self, Self::Error> {
        Self::new(reason)
    }
}

impl From<ExtensionReason> for String {
    fn from(reason: ExtensionReason) -> String {
        reason.0
    }
}

/// A decision to keep a dossier until a later day (e.g. good care requires it, or a legal hold
/// during objection or appeal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Extension {
    /// The new destroy-by date.
    #[serde(with = "iso_date")]
    pub until: Date,
    /// Why the dossier is kept longer.
    pub reason: ExtensionReason,
}

/// Why an extension was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    /// No reason was given.
    #[error("an extension of the retention term needs a recorded reason")]
    EmptyReason,
    /// The dossier has no destroy-by date yet (a part's trigger has not happened, or it has no
    /// parts), so there is nothing to extend.
    #[error("the dossier has no destroy-by date yet, so it cannot be extended")]
    NoDestroyByDate,
    /// The requested date is not later than the current destroy-by date; keeping data shorter
    /// is not an extension.
    #[error("an extension must be later than the current destroy-by date {current}")]
    NotLater {
        /// The dossier's current destroy-by date, with earlier extensions.
        current: Date,
        /// The date asked for.
        requested: Date,
    },
}

/// The day a household dossier is destroyed: the latest [`destroy_by`] of its parts and of its
/// extensions. `None` if it has no parts or any part's trigger has not happened; extensions do
/// not change that. An extension earlier than the parts' date (because a part changed after it
/// was granted) is simply outlived.
pub fn destroy_by_dossier(parts: &[DossierPart], extensions: &[Extension]) -> Option<Date> {
    let mut latest: Option<Date> = None;
    for part in parts {
        let date = destroy_by(part)?;
        latest = latest.max(Some(date));
    }
    let computed = latest?;
    Some(extensions.iter().map(|e| e.until).fold(computed, Ord::max))
}

/// Records an extension of the dossier to `until` for `reason`, refused unless the dossier has
/// a destroy-by date and `until` is later than it (counting earlier `extensions`).
pub fn extend(
    parts: &[DossierPart],
    extensions: &[Extension],
    until: Date,
    reason: &str,
) -> Result<Extension, ExtensionError> {
    let reason = ExtensionReason::new(reason)?;
    let current = destroy_by_dossier(parts, extensions).ok_or(ExtensionError::NoDestroyByDate)?;
    if until <= current {
        return Err(ExtensionError::NotLater {
            current,
            requested: until,
        });
    }
    Ok(Extension { until, reason })
}
