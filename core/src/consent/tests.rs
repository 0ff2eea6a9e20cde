use std::collections::BTreeSet;

use time::Date;
use time::macros::format_description;

use super::*;

fn d(iso: &str) -> Date {
    Date::parse(iso, format_description!("[year]-[month]-[day]")).unwrap()
}

fn p(name: &str) -> PersonId {
    PersonId::new(name).unwrap()
}

fn org(name: &str) -> OrgId {
    OrgId::new(name).unwrap()
}

fn items(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn kid() -> Consenter {
    Consenter::Subject(p("kind"))
}

fn parent(name: &str) -> Consenter {
    Consenter::ParentWithAuthority(p(name))
}

// ---- who must consent ---------------------------------------------------------------------

type Expected = Result<(ConsentRule, Vec<Consenter>), ConsentError>;

/// One row: the subject `kind` born on `born`, wilsonbekwaam or not, with parents holding
/// authority `gezag`, and a share on `on`; expect this rule and these consenters, or this error.
fn check(
    name: &str,
    born: &str,
    wilsonbekwaam: bool,
    gezag: &[&str],
    on: &str,
    expected: &Expected,
) {
    let subject = ConsentSubject {
        person: p("kind"),
        born_on: d(born),
        wilsonbekwaam,
    };
    let gezag: Vec<PersonId> = gezag.iter().map(|g| p(g)).collect();
    let got = required_consent(&subject, &gezag, d(on)).map(|r| (r.rule, r.from));
    assert_eq!(&got, expected, "{name}");
}

fn parents(rule: ConsentRule) -> Expected {
    Ok((rule, vec![parent("ma"), parent("pa")]))
}

fn child_and_parents() -> Expected {
    Ok((
        ConsentRule::TwelveToFifteen,
        vec![kid(), parent("ma"), parent("pa")],
    ))
}

fn alone() -> Expected {
    Ok((ConsentRule::SixteenOrOlder, vec![kid()]))
}

fn no_gezag() -> Expected {
    Err(ConsentError::GezagNotRecorded)
}

const BOTH: &[&str] = &["ma", "pa"];

#[test]
fn a_child_is_twelve_on_the_twelfth_birthday_and_sixteen_on_the_sixteenth() {
    use ConsentRule::*;
    #[rustfmt::skip]
    let rows = [
        // name            born          share on      who consents
        ("day of birth",   "2012-06-15", "2012-06-15", parents(UnderTwelve)),
        ("day before 12",  "2012-06-15", "2024-06-14", parents(UnderTwelve)),
        ("12th birthday",  "2012-06-15", "2024-06-15", child_and_parents()),
        ("day after 12",   "2012-06-15", "2024-06-16", child_and_parents()),
        ("day before 16",  "2008-06-15", "2024-06-14", child_and_parents()),
        ("16th birthday",  "2008-06-15", "2024-06-15", alone()),
        ("day after 16",   "2008-06-15", "2024-06-16", alone()),
        ("an adult",       "1980-01-01", "2024-06-15", alone()),
    ];
    for (name, born, on, expected) in &rows {
        check(name, born, false, BOTH, on, expected);
    }
}

#[test]
fn a_child_born_on_29_february_turns_a_year_older_on_1_march_of_a_common_year() {
    use ConsentRule::*;
    // The 12th and 16th birthdays of a leap-day child fall in leap years, except across 2100.
    #[rustfmt::skip]
    let rows = [
        // name                               born          share on      who consents
        ("leap year: 28 Feb, day before 12",  "2012-02-29", "2024-02-28", parents(UnderTwelve)),
        ("leap year: 29 Feb, 12th birthday",  "2012-02-29", "2024-02-29", child_and_parents()),
        ("leap year: 28 Feb, day before 16",  "2008-02-29", "2024-02-28", child_and_parents()),
        ("leap year: 29 Feb, 16th birthday",  "2008-02-29", "2024-02-29", alone()),
        ("2100 is common: 28 Feb, still 11",  "2088-02-29", "2100-02-28", parents(UnderTwelve)),
        ("2100 is common: 1 Mar, 12",         "2088-02-29", "2100-03-01", child_and_parents()),
        ("2100 is common: 28 Feb, still 15",  "2084-02-29", "2100-02-28", child_and_parents()),
        ("2100 is common: 1 Mar, 16",         "2084-02-29", "2100-03-01", alone()),
    ];
    for (name, born, on, expected) in &rows {
        check(name, born, false, BOTH, on, expected);
    }
}

#[test]
fn age_counts_whole_years_and_a_leap_day_birthday_falls_on_1_march_in_common_years() {
    #[rustfmt::skip]
    let rows = [
        // born         on            age
        ("2012-02-29", "2013-02-28", Some(0)),
        ("2012-02-29", "2013-03-01", Some(1)),
        ("2012-02-29", "2016-02-29", Some(4)),
        ("2008-02-29", "2023-02-28", Some(14)),
        ("2008-02-29", "2023-03-01", Some(15)),
        ("2009-02-28", "2025-02-28", Some(16)),
        ("2009-03-01", "2025-02-28", Some(15)),
        ("2012-12-31", "2013-12-30", Some(0)),
        ("2012-12-31", "2013-12-31", Some(1)),
        ("2012-06-15", "2012-06-15", Some(0)),
        ("2012-06-15", "2012-06-14", None),
    ];
    for (born, on, expected) in rows {
        assert_eq!(age_on(d(born), d(on)), expected, "born {born}, on {on}");
    }
}

#[test]
fn a_wilsonbekwaam_minor_of_twelve_or_older_is_treated_as_under_twelve() {
    use ConsentRule::*;
    #[rustfmt::skip]
    let rows = [
        // name                                 born          who consents on 2024-06-15
        ("11: the judgement changes nothing",   "2013-06-15", parents(UnderTwelve)),
        ("12",                                  "2012-06-15", parents(TreatedAsUnderTwelve)),
        ("15",                                  "2009-06-15", parents(TreatedAsUnderTwelve)),
        ("16",                                  "2008-06-15", parents(TreatedAsUnderTwelve)),
        ("17, the day before 18",               "2006-06-16", parents(TreatedAsUnderTwelve)),
        ("18: an adult needs a representative", "2006-06-15", Err(ConsentError::RepresentativeNeeded)),
    ];
    for (name, born, expected) in &rows {
        check(name, born, true, BOTH, "2024-06-15", expected);
    }
}

#[test]
fn without_recorded_gezag_a_child_under_sixteen_cannot_be_asked_for_consent() {
    let once = Ok((ConsentRule::UnderTwelve, vec![parent("ma")]));
    #[rustfmt::skip]
    let rows: [(&str, &str, bool, &[&str], Expected); 6] = [
        // name                                 born          wilsonbekwaam gezag          on 2024-06-15
        ("under 12",                            "2015-01-01", false,        &[],           no_gezag()),
        ("12 to 15",                            "2010-01-01", false,        &[],           no_gezag()),
        ("16 and wilsonbekwaam",                "2008-01-01", true,         &[],           no_gezag()),
        ("the child is not their own parent",   "2015-01-01", false,        &["kind"],     no_gezag()),
        ("16 needs no gezag",                   "2008-01-01", false,        &[],           alone()),
        ("a parent listed twice consents once", "2015-01-01", false,        &["ma", "ma"], once),
    ];
    for (name, born, wilsonbekwaam, gezag, expected) in &rows {
        check(name, born, *wilsonbekwaam, gezag, "2024-06-15", expected);
    }
}

#[test]
fn a_share_dated_before_the_birth_is_refused_as_wrong_data() {
    check(
        "share before birth",
        "2024-06-15",
        false,
        BOTH,
        "2024-06-14",
        &Err(ConsentError::ShareBeforeBirth {
            born_on: d("2024-06-15"),
            share_on: d("2024-06-14"),
        }),
    );
}

// ---- whether recorded consents cover a share ----------------------------------------------

/// A child of 13 on 2024-06-15: the child and both parents must consent.
fn requirement() -> ConsentRequirement {
    let subject = ConsentSubject {
        person: p("kind"),
        born_on: d("2011-01-01"),
        wilsonbekwaam: false,
    };
    required_consent(&subject, &[p("ma"), p("pa")], d("2024-06-15")).unwrap()
}

/// A consent by `by` about the child to the school, purpose `onderwijs`, for `school` and
/// `gezondheid`, given 2024-01-01, expiring 2024-12-31.
fn consent(by: &str) -> RecordedConsent {
    RecordedConsent {
        given_by: p(by),
        concerning: p("kind"),
        recipient: org("school"),
        purpose: "onderwijs".into(),
        items: items(&["school", "gezondheid"]),
        given_on: d("2024-01-01"),
        expires_on: Some(d("2024-12-31")),
        withdrawn_on: None,
    }
}

fn all_three() -> Vec<RecordedConsent> {
    vec![consent("kind"), consent("ma"), consent("pa")]
}

fn share(on: &str) -> ProposedShare {
    ProposedShare {
        recipient: org("school"),
        purpose: "onderwijs".into(),
        items: items(&["school", "gezondheid"]),
        on: d(on),
    }
}

/// All three consents, with `change` applied to the one given by `by`.
fn with(by: &str, change: impl Fn(&mut RecordedConsent)) -> Vec<RecordedConsent> {
    let mut consents = all_three();
    for c in &mut consents {
        if c.given_by == p(by) {
            change(c);
        }
    }
    consents
}

/// All three consents plus `extra`.
fn plus(mut consents: Vec<RecordedConsent>, extra: RecordedConsent) -> Vec<RecordedConsent> {
    consents.push(extra);
    consents
}

fn gaps(gaps: &[(Consenter, GapReason)]) -> Coverage {
    Coverage::NotCovered {
        gaps: gaps
            .iter()
            .map(|(consenter, reason)| Gap {
                consenter: consenter.clone(),
                reason: reason.clone(),
            })
            .collect(),
    }
}

fn only(consenter: Consenter, reason: GapReason) -> Coverage {
    gaps(&[(consenter, reason)])
}

fn no_consent(parent_name: &str) -> Coverage {
    only(parent(parent_name), GapReason::NoConsent)
}

fn everyone(reason: GapReason) -> Coverage {
    gaps(&[
        (kid(), reason.clone()),
        (parent("ma"), reason.clone()),
        (parent("pa"), reason),
    ])
}

fn expired(on: &str) -> GapReason {
    GapReason::Expired { expired_on: d(on) }
}

fn withdrawn(on: &str) -> GapReason {
    GapReason::Withdrawn {
        withdrawn_on: d(on),
    }
}

fn not_covered(names: &[&str]) -> GapReason {
    GapReason::ItemsNotCovered {
        items: items(names),
    }
}

/// One row: these consents and this share; expect this coverage.
fn check_share(
    name: &str,
    consents: &[RecordedConsent],
    share: &ProposedShare,
    expected: &Coverage,
) {
    let got = check_coverage(&requirement(), consents, share);
    assert_eq!(&got, expected, "{name}");
}

#[test]
fn consent_covers_a_share_from_the_day_it_is_given_through_the_day_it_expires() {
    let pa_later = with("pa", |c| c.given_on = d("2024-07-01"));
    let kid_no_expiry = with("kind", |c| c.expires_on = None);
    let later = GapReason::NotYetGiven {
        given_on: d("2024-07-01"),
    };
    let parents_expired = gaps(&[
        (parent("ma"), expired("2024-12-31")),
        (parent("pa"), expired("2024-12-31")),
    ]);
    #[rustfmt::skip]
    let rows = [
        // name                          consents        share on      coverage
        ("all three consented",          all_three(),    "2024-06-15", Coverage::Covered),
        ("the day consent is given",     all_three(),    "2024-01-01", Coverage::Covered),
        ("the expiry day",               all_three(),    "2024-12-31", Coverage::Covered),
        ("the day after expiry",         all_three(),    "2025-01-01", everyone(expired("2024-12-31"))),
        ("father consents only later",   pa_later,       "2024-06-15", only(parent("pa"), later)),
        ("the child's has no expiry",    kid_no_expiry,  "2030-01-01", parents_expired),
    ];
    for (name, consents, on, expected) in &rows {
        check_share(name, consents, &share(on), expected);
    }
}

#[test]
fn a_withdrawn_consent_covers_nothing_from_the_day_of_withdrawal() {
    let kid_withdrew = with("kind", |c| c.withdrawn_on = Some(d("2024-06-15")));
    let renewed = RecordedConsent {
        given_on: d("2024-07-01"),
        ..consent("kind")
    };
    let withdrawn_then_expired = gaps(&[
        (kid(), withdrawn("2024-06-15")),
        (parent("ma"), expired("2024-12-31")),
        (parent("pa"), expired("2024-12-31")),
    ]);
    #[rustfmt::skip]
    let rows = [
        // name                                   consents                              share on      coverage
        ("the day before withdrawal",             kid_withdrew.clone(),                 "2024-06-14", Coverage::Covered),
        ("the day of withdrawal",                 kid_withdrew.clone(),                 "2024-06-15", only(kid(), withdrawn("2024-06-15"))),
        ("withdrawal is told before expiry",      kid_withdrew.clone(),                 "2025-02-01", withdrawn_then_expired),
        ("a new consent after withdrawal covers", plus(kid_withdrew.clone(), renewed),  "2024-07-01", Coverage::Covered),
    ];
    for (name, consents, on, expected) in &rows {
        check_share(name, consents, &share(on), expected);
    }
}

#[test]
fn every_required_consenter_must_cover_the_recipient_the_purpose_and_every_item() {
    let kid_only_school = || with("kind", |c| c.items = items(&["school"]));
    let health = RecordedConsent {
        items: items(&["gezondheid"]),
        ..consent("kind")
    };
    let health_expired = RecordedConsent {
        expires_on: Some(d("2024-03-01")),
        ..health.clone()
    };
    let more = ProposedShare {
        items: items(&["school", "gezondheid", "thuissituatie"]),
        ..share("2024-06-15")
    };
    let day = share("2024-06-15");
    let with_oma = vec![consent("kind"), consent("ma"), consent("oma")];
    let ma_to_gp = with("ma", |c| c.recipient = org("huisarts"));
    let pa_for_care = with("pa", |c| c.purpose = "zorg".into());
    let ma_for_brother = with("ma", |c| c.concerning = p("broer"));
    #[rustfmt::skip]
    let rows = [
        // name                                  consents                                 share  coverage
        ("one parent missing",                   vec![consent("kind"), consent("ma")],    &day,  no_consent("pa")),
        ("one item missing for everyone",        all_three(),                             &more, everyone(not_covered(&["thuissituatie"]))),
        ("the child left out one item",          kid_only_school(),                       &day,  only(kid(), not_covered(&["gezondheid"]))),
        ("items consented in parts add up",      plus(kid_only_school(), health),         &day,  Coverage::Covered),
        ("an expired part does not add up",      plus(kid_only_school(), health_expired), &day,  only(kid(), not_covered(&["gezondheid"]))),
        ("mother chose another recipient",       ma_to_gp,                                &day,  no_consent("ma")),
        ("father chose another purpose",         pa_for_care,                             &day,  no_consent("pa")),
        ("mother's is about another child",      ma_for_brother,                          &day,  no_consent("ma")),
        ("a grandmother's consent is not asked", with_oma,                                &day,  no_consent("pa")),
        ("nobody consented: everyone is listed", vec![],                                  &day,  everyone(GapReason::NoConsent)),
    ];
    for (name, consents, share, expected) in &rows {
        check_share(name, consents, share, expected);
    }
}

#[test]
fn a_share_without_items_still_needs_consent_in_force() {
    let empty = ProposedShare {
        items: BTreeSet::new(),
        ..share("2025-06-01")
    };
    let coverage = check_coverage(&requirement(), &all_three(), &empty);
    assert_eq!(coverage, everyone(expired("2024-12-31")));
    assert!(!coverage.is_covered());
}

#[test]
fn consent_records_and_coverage_serialize_in_snake_case_with_iso_dates() {
    let json = serde_json::to_value(consent("ma")).unwrap();
    assert_eq!(json["given_on"], "2024-01-01");
    assert_eq!(json["withdrawn_on"], serde_json::Value::Null);
    let back: RecordedConsent = serde_json::from_value(json).unwrap();
    assert_eq!(back, consent("ma"));

    let coverage = only(parent("ma"), expired("2024-12-31"));
    assert_eq!(
        serde_json::to_value(&coverage).unwrap(),
        serde_json::json!({
            "outcome": "not_covered",
            "gaps": [{
                "consenter": {"parent_with_authority": "ma"},
                "reason": {"expired": {"expired_on": "2024-12-31"}}
            }]
        })
    );
    let requirement = serde_json::to_value(requirement()).unwrap();
    assert_eq!(requirement["rule"], "twelve_to_fifteen");
    assert_eq!(requirement["age"], 13);
}
