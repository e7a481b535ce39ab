//! IDX files (MNIST, Fashion-MNIST): a big-endian header `0x0000 <type> <ndim>`, `ndim` u32
//! sizes, then the data. We read unsigned bytes only (type 0x08), gzip or raw.

use crate::error::{Error, Result};
use std::path::Path;

/// A parsed IDX file of unsigned bytes: its dimensions and its data, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses IDX bytes. `path` only labels errors. Never panics on malformed input.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(Error::bad_file(
            path,
            format!(
                "truncated IDX header: {} bytes, need at least 4",
                bytes.len()
            ),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(Error::bad_file(
            path,
            format!(
                "wrong IDX magic {:02x}{:02x}{:02x}{:02x}: expected 000008NN (unsigned bytes); is this an IDX file?",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > 4 {
        return Err(Error::bad_file(
            path,
            format!("IDX rank {ndim} not supported (1..=4)"),
        ));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(Error::bad_file(
            path,
            format!("truncated IDX header: {} bytes, need {header}", bytes.len()),
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::bad_file(path, format!("IDX dims {dims:?} overflow")))?;
    let body = &bytes[header..];
    if body.len() != expected {
        return Err(Error::bad_file(
            path,
            format!(
                "{} IDX: header {dims:?} promises {expected} data bytes, file has {}",
                if body.len() < expected {
                    "truncated"
                } else {
                    "oversized"
                },
                body.len()
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: body.to_vec(),
    })
}

/// Encodes an IDX array of unsigned bytes (used by tests and tools).
pub fn encode(array: &IdxArray) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, array.dims.len() as u8];
    for &d in &array.dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(&array.data);
    out
}

/// Reads and parses an IDX file, gunzipping it if its name ends in `.gz`.
pub fn read(path: &Path) -> Result<IdxArray> {
    let bytes = super::read_maybe_gz(path)?;
    parse(&bytes, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let a = IdxArray {
            dims: vec![2, 3, 3],
            data: (0..18).collect(),
        };
        assert_eq!(parse(&encode(&a), Path::new("x")).unwrap(), a);
    }

    #[test]
    fn wrong_magic_names_the_file() {
        let err = parse(&[0, 0, 9, 1, 0, 0, 0, 1, 5], Path::new("f.idx")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("f.idx") && msg.contains("magic"), "{msg}");
    }

    #[test]
    fn truncated_body_is_an_error() {
        let mut bytes = encode(&IdxArray {
            dims: vec![4, 2],
            data: vec![1; 8],
        });
        bytes.pop();
        let msg = parse(&bytes, Path::new("t.idx")).unwrap_err().to_string();
        assert!(msg.contains("truncated") && msg.contains("t.idx"), "{msg}");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&bytes, Path::new("fuzz"));
        }

        #[test]
        fn round_trips_any_shape(d0 in 0usize..5, d1 in 1usize..5, seed in any::<u8>()) {
            let n = d0 * d1;
            let a = IdxArray { dims: vec![d0, d1], data: (0..n).map(|i| (i as u8).wrapping_add(seed)).collect() };
            prop_assert_eq!(parse(&encode(&a), Path::new("p")).unwrap(), a);
        }

        #[test]
        fn any_truncation_is_rejected(cut in 1usize..20) {
            let bytes = encode(&IdxArray { dims: vec![3, 4], data: vec![7; 12] });
            let cut = cut.min(bytes.len());
            prop_assert!(parse(&bytes[..bytes.len() - cut], Path::new("p")).is_err());
        }
    }
}
