//! Tests of token authentication: HS256 round trips for every role, each way a token can be
//! refused (time, issuer, audience, signature, `alg: none`, algorithm confusion, unknown keys,
//! claims), RS256/RS384/ES256/ES384 through PEM files and JWKS files and URLs, bearer-token
//! extraction, and start-up configuration errors. Key pairs live in `tests/keys` (see its
//! README); tokens are signed with the private keys through jsonwebtoken's `EncodingKey`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use regie_core::principal::{Claims, ClaimsError, Principal, Role};
use serde_json::{Value, json};

use super::*;

const SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
const ISSUER: &str = "https://login.gemeente.test";
const AUDIENCE: &str = "regie";

fn keys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys")
}

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(keys_dir().join(name)).expect("test key file")
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn signer(private_pem: &str) -> EncodingKey {
    let pem = key_file(private_pem);
    if private_pem.starts_with("rsa") {
        EncodingKey::from_rsa_pem(&pem).expect("RSA private key")
    } else {
        EncodingKey::from_ec_pem(&pem).expect("EC private key")
    }
}

/// Valid claims for each role, with only the ids that role needs.
fn claims_for(role: Role) -> Claims {
    let mut c = Claims {
        sub: format!("user-{}", role.as_str()),
        role,
        district: None,
        team: None,
        org: None,
        person: None,
        citywide: false,
    };
    match role {
        Role::Worker => {
            c.team = Some("wijkteam-noord".into());
            c.district = Some("noord".into());
        }
        Role::Manager => c.team = Some("wijkteam-noord".into()),
        Role::Resident => c.person = Some("p-1".into()),
        Role::Partner => c.org = Some("schuldhulp".into()),
        Role::Backoffice => c.citywide = true,
        Role::PrivacyOfficer | Role::Admin => {}
    }
    c
}

fn worker() -> Claims {
    claims_for(Role::Worker)
}

/// A full, valid payload: the claims plus iss, aud, iat, nbf and exp (five minutes).
fn payload(claims: &Claims) -> Value {
    let mut p = serde_json::to_value(claims).expect("claims serialise");
    let t = now();
    p["iss"] = json!(ISSUER);
    p["aud"] = json!(AUDIENCE);
    p["iat"] = json!(t);
    p["nbf"] = json!(t);
    p["exp"] = json!(t + 300);
    p
}

fn sign(alg: Algorithm, kid: Option<&str>, payload: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, payload, key).expect("test token signs")
}

fn hs256(payload: &Value) -> String {
    sign(
        Algorithm::HS256,
        None,
        payload,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
}

/// A token assembled by hand, for headers jsonwebtoken refuses to produce.
fn hand_built(header: &Value, payload: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
    format!("{}.{}.{signature}", part(header), part(payload))
}

fn demo() -> Authenticator {
    Authenticator::hs256(SECRET, ISSUER, AUDIENCE)
}

fn config() -> AuthConfig {
    AuthConfig {
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        ..AuthConfig::default()
    }
}

async fn with_pem(public_pem: &str) -> Authenticator {
    Authenticator::from_config(&AuthConfig {
        public_key_pem: Some(keys_dir().join(public_pem)),
        ..config()
    })
    .await
    .expect("PEM authenticator")
}

/// The committed key set, filtered to `kids`, with `edit` applied to each key.
fn jwks_json(kids: &[&str], edit: impl Fn(&mut Value)) -> Value {
    let all: Value = serde_json::from_slice(&key_file("jwks.json")).expect("jwks.json");
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().expect("kid")))
        .cloned()
        .map(|mut k| {
            edit(&mut k);
            k
        })
        .collect();
    json!({ "keys": keys })
}

async fn from_jwks_value(set: &Value) -> Result<Authenticator, AuthError> {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), serde_json::to_vec(set).expect("json")).expect("write jwks");
    Authenticator::from_config(&AuthConfig {
        jwks: Some(file.path().to_str().expect("utf-8 path").to_owned()),
        ..config()
    })
    .await
}

