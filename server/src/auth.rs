//! Authentication: verifies the bearer JWT of an HTTP request or WebSocket upgrade and turns its
//! claims into a [`Principal`]. The server trusts exactly one key source, chosen at start-up: an
//! HS256 shared secret (demo and tests), a PEM public key file (RSA or EC) or a JSON Web Key Set
//! (file or URL, keys picked by `kid`). The accepted signature algorithms follow from that key
//! alone, never from the token, so `alg: none` and algorithm confusion are refused. `exp` and
//! `nbf` are mandatory, as are `iss` and `aud` when configured. Error messages say what the
//! caller should do and never repeat the token.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey, Header, Validation};
use regie_core::principal::{Claims, ClaimsError, Principal};
use serde::{Deserialize, Serialize};

/// The clock-skew allowance for `exp` and `nbf` when none is configured, in seconds.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 60;

/// The largest accepted clock-skew allowance, in seconds: more would keep expired tokens usable.
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// The shortest accepted HS256 secret, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// RSA keys below this size are refused (NIST SP 800-57: 2048 bits minimum).
const MIN_RSA_MODULUS_BITS: usize = 2048;

/// Real tokens are well under 2 KiB; the cap keeps hostile input from costing parse time.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A key set is a few KiB; the cap keeps a misbehaving endpoint from filling memory at start.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// How long start-up waits for the identity provider's key set.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The algorithms an RSA key verifies. PSS is left out until an identity provider needs it.
const RSA_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::RS384];

/// Where the server gets the keys that verify tokens, plus the claims it insists on. Exactly one
/// of `hs256_secret`, `public_key_pem` and `jwks` must be set. Error messages name the matching
/// command-line flags (`--jwt-secret`, `--jwt-public-key`, `--jwks`, `--jwt-issuer`,
/// `--jwt-audience`).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// A shared HS256 secret of at least [`MIN_HS256_SECRET_BYTES`] bytes (demo and tests only:
    /// whoever knows it can mint tokens).
    pub hs256_secret: Option<String>,
    /// A PEM public key file (`-----BEGIN PUBLIC KEY-----`), RSA (RS256/RS384) or EC P-256
    /// (ES256) / P-384 (ES384); the type is detected from the file.
    pub public_key_pem: Option<PathBuf>,
    /// A JSON Web Key Set: a file path, an `https://` URL, or an `http://` URL on a loopback
    /// address (tests). Loaded once at start-up.
    pub jwks: Option<String>,
    /// The required `iss` claim. Set it in production: without it any issuer is accepted.
    pub issuer: Option<String>,
    /// The required `aud` claim. Set it in production: without it `aud` is not checked.
    pub audience: Option<String>,
    /// Clock-skew allowance for `exp` and `nbf`, at most [`MAX_LEEWAY_SECONDS`].
    pub leeway_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            public_key_pem: None,
            jwks: None,
            issuer: None,
            audience: None,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        }
    }
}

// Hand-written so that logging the configuration never prints the shared secret.
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "hs256_secret",
                &self.hs256_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("public_key_pem", &self.public_key_pem)
            .field("jwks", &self.jwks)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_seconds", &self.leeway_seconds)
            .finish()
    }
}

