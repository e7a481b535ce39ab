//! Loaders on files the tests write: round trips, and every bad-input case named in the issue.

use genmodels::data::{self, Split, idx};
use std::io::Write;
use std::path::Path;

fn gz(path: &Path, bytes: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap();
}

fn write_mnist(dir: &Path, folder: &str, n_images: usize, n_labels: usize) -> Vec<u8> {
    let d = dir.join(folder);
    std::fs::create_dir_all(&d).unwrap();
    let pixels: Vec<u8> = (0..n_images * 784).map(|i| (i * 7 % 256) as u8).collect();
    let images = idx::IdxArray {
        dims: vec![n_images, 28, 28],
        data: pixels.clone(),
    };
    let labels = idx::IdxArray {
        dims: vec![n_labels],
        data: (0..n_labels).map(|i| (i % 10) as u8).collect(),
    };
    gz(&d.join("t10k-images-idx3-ubyte.gz"), &idx::encode(&images));
    gz(&d.join("t10k-labels-idx1-ubyte.gz"), &idx::encode(&labels));
    pixels
}

#[test]
fn mnist_and_fashion_idx_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for (name, folder) in [("mnist", "mnist"), ("fashion-mnist", "fashion-mnist")] {
        let pixels = write_mnist(dir.path(), folder, 3, 3);
        let set = data::load(name, Split::Test, dir.path()).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set.pixels, pixels);
        assert_eq!(set.labels.as_deref(), Some(&[0u8, 1, 2][..]));
    }
}

#[test]
fn raw_idx_without_gz_is_found_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("mnist");
    std::fs::create_dir_all(&d).unwrap();
    let images = idx::IdxArray {
        dims: vec![1, 28, 28],
        data: vec![9; 784],
    };
    let labels = idx::IdxArray {
        dims: vec![1],
        data: vec![4],
    };
    std::fs::write(d.join("t10k-images-idx3-ubyte"), idx::encode(&images)).unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx::encode(&labels)).unwrap();
    let set = data::load("mnist", Split::Test, dir.path()).unwrap();
    assert_eq!(set.labels.unwrap(), vec![4]);
}

#[test]
fn missing_file_names_path_data_dir_and_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let msg = data::load("binarized-mnist", Split::Test, dir.path())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("binarized_mnist_test.amat"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains("datasets download binarized-mnist"), "{msg}");
}

#[test]
fn label_count_differing_from_image_count_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_mnist(dir.path(), "mnist", 3, 2);
    let msg = data::load("mnist", Split::Test, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("t10k-labels-idx1-ubyte.gz") && msg.contains("3 images"),
        "{msg}"
    );
}

#[test]
fn wrong_magic_and_truncation_and_bad_gzip_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_mnist(dir.path(), "mnist", 2, 2);
    let images = dir.path().join("mnist/t10k-images-idx3-ubyte.gz");
    gz(&images, &[0, 0, 0x0d, 3, 0, 0, 0, 1]);
    let msg = data::load("mnist", Split::Test, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("magic") && msg.contains("t10k-images"),
        "{msg}"
    );
    let mut truncated = idx::encode(&idx::IdxArray {
        dims: vec![2, 28, 28],
        data: vec![0; 2 * 784],
    });
    truncated.truncate(truncated.len() - 100);
    gz(&images, &truncated);
    let msg = data::load("mnist", Split::Test, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("truncated") && msg.contains("t10k-images"),
        "{msg}"
    );
    std::fs::write(&images, b"\x1f\x8bgarbage").unwrap();
    let msg = data::load("mnist", Split::Test, dir.path())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("gzip") && msg.contains("t10k-images"), "{msg}");
}

#[test]
fn amat_round_trip_and_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("binarized-mnist");
    std::fs::create_dir_all(&d).unwrap();
    let pixels: Vec<u8> = (0..2 * 784).map(|i| ((i / 3) % 2) as u8).collect();
    gz(
        &d.join("binarized_mnist_test.amat.gz"),
        &data::amat::encode(&pixels, 784),
    );
    let set = data::load("binarized-mnist", Split::Test, dir.path()).unwrap();
    assert_eq!(set.pixels, pixels);
    assert!(set.benchmark().contains("static binarization (S)"));
    let mut text = data::amat::encode(&pixels, 784);
    text.truncate(text.len() - 4); // drop the last values and the newline of row 2
    text.push(b'\n');
    std::fs::remove_file(d.join("binarized_mnist_test.amat.gz")).unwrap();
    std::fs::write(d.join("binarized_mnist_test.amat"), &text).unwrap();
    let msg = data::load("binarized-mnist", Split::Test, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("line 2") && msg.contains("binarized_mnist_test.amat"),
        "{msg}"
    );
}

