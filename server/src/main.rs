//! regie-server binary.
fn main() {}
