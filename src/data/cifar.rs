//! CIFAR-10, binary version: `data_batch_1..5.bin` and `test_batch.bin`, each 10,000 records of
//! one label byte and 3,072 pixel bytes (1024 R, 1024 G, 1024 B, row-major 32x32).
//! Train = batches 1-4 (40k), valid = batch 5 (10k), test = `test_batch.bin`.

use super::{ImageShape, Split};
use crate::error::{Error, Result};
use std::path::Path;

/// 3 x 32 x 32.
pub const SHAPE: ImageShape = ImageShape {
    channels: 3,
    height: 32,
    width: 32,
};
const RECORD: usize = 1 + 3 * 32 * 32;

/// Parses one batch file's bytes into (pixels, labels).
pub fn parse_batch(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(Error::bad_file(
            path,
            format!(
                "{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records (truncated?)",
                bytes.len()
            ),
        ));
    }
    let mut pixels = Vec::with_capacity(bytes.len());
    let mut labels = Vec::with_capacity(bytes.len() / RECORD);
    for (i, record) in bytes.chunks(RECORD).enumerate() {
        if record[0] > 9 {
            return Err(Error::bad_file(
                path,
                format!("record {i}: label {} outside 0..=9", record[0]),
            ));
        }
        labels.push(record[0]);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok((pixels, labels))
}

/// Loads a split from the unpacked `cifar-10-batches-bin` folder.
pub fn load_split(dir: &Path, split: Split) -> Result<(Vec<u8>, Vec<u8>)> {
    let names: Vec<String> = match split {
        Split::Train => (1..=4).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Valid => vec!["data_batch_5.bin".into()],
        Split::Test => vec!["test_batch.bin".into()],
    };
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for name in names {
        let path = dir.join(&name);
        if !path.is_file() {
            return Err(Error::MissingFile {
                dataset: "cifar10".into(),
                path,
                looked_in: dir.to_path_buf(),
                hint: "download cifar-10-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) and unpack it into DATA_DIR/cifar10/".into(),
            });
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let (p, l) = parse_batch(&bytes, &path)?;
        pixels.extend(p);
        labels.extend(l);
    }
    Ok((pixels, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut bytes = Vec::new();
        for label in [3u8, 7] {
            bytes.push(label);
            bytes.extend((0..RECORD - 1).map(|i| (i % 251) as u8));
        }
        let (pixels, labels) = parse_batch(&bytes, Path::new("b.bin")).unwrap();
        assert_eq!(labels, vec![3, 7]);
        assert_eq!(pixels.len(), 2 * SHAPE.dims());
        assert_eq!(pixels[SHAPE.dims() + 5], 5);
        let msg = parse_batch(&bytes[..bytes.len() - 1], Path::new("b.bin"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("b.bin") && msg.contains("truncated"), "{msg}");
    }
}
