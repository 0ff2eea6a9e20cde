//! The register of processing activities (AVG art. 30; R25), generated from what the server is
//! configured with rather than written by hand: one activity per legal regime Regie keeps
//! dossier parts under (their retention terms come from `regie_core::retention`, R23, so the
//! register cannot disagree with the destruction it describes), with purposes, categories of
//! persons and data, recipients — the audiences of SPEC §2 — and the technical and
//! organisational measures this build enforces. The controller's name and contact come from the
//! configuration (`--controller-name`, `--controller-contact`). Served as JSON and as a
//! printable Dutch page.

use maud::{DOCTYPE, PreEscaped, html};
use regie_core::retention::Regime;
use serde::Serialize;
use utoipa::ToSchema;

/// The register.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProcessingRegister {
    /// The controller (verwerkingsverantwoordelijke).
    pub controller: String,
    /// How to reach the controller and the privacy officer.
    pub contact: String,
    /// One entry per legal regime.
    pub activities: Vec<Activity>,
    /// The measures that apply to every activity (art. 32).
    pub measures: Vec<String>,
    /// Transfers outside the EEA: none.
    pub third_countries: String,
}

/// One processing activity.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Activity {
    /// The regime's code in `meta` (`wmo2015`, …).
    pub regime: String,
    /// Its name.
    pub name: String,
    /// The legal basis (art. 6 and 9 AVG with the sector law).
    pub legal_basis: String,
    /// Purposes.
    pub purposes: Vec<String>,
    /// Categories of persons.
    pub persons: Vec<String>,
    /// Categories of data.
    pub data: Vec<String>,
    /// Recipients.
    pub recipients: Vec<String>,
    /// How long, from what moment (R23).
    pub retention: String,
    /// The term in years.
    pub retention_years: u16,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn activity(regime: Regime) -> Activity {
    let (name, basis, purpose, trigger) = match regime {
        Regime::Wmo2015 => (
            "Maatschappelijke ondersteuning (Wmo 2015)",
            "art. 6 lid 1 sub e AVG; Wmo 2015 art. 2.3.2 en 5.2.1; art. 9 lid 2 sub h AVG (gezondheid)",
            "onderzoek naar en ondersteuning bij zelfredzaamheid en participatie",
            "na het sluiten van het dossier",
        ),
        Regime::Jeugdwet => (
            "Jeugdhulp (Jeugdwet)",
            "art. 6 lid 1 sub e AVG; Jeugdwet art. 2.3 en 7.3.8",
            "toeleiding naar en inzet van jeugdhulp",
            "na de laatste wijziging",
        ),
        Regime::Wgbo => (
            "Hulpverlening als behandelingsovereenkomst (WGBO)",
            "art. 6 lid 1 sub b en c AVG; BW art. 7:454",
            "goede hulpverlening aan de bewoner",
            "na de laatste wijziging",
        ),
        Regime::Participatiewet => (
            "Bestaanszekerheid (Participatiewet)",
            "art. 6 lid 1 sub e AVG; Participatiewet art. 64",
            "vaststellen van en ondersteunen bij recht op bijstand",
            "na het einde van de uitkering",
        ),
        Regime::RefusedOrNotAdopted => (
            "Afgewezen aanvragen en niet vastgestelde plannen",
            "art. 6 lid 1 sub c en e AVG; Archiefwet",
            "verantwoording van afwijzingen",
            "na het besluit of de afwijzing",
        ),
    };
    let years = regime.term_years();
    Activity {
        regime: regime.code().to_owned(),
        name: name.to_owned(),
        legal_basis: basis.to_owned(),
        purposes: strings(&[
            purpose,
            "vastleggen van triagebesluiten over delen en doel (R12)",
            "verantwoording en toezicht (logging, R9)",
        ]),
        persons: strings(&[
            "bewoners en hun gezinsleden, ook minderjarigen",
            "medewerkers van het wijkteam",
        ]),
        data: strings(&[
            "naam, geboortedatum, gezinsrelaties en gezag",
            "hulpvraag, plan, doelen en afspraken",
            "analyse per leefgebied, feiten en meningen gescheiden (R14), werkaantekeningen",
            "gezondheid en andere bijzondere persoonsgegevens voor zover nodig",
            "toestemmingen, veiligheidsafwegingen, eigen verklaringen",
        ]),
        recipients: strings(&[
            "de twee toegewezen medewerkers van het wijkteam (R1)",
            "de bewoner zelf, alleen eigen gegevens (R7)",
            "de backoffice, alleen het uittreksel voor een maatwerkbesluit (R6)",
            "ketenpartners, alleen DAT-informatie, met toestemming of na afweging met vier ogen (R5, R16, R17)",
        ]),
        retention: format!("{years} jaar {trigger} (R23)"),
        retention_years: years,
    }
}

/// The register for this configuration.
pub fn register(controller: &str, contact: &str) -> ProcessingRegister {
    ProcessingRegister {
        controller: controller.to_owned(),
        contact: contact.to_owned(),
        activities: Regime::ALL.into_iter().map(activity).collect(),
        measures: strings(&[
            "per doelgroep een apart document: wie iets niet mag lezen, ontvangt het nooit (I1)",
            "elke schrijfactie gecontroleerd tegen de rol; geweigerde wijzigingen in quarantaine (I2)",
            "elke inzage, wijziging en export gelogd in een hash-keten volgens NEN 7513 (I3)",
            "één autorisatiebeleid voor server en apparaten (I5)",
            "noodtoegang alleen met reden, tijdgebonden en maandelijks gerapporteerd (R2, R9)",
            "vernietiging na de bewaartermijn met bewijs zonder inhoud (R23, I6)",
            "kleine aantallen in rapportages onderdrukt (R27)",
            "versleuteld transport (TLS)",
        ]),
        third_countries: "geen doorgifte buiten de EER".to_owned(),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#111}\
table{border-collapse:collapse;margin:0 0 1.5rem;width:100%}\
th,td{border:1px solid #999;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#eee;width:14rem}section{break-inside:avoid-page}@media print{body{margin:0}}";

/// The register as a printable Dutch page.
pub fn html_page(r: &ProcessingRegister) -> String {
    let list = |items: &[String]| html! { ul { @for i in items { li { (i) } } } };
    html! {
        (DOCTYPE)
        html lang="nl" {
            head {
                meta charset="utf-8";
                title { "Register van verwerkingsactiviteiten" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Register van verwerkingsactiviteiten (art. 30 AVG)" }
                p { "Verwerkingsverantwoordelijke: " (r.controller) ". Contact: " (r.contact) "." }
                @for a in &r.activities {
                    section {
                        h2 { (a.name) }
                        table { tbody {
                            tr { th { "Grondslag" } td { (a.legal_basis) } }
                            tr { th { "Doelen" } td { (list(&a.purposes)) } }
                            tr { th { "Betrokkenen" } td { (list(&a.persons)) } }
                            tr { th { "Gegevens" } td { (list(&a.data)) } }
                            tr { th { "Ontvangers" } td { (list(&a.recipients)) } }
                            tr { th { "Bewaartermijn" } td { (a.retention) } }
                        } }
                    }
                }
                h2 { "Beveiligingsmaatregelen" }
                (list(&r.measures))
                p { "Doorgifte buiten de EER: " (r.third_countries) "." }
            }
        }
    }
    .into_string()
}
