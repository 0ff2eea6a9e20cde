//! Rebuild when a migration is added: `sqlx::migrate!` embeds the files but cargo does not watch them.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
