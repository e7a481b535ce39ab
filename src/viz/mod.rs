//! Pictures: image grids as PNG, learning curves as SVG.

use crate::data::{ImageShape, Levels};
use crate::error::{Error, Result};
use std::path::Path;

pub mod panels;
pub mod tsne;

/// Pixels per image pixel in grids (28x28 digits become 84x84).
const ZOOM: u32 = 3;
/// Gap between grid cells, in output pixels.
const GAP: u32 = 2;

/// Writes `images` (row-major bytes, `shape`, values in `levels`) as a PNG grid with `columns`
/// cells per row. Binary pixels are drawn white ink on black; `None` cells stay blank.
pub fn save_grid(
    path: &Path,
    images: &[Option<&[u8]>],
    shape: ImageShape,
    levels: Levels,
    columns: usize,
) -> Result<()> {
    let bytes = grid_png(images, shape, levels, columns)
        .map_err(|e| Error::bad_file(path, format!("cannot encode PNG: {e}")))?;
    crate::atomic::write_atomic(path, &bytes)
}

/// The PNG bytes of [`save_grid`]'s picture.
pub fn grid_png(
    images: &[Option<&[u8]>],
    shape: ImageShape,
    levels: Levels,
    columns: usize,
) -> std::result::Result<Vec<u8>, image::ImageError> {
    let columns = columns.max(1) as u32;
    let rows = images.len().div_ceil(columns as usize).max(1) as u32;
    let (cw, ch) = (shape.width as u32 * ZOOM, shape.height as u32 * ZOOM);
    let width = columns * (cw + GAP) + GAP;
    let height = rows * (ch + GAP) + GAP;
    let mut canvas = image::RgbImage::from_pixel(width, height, image::Rgb([96, 96, 96]));
    let scale = 255.0 / (levels.count() - 1) as f32;
    let plane = shape.height * shape.width;
    for (index, cell) in images.iter().enumerate() {
        let Some(pixels) = cell else { continue };
        let (gx, gy) = (index as u32 % columns, index as u32 / columns);
        let (x0, y0) = (GAP + gx * (cw + GAP), GAP + gy * (ch + GAP));
        for y in 0..shape.height {
            for x in 0..shape.width {
                let at = |c: usize| (pixels[c * plane + y * shape.width + x] as f32 * scale) as u8;
                let rgb = if shape.channels >= 3 {
                    [at(0), at(1), at(2)]
                } else {
                    [at(0); 3]
                };
                for dy in 0..ZOOM {
                    for dx in 0..ZOOM {
                        canvas.put_pixel(
                            x0 + x as u32 * ZOOM + dx,
                            y0 + y as u32 * ZOOM + dy,
                            image::Rgb(rgb),
                        );
                    }
                }
            }
        }
    }
    let mut bytes = Vec::new();
    canvas.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    Ok(bytes)
}

/// Cells of a contiguous image buffer.
pub fn cells(pixels: &[u8], shape: ImageShape) -> Vec<Option<&[u8]>> {
    pixels.chunks(shape.dims()).map(Some).collect()
}

/// One point of a learning curve: train and validation NLL (nats per image) after an epoch.
#[derive(Debug, Clone, Copy)]
pub struct CurvePoint {
    pub train_nll: f64,
    pub valid_nll: f64,
}

/// Draws a learning curve (SVG) at `path`: train and validation NLL against epochs.
pub fn loss_curve(path: &Path, metrics: &[CurvePoint]) -> Result<()> {
    if metrics.is_empty() {
        return Ok(());
    }
    let series = [
        (
            "train (mean over epoch)".to_string(),
            metrics.iter().map(|m| m.train_nll).collect(),
        ),
        (
            "validation".to_string(),
            metrics.iter().map(|m| m.valid_nll).collect(),
        ),
    ];
    let svg = overlay_curves_svg(
        "negative log-likelihood per epoch",
        "nats per image",
        &series,
    )?;
    crate::atomic::write_atomic(path, svg.as_bytes())
}

/// Ten distinguishable colours (Tableau 10), one per class.
const CLASS_COLOURS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// A scatter plot (SVG) of 2-D points coloured by class label, with a legend.
pub fn latent_scatter(path: &Path, points: &[Vec<f32>], labels: &[u8], title: &str) -> Result<()> {
    labelled_scatter(
        path,
        points,
        labels,
        &[],
        title,
        ("z1 (posterior mean)", "z2"),
    )
}