/// Why a request is not authenticated, or why the authenticator could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The request carries no bearer token.
    #[error(
        "no bearer token: send `Authorization: Bearer <token>`, or add `token=<token>` to the \
         WebSocket URL's query string"
    )]
    Missing,
    /// The token is not a well-formed signed JWT.
    #[error("the token is not a well-formed signed JWT: log in again to get a new token")]
    Malformed,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired: log in again")]
    Expired,
    /// `nbf` is still in the future (beyond the leeway).
    #[error("the token is not valid yet: check the device's clock, or wait a moment and retry")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error(
        "the token was issued by another identity provider: log in through the one this \
         server trusts"
    )]
    WrongIssuer,
    /// `aud` does not name this server.
    #[error("the token is meant for another service: request a token for this server")]
    WrongAudience,
    /// The signature does not verify with the selected key.
    #[error(
        "the token's signature does not verify: log in again; if this persists, the server's \
         key configuration does not match the identity provider"
    )]
    BadSignature,
    /// The header's `alg` is `none`, unknown, or not one the configured key type allows.
    #[error(
        "the token's signing algorithm is not accepted here (`none` and algorithms that do not \
         match the server's key are refused): use a token from the configured identity provider"
    )]
    AlgorithmNotAllowed,
    /// The header's `kid` is not in the key set (or is missing and the set has several keys).
    #[error(
        "the token was signed with a key this server does not know (its `kid` is missing or not \
         in the key set): log in again; if this persists, restart the server so it reloads the \
         identity provider's keys"
    )]
    UnknownKey,
    /// A required standard claim (`exp`, `nbf`, `iss` or `aud`) is absent or of the wrong type.
    #[error(
        "the token lacks a valid `{0}` claim: the identity provider must include exp and nbf \
         (as numbers) and, when configured, iss and aud"
    )]
    MissingClaim(&'static str),
    /// The payload is not Regie claims (no `sub`, no or an unknown `role`, wrong types).
    #[error(
        "the token's claims are not Regie claims (it needs `sub` and a known `role`): ask the \
         identity provider's administrator to map them"
    )]
    UnreadableClaims,
    /// The claims do not fit the role (e.g. a worker without a team).
    #[error(
        "the token's claims do not fit its role ({0}): ask an administrator to fix the account"
    )]
    InvalidClaims(#[from] ClaimsError),
    /// The server's authentication settings are unusable (start-up), or an operation needs a key
    /// source that is not configured.
    #[error("authentication is misconfigured: {0}")]
    Config(String),
}

impl AuthError {
    /// A stable snake_case code for JSON error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "token_missing",
            AuthError::Malformed => "token_malformed",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::WrongIssuer => "token_wrong_issuer",
            AuthError::WrongAudience => "token_wrong_audience",
            AuthError::BadSignature => "token_bad_signature",
            AuthError::AlgorithmNotAllowed => "token_algorithm_not_allowed",
            AuthError::UnknownKey => "token_unknown_key",
            AuthError::MissingClaim(_) => "token_missing_claim",
            AuthError::UnreadableClaims => "token_claims_unreadable",
            AuthError::InvalidClaims(_) => "token_invalid_claims",
            AuthError::Config(_) => "auth_config",
        }
    }

    /// The HTTP status to answer with: 401 for every token problem (the client should get a
    /// new token), 500 for a server-side configuration problem.
    pub fn http_status(&self) -> StatusCode {
        match self {
            AuthError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Verifies bearer tokens against the configured key source. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    /// Swapped whole when a JWKS is fetched again (key rotation at the identity provider).
    keys: std::sync::RwLock<Arc<Vec<VerifyingKey>>>,
    /// Where a JWKS came from and the rules its keys get, to fetch it again.
    jwks: Option<(String, u64)>,
    /// Set for a JWKS: the token's `kid` picks the key. A PEM key or secret is used for any kid.
    by_kid: bool,
    /// Present only for an HS256 secret: minting is for demos and tests.
    signer: Option<EncodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
    /// What the keys are, for `Debug` and start-up logs.
    description: String,
}

/// One verification key with the validation rules (including its allowed algorithms) to use.
#[derive(Clone)]
struct VerifyingKey {
    kid: Option<String>,
    key: DecodingKey,
    validation: Validation,
}

/// A key as loaded, before the common validation rules are attached.
struct LoadedKey {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.inner.description)
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish()
    }
}

/// The settings that every key of one authenticator shares.
struct Rules<'a> {
    issuer: Option<&'a str>,
    audience: Option<&'a str>,
    leeway: u64,
}

