use time::Date;
use time::macros::format_description;

use super::Regime::*;
use super::*;

fn d(iso: &str) -> Date {
    Date::parse(iso, format_description!("[year]-[month]-[day]")).unwrap()
}

fn part(regime: Regime, trigger_on: &str) -> DossierPart {
    DossierPart {
        regime,
        trigger_on: Some(d(trigger_on)),
    }
}

fn open(regime: Regime) -> DossierPart {
    DossierPart {
        regime,
        trigger_on: None,
    }
}

fn extension(until: &str, reason: &str) -> Extension {
    Extension {
        until: d(until),
        reason: ExtensionReason::new(reason).unwrap(),
    }
}

/// One row: a dossier of these parts and extensions; expect this destroy-by date.
fn check(name: &str, parts: &[DossierPart], extensions: &[Extension], expected: Option<&str>) {
    let expected = expected.map(d);
    assert_eq!(destroy_by_dossier(parts, extensions), expected, "{name}");
}

#[test]
fn each_regime_keeps_its_part_for_its_term_after_its_trigger() {
    #[rustfmt::skip]
    let rows = [
        // regime             trigger       destroy by
        (Wmo2015,             "2020-05-10", "2035-05-10"),
        (Jeugdwet,            "2020-05-10", "2040-05-10"),
        (Wgbo,                "2020-05-10", "2040-05-10"),
        (Participatiewet,     "2020-05-10", "2030-05-10"),
        (RefusedOrNotAdopted, "2020-05-10", "2025-05-10"),
    ];
    assert_eq!(rows.len(), Regime::ALL.len());
    for (regime, trigger, expected) in rows {
        assert_eq!(
            destroy_by(&part(regime, trigger)),
            Some(d(expected)),
            "{regime:?}"
        );
        check(
            &format!("{regime:?} alone"),
            &[part(regime, trigger)],
            &[],
            Some(expected),
        );
    }
}

#[test]
fn a_refused_request_is_kept_five_years_from_the_refusal() {
    let refused = [part(RefusedOrNotAdopted, "2023-11-30")];
    check("refused Wmo request", &refused, &[], Some("2028-11-30"));
}

#[test]
fn a_household_dossier_is_kept_for_the_longest_term_of_its_parts() {
    #[rustfmt::skip]
    let rows = [
        (
            "Wmo + Jeugdwet + Participatiewet: Jeugdwet is longest",
            vec![part(Wmo2015, "2022-03-01"), part(Jeugdwet, "2021-09-15"), part(Participatiewet, "2023-01-31")],
            "2041-09-15",
        ),
        (
            "a late-closed Wmo part outlasts an early Jeugdwet change",
            vec![part(Wmo2015, "2030-01-01"), part(Jeugdwet, "2020-01-01")],
            "2045-01-01",
        ),
        (
            "a refused request does not shorten the dossier",
            vec![part(Participatiewet, "2024-01-01"), part(RefusedOrNotAdopted, "2024-06-01")],
            "2034-01-01",
        ),
    ];
    for (name, parts, expected) in &rows {
        check(name, parts, &[], Some(expected));
    }
}

#[test]
fn a_dossier_with_a_part_whose_trigger_has_not_happened_has_no_destroy_by_date() {
    let extended = [extension("2060-01-01", "bezwaar loopt")];
    #[rustfmt::skip]
    let rows: [(&str, Vec<DossierPart>, &[Extension]); 4] = [
        ("Wmo case still open",   vec![open(Wmo2015), part(Jeugdwet, "2021-09-15")],        &[]),
        ("benefit still running", vec![part(Wmo2015, "2022-03-01"), open(Participatiewet)], &[]),
        ("even when extended",    vec![open(Wmo2015)],                                      &extended),
        ("no parts recorded",     vec![],                                                   &[]),
    ];
    for (name, parts, extensions) in &rows {
        check(name, parts, extensions, None);
    }
    assert_eq!(destroy_by(&open(Wgbo)), None);
}

#[test]
fn a_leap_day_trigger_reaches_its_term_on_1_march_of_a_common_year() {
    #[rustfmt::skip]
    let rows = [
        // regime             trigger       destroy by
        (Wmo2015,             "2012-02-29", "2027-03-01"),
        (Participatiewet,     "2016-02-29", "2026-03-01"),
        (RefusedOrNotAdopted, "2020-02-29", "2025-03-01"),
        (Jeugdwet,            "2024-02-29", "2044-02-29"),
        (Wgbo,                "2080-02-29", "2100-03-01"),
        (Wmo2015,             "2012-02-28", "2027-02-28"),
        (Wmo2015,             "2012-03-01", "2027-03-01"),
    ];
    for (regime, trigger, expected) in rows {
        let got = destroy_by(&part(regime, trigger));
        assert_eq!(got, Some(d(expected)), "{regime:?} from {trigger}");
    }
}

