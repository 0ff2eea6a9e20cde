//! `regie-server demo`: a server on a demo store in the current directory. On first run it
//! creates, through the real HTTP API, one district with one team, two assigned workers, a
//! household dossier with a resident and a child, a back-office user, a chain partner, a team
//! manager and a privacy officer; then it prints a token and the document URLs per role and
//! writes the same as JSON to `regie-demo.json`, so scripts can use them.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use regie_core::principal::{Claims, Role};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::AppState;
use crate::config::{DemoArgs, ServeArgs, StoreArgs};

const ISSUER: &str = "regie-demo";
const AUDIENCE: &str = "regie";
/// Demo tokens last a month so a demo survives restarts.
const TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

fn claims(
    sub: &str,
    role: Role,
    district: Option<&str>,
    team: Option<&str>,
    org: Option<&str>,
    person: Option<&str>,
) -> Claims {
    let s = |v: Option<&str>| v.map(str::to_owned);
    Claims {
        sub: sub.into(),
        role,
        district: s(district),
        team: s(team),
        org: s(org),
        person: s(person),
        citywide: false,
    }
}

/// The demo cast: (label in regie-demo.json, claims). The one list of the demo's users: the
/// process tests and the log scans read it from here.
pub fn cast() -> Vec<(&'static str, Claims)> {
    vec![
        (
            "worker",
            claims(
                "anna.visser",
                Role::Worker,
                Some("noord"),
                Some("wijkteam-noord"),
                None,
                None,
            ),
        ),
        (
            "worker2",
            claims(
                "bram.dekker",
                Role::Worker,
                Some("noord"),
                Some("wijkteam-noord"),
                None,
                None,
            ),
        ),
        (
            "resident",
            claims(
                "sanne.bakker",
                Role::Resident,
                None,
                None,
                None,
                Some("p-sanne"),
            ),
        ),
        (
            "backoffice",
            claims(
                "bo.meijer",
                Role::Backoffice,
                Some("noord"),
                None,
                None,
                None,
            ),
        ),
        (
            "partner",
            claims("ggd.smit", Role::Partner, None, None, Some("ggd"), None),
        ),
        (
            "manager",
            claims(
                "mia.manager",
                Role::Manager,
                Some("noord"),
                Some("wijkteam-noord"),
                None,
                None,
            ),
        ),
        (
            "privacy_officer",
            claims("fg.de-vries", Role::PrivacyOfficer, None, None, None, None),
        ),
    ]
}

/// The demo household: (person id, name, birth date).
const HOUSEHOLD: [(&str, &str, &str); 2] = [
    ("p-sanne", "Sanne Bakker", "1988-03-14"),
    ("p-daan", "Daan Bakker", "2015-06-01"),
];
/// The worker the GGD may contact, and how.
const CONTACT: (&str, &str) = ("Anna Visser", "020 555 0101");

/// Every piece of personal data the demo writes (the cast's user names, the household's names,
/// the contact's name and phone): what a scan of logs or metrics must never find.
pub fn personal_data() -> Vec<String> {
    let mut out: Vec<String> = cast().into_iter().map(|(_, c)| c.sub).collect();
    out.extend(HOUSEHOLD.iter().map(|(_, name, _)| (*name).to_owned()));
    out.extend([CONTACT.0.to_owned(), CONTACT.1.to_owned()]);
    out
}

/// The HS256 secret of this demo store, made once and kept beside it.
fn secret(dir: &Path) -> anyhow::Result<String> {
    let file = dir.join("demo-secret");
    if let Ok(s) = std::fs::read_to_string(&file) {
        return Ok(s.trim().to_owned());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let s = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    std::fs::write(&file, &s).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(s)
}

async fn call(
    state: &AppState,
    token: &str,
    method: &str,
    uri: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))?;
    let res = crate::app(state.clone()).oneshot(req).await?;
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await?;
    if !status.is_success() {
        bail!(
            "{method} {uri} failed with {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(if bytes.is_empty() || status == StatusCode::NO_CONTENT {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)?
    })
}

