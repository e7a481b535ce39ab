//! Writes a grid of an embedded data set's first training images:
//! `cargo run --example synth_grid -- out.png [synth-digits|synth-shapes]`.
use genmodels::data::{self, Split};
fn main() -> genmodels::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "synth-digits.png".into());
    let name = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "synth-digits".into());
    let set = data::load(&name, Split::Train, std::path::Path::new("."))?.truncate(64);
    genmodels::viz::save_grid(
        std::path::Path::new(&out),
        &genmodels::viz::cells(&set.pixels, set.shape),
        set.shape,
        set.levels,
        8,
    )
}