#[test]
fn adding_years_saturates_at_the_last_representable_date() {
    assert_eq!(add_years(d("9990-06-01"), 20), Date::MAX);
    assert_eq!(add_years(d("2000-01-01"), 0), d("2000-01-01"));
}

#[test]
fn an_extension_needs_a_reason_and_a_date_later_than_the_current_destroy_by_date() {
    let parts = [part(Wmo2015, "2020-05-10")]; // destroyed on 2035-05-10
    let earlier = [extension("2037-01-01", "goede zorg vereist het")];
    let not_later = |current: &str, requested: &str| {
        Err(ExtensionError::NotLater {
            current: d(current),
            requested: d(requested),
        })
    };
    type Row<'a> = (
        &'a str,
        &'a [Extension],
        &'a str,
        &'a str,
        Result<Date, ExtensionError>,
    );
    #[rustfmt::skip]
    let rows: [Row<'_>; 7] = [
        // name                            earlier   until         reason          result
        ("with a reason and a later date", &[],      "2036-01-01", "beroep loopt", Ok(d("2036-01-01"))),
        ("without a reason",               &[],      "2036-01-01", "",             Err(ExtensionError::EmptyReason)),
        ("with a blank reason",            &[],      "2036-01-01", "  \n",         Err(ExtensionError::EmptyReason)),
        ("to the computed date itself",    &[],      "2035-05-10", "beroep loopt", not_later("2035-05-10", "2035-05-10")),
        ("to an earlier date",             &[],      "2030-01-01", "beroep loopt", not_later("2035-05-10", "2030-01-01")),
        ("not past an earlier extension",  &earlier, "2036-01-01", "beroep loopt", not_later("2037-01-01", "2036-01-01")),
        ("past an earlier extension",      &earlier, "2038-01-01", "beroep loopt", Ok(d("2038-01-01"))),
    ];
    for (name, extensions, until, reason, expected) in &rows {
        let got = extend(&parts, extensions, d(until), reason).map(|e| e.until);
        assert_eq!(&got, expected, "{name}");
    }
    assert_eq!(
        extend(&[open(Wmo2015)], &[], d("2060-01-01"), "beroep loopt"),
        Err(ExtensionError::NoDestroyByDate)
    );
}

#[test]
fn an_extension_holds_the_dossier_until_a_later_change_outlives_it() {
    let extended = [extension("2045-01-01", "goede zorg vereist het")];
    #[rustfmt::skip]
    let rows = [
        ("extended past the Jeugdwet term",       part(Jeugdwet, "2020-01-01"), "2045-01-01"),
        ("a later change outlives the extension", part(Jeugdwet, "2026-01-01"), "2046-01-01"),
    ];
    for (name, part, expected) in rows {
        check(name, &[part], &extended, Some(expected));
    }
}

#[test]
fn a_blank_reason_does_not_deserialize() {
    let ok: Extension = serde_json::from_value(serde_json::json!({
        "until": "2040-01-01",
        "reason": "beroep loopt"
    }))
    .unwrap();
    assert_eq!(ok, extension("2040-01-01", "beroep loopt"));
    let blank = serde_json::from_value::<Extension>(serde_json::json!({
        "until": "2040-01-01",
        "reason": " "
    }));
    assert!(blank.is_err());
}

#[test]
fn parts_serialize_in_snake_case_with_iso_dates() {
    let parts = [part(Wmo2015, "2020-05-10"), open(RefusedOrNotAdopted)];
    let json = serde_json::to_value(parts).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"regime": "wmo2015", "trigger_on": "2020-05-10"},
            {"regime": "refused_or_not_adopted", "trigger_on": null}
        ])
    );
    let back: Vec<DossierPart> = serde_json::from_value(json).unwrap();
    assert_eq!(back, parts);
}

#[test]
fn each_regime_code_is_its_serde_name_and_reads_back() {
    for r in Regime::ALL {
        assert_eq!(serde_json::to_value(r).unwrap(), r.code());
        assert_eq!(Regime::from_code(r.code()), Some(r));
    }
    assert_eq!(Regime::from_code("wmo"), None);
}
