//! The schemas of the six document kinds, as static tables. Field names are English and
//! snake_case; Dutch legal terms (hulpvraag, doelbinding, …) are kept where they are the term of
//! art. Limits keep one document within the SPEC §6 memory budget.

/// The expected shape of a value.
#[derive(Debug)]
pub enum Shape {
    /// A map with exactly these fields.
    Map(&'static [Field]),
    /// A list of items of one shape, at most this many.
    List(&'static Shape, usize),
    /// A string or Automerge `Text`, at most this many characters.
    Text {
        /// The character limit.
        max: usize,
    },
    /// A string from this set (a value ending in `:` allows `<prefix>:<id>`).
    Enum(&'static [&'static str]),
    /// A calendar date `YYYY-MM-DD` (empty while unknown).
    Date,
    /// An RFC 3339 timestamp (empty while unknown).
    Timestamp,
    /// A boolean.
    Bool,
    /// An integer.
    Int,
}

/// One field of a map.
#[derive(Debug)]
pub struct Field {
    /// The key.
    pub name: &'static str,
    /// Its shape.
    pub shape: Shape,
    /// Whether it must be present.
    pub required: bool,
}

const fn req(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: true,
    }
}

const fn opt(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: false,
    }
}

const ID: Shape = Shape::Text { max: 64 };
const LINE: Shape = Shape::Text { max: 500 };
const PROSE: Shape = Shape::Text { max: 20_000 };
const IDS: Shape = Shape::List(&ID, 100);
const OWNER: Shape = Shape::Enum(&["resident", "network", "worker", "partner:"]);

const ACTION: Shape = Shape::Map(&[
    req("id", ID),
    req("description", LINE),
    opt("owner", OWNER),
    opt("due", Shape::Date),
    opt("done", Shape::Bool),
]);

const GOAL: Shape = Shape::Map(&[
    req("id", ID),
    req("title", LINE),
    opt("owner", OWNER),
    opt("status", Shape::Enum(&["open", "achieved", "dropped"])),
    opt("actions", Shape::List(&ACTION, 200)),
]);

/// `plan`: the resident's question, goals with actions, agreements, evaluation moments.
pub(super) const PLAN: &[Field] = &[
    req("hulpvraag", PROSE),
    req("goals", Shape::List(&GOAL, 200)),
    req(
        "agreements",
        Shape::List(
            &Shape::Map(&[
                req("id", ID),
                req("text", PROSE),
                opt("made_on", Shape::Date),
            ]),
            500,
        ),
    ),
    req(
        "evaluations",
        Shape::List(
            &Shape::Map(&[
                req("id", ID),
                req("date", Shape::Date),
                opt("summary", PROSE),
            ]),
            200,
        ),
    ),
];

const TRIAGE_MOMENTS: &[&str] = &[
    "aanmelding",
    "vraagverheldering",
    "plan",
    "evaluatie",
    "afsluiting",
    "overdracht",
    "share",
];

const ENTRY: Shape = Shape::Map(&[
    req("id", ID),
    req("kind", Shape::Enum(&["fact", "opinion"])),
    req(
        "category",
        Shape::Enum(&["analysis", "conversation", "work_note"]),
    ),
    opt("life_domain", LINE),
    req("subjects", IDS),
    req("text", PROSE),
    opt("author", ID),
    opt("at", Shape::Timestamp),
]);

const TRIAGE: Shape = Shape::Map(&[
    req("id", ID),
    req("moment", Shape::Enum(TRIAGE_MOMENTS)),
    req("purpose", PROSE),
    req("items", IDS),
    req("doelbinding", PROSE),
    req("proportionaliteit", PROSE),
    req("subsidiariteit", PROSE),
    req("decision", PROSE),
    req("discussed_with_resident", Shape::Bool),
    opt("not_discussed_reason", PROSE),
    opt("recipient", ID),
    opt("author", ID),
    opt("at", Shape::Timestamp),
]);

const CONSENT: Shape = Shape::Map(&[
    req("id", ID),
    req("subject", ID),
    req("given_by", IDS),
    req("recipient", ID),
    req("purpose", PROSE),
    req("items", IDS),
    req("given_on", Shape::Date),
    opt("expires_on", Shape::Date),
    opt("withdrawn_on", Shape::Date),
]);

const SAFETY: Shape = Shape::Map(&[
    req("id", ID),
    req(
        "ground",
        Shape::Enum(&["safety", "conflict_of_duties", "veilig_thuis"]),
    ),
    req("weighing", PROSE),
    req("recipient", ID),
    req("items", IDS),
    req("decided_by", ID),
    opt("approved_by", ID),
    opt("resident_informed_on", Shape::Date),
    opt("at", Shape::Timestamp),
]);