async fn with_jwks(kids: &[&str]) -> Authenticator {
    from_jwks_value(&jwks_json(kids, |_| {}))
        .await
        .expect("JWKS authenticator")
}

async fn with_committed_jwks_file() -> Authenticator {
    Authenticator::from_config(&AuthConfig {
        jwks: Some(keys_dir().join("jwks.json").display().to_string()),
        ..config()
    })
    .await
    .expect("JWKS authenticator")
}

/// Serves `body` with `status` at `/jwks.json` on 127.0.0.1 and returns the URL.
async fn serve_jwks(status: u16, body: String) -> String {
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    StatusCode::from_u16(status).expect("status"),
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/jwks.json")
}

fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

#[test]
fn a_minted_hs256_token_becomes_the_principal_for_every_role() {
    let auth = demo();
    for role in Role::ALL {
        let claims = claims_for(role);
        let token = auth.mint(&claims, Duration::from_secs(300)).expect("mint");
        let principal = auth.authenticate(&token).expect("authenticates");
        assert_eq!(principal, Principal::from_claims(&claims).expect("valid"));
        assert_eq!(principal.to_claims(), claims);
    }
}

#[test]
fn a_minted_token_carries_the_standard_claims() {
    let token = demo()
        .mint(&worker(), Duration::from_secs(600))
        .expect("mint");
    let body = token.split('.').nth(1).expect("payload part");
    let p: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("b64")).unwrap();
    assert_eq!(p["iss"], ISSUER);
    assert_eq!(p["aud"], AUDIENCE);
    let (iat, nbf, exp) = (p["iat"].as_u64(), p["nbf"].as_u64(), p["exp"].as_u64());
    assert_eq!(iat, nbf);
    assert_eq!(exp.unwrap() - nbf.unwrap(), 600);
}

#[test]
fn a_token_expired_beyond_the_leeway_is_refused() {
    let mut p = payload(&worker());
    p["nbf"] = json!(now() - 1000);
    p["exp"] = json!(now() - DEFAULT_LEEWAY_SECONDS - 30);
    let err = demo().authenticate(&hs256(&p)).unwrap_err();
    assert_eq!(err, AuthError::Expired);
    assert_eq!(err.code(), "token_expired");
}

#[test]
fn a_token_expired_within_the_leeway_is_still_accepted() {
    let mut p = payload(&worker());
    p["nbf"] = json!(now() - 1000);
    p["exp"] = json!(now() - 10);
    assert!(demo().authenticate(&hs256(&p)).is_ok());
}

#[test]
fn a_token_that_is_not_valid_yet_is_refused() {
    let mut p = payload(&worker());
    p["nbf"] = json!(now() + DEFAULT_LEEWAY_SECONDS + 600);
    p["exp"] = json!(now() + 3600);
    assert_eq!(
        demo().authenticate(&hs256(&p)).unwrap_err(),
        AuthError::NotYetValid
    );
}

#[test]
fn a_token_from_another_issuer_is_refused() {
    let mut p = payload(&worker());
    p["iss"] = json!("https://evil.example");
    assert_eq!(
        demo().authenticate(&hs256(&p)).unwrap_err(),
        AuthError::WrongIssuer
    );
}

#[test]
fn a_token_for_another_audience_is_refused() {
    let mut p = payload(&worker());
    p["aud"] = json!("another-service");
    assert_eq!(
        demo().authenticate(&hs256(&p)).unwrap_err(),
        AuthError::WrongAudience
    );
}

#[test]
fn a_token_without_issuer_or_audience_is_refused_when_they_are_configured() {
    for claim in ["iss", "aud"] {
        let mut p = payload(&worker());
        p.as_object_mut().unwrap().remove(claim);
        assert_eq!(
            demo().authenticate(&hs256(&p)).unwrap_err(),
            AuthError::MissingClaim(claim)
        );
    }
}

