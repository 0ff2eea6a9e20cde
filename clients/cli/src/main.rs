//! The `regie` CLI.
fn main() {}