impl Rules<'_> {
    fn validation(&self, algorithms: &[Algorithm]) -> Validation {
        // The algorithm given to `new` is replaced at once by the key's own list.
        let mut v = Validation::new(Algorithm::HS256);
        v.algorithms = algorithms.to_vec();
        v.leeway = self.leeway;
        v.validate_exp = true;
        // jsonwebtoken skips `nbf` by default; a token that is not valid yet must be refused.
        v.validate_nbf = true;
        let mut required = vec!["exp", "nbf"];
        if let Some(iss) = self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        match self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            // Without a configured audience there is nothing to compare with; jsonwebtoken
            // would otherwise refuse every token that carries an `aud`.
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }
}

impl Authenticator {
    /// Builds the authenticator from configuration: reads the PEM file or loads the JWKS (from
    /// disk or over HTTPS). Fails with [`AuthError::Config`] when zero or several key sources
    /// are set, or when the key material is unusable.
    pub async fn from_config(cfg: &AuthConfig) -> Result<Self, AuthError> {
        if cfg.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(AuthError::Config(format!(
                "`leeway_seconds` is {}, above the maximum of {MAX_LEEWAY_SECONDS}: a large \
                 leeway keeps expired tokens usable; fix the clocks instead",
                cfg.leeway_seconds
            )));
        }
        for (value, name) in [
            (&cfg.issuer, "the issuer (--jwt-issuer)"),
            (&cfg.audience, "the audience (--jwt-audience)"),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(AuthError::Config(format!(
                    "{name} is empty: give the expected value or leave it unset"
                )));
            }
        }
        let rules = Rules {
            issuer: cfg.issuer.as_deref(),
            audience: cfg.audience.as_deref(),
            leeway: cfg.leeway_seconds,
        };

        let authenticator = match (&cfg.hs256_secret, &cfg.public_key_pem, &cfg.jwks) {
            (Some(secret), None, None) => {
                if secret.len() < MIN_HS256_SECRET_BYTES {
                    return Err(AuthError::Config(format!(
                        "the HS256 secret (--jwt-secret) is {} bytes; use at least \
                         {MIN_HS256_SECRET_BYTES} random bytes (e.g. `openssl rand -base64 32`)",
                        secret.len()
                    )));
                }
                Self::with_secret(secret, &rules)
            }
            (None, Some(path), None) => {
                let key = load_pem(path).await?;
                let description = format!("PEM public key {} ({})", path.display(), algs(&[&key]));
                Self::with_keys(vec![key], false, &rules, description)
            }
            (None, None, Some(location)) => {
                let keys = load_jwks(location).await?;
                let kids: Vec<&str> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
                let description = format!(
                    "JWKS {location} ({} keys: {}; {})",
                    keys.len(),
                    kids.join(", "),
                    algs(&keys.iter().collect::<Vec<_>>())
                );
                let mut auth = Self::with_keys(keys, true, &rules, description);
                Arc::get_mut(&mut auth.inner).expect("not shared yet").jwks =
                    Some((location.clone(), cfg.leeway_seconds));
                auth
            }
            (secret, pem, jwks) => {
                let set: Vec<&str> = [
                    (secret.is_some(), "--jwt-secret"),
                    (pem.is_some(), "--jwt-public-key"),
                    (jwks.is_some(), "--jwks"),
                ]
                .into_iter()
                .filter_map(|(is_set, name)| is_set.then_some(name))
                .collect();
                let found = match set.len() {
                    0 => "none is set".to_owned(),
                    2 => format!("{} are both set", set.join(" and ")),
                    _ => format!("{} are all set", set.join(", ")),
                };
                return Err(AuthError::Config(format!(
                    "set exactly one token key source: --jwt-secret / REGIE_JWT_SECRET (a shared \
                     HS256 secret, demo only), --jwt-public-key / REGIE_JWT_PUBLIC_KEY (a PEM \
                     public key file) or --jwks / REGIE_JWKS (a JSON Web Key Set file or https \
                     URL); {found}"
                )));
            }
        };

        if cfg.issuer.is_none() {
            tracing::warn!(
                "no token issuer configured (--jwt-issuer): tokens from any issuer are accepted"
            );
        }
        if cfg.audience.is_none() {
            tracing::warn!(
                "no token audience configured (--jwt-audience): the `aud` claim is not checked"
            );
        }
        tracing::info!(keys = %authenticator.inner.description, "token verification ready");
        Ok(authenticator)
    }

    /// An HS256 authenticator requiring the given `iss` and `aud`, with the default leeway. For
    /// the demo and tests: unlike [`Authenticator::from_config`] it does not check the secret's
    /// length.
    pub fn hs256(secret: &str, issuer: &str, audience: &str) -> Self {
        Self::with_secret(
            secret,
            &Rules {
                issuer: Some(issuer),
                audience: Some(audience),
                leeway: DEFAULT_LEEWAY_SECONDS,
            },
        )
    }

    fn with_secret(secret: &str, rules: &Rules<'_>) -> Self {
        let key = VerifyingKey {
            kid: None,
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation: rules.validation(&[Algorithm::HS256]),
        };
        Self::assemble(
            vec![key],
            false,
            Some(EncodingKey::from_secret(secret.as_bytes())),
            rules,
            "HS256 shared secret".to_owned(),
        )
    }

    fn with_keys(
        keys: Vec<LoadedKey>,
        by_kid: bool,
        rules: &Rules<'_>,
        description: String,
    ) -> Self {
        Self::assemble(verifying(keys, rules), by_kid, None, rules, description)
    }

    /// Whether at least one key can verify tokens now (readiness).
    pub fn has_keys(&self) -> bool {
        !self
            .inner
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    /// Whether the keys come from a JWKS, which [`Authenticator::refresh`] fetches again.
    pub fn refreshes(&self) -> bool {
        self.inner.jwks.is_some()
    }

    /// Fetches the JWKS again and uses its keys from now on, so tokens signed with a key the
    /// identity provider rotated in verify without a restart. On any error the keys in use
    /// stay. Without a JWKS there is nothing to refresh.
    pub async fn refresh(&self) -> Result<(), AuthError> {
        let Some((location, leeway)) = &self.inner.jwks else {
            return Ok(());
        };
        let rules = Rules {
            issuer: self.inner.issuer.as_deref(),
            audience: self.inner.audience.as_deref(),
            leeway: *leeway,
        };
        let keys = verifying(load_jwks(location).await?, &rules);
        // The lock only ever guards an `Arc` swap, which cannot be left half done, so a
        // poisoned lock (a panic elsewhere while it was held) still holds a whole key set:
        // carry on with it rather than fail every later request.
        *self
            .inner
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        Ok(())
    }

    fn assemble(
        keys: Vec<VerifyingKey>,
        by_kid: bool,
        signer: Option<EncodingKey>,
        rules: &Rules<'_>,
        description: String,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                keys: std::sync::RwLock::new(Arc::new(keys)),
                jwks: None,
                by_kid,
                signer,
                issuer: rules.issuer.map(str::to_owned),
                audience: rules.audience.map(str::to_owned),
                description,
            }),
        }
    }

    /// Verifies the token (signature, algorithm, `exp`, `nbf`, and `iss`/`aud` when configured)
    /// and builds the principal from its claims.
    pub fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        self.authenticate_until(token)
            .map(|(principal, _)| principal)
    }

    /// As [`Auth::authenticate`], also returning when the token expires (`exp`), so that a
    /// long-lived connection ends with its token.
    pub fn authenticate_until(
        &self,
        token: &str,
    ) -> Result<(Principal, time::OffsetDateTime), AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed);
        }
        let (alg, kid) = peek_header(token)?;
        let key = self.select_key(alg, kid.as_deref())?;
        // Decoding into a JSON value first separates "bad token" errors (from jsonwebtoken) from
        // "claims that are not Regie claims" (from our own conversion below).
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &key.validation)
            .map_err(from_jwt_error)?;
        // `exp` is required and validated above, so it is a number of seconds.
        let expires_at = data
            .claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .and_then(|exp| time::OffsetDateTime::from_unix_timestamp(exp).ok())
            .ok_or(AuthError::MissingClaim("exp"))?;
        let claims: Claims =
            serde_json::from_value(data.claims).map_err(|_| AuthError::UnreadableClaims)?;
        Ok((Principal::from_claims(&claims)?, expires_at))
    }

    /// Signs a token for `claims`, valid from now for `ttl`, with `iat`, `nbf`, `exp` and the
    /// configured `iss` and `aud`. Only an HS256 authenticator can mint (demo and tests); others
    /// return [`AuthError::Config`].
    pub fn mint(&self, claims: &Claims, ttl: Duration) -> Result<String, AuthError> {
        let signer = self.inner.signer.as_ref().ok_or_else(|| {
            AuthError::Config(
                "minting tokens needs an HS256 secret; with a public key or JWKS, tokens come \
                 from the identity provider"
                    .to_owned(),
            )
        })?;
        let now = jsonwebtoken::get_current_timestamp();
        let body = Minted {
            claims,
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl.as_secs()),
            iss: self.inner.issuer.as_deref(),
            aud: self.inner.audience.as_deref(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &body, signer)
            .map_err(|e| AuthError::Config(format!("cannot sign the token: {e}")))
    }

    /// Whether [`Authenticator::mint`] works (an HS256 secret is configured).
    pub fn can_mint(&self) -> bool {
        self.inner.signer.is_some()
    }

    /// Picks the key for a token. The algorithm must be one the key allows, so an attacker
    /// cannot make the server use, say, an RSA public key as an HMAC secret.
    fn select_key(&self, alg: Algorithm, kid: Option<&str>) -> Result<VerifyingKey, AuthError> {
        let keys = self
            .inner
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // A PEM key or secret stands alone, and a one-key set needs no kid to pick it.
        let any_kid =
            !self.inner.by_kid || (keys.len() == 1 && (kid.is_none() || keys[0].kid.is_none()));
        let mut known = false;
        for key in keys.iter() {
            if any_kid || (kid.is_some() && key.kid.as_deref() == kid) {
                known = true;
                if key.validation.algorithms.contains(&alg) {
                    return Ok(key.clone());
                }
            }
        }
        Err(if known {
            AuthError::AlgorithmNotAllowed
        } else {
            AuthError::UnknownKey
        })
    }
}