#[test]
fn folder_of_pngs_loads_and_mixed_sizes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..4u8 {
        let img =
            image::GrayImage::from_fn(6, 5, |x, y| image::Luma([(x as u8 * 10 + y as u8 + i)]));
        img.save(dir.path().join(format!("img{i}.png"))).unwrap();
    }
    let name = format!("folder:{}", dir.path().display());
    let train = data::load(&name, Split::Train, Path::new(".")).unwrap();
    assert_eq!(
        (train.shape.channels, train.shape.height, train.shape.width),
        (1, 5, 6)
    );
    assert_eq!(train.len(), 3);
    assert_eq!(train.pixels[6], 1); // image 0, row 1, col 0: x*10 + y
    image::GrayImage::new(7, 5)
        .save(dir.path().join("img9.png"))
        .unwrap();
    let msg = data::load(&name, Split::Valid, Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("img9.png") && msg.contains("must share size"),
        "{msg}"
    );
}

#[test]
fn cifar_batches_load_from_written_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cifar10/cifar-10-batches-bin");
    std::fs::create_dir_all(&d).unwrap();
    let mut bytes = Vec::new();
    for label in [1u8, 9] {
        bytes.push(label);
        bytes.extend((0..3072).map(|i| (i % 256) as u8));
    }
    std::fs::write(d.join("test_batch.bin"), &bytes).unwrap();
    let set = data::load("cifar10", Split::Test, dir.path()).unwrap();
    assert_eq!(
        (set.len(), set.shape.channels, set.shape.height),
        (2, 3, 32)
    );
    assert_eq!(set.labels.unwrap(), vec![1, 9]);
    let msg = data::load("cifar10", Split::Train, dir.path())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("data_batch_1.bin"), "{msg}");
}

#[test]
fn dynamic_binarization_resamples_per_epoch_deterministically() {
    let grey: Vec<u8> = (0..20_000).map(|i| (i % 256) as u8).collect();
    let a = data::binarize_stochastic(&grey, 1);
    assert_eq!(a, data::binarize_stochastic(&grey, 1));
    assert_ne!(a, data::binarize_stochastic(&grey, 2));
    assert!(a.iter().all(|&v| v <= 1));
    // E[x] = grey/255: check the mean of each half of the grey range.
    let mean = |lo: u8, hi: u8| {
        let sel: Vec<_> = grey
            .iter()
            .zip(&a)
            .filter(|(g, _)| (lo..hi).contains(*g))
            .collect();
        sel.iter().map(|(_, x)| **x as f64).sum::<f64>() / sel.len() as f64
    };
    assert!((mean(0, 64) - 31.5 / 255.0).abs() < 0.03);
    assert!((mean(192, 255) - 223.0 / 255.0).abs() < 0.03);
}

#[test]
fn unknown_data_set_lists_the_known_ones() {
    let msg = data::load("mnsit", Split::Test, Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("binarized-mnist") && msg.contains("folder:PATH"),
        "{msg}"
    );
}

/// The embedded colour set loads with no files, 3x32x32 8-bit with 10 labels, and every
/// autoregressive model takes it (R, G, B within a pixel); a model that cannot take some
/// images refuses them by its name.
#[test]
fn synth_shapes_is_an_embedded_colour_set_the_colour_models_take() {
    use genmodels::models::{ImageSpec, ModelConfig};
    let nowhere = Path::new("/nonexistent");
    let test =
        genmodels::data::load("synth-shapes", genmodels::data::Split::Test, nowhere).unwrap();
    assert_eq!(
        (test.shape.channels, test.shape.height, test.shape.width),
        (3, 32, 32)
    );
    assert_eq!(test.levels, genmodels::data::Levels::Bits8);
    assert_eq!(test.len(), 500);
    let labels = test.labels.as_ref().unwrap();
    assert_eq!(labels.iter().max(), Some(&9));
    let spec = ImageSpec {
        shape: test.shape,
        levels: test.levels,
    };
    for name in [
        "pixelcnn",
        "gated-pixelcnn",
        "row-lstm",
        "diagonal-bilstm",
        "pixelcnn-pp",
    ] {
        ModelConfig::from_name(name)
            .unwrap()
            .accepts(&spec)
            .unwrap_or_else(|e| panic!("{name} refused synth-shapes: {e}"));
    }
    let binary = ImageSpec {
        shape: test.shape,
        levels: genmodels::data::Levels::Binary,
    };
    let refusal = ModelConfig::from_name("pixelcnn-pp")
        .unwrap()
        .accepts(&binary)
        .unwrap_err()
        .to_string();
    assert!(refusal.contains("pixelcnn-pp"), "{refusal}");
}