/// [`latent_scatter`] with the points at `labelled` drawn large, ringed in black (the few
/// labelled images of a semi-supervised experiment), and the axes named `axes`.
pub fn labelled_scatter(
    path: &Path,
    points: &[Vec<f32>],
    labels: &[u8],
    labelled: &[usize],
    title: &str,
    axes: (&str, &str),
) -> Result<()> {
    use plotters::prelude::*;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 640)).into_drawing_area();
        let draw = || -> std::result::Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
            for p in points {
                for d in 0..2 {
                    lo[d] = lo[d].min(p[d]);
                    hi[d] = hi[d].max(p[d]);
                }
            }
            let pad = |d: usize| ((hi[d] - lo[d]) * 0.05).max(0.1);
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(48)
                .build_cartesian_2d(
                    (lo[0] - pad(0))..(hi[0] + pad(0)),
                    (lo[1] - pad(1))..(hi[1] + pad(1)),
                )?;
            chart
                .configure_mesh()
                .x_desc(axes.0)
                .y_desc(axes.1)
                .draw()?;
            for class in 0..10u8 {
                let (r, g, b) = CLASS_COLOURS[class as usize];
                let colour = RGBColor(r, g, b);
                let series = points
                    .iter()
                    .zip(labels)
                    .filter(|(_, l)| **l == class)
                    .map(|(p, _)| Circle::new((p[0], p[1]), 2, colour.filled()));
                chart
                    .draw_series(series)?
                    .label(format!("{class}"))
                    .legend(move |(x, y)| Circle::new((x + 6, y), 4, colour.filled()));
            }
            for &i in labelled {
                let (r, g, b) = CLASS_COLOURS[labels[i] as usize % 10];
                let at = (points[i][0], points[i][1]);
                chart.draw_series([
                    Circle::new(at, 6, RGBColor(r, g, b).filled()),
                    Circle::new(at, 6, BLACK.stroke_width(2)),
                ])?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE)
                .border_style(BLACK)
                .draw()?;
            root.present()?;
            Ok(())
        };
        draw().map_err(|e| Error::bad_file(path, format!("cannot draw scatter plot: {e}")))?;
    }
    crate::atomic::write_atomic(path, svg.as_bytes())
}

/// Overlaid histograms (SVG) of a score on in-distribution and out-of-distribution images.
pub fn score_histogram(
    path: &Path,
    in_scores: &[f64],
    out_scores: &[f64],
    labels: [&str; 2],
    title: &str,
) -> Result<()> {
    use plotters::prelude::*;
    let finite = |s: &[f64]| {
        s.iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect::<Vec<_>>()
    };
    let (a, b) = (finite(in_scores), finite(out_scores));
    let (lo, hi) = a
        .iter()
        .chain(&b)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    if !lo.is_finite() || !hi.is_finite() {
        return Err(Error::Invalid(format!("{title}: no finite scores to plot")));
    }
    let bins = 40;
    let width = ((hi - lo) / bins as f64).max(1e-9);
    let histogram = |s: &[f64]| {
        let mut counts = vec![0f64; bins];
        for &v in s {
            counts[(((v - lo) / width) as usize).min(bins - 1)] += 1.0 / s.len().max(1) as f64;
        }
        counts
    };
    let (ha, hb) = (histogram(&a), histogram(&b));
    let top = ha.iter().chain(&hb).copied().fold(0.0, f64::max) * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 420)).into_drawing_area();
        let draw = || -> std::result::Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(lo..hi + width, 0.0..top.max(1e-9))?;
            chart
                .configure_mesh()
                .x_desc("score (higher = more out of distribution)")
                .y_desc("fraction of images")
                .draw()?;
            for (counts, colour, label) in [(&ha, BLUE, labels[0]), (&hb, RED, labels[1])] {
                let bars = counts.iter().enumerate().map(move |(i, &c)| {
                    let x0 = lo + i as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, c)], colour.mix(0.4).filled())
                });
                chart.draw_series(bars)?.label(label).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.mix(0.4).filled())
                });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE)
                .border_style(BLACK)
                .draw()?;
            root.present()?;
            Ok(())
        };
        draw().map_err(|e| Error::bad_file(path, format!("cannot draw histogram: {e}")))?;
    }
    crate::atomic::write_atomic(path, svg.as_bytes())
}

/// An SVG (as a string) of several named curves over epochs: e.g. the validation NLL of each
/// run in a comparison report.
pub fn overlay_curves_svg(
    title: &str,
    y_label: &str,
    series: &[(String, Vec<f64>)],
) -> Result<String> {
    use plotters::prelude::*;
    let mut svg = String::new();
    let epochs = series.iter().map(|s| s.1.len()).max().unwrap_or(0).max(1);
    let values = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        return Ok(String::new());
    }
    let pad = ((hi - lo) * 0.1).max(0.5);
    {
        let root = SVGBackend::with_string(&mut svg, (720, 420)).into_drawing_area();
        let draw = || -> std::result::Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(60)
                .build_cartesian_2d(0.5..(epochs as f64 + 0.5), (lo - pad)..(hi + pad))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(y_label)
                .draw()?;
            for (i, (name, ys)) in series.iter().enumerate() {
                let (r, g, b) = CLASS_COLOURS[i % CLASS_COLOURS.len()];
                let colour = RGBColor(r, g, b);
                let points = ys.iter().enumerate().map(|(e, &y)| (e as f64 + 1.0, y));
                chart
                    .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                    .label(name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE)
                .border_style(BLACK)
                .draw()?;
            root.present()?;
            Ok(())
        };
        draw().map_err(|e| Error::Invalid(format!("cannot draw {title}: {e}")))?;
    }
    Ok(svg)
}