/// Loaded keys with the validation rules attached.
fn verifying(keys: Vec<LoadedKey>, rules: &Rules<'_>) -> Vec<VerifyingKey> {
    keys.into_iter()
        .map(|k| VerifyingKey {
            validation: rules.validation(&k.algorithms),
            kid: k.kid,
            key: k.key,
        })
        .collect()
}

/// The payload of a minted token: Regie claims plus the standard ones.
#[derive(Serialize)]
struct Minted<'a> {
    #[serde(flatten)]
    claims: &'a Claims,
    iat: u64,
    nbf: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// The header fields read before any key is chosen.
#[derive(Deserialize)]
struct PeekedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Reads `alg` and `kid` from the (still unverified) header. Our own parse, because
/// jsonwebtoken's `Header` cannot represent `alg: none` and would report it as bad JSON.
fn peek_header(token: &str) -> Result<(Algorithm, Option<String>), AuthError> {
    let mut parts = token.split('.');
    // Exactly three parts: a JWE (five parts) or a bare payload is not a signed JWT.
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    let header: PeekedHeader = serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)?;
    // We implement no JWS extensions, so RFC 7515 §4.1.11 requires refusing any `crit`.
    if header.crit.is_some() {
        return Err(AuthError::Malformed);
    }
    // "none" (in any spelling) and unknown names fail here.
    let alg = Algorithm::from_str(&header.alg).map_err(|_| AuthError::AlgorithmNotAllowed)?;
    Ok((alg, header.kid))
}

