//! Target `policy`: `regie_core::policy::decide` over arbitrary principals (also ones whose
//! claims make no sense for their role), dossiers (assignments, grants with arbitrary times,
//! links, partners, applicants, closed), times, document keys parsed from arbitrary text and
//! paths parsed from arbitrary text; and claims parsed into principals. (Schema validation of
//! edited documents, milliseconds per input where a question takes microseconds, is its own
//! target: [`crate::schema`].)
//!
//! Besides never panicking, the answers must agree with each other: `Read` and `Sync` allow the
//! same principals; whoever may write at a path may write the document; whoever may write it
//! syncs it read-write; and keys and paths survive display and parse.

use std::str::FromStr;

use arbitrary::{Result, Unstructured};
use regie_core::id::{DocumentKey, DossierId, UserId};
use regie_core::path::{Path, Segment};
use regie_core::policy::{Action, Decision, Mode, Registration, ReportTier, decide};
use regie_core::principal::{Claims, Principal, Role};
use regie_core::relationship::{Grant, Relationships};
use time::OffsetDateTime;

use crate::fixtures;

const USERS: &[&str] = &[
    fixtures::WORKER,
    "worker-2",
    fixtures::RESIDENT,
    "partner-1",
    "backoffice-1",
];
const DISTRICTS: &[&str] = &[fixtures::DISTRICT, "zuid"];
const TEAMS: &[&str] = &[fixtures::TEAM, "wijkteam-zuid"];
const ORGS: &[&str] = &[fixtures::ORG, "org-2"];
const PERSONS: &[&str] = &[fixtures::PERSON, "p-2"];

/// Decides arbitrary questions; see the module documentation.
///
/// # Panics
/// If the policy panics, or two of its answers contradict each other.
pub fn policy(data: &[u8]) {
    let _ = questions(&mut Unstructured::new(data));
}

fn questions(u: &mut Unstructured<'_>) -> Result<()> {
    let claims = Claims {
        sub: text(u, USERS)?,
        role: *u.choose(&Role::ALL)?,
        district: optional_text(u, DISTRICTS)?,
        team: optional_text(u, TEAMS)?,
        org: optional_text(u, ORGS)?,
        person: optional_text(u, PERSONS)?,
        citywide: u.arbitrary()?,
    };
    let from_claims = Principal::from_claims(&claims);
    let who = match from_claims {
        Ok(p) if u.arbitrary()? => p,
        // Any combination, also ones `from_claims` refuses: the policy is total.
        _ => Principal {
            user: id(u, USERS)?,
            role: claims.role,
            district: optional_id(u, DISTRICTS)?,
            team: optional_id(u, TEAMS)?,
            org: optional_id(u, ORGS)?,
            person: optional_id(u, PERSONS)?,
            citywide: claims.citywide,
        },
    };
    let rel = relationships(u)?;
    let now = time(u)?;
    let key = key(u)?;
    let path = path(u)?;

    let read = decide(&who, Action::Read(&key), &rel, now);
    let sync = decide(&who, Action::Sync(&key), &rel, now);
    let write = decide(&who, Action::Write(&key), &rel, now);
    let write_path = decide(&who, Action::WritePath(&key, &path), &rel, now);
    assert_eq!(
        read.is_allowed(),
        sync.is_allowed(),
        "Read and Sync disagree: {read:?} {sync:?}"
    );
    if let Decision::Allow { basis, mode } = write_path {
        assert_eq!(
            write,
            Decision::Allow { basis, mode },
            "WritePath allows what Write does not"
        );
    }
    if let Decision::Allow { basis, mode } = write {
        assert_eq!(mode, Mode::Write, "Write allowed read-only");
        assert_eq!(
            sync,
            Decision::Allow { basis, mode },
            "Write allowed but Sync is not read-write"
        );
    }

    let reason = text(u, &["", " ", "crisis"])?;
    let given_by = [id(u, PERSONS)?];
    let decided_by = id::<UserId>(u, USERS)?;
    let action = match u.int_in_range(0..=14u8)? {
        0 => Action::Export,
        1 => Action::BreakGlass {
            reason: Some(reason.as_str()),
        },
        2 => Action::Register(Registration::Signal),
        3 => Action::Register(Registration::Dossier),
        4 => Action::ApproveWeighing {
            decided_by: Some(&decided_by),
        },
        5 => Action::WithdrawConsent {
            given_by: &given_by,
        },
        6 => Action::ManageAssignments,
        7 => Action::ManageResidents,
        8 => Action::WorkOn,
        9 => Action::AddStatement,
        10 => Action::ReadReport(ReportTier::Summary),
        11 => Action::ReadReport(ReportTier::Detail),
        12 => Action::ReviewAccess,
        13 => Action::ReadRegisters,
        _ => Action::Close { triage: None },
    };
    let _ = decide(&who, action, &rel, now);
    let _ = regie_core::policy::access_review(&rel, now);
    Ok(())
}

