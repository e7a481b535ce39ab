//! Pictures made of labelled cells, written as plain SVG: confusion matrices with a count in
//! every cell, and image grids with text under each image (plotters draws charts; these are
//! tables, and an SVG that embeds each image as a PNG keeps them one self-contained file).

use super::grid_png;
use crate::data::{ImageShape, Levels};
use crate::error::{Error, Result};
use base64::Engine;
use std::fmt::Write;
use std::path::Path;

/// One confusion matrix to draw: `counts[true][predicted]`.
pub struct Matrix<'a> {
    pub title: String,
    pub counts: &'a [Vec<u64>],
}

/// Side-by-side confusion matrices (rows: true class, columns: predicted class), each cell
/// shaded by its share of the row (blue on the diagonal, red off it) and labelled with its
/// count, so that the few errors of a good classifier still show.
pub fn confusion_svg(path: &Path, title: &str, matrices: &[Matrix]) -> Result<()> {
    const CELL: usize = 34;
    const LEFT: usize = 56;
    const TOP: usize = 92;
    let classes = matrices.iter().map(|m| m.counts.len()).max().unwrap_or(0);
    let panel = LEFT + classes * CELL + 24;
    let (width, height) = (panel * matrices.len().max(1), TOP + classes * CELL + 40);
    let mut svg = header(width, height);
    text(&mut svg, width / 2, 22, 15, "middle", "bold", title);
    for (k, m) in matrices.iter().enumerate() {
        let x0 = k * panel + LEFT;
        text(
            &mut svg,
            x0 + classes * CELL / 2,
            46,
            13,
            "middle",
            "bold",
            &m.title,
        );
        text(
            &mut svg,
            x0 + classes * CELL / 2,
            66,
            11,
            "middle",
            "normal",
            "predicted",
        );
        let mid = TOP + classes * CELL / 2;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{mid}" font-size="11" text-anchor="middle" transform="rotate(-90 {} {mid})">true class</text>"#,
            x0 - 36,
            x0 - 36
        );
        for (t, row) in m.counts.iter().enumerate() {
            let total = row.iter().sum::<u64>().max(1) as f64;
            let y = TOP + t * CELL;
            text(
                &mut svg,
                x0 - 8,
                y + CELL / 2 + 4,
                11,
                "end",
                "normal",
                &t.to_string(),
            );
            for (p, &count) in row.iter().enumerate() {
                let x = x0 + p * CELL;
                if t == 0 {
                    text(
                        &mut svg,
                        x + CELL / 2,
                        TOP - 4,
                        11,
                        "middle",
                        "normal",
                        &p.to_string(),
                    );
                }
                let share = count as f64 / total;
                // Errors are rare: shade them on a stronger scale than the diagonal.
                let (fill, ink) = if t == p {
                    (
                        shade([40, 90, 200], share),
                        if share > 0.5 { "white" } else { "black" },
                    )
                } else {
                    (shade([210, 40, 40], (share * 20.0).min(1.0)), "black")
                };
                let _ = writeln!(
                    svg,
                    r##"<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{fill}" stroke="#ccc"/>"##
                );
                if count > 0 {
                    let size = if count >= 1000 { 9 } else { 10 };
                    let _ = writeln!(
                        svg,
                        r#"<text x="{}" y="{}" font-size="{size}" text-anchor="middle" fill="{ink}">{count}</text>"#,
                        x + CELL / 2,
                        y + CELL / 2 + 4
                    );
                }
            }
        }
    }
    svg.push_str("</svg>\n");
    crate::atomic::write_atomic(path, svg.as_bytes())
}

/// One image of a verdict grid with the lines written under it; `alarm` colours the last line
/// red (rejected), else green.
#[derive(Clone)]
pub struct Cell<'a> {
    pub pixels: &'a [u8],
    pub lines: Vec<String>,
    pub alarm: bool,
}

/// A row of a verdict grid: a heading (the data set and its shares) over its images.
pub struct Row<'a> {
    pub heading: String,
    pub cells: Vec<Cell<'a>>,
}