fn from_jwt_error(e: jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => AuthError::AlgorithmNotAllowed,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => AuthError::MissingClaim("exp"),
            "nbf" => AuthError::MissingClaim("nbf"),
            "iss" => AuthError::MissingClaim("iss"),
            "aud" => AuthError::MissingClaim("aud"),
            // We require no other claims; should jsonwebtoken report one, the token is unusable.
            _ => AuthError::Malformed,
        },
        // Keys are checked at start-up, so a key that fails now cannot verify this signature.
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            AuthError::BadSignature
        }
        _ => AuthError::Malformed,
    }
}

/// The bearer token of a request: `Authorization: Bearer <token>` (scheme case-insensitive), or
/// else `token=<token>` in the query string, for browsers, which cannot set headers on a
/// WebSocket. `query` is the URI's query, with or without the leading `?`. Tokens are JWTs
/// (base64url and dots), so no percent-decoding is done.
pub fn bearer_token<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            let token = rest.trim();
            (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
        });
    from_header.or_else(|| {
        query?
            .trim_start_matches('?')
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, value)| *name == "token" && !value.is_empty())
            .map(|(_, value)| value)
    })
}

/// The WebSocket subprotocol Regie's `/sync` speaks, echoed in the upgrade answer. A browser
/// cannot set `Authorization` on a WebSocket, so it offers `Sec-WebSocket-Protocol: regie.v1,
/// regie.token.<jwt>`; the server answers with `regie.v1` only, never the token.
pub const SYNC_SUBPROTOCOL: &str = "regie.v1";

