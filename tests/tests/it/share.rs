//! Sharing by decision (R12, R16, R17): a partner or the back office gets a document only on a
//! triage record for that recipient and those items, and on a ground that holds — consent from
//! everyone R16 names, or a weighing approved by a second worker of the team, which leaves an
//! "inform the resident" task open until done.

use std::time::Duration;

use automerge::{ObjType, ROOT, ReadDoc, transaction::Transactable};
use serde_json::{Value, json};

use crate::support::*;

pub(crate) async fn write_weighing(server: &TestServer, house: &Household) {
    let record = house.doc("record");
    let mut anna = Peer::open(server, "worker", record, "safety").await;
    anna.edit(record, |d| {
        let safety = d.get(ROOT, "safety").unwrap().unwrap().1;
        let s = d.insert_object(&safety, 0, ObjType::Map).unwrap();
        d.put(&s, "id", "w1").unwrap();
        d.put(&s, "ground", "safety").unwrap();
        d.put(
            &s,
            "weighing",
            "Acute zorg om Daan; toestemming vragen brengt hem in gevaar",
        )
        .unwrap();
        d.put(&s, "recipient", "veilig-thuis").unwrap();
        let items = d.put_object(&s, "items", ObjType::List).unwrap();
        d.insert(&items, 0, "contact").unwrap();
        d.put(&s, "decided_by", "anna").unwrap();
        // A triage record for the share itself.
        let triage = d.get(ROOT, "triage").unwrap().unwrap().1;
        let t = d.insert_object(&triage, 0, ObjType::Map).unwrap();
        d.put(&t, "id", "t-vt").unwrap();
        d.put(&t, "moment", "share").unwrap();
        d.put(&t, "recipient", "partner:veilig-thuis").unwrap();
        let ti = d.put_object(&t, "items", ObjType::List).unwrap();
        d.insert(&ti, 0, "contact").unwrap();
        for k in [
            "purpose",
            "doelbinding",
            "proportionaliteit",
            "subsidiariteit",
            "decision",
        ] {
            d.put(&t, k, "onderbouwd in de weging").unwrap();
        }
        d.put(&t, "discussed_with_resident", false).unwrap();
        d.put(
            &t,
            "not_discussed_reason",
            "zou de veiligheid van Daan in gevaar brengen",
        )
        .unwrap();
    })
    .await;
    anna.settle(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_share_needs_a_triage_record_and_the_consent_r16_requires() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let w = server.token("worker");
    let partners = format!("/api/v1/dossiers/{}/partners", house.id);
    let share = |triage: &str, subjects: Value| json!({ "org": "ggd", "triage": triage, "purpose": "dat-informatie", "subjects": subjects, "ground": "consent" });
    let (status, body) = server
        .api(&w, "POST", &partners, share("t-nope", json!(["p-sanne"])))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("triage_missing"))
    );
    // Daan is 11: his parent with authority must consent, and has not (only Sanne for herself).
    let (status, body) = server
        .api(&w, "POST", &partners, share("t-ggd", json!(["p-daan"])))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("consent_missing")),
        "{body}"
    );
    let (status, _) = server
        .api(&w, "POST", &partners, share("t-ggd", json!(["p-sanne"])))
        .await;
    assert_eq!(status, 201, "Sanne consented for herself");
    let (status, body) = server
        .api(
            &w,
            "POST",
            &format!("/api/v1/dossiers/{}/maatwerk", house.id),
            json!({ "triage": "t-ggd", "applicant": "p-sanne" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("triage_missing")),
        "a triage for the GGD is no triage for the back office"
    );
    let (status, _) = server
        .api(
            &server.token("colleague"),
            "POST",
            &partners,
            share("t-ggd", json!(["p-sanne"])),
        )
        .await;
    assert_eq!(status, 404, "a colleague who is not assigned cannot share");
    server.stop().await;
}