/// A dossier in a district and team of the pools, with arbitrary relationships.
fn relationships(u: &mut Unstructured<'_>) -> Result<Relationships> {
    let mut rel = Relationships::new(
        DossierId(uuid::Uuid::from_u128(u.arbitrary()?)),
        id(u, DISTRICTS)?,
        id(u, TEAMS)?,
    );
    for _ in 0..u.int_in_range(0..=3)? {
        rel.assigned.push(id(u, USERS)?);
    }
    for _ in 0..u.int_in_range(0..=2)? {
        rel.grants.push(Grant {
            user: id(u, USERS)?,
            reason: text(u, &["crisis", ""])?,
            granted_at: time(u)?,
            expires_at: time(u)?,
        });
    }
    for _ in 0..u.int_in_range(0..=2)? {
        rel.linked_persons.push(id(u, PERSONS)?);
    }
    for _ in 0..u.int_in_range(0..=2)? {
        rel.partners.push(id(u, ORGS)?);
    }
    for _ in 0..u.int_in_range(0..=2)? {
        rel.applicants
            .push((u.int_in_range(0..=3)?, id(u, PERSONS)?));
    }
    rel.closed = u.ratio(1, 8)?;
    Ok(rel)
}

/// A document key: parsed from arbitrary text (which then displays and parses back to itself),
/// or one of the dossier's.
fn key(u: &mut Unstructured<'_>) -> Result<DocumentKey> {
    if u.ratio(1, 4)? {
        let s: &str = u.arbitrary()?;
        if let Ok(key) = DocumentKey::from_str(s) {
            assert_eq!(
                DocumentKey::from_str(&key.to_string()).as_ref(),
                Ok(&key),
                "a document key does not survive display and parse"
            );
            return Ok(key);
        }
    }
    Ok(match u.int_in_range(0..=5u8)? {
        0 => DocumentKey::Plan,
        1 => DocumentKey::Record,
        2 => DocumentKey::Meta,
        3 => DocumentKey::View(id(u, PERSONS)?),
        4 => DocumentKey::Maatwerk(u.int_in_range(0..=3)?),
        _ => DocumentKey::Partner(id(u, ORGS)?),
    })
}

/// A path: parsed from arbitrary text (stable under display and parse), or built from schema
/// keys, arbitrary keys (slashes, digits, `*`) and indices.
pub(crate) fn path(u: &mut Unstructured<'_>) -> Result<Path> {
    if u.ratio(1, 3)? {
        let path = Path::parse(u.arbitrary()?);
        assert_eq!(
            Path::parse(&path.to_string()),
            path,
            "a parsed path does not survive display and parse"
        );
        return Ok(path);
    }
    let mut segments = Vec::new();
    for _ in 0..u.int_in_range(0..=5)? {
        segments.push(match u.int_in_range(0..=5u8)? {
            0 => Segment::Index(u.arbitrary()?),
            1 => Segment::Key(u.arbitrary::<&str>()?.to_owned()),
            2 => Segment::Index(u.int_in_range(0..=3)?),
            _ => Segment::Key((*u.choose(crate::script::KEYS)?).to_owned()),
        });
    }
    let path = Path(segments);
    for pattern in regie_core::policy::RESIDENT_RESERVED_IN_PLAN {
        let _ = path.starts_with_pattern(pattern);
    }
    let _ = path.first_key();
    Ok(path)
}

fn time(u: &mut Unstructured<'_>) -> Result<OffsetDateTime> {
    let now = fixtures::now().unix_timestamp();
    let t = match u.int_in_range(0..=3u8)? {
        0 => u.arbitrary::<i64>()?,
        _ => now + i64::from(u.arbitrary::<i32>()?),
    };
    Ok(OffsetDateTime::from_unix_timestamp(t).unwrap_or_else(|_| fixtures::now()))
}

/// Text from `pool`, or now and then arbitrary text.
fn text(u: &mut Unstructured<'_>, pool: &[&str]) -> Result<String> {
    if u.ratio(1, 16)? {
        Ok(u.arbitrary::<&str>()?.to_owned())
    } else {
        Ok((*u.choose(pool)?).to_owned())
    }
}

fn optional_text(u: &mut Unstructured<'_>, pool: &[&str]) -> Result<Option<String>> {
    if u.arbitrary()? {
        Ok(Some(text(u, pool)?))
    } else {
        Ok(None)
    }
}

/// An id from `pool`, or now and then arbitrary text that parses as one.
fn id<T: FromStr>(u: &mut Unstructured<'_>, pool: &[&str]) -> Result<T> {
    if u.ratio(1, 16)?
        && let Ok(id) = u.arbitrary::<&str>()?.parse()
    {
        return Ok(id);
    }
    u.choose(pool)?
        .parse()
        .map_err(|_| arbitrary::Error::IncorrectFormat)
}

fn optional_id<T: FromStr>(u: &mut Unstructured<'_>, pool: &[&str]) -> Result<Option<T>> {
    if u.arbitrary()? {
        Ok(Some(id(u, pool)?))
    } else {
        Ok(None)
    }
}

/// Pseudo-random inputs.
pub(crate) fn seeds() -> Vec<Vec<u8>> {
    pseudo_random(0x2545_f491_4f6c_dd1d, 32, 96)
}

/// `count` inputs of `len` bytes from an xorshift generator started at `x`, each led by its
/// index (the first choice the entry point makes).
pub(crate) fn pseudo_random(mut x: u64, count: u8, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut seed = vec![i];
            seed.extend((0..len).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            }));
            seed
        })
        .collect()
}