/// The prefix of the subprotocol that carries the token (JWTs are base64url and dots, all of
/// them valid subprotocol characters).
pub const TOKEN_SUBPROTOCOL_PREFIX: &str = "regie.token.";

/// The token offered as a `regie.token.<jwt>` subprotocol in `Sec-WebSocket-Protocol`, if any.
/// The header may be repeated and each value is a comma-separated list.
pub fn subprotocol_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.trim().strip_prefix(TOKEN_SUBPROTOCOL_PREFIX))
        .find(|t| !t.is_empty())
}

/// Lists the algorithms of some keys, for logs.
fn algs(keys: &[&LoadedKey]) -> String {
    let mut names: Vec<String> = keys
        .iter()
        .flat_map(|k| k.algorithms.iter().map(|a| format!("{a:?}")))
        .collect();
    names.sort();
    names.dedup();
    names.join(", ")
}

/// Reads a PEM public key, detecting RSA or EC (and the curve) from its content.
async fn load_pem(path: &Path) -> Result<LoadedKey, AuthError> {
    let shown = path.display();
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| AuthError::Config(format!("cannot read the public key file {shown}: {e}")))?;
    if String::from_utf8_lossy(&bytes).contains("PRIVATE KEY-----") {
        return Err(AuthError::Config(format!(
            "{shown} holds a private key; give the server only the public key \
             (`openssl pkey -in private.pem -pubout -out public.pem`)"
        )));
    }
    let unusable = |why: String| {
        AuthError::Config(format!(
            "{shown} is not a usable public key: {why}; expected a PEM `PUBLIC KEY` for RSA \
             (at least {MIN_RSA_MODULUS_BITS} bits) or EC P-256/P-384"
        ))
    };
    let key = if let Ok(rsa) = DecodingKey::from_rsa_pem(&bytes) {
        let der = rsa
            .try_get_as_bytes()
            .map_err(|e| unusable(e.to_string()))?;
        // Parsing the modulus and exponent now catches a broken key at start-up (jsonwebtoken
        // would only parse it on each verification) and lets us check its size.
        let (n, e) = (DEFAULT_PROVIDER
            .key_utils
            .rsa_pub_components_from_public_key)(der)
        .map_err(|e| unusable(e.to_string()))?;
        check_rsa_size(&n).map_err(unusable)?;
        LoadedKey {
            kid: None,
            key: DecodingKey::from_rsa_raw_components(&n, &e),
            algorithms: RSA_ALGORITHMS.to_vec(),
        }
    } else if let Ok(ec) = DecodingKey::from_ec_pem(&bytes) {
        let point = ec.try_get_as_bytes().map_err(|e| unusable(e.to_string()))?;
        // An uncompressed SEC1 point is 0x04 || x || y; its length gives the curve.
        let alg = match (point.first(), point.len()) {
            (Some(4), 65) => Algorithm::ES256,
            (Some(4), 97) => Algorithm::ES384,
            _ => return Err(unusable("unsupported curve or point encoding".to_owned())),
        };
        LoadedKey {
            kid: None,
            key: ec,
            algorithms: vec![alg],
        }
    } else {
        return Err(unusable("not an RSA or EC public key".to_owned()));
    };
    check_usable(&key).map_err(unusable)?;
    Ok(key)
}