#[tokio::test]
async fn sharing_without_consent_needs_a_second_worker_and_leaves_a_task_to_inform_the_resident() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    write_weighing(&server, &house).await;
    let w = server.token("worker");
    let partners = format!("/api/v1/dossiers/{}/partners", house.id);
    let share = json!({ "org": "veilig-thuis", "triage": "t-vt", "purpose": "melding", "ground": "four_eyes", "weighing": "w1" });
    let (status, body) = server.api(&w, "POST", &partners, share.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("second_approval_missing"))
    );

    let approve = format!("/api/v1/dossiers/{}/weighings/w1/approve", house.id);
    let (status, _) = server.api(&w, "POST", &approve, Value::Null).await;
    assert_eq!(status, 403, "nobody approves their own weighing");
    let (status, _) = server
        .api(&server.token("zuid_worker"), "POST", &approve, Value::Null)
        .await;
    assert_eq!(
        status, 404,
        "nor a worker of another team, who is answered as for an unknown weighing"
    );
    let (status, _) = server
        .api(&server.token("colleague"), "POST", &approve, Value::Null)
        .await;
    assert_eq!(status, 204, "a second worker of the team approves");

    let (status, made) = server.api(&w, "POST", &partners, share).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["key"], "partner/veilig-thuis");
    let (_, tasks) = server
        .api(
            &w,
            "GET",
            &format!("/api/v1/dossiers/{}/tasks", house.id),
            Value::Null,
        )
        .await;
    assert_eq!(tasks[0]["kind"], "inform_resident");
    assert!(tasks[0]["done_at"].is_null());
    let task = tasks[0]["id"].as_i64().unwrap();
    // Sent six times at once, the task is done once: one 204, the others find it done.
    let done = format!("/api/v1/dossiers/{}/tasks/{task}/done", house.id);
    let answers =
        futures_util::future::join_all((0..6).map(|_| server.api(&w, "POST", &done, Value::Null)))
            .await;
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 404, 404, 404, 404, 404], "{answers:?}");
    let finished = server
        .state
        .hub
        .store()
        .audit_events(Some(house.id.parse().unwrap()))
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, e)| e.detail.as_deref() == Some(&format!("finished task {task}")))
        .count();
    assert_eq!(finished, 1, "one audit row for the one finishing");
    let (_, tasks) = server
        .api(
            &w,
            "GET",
            &format!("/api/v1/dossiers/{}/tasks", house.id),
            Value::Null,
        )
        .await;
    assert_eq!(tasks[0]["done_by"], "anna");
    server.stop().await;
}

/// `on`, `years` earlier (28 February when that day does not exist, which cannot happen for
/// multiples of 4 before 2100).
fn years_before(on: time::Date, years: i32) -> time::Date {
    time::Date::from_calendar_date(on.year() - years, on.month(), on.day()).unwrap_or_else(|_| {
        time::Date::from_calendar_date(on.year() - years, time::Month::February, 28).unwrap()
    })
}

fn iso(d: time::Date) -> String {
    d.format(regie_core::document::DATE).unwrap()
}

/// How a consent lapses, relative to today.
#[derive(Clone, Copy)]
enum Lapse {
    Never,
    WithdrawnToday,
    ExpiredYesterday,
    ExpiresToday,
}

/// A household whose children turn 12 today, turn 12 tomorrow and turn 16 today, with both
/// parents holding authority; and a triage record per recipient org.
async fn birthday_household(server: &TestServer, orgs: &[&str]) -> Household {
    let today = time::OffsetDateTime::now_utc().date();
    let parents = json!(["p-moeder", "p-vader"]);
    let house = create_dossier(
        server,
        json!([
            { "id": "p-moeder", "name": "Fatima El Amrani", "birth_date": "1986-04-02" },
            { "id": "p-vader", "name": "Youssef El Amrani", "birth_date": "1984-09-19" },
            { "id": "p-twaalf", "name": "Amira El Amrani", "gezag": parents,
              "birth_date": iso(years_before(today, 12)) },
            { "id": "p-elf", "name": "Samir El Amrani", "gezag": parents,
              "birth_date": iso(years_before(today.next_day().unwrap(), 12)) },
            { "id": "p-zestien", "name": "Nadia El Amrani", "gezag": parents,
              "birth_date": iso(years_before(today, 16)) }
        ]),
    )
    .await;
    let record = house.doc("record");
    let mut anna = Peer::open(server, "worker", record, "triage").await;
    let orgs: Vec<String> = orgs.iter().map(|o| (*o).to_owned()).collect();
    anna.edit(record, move |d| {
        let triage = d.get(ROOT, "triage").unwrap().unwrap().1;
        for (i, org) in orgs.iter().enumerate() {
            let t = d.insert_object(&triage, i, ObjType::Map).unwrap();
            d.put(&t, "id", format!("t-{org}")).unwrap();
            d.put(&t, "moment", "share").unwrap();
            d.put(&t, "recipient", format!("partner:{org}")).unwrap();
            let items = d.put_object(&t, "items", ObjType::List).unwrap();
            d.insert(&items, 0, "contact").unwrap();
            for k in [
                "purpose",
                "doelbinding",
                "proportionaliteit",
                "subsidiariteit",
                "decision",
            ] {
                d.put(&t, k, "afstemming over de zorg").unwrap();
            }
            d.put(&t, "discussed_with_resident", true).unwrap();
        }
    })
    .await;
    let others = anna.settle(Duration::from_millis(100)).await;
    assert!(
        others.is_empty(),
        "the triage records were accepted: {others:?}"
    );
    house
}