const STATEMENT: Shape = Shape::Map(&[
    req("id", ID),
    req("entry", ID),
    req("person", ID),
    req("text", PROSE),
    opt("at", Shape::Timestamp),
]);

/// `record`: the professional record.
pub(super) const RECORD: &[Field] = &[
    req("entries", Shape::List(&ENTRY, 10_000)),
    req("triage", Shape::List(&TRIAGE, 2_000)),
    req("consents", Shape::List(&CONSENT, 1_000)),
    req("safety", Shape::List(&SAFETY, 500)),
    req("statements", Shape::List(&STATEMENT, 1_000)),
];

const PERSON: Shape = Shape::Map(&[
    req("id", ID),
    req("name", LINE),
    opt("birth_date", Shape::Date),
    opt("gezag", IDS),
    opt(
        "relations",
        Shape::List(&Shape::Map(&[req("to", ID), req("kind", LINE)]), 50),
    ),
]);

/// `view/<person>`: the server's projection for one resident.
pub(super) const VIEW: &[Field] = &[
    req(
        "person",
        Shape::Map(&[
            opt("id", ID),
            opt("name", LINE),
            opt("birth_date", Shape::Date),
        ]),
    ),
    req(
        "entries",
        Shape::List(
            &Shape::Map(&[
                req("id", ID),
                req("kind", Shape::Enum(&["fact", "opinion"])),
                req(
                    "category",
                    Shape::Enum(&["analysis", "conversation", "work_note"]),
                ),
                req("text", PROSE),
                opt("at", Shape::Timestamp),
                opt("statements", Shape::List(&PROSE, 100)),
            ]),
            10_000,
        ),
    ),
];

/// `maatwerk/<n>`: the extract for one decision; workers write `request`, back office `decision`.
pub(super) const MAATWERK: &[Field] = &[
    req(
        "request",
        Shape::Map(&[
            opt("requested", PROSE),
            opt("assessed_need", PROSE),
            opt("proposed_voorziening", LINE),
            opt(
                "supporting_facts",
                Shape::List(&Shape::Map(&[req("entry", ID), req("text", PROSE)]), 200),
            ),
            opt("triage", ID),
            opt("submitted_on", Shape::Date),
        ]),
    ),
    req(
        "decision",
        Shape::Map(&[
            opt(
                "outcome",
                Shape::Enum(&["granted", "partially_granted", "refused"]),
            ),
            opt("motivation", PROSE),
            opt("decided_on", Shape::Date),
            opt("decided_by", ID),
        ]),
    ),
];

/// `partner/<org>`: DAT-information; workers write `assignment`, the partner `status`.
pub(super) const PARTNER: &[Field] = &[
    req(
        "assignment",
        Shape::Map(&[
            opt(
                "contact",
                Shape::Map(&[opt("name", LINE), opt("phone", LINE), opt("email", LINE)]),
            ),
            opt(
                "actions",
                Shape::List(
                    &Shape::Map(&[
                        req("id", ID),
                        req("description", LINE),
                        opt("agreed_on", Shape::Date),
                    ]),
                    100,
                ),
            ),
        ]),
    ),
    req(
        "status",
        Shape::Map(&[opt(
            "updates",
            Shape::List(
                &Shape::Map(&[
                    req("action", ID),
                    req(
                        "state",
                        Shape::Enum(&["accepted", "in_progress", "done", "declined"]),
                    ),
                    opt("note", LINE),
                    opt("at", Shape::Timestamp),
                ]),
                1_000,
            ),
        )]),
    ),
];

/// `meta`: server-written status, place, workers, persons, regimes and destroy-by date.
pub(super) const META: &[Field] = &[
    req("status", Shape::Enum(&["open", "closed"])),
    req("district", ID),
    req("team", ID),
    req("assigned", IDS),
    req("persons", Shape::List(&PERSON, 50)),
    req(
        "regimes",
        Shape::List(
            &Shape::Map(&[
                req(
                    "regime",
                    Shape::Enum(&[
                        "wmo2015",
                        "jeugdwet",
                        "wgbo",
                        "participatiewet",
                        "refused_or_not_adopted",
                    ]),
                ),
                opt("trigger", Shape::Date),
            ]),
            20,
        ),
    ),
    opt("destroy_by", Shape::Date),
];