fn check_rsa_size(modulus: &[u8]) -> Result<(), String> {
    let significant = modulus.iter().skip_while(|b| **b == 0).count();
    if significant * 8 < MIN_RSA_MODULUS_BITS {
        return Err(format!(
            "the RSA key has fewer than {MIN_RSA_MODULUS_BITS} bits"
        ));
    }
    Ok(())
}

/// Builds a verifier for each allowed algorithm once, so that a key the crypto backend rejects
/// (e.g. an EC point not on its curve) fails at start-up rather than on every request.
fn check_usable(key: &LoadedKey) -> Result<(), String> {
    for alg in &key.algorithms {
        (DEFAULT_PROVIDER.verifier_factory)(alg, &key.key)
            .map_err(|e| format!("the key cannot verify {alg:?}: {e}"))?;
    }
    Ok(())
}

/// Where a JWKS comes from.
enum JwksLocation<'a> {
    Url(reqwest::Url),
    File(&'a Path),
}

fn jwks_location(location: &str) -> Result<JwksLocation<'_>, AuthError> {
    if location.trim().is_empty() {
        return Err(AuthError::Config(
            "`jwks` is empty: give a file path or an https:// URL".to_owned(),
        ));
    }
    if !location.contains("://") {
        return Ok(JwksLocation::File(Path::new(location)));
    }
    let url = reqwest::Url::parse(location)
        .map_err(|e| AuthError::Config(format!("the JWKS URL {location} does not parse: {e}")))?;
    match url.scheme() {
        "https" => Ok(JwksLocation::Url(url)),
        "http" if is_loopback(&url) => Ok(JwksLocation::Url(url)),
        "http" => Err(AuthError::Config(format!(
            "the JWKS URL {location} uses plain http: use https:// (plain http is allowed only \
             on a loopback address, for tests)"
        ))),
        other => Err(AuthError::Config(format!(
            "the JWKS location {location} has scheme `{other}`: give a file path or an \
             https:// URL"
        ))),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

async fn load_jwks(location: &str) -> Result<Vec<LoadedKey>, AuthError> {
    let body = match jwks_location(location)? {
        JwksLocation::File(path) => tokio::fs::read(path)
            .await
            .map_err(|e| AuthError::Config(format!("cannot read the JWKS file {location}: {e}")))?,
        JwksLocation::Url(url) => fetch_jwks(url).await?,
    };
    parse_jwks(&body, location)
}

async fn fetch_jwks(url: reqwest::Url) -> Result<Vec<u8>, AuthError> {
    // reqwest is built with `rustls-no-provider`: building a client panics unless a process-wide
    // rustls provider is installed. An `Err` only means one already is.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let failed = |what: String| {
        AuthError::Config(format!(
            "cannot fetch the JWKS from {url}: {what}; check the URL and that the identity \
             provider is reachable"
        ))
    };
    let client = reqwest::Client::builder()
        .timeout(JWKS_FETCH_TIMEOUT)
        // Stops a redirect from downgrading an https key set to plain http.
        .https_only(url.scheme() == "https")
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let mut response = client
        .get(url.clone())
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("HTTP status {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err(failed(format!(
                "the response is larger than {MAX_JWKS_BYTES} bytes"
            )));
        }
    }
    Ok(body)
}