/// A grid of images, one row per data set, each image with text under it.
pub fn verdict_svg(
    path: &Path,
    title: &[String],
    rows: &[Row],
    shape: ImageShape,
    levels: Levels,
) -> Result<()> {
    const CELL_W: usize = 150;
    const GAP: usize = 10;
    let image = shape.width * super::ZOOM as usize;
    let lines = rows
        .iter()
        .flat_map(|r| r.cells.iter().map(|c| c.lines.len()))
        .max()
        .unwrap_or(0);
    let row_h = 26 + image + 16 * lines + 14;
    let columns = rows.iter().map(|r| r.cells.len()).max().unwrap_or(0).max(1);
    let top = 16 + 20 * title.len();
    let width = GAP + columns * (CELL_W + GAP);
    let height = top + rows.len() * row_h + GAP;
    let mut svg = header(width, height);
    for (i, line) in title.iter().enumerate() {
        let weight = if i == 0 { "bold" } else { "normal" };
        text(
            &mut svg,
            GAP,
            22 + 20 * i,
            14 - i.min(1),
            "start",
            weight,
            line,
        );
    }
    for (r, row) in rows.iter().enumerate() {
        let y0 = top + r * row_h;
        text(&mut svg, GAP, y0 + 18, 13, "start", "bold", &row.heading);
        for (c, cell) in row.cells.iter().enumerate() {
            let x0 = GAP + c * (CELL_W + GAP);
            let png = grid_png(&[Some(cell.pixels)], shape, levels, 1)
                .map_err(|e| Error::bad_file(path, format!("cannot encode PNG: {e}")))?;
            let data = base64::engine::general_purpose::STANDARD.encode(png);
            let _ = writeln!(
                svg,
                r#"<image x="{}" y="{}" width="{image}" height="{image}" href="data:image/png;base64,{data}"/>"#,
                x0 + (CELL_W - image) / 2,
                y0 + 26
            );
            for (l, line) in cell.lines.iter().enumerate() {
                let last = l + 1 == cell.lines.len();
                let colour = match (last, cell.alarm) {
                    (false, _) => "#222",
                    (true, true) => "#c0392b",
                    (true, false) => "#1e8449",
                };
                let _ = writeln!(
                    svg,
                    r#"<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="{colour}">{}</text>"#,
                    x0 + CELL_W / 2,
                    y0 + 26 + image + 16 * (l + 1),
                    escape(line)
                );
            }
        }
    }
    svg.push_str("</svg>\n");
    crate::atomic::write_atomic(path, svg.as_bytes())
}

fn header(width: usize, height: usize) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    )
}

fn text(svg: &mut String, x: usize, y: usize, size: usize, anchor: &str, weight: &str, s: &str) {
    let _ = writeln!(
        svg,
        r#"<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}">{}</text>"#,
        escape(s)
    );
}

/// `white` shaded towards `rgb` by `amount` in [0, 1].
fn shade(rgb: [u8; 3], amount: f64) -> String {
    let a = amount.clamp(0.0, 1.0);
    let mix = |c: u8| (255.0 - (255.0 - c as f64) * a).round() as u8;
    format!("rgb({},{},{})", mix(rgb[0]), mix(rgb[1]), mix(rgb[2]))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_grid_embeds_each_image_and_escapes_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.svg");
        let shape = ImageShape {
            channels: 1,
            height: 2,
            width: 2,
        };
        let pixels = [0u8, 1, 1, 0];
        let row = Row {
            heading: "noise <uniform>".into(),
            cells: vec![
                Cell {
                    pixels: &pixels,
                    lines: vec!["CNN: 3 (99%)".into(), "rejected".into()],
                    alarm: true,
                };
                2
            ],
        };
        verdict_svg(&path, &["t".into()], &[row], shape, Levels::Binary).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert_eq!(svg.matches("data:image/png;base64,").count(), 2);
        assert!(svg.contains("noise &lt;uniform&gt;") && svg.contains("#c0392b"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn a_confusion_matrix_labels_every_nonzero_cell() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.svg");
        let counts = vec![vec![5, 0], vec![2, 7]];
        let m = Matrix {
            title: "x".into(),
            counts: &counts,
        };
        confusion_svg(&path, "t", &[m]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert_eq!(svg.matches("<rect x=").count(), 4);
        for n in [">5<", ">2<", ">7<"] {
            assert!(svg.contains(n), "{n}");
        }
    }
}
