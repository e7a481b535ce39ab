//! Writes a grid of the embedded synth-digits training images: `cargo run --example synth_grid -- out.png`.
use genmodels::data::{self, Split};
fn main() -> genmodels::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "synth-digits.png".into());
    let set = data::load("synth-digits", Split::Train, std::path::Path::new("."))?.truncate(64);
    genmodels::viz::save_grid(
        std::path::Path::new(&out),
        &genmodels::viz::cells(&set.pixels, set.shape),
        set.shape,
        set.levels,
        8,
    )
}