#[tokio::test]
async fn issuer_and_audience_are_not_checked_when_not_configured() {
    let auth = Authenticator::from_config(&AuthConfig {
        hs256_secret: Some(SECRET.into()),
        ..AuthConfig::default()
    })
    .await
    .expect("authenticator");
    let mut p = payload(&worker());
    p["iss"] = json!("anyone");
    p["aud"] = json!("anything");
    assert!(auth.authenticate(&hs256(&p)).is_ok());
}

#[test]
fn a_token_without_exp_is_refused() {
    let mut p = payload(&worker());
    p.as_object_mut().unwrap().remove("exp");
    let err = demo().authenticate(&hs256(&p)).unwrap_err();
    assert_eq!(err, AuthError::MissingClaim("exp"));
    assert_eq!(err.code(), "token_missing_claim");
}

#[test]
fn a_token_without_nbf_is_refused() {
    let mut p = payload(&worker());
    p.as_object_mut().unwrap().remove("nbf");
    assert_eq!(
        demo().authenticate(&hs256(&p)).unwrap_err(),
        AuthError::MissingClaim("nbf")
    );
}

#[test]
fn a_token_with_a_non_numeric_exp_is_refused_as_lacking_exp() {
    let mut p = payload(&worker());
    p["exp"] = json!("tomorrow");
    assert_eq!(
        demo().authenticate(&hs256(&p)).unwrap_err(),
        AuthError::MissingClaim("exp")
    );
}

#[test]
fn a_token_signed_with_another_secret_is_refused() {
    let forged = sign(
        Algorithm::HS256,
        None,
        &payload(&worker()),
        &EncodingKey::from_secret(b"another-secret-that-is-also-long-enough"),
    );
    let err = demo().authenticate(&forged).unwrap_err();
    assert_eq!(err, AuthError::BadSignature);
    assert_eq!(err.code(), "token_bad_signature");
}

#[test]
fn a_token_whose_payload_was_altered_is_refused() {
    let token = hs256(&payload(&claims_for(Role::Resident)));
    let mut altered = payload(&claims_for(Role::Admin));
    altered["sub"] = json!("user-resident");
    let parts: Vec<&str> = token.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&altered).unwrap()),
        parts[2]
    );
    assert_eq!(
        demo().authenticate(&swapped).unwrap_err(),
        AuthError::BadSignature
    );
}

