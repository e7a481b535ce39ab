//! Larochelle–Murray `.amat` text: one image per line, `pixels` values in {0,1} separated by
//! spaces. Every row is checked: a short row or a stray value is an error naming the line.

use crate::error::{Error, Result};
use std::path::Path;

/// Parses `.amat` text into row-major bytes (one `pixels`-long row per image).
/// Returns the number of rows and the pixels.
pub fn parse(text: &[u8], pixels: usize, path: &Path) -> Result<(usize, Vec<u8>)> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut rows = 0;
    for (line_index, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let mut count = 0;
        for token in line
            .split(|b| b.is_ascii_whitespace())
            .filter(|t| !t.is_empty())
        {
            let value = match token {
                b"0" | b"0.0" => 0,
                b"1" | b"1.0" => 1,
                other => {
                    return Err(Error::bad_file(
                        path,
                        format!(
                            "line {}: value {:?} is not 0 or 1 (binarized .amat rows hold {pixels} values in {{0,1}})",
                            line_index + 1,
                            String::from_utf8_lossy(&other[..other.len().min(16)])
                        ),
                    ));
                }
            };
            out.push(value);
            count += 1;
        }
        if count != pixels {
            return Err(Error::bad_file(
                path,
                format!("line {}: {count} values, expected {pixels}", line_index + 1),
            ));
        }
        rows += 1;
    }
    Ok((rows, out))
}

/// Writes rows in `.amat` text (used by tests and tools).
pub fn encode(pixels: &[u8], row_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixels.len() * 2);
    for row in pixels.chunks(row_len) {
        for (i, &p) in row.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'0' + p);
        }
        out.push(b'\n');
    }
    out
}

/// Reads an `.amat` or `.amat.gz` file.
pub fn read(path: &Path, pixels: usize) -> Result<(usize, Vec<u8>)> {
    let bytes = super::read_maybe_gz(path)?;
    parse(&bytes, pixels, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let px: Vec<u8> = (0..12).map(|i| (i % 3 == 0) as u8).collect();
        let (rows, back) = parse(&encode(&px, 4), 4, Path::new("a")).unwrap();
        assert_eq!((rows, back), (3, px));
    }

    #[test]
    fn short_row_names_line_and_file() {
        let msg = parse(b"0 1 0 1\n0 1 0\n", 4, Path::new("b.amat"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("b.amat") && msg.contains("line 2") && msg.contains("3 values"),
            "{msg}"
        );
    }

    #[test]
    fn value_outside_01_is_rejected() {
        let msg = parse(b"0 1 2 1\n", 4, Path::new("c"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not 0 or 1"), "{msg}");
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes, 8, Path::new("fuzz"));
        }

        #[test]
        fn round_trips(px in proptest::collection::vec(0u8..2, 0..10).prop_map(|v| v.repeat(6))) {
            let (rows, back) = parse(&encode(&px, 6), 6, Path::new("p")).unwrap();
            prop_assert_eq!(rows * 6, px.len());
            prop_assert_eq!(back, px);
        }
    }
}