/// Creates the demo household through the API unless the store already has dossiers.
pub async fn seed(state: &AppState, token_of: impl Fn(&str) -> String) -> anyhow::Result<()> {
    if !state.hub.dossiers().is_empty() {
        return Ok(());
    }
    let worker = token_of("worker");
    let created = call(
        state,
        &worker,
        "POST",
        "/api/v1/dossiers",
        json!({
            "district": "noord",
            "team": "wijkteam-noord",
            "assigned": ["anna.visser", "bram.dekker"],
            "persons": [
                { "id": HOUSEHOLD[0].0, "name": HOUSEHOLD[0].1, "birth_date": HOUSEHOLD[0].2 },
                { "id": HOUSEHOLD[1].0, "name": HOUSEHOLD[1].1, "birth_date": HOUSEHOLD[1].2,
                  "gezag": [HOUSEHOLD[0].0] }
            ],
            "resident_agreed": true,
            "agreed_on": time::OffsetDateTime::now_utc().date().format(regie_core::document::DATE)?,
        }),
    )
    .await?;
    let id = created["id"]
        .as_str()
        .context("created dossier has an id")?
        .to_owned();
    call(
        state,
        &worker,
        "POST",
        &format!("/api/v1/dossiers/{id}/residents"),
        json!({ "person": "p-sanne" }),
    )
    .await?;
    record_sharing_decisions(state, id.parse()?, "anna.visser").await?;
    call(
        state,
        &worker,
        "POST",
        &format!("/api/v1/dossiers/{id}/partners"),
        partner_share(),
    )
    .await?;
    call(
        state,
        &worker,
        "POST",
        &format!("/api/v1/dossiers/{id}/maatwerk"),
        maatwerk_request(),
    )
    .await?;
    Ok(())
}

/// The partner share of the demo household: DAT-information to the GGD on Sanne's consent —
/// that a worker is involved, how to reach them, and the action agreed for the GGD.
pub fn partner_share() -> Value {
    json!({
        "org": "ggd", "triage": "t-ggd", "purpose": "dat-informatie",
        "subjects": ["p-sanne"], "ground": "consent",
        "contact": { "name": format!("{}, wijkteam Noord", CONTACT.0), "phone": CONTACT.1 },
        "actions": [{ "id": "a-ggd-1", "description": "Huisbezoek jeugdverpleegkundige" }]
    })
}

/// The demo household's maatwerk request: Sanne applies for help with her debts.
pub fn maatwerk_request() -> Value {
    json!({
        "triage": "t-backoffice", "applicant": "p-sanne",
        "requested": "Hulp bij het op orde brengen van de financiën",
        "assessed_need": "Begeleiding bij schuldregeling, twee uur per week",
        "proposed_voorziening": "Schuldhulpverlening"
    })
}