#[tokio::test]
async fn a_token_with_alg_none_is_refused_whatever_the_key_source() {
    let authenticators = [
        demo(),
        with_pem("rsa.pub.pem").await,
        with_pem("ec256.pub.pem").await,
        with_jwks(&["rsa-1"]).await,
    ];
    for alg in ["none", "None", "NONE"] {
        let token = hand_built(
            &json!({ "alg": alg, "typ": "JWT" }),
            &payload(&worker()),
            "",
        );
        for auth in &authenticators {
            let err = auth.authenticate(&token).unwrap_err();
            assert_eq!(err, AuthError::AlgorithmNotAllowed, "{alg} with {auth:?}");
            assert_eq!(err.code(), "token_algorithm_not_allowed");
        }
    }
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_rsa_public_key_is_refused_by_an_rsa_authenticator() {
    // The classic confusion attack: the public key is public, so using its PEM bytes as an
    // HMAC secret must not produce a token the server accepts.
    let public_pem = key_file("rsa.pub.pem");
    let token = sign(
        Algorithm::HS256,
        Some("rsa-1"),
        &payload(&worker()),
        &EncodingKey::from_secret(&public_pem),
    );
    assert_eq!(
        with_pem("rsa.pub.pem")
            .await
            .authenticate(&token)
            .unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
    assert_eq!(
        with_jwks(&["rsa-1"])
            .await
            .authenticate(&token)
            .unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
}

#[test]
fn an_rs256_token_is_refused_by_an_hs256_authenticator() {
    let token = sign(
        Algorithm::RS256,
        None,
        &payload(&worker()),
        &signer("rsa.key.pem"),
    );
    assert_eq!(
        demo().authenticate(&token).unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
}

#[tokio::test]
async fn an_es256_token_is_refused_by_an_rsa_authenticator() {
    let token = sign(
        Algorithm::ES256,
        None,
        &payload(&worker()),
        &signer("ec256.key.pem"),
    );
    assert_eq!(
        with_pem("rsa.pub.pem")
            .await
            .authenticate(&token)
            .unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
}

#[tokio::test]
async fn rs256_and_rs384_tokens_verify_with_an_rsa_pem_public_key() {
    let auth = with_pem("rsa.pub.pem").await;
    let claims = claims_for(Role::Partner);
    for alg in [Algorithm::RS256, Algorithm::RS384] {
        let token = sign(alg, None, &payload(&claims), &signer("rsa.key.pem"));
        assert_eq!(
            auth.authenticate(&token).expect("verifies"),
            Principal::from_claims(&claims).unwrap()
        );
    }
}

#[tokio::test]
async fn an_rs256_token_signed_by_another_rsa_key_is_refused() {
    let token = sign(
        Algorithm::RS256,
        None,
        &payload(&worker()),
        &signer("rsa2.key.pem"),
    );
    assert_eq!(
        with_pem("rsa.pub.pem")
            .await
            .authenticate(&token)
            .unwrap_err(),
        AuthError::BadSignature
    );
}

#[tokio::test]
async fn es256_tokens_verify_with_a_p256_pem_public_key() {
    let claims = claims_for(Role::Resident);
    let token = sign(
        Algorithm::ES256,
        None,
        &payload(&claims),
        &signer("ec256.key.pem"),
    );
    assert_eq!(
        with_pem("ec256.pub.pem")
            .await
            .authenticate(&token)
            .expect("verifies"),
        Principal::from_claims(&claims).unwrap()
    );
}

#[tokio::test]
async fn es384_tokens_verify_with_a_p384_pem_public_key_and_not_with_a_p256_one() {
    let token = sign(
        Algorithm::ES384,
        None,
        &payload(&worker()),
        &signer("ec384.key.pem"),
    );
    assert!(with_pem("ec384.pub.pem").await.authenticate(&token).is_ok());
    assert_eq!(
        with_pem("ec256.pub.pem")
            .await
            .authenticate(&token)
            .unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_with_a_jwks_file() {
    let auth = with_committed_jwks_file().await;
    let claims = claims_for(Role::Backoffice);
    for (alg, kid, key) in [
        (Algorithm::RS256, "rsa-1", "rsa.key.pem"),
        (Algorithm::RS256, "rsa-2", "rsa2.key.pem"),
        (Algorithm::ES256, "ec-256", "ec256.key.pem"),
        (Algorithm::ES384, "ec-384", "ec384.key.pem"),
    ] {
        let token = sign(alg, Some(kid), &payload(&claims), &signer(key));
        assert_eq!(
            auth.authenticate(&token).expect(kid),
            Principal::from_claims(&claims).unwrap()
        );
    }
}

#[tokio::test]
async fn the_jwks_kid_selects_the_verifying_key() {
    let auth = with_jwks(&["rsa-1", "rsa-2"]).await;
    let p = payload(&worker());
    let right = sign(Algorithm::RS256, Some("rsa-2"), &p, &signer("rsa2.key.pem"));
    assert!(auth.authenticate(&right).is_ok());
    // Signed by rsa-1 but claiming to be rsa-2: checked against rsa-2, so it fails.
    let wrong = sign(Algorithm::RS256, Some("rsa-2"), &p, &signer("rsa.key.pem"));
    assert_eq!(
        auth.authenticate(&wrong).unwrap_err(),
        AuthError::BadSignature
    );
}

#[tokio::test]
async fn a_token_with_an_unknown_kid_is_refused() {
    let auth = with_jwks(&["rsa-1", "ec-256"]).await;
    let token = sign(
        Algorithm::RS256,
        Some("rotated-away"),
        &payload(&worker()),
        &signer("rsa.key.pem"),
    );
    let err = auth.authenticate(&token).unwrap_err();
    assert_eq!(err, AuthError::UnknownKey);
    assert_eq!(err.code(), "token_unknown_key");
}

#[tokio::test]
async fn a_token_without_kid_is_refused_when_the_set_has_several_keys() {
    let auth = with_jwks(&["rsa-1", "rsa-2"]).await;
    let token = sign(
        Algorithm::RS256,
        None,
        &payload(&worker()),
        &signer("rsa.key.pem"),
    );
    assert_eq!(
        auth.authenticate(&token).unwrap_err(),
        AuthError::UnknownKey
    );
}

#[tokio::test]
async fn a_token_without_kid_uses_the_only_key_of_a_one_key_set() {
    let auth = with_jwks(&["ec-256"]).await;
    let token = sign(
        Algorithm::ES256,
        None,
        &payload(&worker()),
        &signer("ec256.key.pem"),
    );
    assert!(auth.authenticate(&token).is_ok());
}

#[tokio::test]
async fn a_token_whose_kid_names_a_key_of_another_type_is_refused() {
    let auth = with_jwks(&["rsa-1", "ec-256"]).await;
    let token = sign(
        Algorithm::ES256,
        Some("rsa-1"),
        &payload(&worker()),
        &signer("ec256.key.pem"),
    );
    assert_eq!(
        auth.authenticate(&token).unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
}

#[tokio::test]
async fn a_jwk_that_declares_its_alg_accepts_only_that_alg() {
    let set = jwks_json(&["rsa-1"], |k| k["alg"] = json!("RS256"));
    let auth = from_jwks_value(&set).await.expect("authenticator");
    let p = payload(&worker());
    let rs256 = sign(Algorithm::RS256, Some("rsa-1"), &p, &signer("rsa.key.pem"));
    let rs384 = sign(Algorithm::RS384, Some("rsa-1"), &p, &signer("rsa.key.pem"));
    assert!(auth.authenticate(&rs256).is_ok());
    assert_eq!(
        auth.authenticate(&rs384).unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
}

#[tokio::test]
async fn symmetric_and_encryption_keys_in_a_jwks_are_ignored() {
    let mut set = jwks_json(&["rsa-1", "ec-256"], |k| {
        if k["kid"] == "ec-256" {
            k["use"] = json!("enc");
        }
    });
    let secret = URL_SAFE_NO_PAD.encode(SECRET);
    set["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "kty": "oct", "kid": "shared", "k": secret }));
    let auth = from_jwks_value(&set).await.expect("authenticator");
    let p = payload(&worker());
    let hs = sign(
        Algorithm::HS256,
        Some("shared"),
        &p,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    );
    assert_eq!(auth.authenticate(&hs).unwrap_err(), AuthError::UnknownKey);
    let ec = sign(
        Algorithm::ES256,
        Some("ec-256"),
        &p,
        &signer("ec256.key.pem"),
    );
    assert_eq!(auth.authenticate(&ec).unwrap_err(), AuthError::UnknownKey);
    let rsa = sign(Algorithm::RS256, Some("rsa-1"), &p, &signer("rsa.key.pem"));
    assert!(auth.authenticate(&rsa).is_ok());
}

#[tokio::test]
async fn a_jwks_without_a_usable_signing_key_is_a_config_error() {
    let short_rsa = json!({
        "kty": "RSA", "kid": "weak", "e": "AQAB",
        "n": URL_SAFE_NO_PAD.encode([0xc5u8; 128]),
    });
    let cases = [
        json!({ "keys": [] }),
        json!({ "keys": [{ "kty": "oct", "kid": "s", "k": "c2VjcmV0" }] }),
        json!({ "keys": [short_rsa] }),
        json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }] }),
        json!({ "not_keys": [] }),
    ];
    for set in cases {
        let err = from_jwks_value(&set).await.unwrap_err();
        assert!(matches!(err, AuthError::Config(_)), "{set}: {err:?}");
    }
}

#[tokio::test]
async fn a_jwks_served_over_http_on_loopback_is_loaded_at_start() {
    let body = String::from_utf8(key_file("jwks.json")).unwrap();
    let url = serve_jwks(200, body).await;
    let auth = Authenticator::from_config(&AuthConfig {
        jwks: Some(url),
        ..config()
    })
    .await
    .expect("JWKS from URL");
    let claims = claims_for(Role::Manager);
    let token = sign(
        Algorithm::ES256,
        Some("ec-256"),
        &payload(&claims),
        &signer("ec256.key.pem"),
    );
    assert_eq!(
        auth.authenticate(&token).expect("verifies"),
        Principal::from_claims(&claims).unwrap()
    );
}

#[tokio::test]
async fn a_jwks_url_that_answers_with_an_error_status_is_a_config_error() {
    let url = serve_jwks(404, "not found".into()).await;
    let err = Authenticator::from_config(&AuthConfig {
        jwks: Some(url),
        ..config()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&err, AuthError::Config(m) if m.contains("404")),
        "{err}"
    );
}

#[tokio::test]
async fn a_plain_http_jwks_url_off_loopback_is_refused() {
    for jwks in [
        "http://login.gemeente.test/jwks.json",
        "ftp://127.0.0.1/jwks.json",
    ] {
        let err = Authenticator::from_config(&AuthConfig {
            jwks: Some(jwks.into()),
            ..config()
        })
        .await
        .unwrap_err();
        assert!(matches!(err, AuthError::Config(_)), "{jwks}: {err:?}");
    }
}

#[test]
fn a_worker_token_without_a_team_is_refused_as_invalid_claims() {
    let mut claims = worker();
    claims.team = None;
    let err = demo().authenticate(&hs256(&payload(&claims))).unwrap_err();
    assert_eq!(
        err,
        AuthError::InvalidClaims(ClaimsError::Missing {
            role: "worker",
            claim: "team"
        })
    );
    assert_eq!(err.code(), "token_invalid_claims");
}

#[test]
fn a_token_with_an_unknown_role_is_refused_as_unreadable_claims() {
    let mut p = payload(&worker());
    p["role"] = json!("superuser");
    let err = demo().authenticate(&hs256(&p)).unwrap_err();
    assert_eq!(err, AuthError::UnreadableClaims);
    assert!(!err.to_string().contains("superuser"));
}

#[test]
fn malformed_tokens_are_refused_as_malformed() {
    let body = URL_SAFE_NO_PAD.encode(b"{}");
    let crit = hand_built(
        &json!({ "alg": "HS256", "crit": ["exp"], "exp": 1 }),
        &payload(&worker()),
        "c2ln",
    );
    let long = "a".repeat(MAX_TOKEN_BYTES + 1);
    for token in [
        "not-a-jwt",
        "two.parts",
        "a.b.c.d.e",
        &format!("!!!.{body}.sig"),
        &format!("{}.{body}.sig", URL_SAFE_NO_PAD.encode(b"not json")),
        &format!(
            "{}.{body}.sig",
            URL_SAFE_NO_PAD.encode(b"{\"typ\":\"JWT\"}")
        ),
        &crit,
        &long,
    ] {
        assert_eq!(
            demo().authenticate(token).unwrap_err(),
            AuthError::Malformed,
            "{token:.40}"
        );
    }
    assert_eq!(demo().authenticate("").unwrap_err(), AuthError::Missing);
}

#[test]
fn bearer_token_reads_the_authorization_header() {
    for value in [
        "Bearer abc.def.ghi",
        "bearer abc.def.ghi",
        "  BEARER   abc.def.ghi ",
    ] {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        assert_eq!(bearer_token(&headers, None), Some("abc.def.ghi"), "{value}");
    }
}

#[test]
fn bearer_token_reads_the_token_query_parameter() {
    let none = HeaderMap::new();
    assert_eq!(
        bearer_token(&none, Some("?token=abc.def.ghi&x=1")),
        Some("abc.def.ghi")
    );
    assert_eq!(
        bearer_token(&none, Some("token=abc.def.ghi&x=1")),
        Some("abc.def.ghi")
    );
    assert_eq!(
        bearer_token(&none, Some("x=1&token=abc.def.ghi")),
        Some("abc.def.ghi")
    );
    assert_eq!(
        bearer_token(&none, Some("mytoken=no&token=yes&x")),
        Some("yes")
    );
    assert_eq!(bearer_token(&none, Some("tokens=no&x=1")), None);
    assert_eq!(bearer_token(&none, Some("token=&x=1")), None);
    assert_eq!(bearer_token(&none, Some("")), None);
    assert_eq!(bearer_token(&none, None), None);
}

#[test]
fn bearer_token_prefers_the_header_over_the_query() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer from-header"),
    );
    assert_eq!(
        bearer_token(&headers, Some("token=from-query")),
        Some("from-header")
    );
}

#[test]
fn bearer_token_ignores_other_authorization_schemes() {
    for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Bearerabc"] {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        assert_eq!(bearer_token(&headers, None), None, "{value}");
        assert_eq!(
            bearer_token(&headers, Some("token=q")),
            Some("q"),
            "{value}"
        );
    }
}

#[tokio::test]
async fn from_config_without_a_key_source_is_a_config_error() {
    let err = Authenticator::from_config(&config()).await.unwrap_err();
    let AuthError::Config(message) = &err else {
        panic!("expected a config error, got {err:?}");
    };
    for name in ["--jwt-secret", "--jwt-public-key", "--jwks", "none is set"] {
        assert!(message.contains(name), "{message}");
    }
    assert_eq!(err.code(), "auth_config");
    assert_eq!(err.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn from_config_with_two_key_sources_is_a_config_error() {
    let err = Authenticator::from_config(&AuthConfig {
        hs256_secret: Some(SECRET.into()),
        jwks: Some(keys_dir().join("jwks.json").display().to_string()),
        ..config()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&err, AuthError::Config(m) if m.contains("--jwt-secret and --jwks are both set")),
        "{err}"
    );
}

#[tokio::test]
async fn from_config_refuses_unusable_settings() {
    let cases = [
        AuthConfig {
            hs256_secret: Some("short".into()),
            ..config()
        },
        AuthConfig {
            public_key_pem: Some(keys_dir().join("rsa.key.pem")),
            ..config()
        },
        AuthConfig {
            public_key_pem: Some(keys_dir().join("missing.pem")),
            ..config()
        },
        AuthConfig {
            public_key_pem: Some(keys_dir().join("jwks.json")),
            ..config()
        },
        AuthConfig {
            jwks: Some(keys_dir().join("missing.json").display().to_string()),
            ..config()
        },
        AuthConfig {
            hs256_secret: Some(SECRET.into()),
            leeway_seconds: MAX_LEEWAY_SECONDS + 1,
            ..config()
        },
        AuthConfig {
            hs256_secret: Some(SECRET.into()),
            issuer: Some(" ".into()),
            ..config()
        },
    ];
    for cfg in cases {
        let err = Authenticator::from_config(&cfg).await.unwrap_err();
        assert!(matches!(err, AuthError::Config(_)), "{cfg:?}: {err:?}");
    }
}

#[tokio::test]
async fn from_config_with_an_hs256_secret_verifies_minted_tokens_with_its_leeway() {
    let auth = Authenticator::from_config(&AuthConfig {
        hs256_secret: Some(SECRET.into()),
        leeway_seconds: 0,
        ..config()
    })
    .await
    .expect("authenticator");
    let token = auth.mint(&worker(), Duration::from_secs(60)).expect("mint");
    assert!(auth.authenticate(&token).is_ok());
    let mut p = payload(&worker());
    p["exp"] = json!(now() - 5);
    assert_eq!(
        auth.authenticate(&hs256(&p)).unwrap_err(),
        AuthError::Expired
    );
}

#[tokio::test]
async fn minting_needs_an_hs256_secret() {
    let auth = with_pem("rsa.pub.pem").await;
    assert!(!auth.can_mint());
    assert!(demo().can_mint());
    assert!(matches!(
        auth.mint(&worker(), Duration::from_secs(60)),
        Err(AuthError::Config(_))
    ));
}

#[test]
fn error_codes_are_distinct_snake_case_and_messages_never_echo_the_token() {
    let all = [
        AuthError::Missing,
        AuthError::Malformed,
        AuthError::Expired,
        AuthError::NotYetValid,
        AuthError::WrongIssuer,
        AuthError::WrongAudience,
        AuthError::BadSignature,
        AuthError::AlgorithmNotAllowed,
        AuthError::UnknownKey,
        AuthError::MissingClaim("exp"),
        AuthError::UnreadableClaims,
        AuthError::InvalidClaims(ClaimsError::InvalidId { claim: "sub" }),
        AuthError::Config("x".into()),
    ];
    let mut codes: Vec<&str> = all.iter().map(AuthError::code).collect();
    assert!(
        codes
            .iter()
            .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    );
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
    // Every token error tells the caller what to do next, after a colon.
    for e in &all[..all.len() - 1] {
        assert!(e.to_string().contains(": "), "{e}");
        assert_eq!(e.http_status(), StatusCode::UNAUTHORIZED);
    }

    let mut expired = payload(&worker());
    expired["exp"] = json!(now() - 1000);
    let mut wrong_role = payload(&worker());
    wrong_role["team"] = json!("not a valid id!");
    for token in [
        hs256(&expired),
        hs256(&wrong_role),
        format!("{}x", hs256(&payload(&worker()))),
    ] {
        let message = demo().authenticate(&token).unwrap_err().to_string();
        for part in token.split('.') {
            assert!(!message.contains(part), "{message}");
        }
    }
}

#[test]
fn debug_output_hides_the_secret() {
    let cfg = AuthConfig {
        hs256_secret: Some(SECRET.into()),
        ..config()
    };
    assert!(!format!("{cfg:?}").contains(SECRET));
    assert!(!format!("{:?}", demo()).contains(SECRET));
}

#[test]
fn the_authenticator_is_clone_send_and_sync() {
    assert_send_sync_clone::<Authenticator>();
}

#[tokio::test]
async fn a_key_rotated_into_the_jwks_verifies_after_a_refresh_and_a_broken_fetch_keeps_the_old_keys()
 {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let write = |set: &Value| {
        std::fs::write(file.path(), serde_json::to_vec(set).expect("json")).expect("write jwks")
    };
    write(&jwks_json(&["rsa-1"], |_| {}));
    let auth = Authenticator::from_config(&AuthConfig {
        jwks: Some(file.path().to_str().expect("utf-8 path").to_owned()),
        ..config()
    })
    .await
    .expect("JWKS authenticator");
    assert!(auth.refreshes());
    let p = payload(&worker());
    let rotated = sign(Algorithm::RS256, Some("rsa-2"), &p, &signer("rsa2.key.pem"));
    assert_eq!(
        auth.authenticate(&rotated).unwrap_err(),
        AuthError::UnknownKey
    );

    write(&jwks_json(&["rsa-1", "rsa-2"], |_| {}));
    auth.refresh().await.expect("refresh");
    assert!(
        auth.authenticate(&rotated).is_ok(),
        "the rotated-in key verifies"
    );

    std::fs::write(file.path(), b"not json").expect("write");
    assert!(auth.refresh().await.is_err());
    assert!(
        auth.authenticate(&rotated).is_ok(),
        "a broken fetch keeps the keys in use"
    );
    assert!(!demo().refreshes(), "a shared secret has nothing to fetch");
}

#[test]
fn subprotocol_token_reads_the_regie_token_subprotocol() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("regie.v1, regie.token.abc.def.ghi"),
    );
    assert_eq!(subprotocol_token(&headers), Some("abc.def.ghi"));

    // Repeated headers, other protocols around it, an empty token skipped.
    let mut headers = HeaderMap::new();
    headers.append(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("graphql-ws,regie.token."),
    );
    headers.append(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("regie.token.x.y.z ,regie.v1"),
    );
    assert_eq!(subprotocol_token(&headers), Some("x.y.z"));

    let mut headers = HeaderMap::new();
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("regie.v1"),
    );
    assert_eq!(subprotocol_token(&headers), None);
    assert_eq!(subprotocol_token(&HeaderMap::new()), None);
}