/// Turns a key set into verification keys, skipping (with a warning) keys that are not for
/// signatures or not of a supported type. Fails if no usable key remains.
fn parse_jwks(body: &[u8], location: &str) -> Result<Vec<LoadedKey>, AuthError> {
    // Keys are parsed one by one so that one exotic key does not make the whole set unusable.
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet = serde_json::from_slice(body).map_err(|e| {
        AuthError::Config(format!(
            "{location} is not a JSON Web Key Set (an object with a `keys` array): {e}"
        ))
    })?;
    let mut keys = Vec::new();
    for (index, raw) in set.keys.into_iter().enumerate() {
        let kid = raw.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
        match jwk_key(raw) {
            Ok(key) => keys.push(key),
            Err(why) => tracing::warn!(index, ?kid, "ignoring a key of the JWKS: {why}"),
        }
    }
    if keys.is_empty() {
        return Err(AuthError::Config(format!(
            "{location} holds no usable signing key: it needs RSA (at least \
             {MIN_RSA_MODULUS_BITS} bits) or EC P-256/P-384 public keys meant for signatures"
        )));
    }
    Ok(keys)
}

fn jwk_key(raw: serde_json::Value) -> Result<LoadedKey, String> {
    let jwk: Jwk = serde_json::from_value(raw).map_err(|e| format!("not a JWK: {e}"))?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return Err("its `use` is not `sig`".to_owned());
    }
    if matches!(&jwk.common.key_operations, Some(ops) if !ops.contains(&KeyOperations::Verify)) {
        return Err("its `key_ops` do not include `verify`".to_owned());
    }
    let (key, supported) = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let key = DecodingKey::from_rsa_components(&p.n, &p.e)
                .map_err(|e| format!("bad RSA parameters: {e}"))?;
            if let DecodingKeyKind::RsaModulusExponent { n, .. } = key.kind() {
                check_rsa_size(n)?;
            }
            (key, RSA_ALGORITHMS.to_vec())
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let alg = match p.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err("only the P-256 and P-384 curves are supported".to_owned()),
            };
            let key = DecodingKey::from_ec_components(&p.x, &p.y)
                .map_err(|e| format!("bad EC parameters: {e}"))?;
            (key, vec![alg])
        }
        // A key set is public: a shared secret in it would let anyone mint tokens.
        AlgorithmParameters::OctetKey(_) => {
            return Err(
                "it is a symmetric (`oct`) key, which a public key set must not hold".to_owned(),
            );
        }
        _ => return Err("only RSA and EC keys are supported".to_owned()),
    };
    // A key that names its algorithm is used for that algorithm only (RFC 7517 §4.4).
    let algorithms = match jwk.common.key_algorithm {
        None => supported,
        Some(declared) => match Algorithm::try_from(declared) {
            Ok(alg) if supported.contains(&alg) => vec![alg],
            _ => {
                return Err(format!(
                    "its `alg` {declared} does not fit its key type here"
                ));
            }
        },
    };
    let key = LoadedKey {
        kid: jwk.common.key_id,
        key,
        algorithms,
    };
    check_usable(&key)?;
    Ok(key)
}

#[cfg(test)]
mod tests;
