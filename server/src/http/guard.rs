//! Guards around every route (I7): request bodies are bounded per route and refused with 413
//! before they are read whole; a handler that panics still answers 500 with the API's error shape,
//! and the connection and every other request carry on; and every error the framework writes
//! itself (an unreadable JSON body, a wrong content type, an unknown route) is rewritten into the
//! same `{"error": {"code", "message"}}` shape as the API's own errors.

use std::any::Any;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use tower_http::catch_panic::CatchPanicLayer;

use super::ApiError;

/// The largest JSON body a route takes unless it says otherwise: 64 KiB, ample for the API's
/// objects (texts are capped at a few thousand characters each).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The largest body of `POST /api/v1/audit/offline-reads`: 2 MiB, room for the 5,000 events
/// one upload may carry.
pub const OFFLINE_READS_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// How much of a framework error's text is kept in the rewritten message.
const MESSAGE_MAX: usize = 300;

/// `route` with its bodies limited to `bytes`: a larger body is refused with 413
/// `body_too_large` naming the limit, as soon as its length shows it (a declared length
/// beyond the limit is refused before a byte is read).
pub(super) fn limit_body<S>(route: MethodRouter<S>, bytes: usize) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    route
        .layer(DefaultBodyLimit::max(bytes))
        .layer(map_response(move |response: Response| async move {
            if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large(bytes).into_response()
            } else {
                response
            }
        }))
}

fn too_large(bytes: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than {bytes} bytes, the most this route accepts"),
    )
}

/// `router` with the guards every route shares: framework errors in the API's shape, and
/// panics caught and answered.
pub(super) fn guard(router: Router) -> Router {
    router
        .layer(map_response(error_shape))
        .layer(CatchPanicLayer::custom(panicked))
}

/// Answers a handler's panic: 500 in the API's shape. The panic's message goes to the log only;
/// it may name what the handler was working on.
fn panicked(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    tracing::error!(panic = %message, "a request handler panicked; answered 500");
    internal().into_response()
}

fn internal() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "something went wrong; try again later",
    )
}

/// Rewrites an error response that is not JSON — one the framework wrote, such as a body
/// extractor's rejection — into the API's shape with a code for its status.
async fn error_shape(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    // Framework errors are a line of text; more than that is not read.
    let text = match axum::body::to_bytes(response.into_body(), 4 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let detail: String = text.trim().chars().take(MESSAGE_MAX).collect();
    let or = |fallback: &str| {
        if detail.is_empty() {
            fallback.to_owned()
        } else {
            detail.clone()
        }
    };
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "body_too_large",
            "the request body is larger than this route accepts",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => {
            ApiError::new(status, "invalid_body", or("the body has the wrong shape"))
        }
        StatusCode::NOT_FOUND => ApiError::new(status, "not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            "this route does not take that method",
        ),
        s if s.is_server_error() => internal(),
        _ => ApiError::new(status, "bad_request", or("the request cannot be read")),
    };
    let mut rewritten = error.into_response();
    // The status is kept as the framework chose it (e.g. 426 for a failed upgrade).
    *rewritten.status_mut() = status;
    rewritten
}

#[cfg(test)]
mod tests {
    use axum::routing::{get, post};

    use super::*;

    async fn boom() -> &'static str {
        panic!("the handler fell over")
    }

    async fn echo(axum::Json(v): axum::Json<serde_json::Value>) -> axum::Json<serde_json::Value> {
        axum::Json(v)
    }

    /// A real server on 127.0.0.1:0 with the guards around a panicking route, a JSON route
    /// limited to 1 KiB and a healthy one.
    async fn serve() -> std::net::SocketAddr {
        // reqwest needs rustls' provider even for plain HTTP.
        crate::install_crypto_provider();
        let app = guard(
            Router::new()
                .route("/boom", get(boom))
                .route("/ok", get(|| async { "fine" }))
                .route("/echo", limit_body(post(echo), 1024)),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    async fn error_of(res: reqwest::Response) -> (u16, String) {
        let status = res.status().as_u16();
        let v: serde_json::Value = res.json().await.expect("a JSON error");
        (
            status,
            v["error"]["code"].as_str().unwrap_or_default().to_owned(),
        )
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_the_api_shape_and_the_connection_keeps_serving() {
        let addr = serve().await;
        // One connection for all requests: the panic must not drop it.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        for _ in 0..3 {
            let res = client
                .get(format!("http://{addr}/boom"))
                .send()
                .await
                .expect("an answer, not a dropped connection");
            assert_eq!(error_of(res).await, (500, "internal".to_owned()));
            let res = client
                .get(format!("http://{addr}/ok"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(res.text().await.unwrap(), "fine");
        }
    }

    #[tokio::test]
    async fn framework_errors_are_rewritten_into_the_api_shape_with_a_code() {
        let addr = serve().await;
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/echo");
        let big = serde_json::json!({ "text": "x".repeat(2000) });
        let res = client.post(&url).json(&big).send().await.unwrap();
        assert_eq!(error_of(res).await, (413, "body_too_large".to_owned()));
        let res = client
            .post(&url)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(res).await, (400, "bad_request".to_owned()));
        let res = client.post(&url).body("{}").send().await.unwrap();
        assert_eq!(
            error_of(res).await,
            (415, "unsupported_media_type".to_owned())
        );
        let res = client
            .get(format!("http://{addr}/nowhere"))
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(res).await, (404, "not_found".to_owned()));
        let res = client.get(&url).send().await.unwrap();
        assert_eq!(error_of(res).await, (405, "method_not_allowed".to_owned()));
        let res = client
            .post(&url)
            .json(&serde_json::json!({ "small": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
}