/// One share to try: the recipient org, the subject, the consents recorded (each a list of
/// givers), how they lapse, and the refusal expected (None: the share goes through).
type ConsentCase = (
    &'static str,
    &'static str,
    &'static [&'static [&'static str]],
    Lapse,
    Option<&'static str>,
);

const PARENTS: &[&str] = &["p-moeder", "p-vader"];
const MISSING: Option<&str> = Some("consent_missing");

#[rustfmt::skip]
const CONSENT_CASES: [ConsentCase; 11] = [
    // 12 today: the child and both parents.
    ("twaalf-ouders", "p-twaalf", &[PARENTS], Lapse::Never, MISSING),
    ("twaalf-kind", "p-twaalf", &[&["p-twaalf"]], Lapse::Never, MISSING),
    ("twaalf-samen", "p-twaalf", &[&["p-twaalf"], PARENTS], Lapse::Never, None),
    // 12 tomorrow: still the parents alone, but both of them.
    ("elf-ouders", "p-elf", &[PARENTS], Lapse::Never, None),
    ("elf-moeder", "p-elf", &[&["p-moeder"]], Lapse::Never, MISSING),
    // 16 today: the young person alone.
    ("zestien-zelf", "p-zestien", &[&["p-zestien"]], Lapse::Never, None),
    ("zestien-ouders", "p-zestien", &[PARENTS], Lapse::Never, MISSING),
    // An adult's own consent counts only while in force.
    ("ingetrokken", "p-moeder", &[&["p-moeder"]], Lapse::WithdrawnToday, MISSING),
    ("verlopen", "p-moeder", &[&["p-moeder"]], Lapse::ExpiredYesterday, MISSING),
    ("laatste-dag", "p-moeder", &[&["p-moeder"]], Lapse::ExpiresToday, None),
    ("geldig", "p-vader", &[&["p-vader"]], Lapse::Never, None),
];

#[tokio::test]
async fn who_must_consent_follows_the_childs_age_on_the_day_of_the_share() {
    let cases = CONSENT_CASES;
    let server = TestServer::new().await;
    let orgs: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let house = birthday_household(&server, &orgs).await;

    let today = time::OffsetDateTime::now_utc().date();
    let record = house.doc("record");
    let mut anna = Peer::open(&server, "worker", record, "consents").await;
    anna.edit(record, |d| {
        let consents = d.get(ROOT, "consents").unwrap().unwrap().1;
        for (org, subject, given, lapse, _) in cases {
            for (j, givers) in given.iter().enumerate() {
                let at = d.length(&consents);
                let c = d.insert_object(&consents, at, ObjType::Map).unwrap();
                d.put(&c, "id", format!("c-{org}-{j}")).unwrap();
                d.put(&c, "subject", subject).unwrap();
                let by = d.put_object(&c, "given_by", ObjType::List).unwrap();
                for (k, g) in givers.iter().enumerate() {
                    d.insert(&by, k, *g).unwrap();
                }
                d.put(&c, "recipient", org).unwrap();
                d.put(&c, "purpose", "dat-informatie").unwrap();
                let items = d.put_object(&c, "items", ObjType::List).unwrap();
                d.insert(&items, 0, "contact").unwrap();
                let month_ago = today - time::Duration::days(30);
                d.put(&c, "given_on", iso(month_ago)).unwrap();
                match lapse {
                    Lapse::Never => {}
                    Lapse::WithdrawnToday => d.put(&c, "withdrawn_on", iso(today)).unwrap(),
                    Lapse::ExpiredYesterday => d
                        .put(&c, "expires_on", iso(today.previous_day().unwrap()))
                        .unwrap(),
                    Lapse::ExpiresToday => d.put(&c, "expires_on", iso(today)).unwrap(),
                }
            }
        }
    })
    .await;
    let others = anna.settle(Duration::from_millis(100)).await;
    assert!(others.is_empty(), "the consents were accepted: {others:?}");

    let partners = format!("/api/v1/dossiers/{}/partners", house.id);
    for (org, subject, _, _, refusal) in cases {
        let (status, body) = server
            .api(
                &server.token("worker"),
                "POST",
                &partners,
                json!({ "org": org, "triage": format!("t-{org}"), "purpose": "dat-informatie",
                        "subjects": [subject], "ground": "consent" }),
            )
            .await;
        match refusal {
            Some(code) => assert_eq!(
                (status, body["error"]["code"].as_str()),
                (403, Some(code)),
                "{org}: {body}"
            ),
            None => {
                assert_eq!(status, 201, "{org}: {body}");
                assert_eq!(body["key"], format!("partner/{org}"));
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn an_incomplete_triage_or_items_beyond_it_stop_a_share_on_both_paths() {
    let server = TestServer::new().await;
    let house = seed_household(&server).await;
    let record = house.doc("record");
    let mut anna = Peer::open(&server, "worker", record, "triage").await;
    // Two triage records that leave something out: the subsidiarity argument (back office), and
    // whether it was discussed with the resident or why not (GGD).
    anna.edit(record, |d| {
        let triage = d.get(ROOT, "triage").unwrap().unwrap().1;
        for (i, (id, recipient, subsidiariteit, discussed)) in [
            ("t-bo-half", "backoffice", "", true),
            (
                "t-ggd-half",
                "partner:ggd",
                "niet anders te bereiken",
                false,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let t = d.insert_object(&triage, i, ObjType::Map).unwrap();
            d.put(&t, "id", id).unwrap();
            d.put(&t, "moment", "share").unwrap();
            d.put(&t, "recipient", recipient).unwrap();
            let items = d.put_object(&t, "items", ObjType::List).unwrap();
            d.insert(&items, 0, "contact").unwrap();
            for k in ["purpose", "doelbinding", "proportionaliteit", "decision"] {
                d.put(&t, k, "onderbouwd").unwrap();
            }
            d.put(&t, "subsidiariteit", subsidiariteit).unwrap();
            d.put(&t, "discussed_with_resident", discussed).unwrap();
        }
    })
    .await;
    anna.settle(Duration::from_millis(100)).await;

    let w = server.token("worker");
    let maatwerk = format!("/api/v1/dossiers/{}/maatwerk", house.id);
    let partners = format!("/api/v1/dossiers/{}/partners", house.id);
    let ggd = |triage: &str, items: Value| json!({ "org": "ggd", "triage": triage, "purpose": "dat-informatie", "items": items, "subjects": ["p-sanne"], "ground": "consent" });
    for (path, body, expected) in [
        (
            &maatwerk,
            json!({ "triage": "t-bo-half", "applicant": "p-sanne" }),
            (403, Some("triage_incomplete")),
        ),
        (
            &maatwerk,
            json!({ "triage": "t-nope", "applicant": "p-sanne" }),
            (403, Some("triage_missing")),
        ),
        (
            &maatwerk,
            json!({ "triage": "t-backoffice", "applicant": "p-sanne", "facts": ["hulpvraag", "gezondheid"] }),
            (403, Some("triage_missing")),
        ),
        (
            &partners,
            ggd("t-ggd-half", json!([])),
            (403, Some("triage_incomplete")),
        ),
        (
            &partners,
            ggd("t-ggd", json!(["contact", "actie", "diagnose"])),
            (403, Some("triage_missing")),
        ),
        // Within the triage's items, on a complete record, both paths go through.
        (
            &maatwerk,
            json!({ "triage": "t-backoffice", "applicant": "p-sanne" }),
            (201, None),
        ),
        (&partners, ggd("t-ggd", json!(["contact"])), (201, None)),
    ] {
        let (status, got) = server.api(&w, "POST", path, body.clone()).await;
        assert_eq!(
            (status, got["error"]["code"].as_str()),
            expected,
            "{body}: {got}"
        );
    }
    server.stop().await;
}
