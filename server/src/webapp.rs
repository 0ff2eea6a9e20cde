//! The offline web app (`clients/web`), embedded at build time (see `build.rs`) and served at
//! `/`: `index.html` and the service worker are never cached by HTTP (the service worker caches
//! the shell itself), the hashed files under `/assets/` are immutable. Pages get a content
//! security policy that allows only this origin (and WebAssembly, for Automerge).
//!
//! `regie-server demo` also serves `/demo/logins`, the demo cast with their tokens, so the app
//! can offer "log in as"; [`set_demo_logins`] is called by `demo` only, so `serve` never has
//! that route.

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// The demo cast (label, user, role, token), set once by `regie-server demo`.
static DEMO_LOGINS: OnceLock<serde_json::Value> = OnceLock::new();

/// Offers the demo cast at `/demo/logins` in routers built after this call. Demo only.
pub fn set_demo_logins(logins: serde_json::Value) {
    let _ = DEMO_LOGINS.set(logins);
}

/// The page's content security policy: scripts, styles, connections only from this origin.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; worker-src 'self'; \
    manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "webmanifest" => "application/manifest+json",
        "json" => "application/json",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

fn asset(path: &'static str, bytes: &'static [u8]) -> Response {
    let cache = if path.starts_with("/assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut res = (
        [
            (header::CONTENT_TYPE, content_type(path)),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        bytes,
    )
        .into_response();
    if path.ends_with(".html") {
        res.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    res
}

/// Whether this binary carries the built web app.
pub fn embedded() -> bool {
    assets::ASSETS.iter().any(|(p, _)| *p == "/index.html")
}

/// The routes of the web app: `/`, each built file at its path, and in demo `/demo/logins`.
pub fn router() -> Router {
    let mut router = Router::new();
    for &(path, bytes) in assets::ASSETS {
        if path == "/build-info.json" {
            continue;
        }
        router = router.route(path, get(move || async move { asset(path, bytes) }));
        if path == "/index.html" {
            router = router.route("/", get(move || async move { asset(path, bytes) }));
        }
    }
    if !embedded() {
        router = router.route(
            "/",
            get(|| async {
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "This regie-server was built without the web app (clients/web/dist).",
                )
            }),
        );
    }
    if let Some(logins) = DEMO_LOGINS.get() {
        router = router.route(
            "/demo/logins",
            get(move || async move {
                (
                    [(header::CACHE_CONTROL, "no-store")],
                    axum::Json(logins.clone()),
                )
            }),
        );
    }
    router
}
