//! Rebuild when a migration is added: `sqlx::migrate!` embeds the files but cargo does not watch them.
//!
//! Embeds the web app (`clients/web/dist`, built by `npm run build -w @regie/web` and checked
//! in) into the binary: writes `$OUT_DIR/web_assets.rs`, one `(url path, bytes)` per file.
//! Without the folder the server is built without the app and says so at `/`.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dist = manifest.join("../clients/web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut found = Vec::new();
    files(&dist, &mut found);
    found.sort();
    let mut code = String::from("/// The built web app: (URL path, bytes), sorted by path.\n");
    code.push_str("pub(crate) static ASSETS: &[(&str, &[u8])] = &[\n");
    for file in &found {
        let rel = file
            .strip_prefix(&dist)
            .expect("under dist")
            .to_string_lossy()
            .replace('\\', "/");
        let abs = file.canonicalize().expect("a file that exists");
        code.push_str(&format!(
            "    ({:?}, include_bytes!({:?})),\n",
            format!("/{rel}"),
            abs.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("web_assets.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
