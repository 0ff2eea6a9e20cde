//! Writes each fuzz target's seeds (real sync messages of Regie's documents, captured frames,
//! signed tokens, edit scripts) into `<dir>/<target>/`, to start a corpus from:
//! `cargo run -p regie-fuzz-harness --example seed -- fuzz/seeds` (see FUZZING.md).

use regie_fuzz_harness::Target;

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/seeds".into());
    for target in Target::ALL {
        let out = std::path::Path::new(&dir).join(target.name());
        std::fs::create_dir_all(&out)?;
        let seeds = target.seeds();
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(out.join(format!("seed-{i:04}")), seed)?;
        }
        println!(
            "{}: {} seeds in {}",
            target.name(),
            seeds.len(),
            out.display()
        );
    }
    Ok(())
}
