//! `folder:PATH`: PNG or JPEG images of one size. Grey images give 1 channel, colour ones 3.
//! Files are taken in name order; the last 10% (at least one) form the validation split and
//! also serve as the test split, since a folder has no official test set.

use super::{ImageShape, Split};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::bad_file(
            dir,
            "no .png/.jpg/.jpeg images in this folder",
        ));
    }
    Ok(files)
}

/// Loads every image of a split; all must share the first image's size and colour type.
pub fn load_split(dir: &Path, split: Split) -> Result<(ImageShape, Vec<u8>)> {
    let files = image_files(dir)?;
    // Every file's size, from its header, so a stray image is caught whichever split it is in.
    let first = image::image_dimensions(&files[0])
        .map_err(|e| Error::bad_file(&files[0], format!("not a readable image: {e}")))?;
    for path in &files[1..] {
        let size = image::image_dimensions(path)
            .map_err(|e| Error::bad_file(path, format!("not a readable image: {e}")))?;
        if size != first {
            return Err(Error::bad_file(
                path,
                format!(
                    "image is {}x{} (width x height) but {} is {}x{}: all images in a folder must share size and colour type",
                    size.0,
                    size.1,
                    files[0].display(),
                    first.0,
                    first.1
                ),
            ));
        }
    }
    let n_valid = (files.len() / 10).max(1).min(files.len());
    let chosen = match split {
        Split::Train if files.len() > n_valid => &files[..files.len() - n_valid],
        Split::Train => &files[..],
        Split::Valid | Split::Test => &files[files.len() - n_valid..],
    };
    let mut shape: Option<(ImageShape, PathBuf)> = None;
    let mut pixels = Vec::new();
    for path in chosen {
        let image = image::open(path)
            .map_err(|e| Error::bad_file(path, format!("not a readable image: {e}")))?;
        let grey = !image.color().has_color();
        let this = ImageShape {
            channels: if grey { 1 } else { 3 },
            height: image.height() as usize,
            width: image.width() as usize,
        };
        match &shape {
            Some((first, first_path)) if *first != this => {
                return Err(Error::bad_file(
                    path,
                    format!(
                        "image is {}x{}x{} but {} is {}x{}x{}: all images in a folder must share size and colour type",
                        this.channels,
                        this.height,
                        this.width,
                        first_path.display(),
                        first.channels,
                        first.height,
                        first.width
                    ),
                ));
            }
            Some(_) => {}
            None => shape = Some((this, path.clone())),
        }
        if grey {
            pixels.extend_from_slice(image.to_luma8().as_raw());
        } else {
            // HWC -> CHW
            let rgb = image.to_rgb8();
            let plane = this.height * this.width;
            let raw = rgb.as_raw();
            for c in 0..3 {
                pixels.extend((0..plane).map(|i| raw[i * 3 + c]));
            }
        }
    }
    let (shape, _) = shape.ok_or_else(|| Error::bad_file(dir, "no images"))?;
    Ok((shape, pixels))
}
