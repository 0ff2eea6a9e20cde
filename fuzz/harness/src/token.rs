//! Target `token`: `regie_server::auth::Authenticator` (HS256, with issuer and audience) on
//! arbitrary strings, and on tokens correctly signed with its secret whose header and claims
//! are arbitrary (so that the claim checks and the conversion into a principal are reached);
//! and `bearer_token` on arbitrary `Authorization` headers and query strings.
//!
//! Byte 0 picks the mode: raw token (0), signed token (1), bearer extraction (2, 3).

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use regie_server::auth::{Authenticator, bearer_token};
use serde_json::{Map, Value, json};

const SECRET: &str = "fuzzing-secret-of-at-least-32-bytes!";
const ISSUER: &str = "https://idp.regie.test";
const AUDIENCE: &str = "regie";

fn authenticator() -> &'static Authenticator {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    AUTH.get_or_init(|| Authenticator::hs256(SECRET, ISSUER, AUDIENCE))
}

/// Authenticates or extracts a token from `data`; see the module documentation.
///
/// # Panics
/// If authentication or extraction panics, a principal comes out that the signed claims did
/// not name, or an extracted token is not part of its input.
pub fn token(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            let _ = authenticator().authenticate_until(&String::from_utf8_lossy(rest));
        }
        1 => {
            let _ = signed(&mut Unstructured::new(rest));
        }
        _ => bearer(rest),
    }
}

fn signed(u: &mut Unstructured<'_>) -> Result<()> {
    let header = match u.int_in_range(0..=3u8)? {
        0 => u.arbitrary::<&str>()?.to_owned(),
        1 => json!({"alg": "HS256", "typ": "JWT", "kid": u.arbitrary::<&str>()?}).to_string(),
        2 => json!({"alg": u.arbitrary::<&str>()?}).to_string(),
        _ => json!({"alg": "HS256", "typ": "JWT"}).to_string(),
    };
    let mut claims = Map::new();
    for name in [
        "sub", "role", "district", "team", "org", "person", "citywide", "exp", "nbf", "iat", "iss",
        "aud",
    ] {
        if u.ratio(1, 8)? {
            continue;
        }
        claims.insert(name.to_owned(), claim(u, name)?);
    }
    let payload = if u.ratio(1, 16)? {
        u.arbitrary::<&str>()?.to_owned()
    } else {
        Value::Object(claims.clone()).to_string()
    };
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .expect("HS256 signs anything");
    let token = format!("{message}.{signature}");
    if let Ok((principal, _)) = authenticator().authenticate_until(&token) {
        assert_eq!(
            Some(principal.user.as_str()),
            claims.get("sub").and_then(Value::as_str),
            "the principal is not the token's subject"
        );
        assert_eq!(
            Some(principal.role.as_str()),
            claims.get("role").and_then(Value::as_str),
            "the principal's role is not the token's"
        );
    }
    Ok(())
}

/// A value for claim `name`: mostly a plausible one, sometimes of the wrong type or range.
fn claim(u: &mut Unstructured<'_>, name: &str) -> Result<Value> {
    let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(i64::MAX);
    if u.ratio(1, 4)? {
        return Ok(match u.int_in_range(0..=7u8)? {
            0 => Value::Null,
            1 => Value::Bool(u.arbitrary()?),
            2 => json!(u.arbitrary::<i64>()?),
            3 => json!(u.arbitrary::<u64>()?),
            4 => json!(u.arbitrary::<f64>()?),
            5 => json!([u.arbitrary::<&str>()?]),
            6 => json!({"x": u.arbitrary::<&str>()?}),
            _ => json!(u.arbitrary::<&str>()?),
        });
    }
    let pick =
        |u: &mut Unstructured<'_>, pool: &[&str]| -> Result<Value> { Ok(json!(*u.choose(pool)?)) };
    match name {
        "sub" => pick(u, &["worker-1", "resident-1", "a b", "", "x/y"]),
        "role" => pick(
            u,
            &[
                "worker",
                "resident",
                "backoffice",
                "partner",
                "manager",
                "privacy_officer",
                "admin",
                "root",
            ],
        ),
        "district" => pick(u, &["noord", "", "zuid/oost"]),
        "team" => pick(u, &["wijkteam-noord", ""]),
        "org" => pick(u, &["org-1", ""]),
        "person" => pick(u, &["p-1", ""]),
        "citywide" => Ok(Value::Bool(u.arbitrary()?)),
        "exp" | "nbf" | "iat" => Ok(json!(now.saturating_add(i64::from(u.arbitrary::<i32>()?)))),
        "iss" => pick(u, &[ISSUER, "https://evil.test"]),
        _ => Ok(match u.int_in_range(0..=2u8)? {
            0 => json!(AUDIENCE),
            1 => json!([AUDIENCE, "other"]),
            _ => json!("other"),
        }),
    }
}

fn bearer(rest: &[u8]) {
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let (authorization, query) = (&rest[..split], rest.get(split + 1..));
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(authorization) {
        headers.insert(header::AUTHORIZATION, value);
    }
    let query = query.map(String::from_utf8_lossy);
    if let Some(token) = bearer_token(&headers, query.as_deref()) {
        assert!(!token.is_empty(), "an empty bearer token was extracted");
        let in_header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains(token));
        let in_query = query.as_deref().is_some_and(|q| q.contains(token));
        assert!(
            in_header || in_query,
            "the extracted token is not in the request"
        );
    }
}

/// A valid token of each shape, an expired one, and a few requests carrying one.
pub fn token_seeds() -> Vec<Vec<u8>> {
    let claims = regie_core::principal::Claims {
        sub: "worker-1".into(),
        role: regie_core::principal::Role::Worker,
        district: Some("noord".into()),
        team: Some("wijkteam-noord".into()),
        org: None,
        person: None,
        citywide: false,
    };
    let valid = authenticator()
        .mint(&claims, std::time::Duration::from_secs(3600))
        .expect("an HS256 authenticator mints");
    let mut out = vec![
        [&[0u8][..], valid.as_bytes()].concat(),
        [&[0u8][..], b"eyJhbGciOiJub25lIn0.e30."].concat(),
        [&[2u8][..], format!("Bearer {valid}").as_bytes()].concat(),
        [&[2u8][..], format!("\ntoken={valid}&x=1").as_bytes()].concat(),
        [&[3u8][..], b"bearer  \t x \nfoo=bar&token=&token=y"].concat(),
    ];
    let mut x: u64 = 0x1234_5678_9abc_def1;
    for _ in 0..16 {
        let mut seed = vec![1u8];
        seed.extend((0..64).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        }));
        out.push(seed);
    }
    out
}
