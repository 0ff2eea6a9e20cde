//! Keeps the benchmark harness from rotting: a tiny steady scenario (4 devices, 4 dossiers,
//! about 1 s each) against Regie and Regie with the privacy bypass, and a tiny reconnect against
//! Regie and the raw limit, each through the same code paths as `regie-load`. It checks that
//! changes are acknowledged, latencies are recorded and nothing is refused; it asserts no
//! performance.

use std::path::PathBuf;

use regie_bench::scenario::{Common, ReconnectCfg, SteadyCfg, Target, reconnect, steady};
use regie_bench::server::Launch;

fn common(dir: &std::path::Path, targets: Vec<Target>) -> Common {
    Common {
        instances: 1,
        seed: 7,
        runs: 1,
        targets,
        work_dir: dir.to_path_buf(),
        launch: Launch {
            regie_bin: PathBuf::from(env!("CARGO_BIN_EXE_regie-bench-server")),
            js_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js"),
            regie_args: Vec::new(),
            database_url: None,
            offer_deflate: true,
        },
        keep: false,
        progress: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_steady_run_acknowledges_changes() {
    let dir = tempfile::tempdir().unwrap();
    let c = common(dir.path(), vec![Target::Regie, Target::Bypass]);
    let cfg = SteadyCfg {
        devices: 4,
        dossiers: 4,
        per_device: 2,
        duration_s: 0.8,
        warmup_s: 0.2,
        rate: 0.0,
        window: 2,
        attackers: 0,
    };
    let ms = steady(&c, "a", &cfg).await.unwrap();
    assert_eq!(ms.len(), 2);
    for m in &ms {
        assert!(m.notes.iter().all(|n| !n.starts_with("failed")), "{m:?}");
        assert!(m.metrics["acked_per_s"] > 0.0, "{m:?}");
        assert!(m.metrics["lat_p50_ms"].is_finite(), "{m:?}");
        assert_eq!(m.metrics["problems"], 0.0, "{m:?}");
        assert_eq!(m.metrics["failed_devices"], 0.0, "{m:?}");
        assert!(m.metrics["rss_mb"] > 0.0, "{m:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_reconnect_reconciles() {
    let dir = tempfile::tempdir().unwrap();
    let c = common(dir.path(), vec![Target::Regie, Target::Raw]);
    let cfg = ReconnectCfg {
        dossiers: 3,
        edits: 3,
        history: 5,
    };
    let ms = reconnect(&c, &cfg).await.unwrap();
    assert_eq!(ms.len(), 2);
    for m in &ms {
        assert!(m.notes.iter().all(|n| !n.starts_with("failed")), "{m:?}");
        assert!(m.metrics["raw_change_bytes"] > 0.0, "{m:?}");
        // Compressed, the wire can carry less than the raw changes; never nothing.
        assert!(m.metrics["wire_over_raw"] > 0.0, "{m:?}");
    }
}