/// Writes into the household's `record` what a worker records before sharing (R12, R16): a
/// triage decision for the back office (`t-backoffice`), one for the GGD (`t-ggd`), and Sanne's
/// consent to tell the GGD that a worker is involved and how to reach them.
pub async fn record_sharing_decisions(
    state: &AppState,
    dossier: regie_core::id::DossierId,
    worker: &str,
) -> anyhow::Result<()> {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc};
    let record = state
        .hub
        .dossier(dossier)
        .and_then(|e| {
            e.documents
                .get(&regie_core::id::DocumentKey::Record)
                .copied()
        })
        .context("the dossier has a record")?;
    let today = time::OffsetDateTime::now_utc()
        .date()
        .format(regie_core::document::DATE)?;
    let worker = worker.to_owned();
    state
        .hub
        .server_write(record, move |tx| {
            let strings = |tx: &mut automerge::transaction::Transaction<'_>,
                           obj: &automerge::ObjId,
                           key: &str,
                           values: &[&str]| {
                let l = tx.put_object(obj, key, ObjType::List)?;
                for (i, v) in values.iter().enumerate() {
                    tx.insert(&l, i, *v)?;
                }
                Ok::<_, automerge::AutomergeError>(())
            };
            let triage = tx.get(ROOT, "triage")?.expect("record skeleton").1;
            for (i, (id, recipient, items, purpose)) in [
                (
                    "t-backoffice",
                    "backoffice",
                    ["hulpvraag", "financien"],
                    "besluit maatwerkvoorziening schuldhulp",
                ),
                (
                    "t-ggd",
                    "partner:ggd",
                    ["contact", "actie"],
                    "afstemming met de GGD over de gezinssituatie",
                ),
            ]
            .into_iter()
            .enumerate()
            {
                let t = tx.insert_object(&triage, i, ObjType::Map)?;
                tx.put(&t, "id", id)?;
                tx.put(&t, "moment", "share")?;
                tx.put(&t, "recipient", recipient)?;
                strings(tx, &t, "items", &items)?;
                tx.put(&t, "purpose", purpose)?;
                tx.put(&t, "doelbinding", "alleen voor dit doel")?;
                tx.put(&t, "proportionaliteit", "alleen de genoemde gegevens")?;
                tx.put(
                    &t,
                    "subsidiariteit",
                    "niet zonder deze gegevens te bereiken",
                )?;
                tx.put(&t, "decision", "delen")?;
                tx.put(&t, "discussed_with_resident", true)?;
                tx.put(&t, "author", worker.as_str())?;
            }
            let consents = tx.get(ROOT, "consents")?.expect("record skeleton").1;
            let c = tx.insert_object(&consents, 0, ObjType::Map)?;
            tx.put(&c, "id", "c-ggd")?;
            tx.put(&c, "subject", "p-sanne")?;
            strings(tx, &c, "given_by", &["p-sanne"])?;
            tx.put(&c, "recipient", "ggd")?;
            tx.put(&c, "purpose", "dat-informatie")?;
            strings(tx, &c, "items", &["contact", "actie"])?;
            tx.put(&c, "given_on", today.as_str())?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// The cast as the web app's demo login lists it: label, user, role and token.
fn demo_logins(tokens: &BTreeMap<&str, (String, Claims)>) -> Value {
    tokens
        .iter()
        .map(|(label, (token, c))| json!({ "label": label, "user": c.sub, "role": c.role, "token": token }))
        .collect()
}

/// `regie-server demo`.
pub async fn run(
    args: DemoArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    crate::install_crypto_provider();
    let dir = Path::new("regie-data");
    let secret = secret(dir)?;
    let serve = ServeArgs {
        listen: args.listen,
        store: StoreArgs::sqlite(dir),
        jwt_secret: Some(secret),
        jwt_public_key: None,
        jwks: None,
        jwt_issuer: Some(ISSUER.into()),
        jwt_audience: Some(AUDIENCE.into()),
        tls_cert: None,
        tls_key: None,
        hot_documents: 10_000,
        oversight: args.oversight.clone(),
        limits: Default::default(),
    };
    let state = crate::state(&serve).await?;
    let tokens: BTreeMap<&str, (String, Claims)> = cast()
        .into_iter()
        .map(|(label, c)| Ok((label, (state.auth.mint(&c, TOKEN_TTL)?, c))))
        .collect::<anyhow::Result<_>>()?;
    seed(&state, |label| tokens[label].0.clone())
        .await
        .context("cannot create the demo dossier")?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; pass --listen 127.0.0.1:<free port>",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let mut roles = serde_json::Map::new();
    println!("Regie demo on http://{addr}  (WebSocket: ws://{addr}/sync?token=…)\n");
    for (label, (token, c)) in &tokens {
        let docs = call(&state, token, "GET", "/api/v1/me/documents", Value::Null).await?;
        println!("{label} ({}):\n  token: {token}", c.sub);
        for d in docs.as_array().into_iter().flatten() {
            println!(
                "  {:<16} {:<5} {}",
                d["key"].as_str().unwrap_or(""),
                d["access"].as_str().unwrap_or(""),
                d["url"].as_str().unwrap_or("")
            );
        }
        roles.insert(
            (*label).into(),
            json!({ "user": c.sub, "role": c.role, "token": token, "documents": docs }),
        );
    }
    let out = json!({ "server": format!("http://{addr}"), "sync": format!("ws://{addr}/sync"), "roles": roles });
    crate::webapp::set_demo_logins(demo_logins(&tokens));
    std::fs::write("regie-demo.json", serde_json::to_string_pretty(&out)?)
        .context("cannot write regie-demo.json")?;
    println!("\nWrote regie-demo.json. Ctrl-C stops the server; the store stays in ./regie-data.");
    crate::run(listener, state, None, shutdown).await
}
