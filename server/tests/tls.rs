//! HTTPS and WSS through rustls (ring): with `--tls-cert`/`--tls-key` the API and the sync
//! endpoint speak TLS, and a client that trusts the CA completes the automerge-repo handshake.

use std::sync::Arc;

use regie_server::config::{ServeArgs, StoreArgs};
use regie_sync_protocol::PeerId;

fn tls_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

#[tokio::test]
async fn the_api_and_the_sync_endpoint_speak_tls() {
    regie_server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let args = ServeArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: StoreArgs::sqlite(dir.path()),
        jwt_secret: Some("tls-test-secret-long-enough-for-hs256!".into()),
        jwt_public_key: None,
        jwks: None,
        jwt_issuer: Some("regie-test".into()),
        jwt_audience: Some("regie".into()),
        tls_cert: None,
        tls_key: None,
        hot_documents: 10,
        oversight: Default::default(),
        limits: Default::default(),
    };
    let state = regie_server::state(&args).await.unwrap();
    let token = state
        .auth
        .mint(
            &regie_core::principal::Claims {
                sub: "anna".into(),
                role: regie_core::principal::Role::Worker,
                district: Some("noord".into()),
                team: Some("t1".into()),
                org: None,
                person: None,
                citywide: false,
            },
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(regie_server::run(
        listener,
        state,
        Some((tls_file("server.pem"), tls_file("server.key"))),
        async move {
            let _ = stopped.await;
        },
    ));

    let ca = std::fs::read(tls_file("ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let mut health = None;
    for _ in 0..50 {
        if let Ok(res) = client
            .get(format!("https://localhost:{port}/api/v1/health"))
            .send()
            .await
        {
            health = Some(res.status());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(health.map(|s| s.as_u16()), Some(200));
    assert!(
        reqwest::get(format!("http://localhost:{port}/api/v1/health"))
            .await
            .is_err(),
        "no plain HTTP on a TLS port"
    );

    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_tungstenite::Connector::Rustls(Arc::new(config));
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://localhost:{port}/sync?token={token}"),
        None,
        false,
        Some(connector),
    )
    .await
    .unwrap();
    // The server answers `join` with `peer` over TLS.
    regie_testkit::Connection::join(ws, PeerId::new("tls-peer"), None, regie_testkit::PATIENCE)
        .await
        .expect("joined over TLS");

    let _ = stop.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), server).await;
}
