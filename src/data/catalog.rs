//! The known data sets: their files, canonical sources and SHA-256s, and how each loads.

use super::{
    Binarization, ImageSet, ImageShape, Levels, Split, amat, cifar, folder, idx, shapes, synth,
};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One file a data set needs: its name in the data dir, where to download it, and the SHA-256
/// of the canonical download (and of the decompressed form, when we also accept that).
#[derive(Debug, Clone, Copy)]
pub struct KnownFile {
    pub name: &'static str,
    pub url: &'static str,
    pub sha256: &'static str,
    /// SHA-256 of the decompressed file, for `.gz` names whose plain form is canonical.
    pub sha256_plain: Option<&'static str>,
}

const MNIST_URL: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";
const FASHION_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";
const BMNIST_URL: &str = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/";

/// MNIST's four files (gzip IDX), with the canonical SHA-256s.
pub const MNIST_FILES: [KnownFile; 4] = [
    KnownFile {
        name: "train-images-idx3-ubyte.gz",
        url: MNIST_URL,
        sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        sha256_plain: None,
    },
    KnownFile {
        name: "train-labels-idx1-ubyte.gz",
        url: MNIST_URL,
        sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        sha256_plain: None,
    },
    KnownFile {
        name: "t10k-images-idx3-ubyte.gz",
        url: MNIST_URL,
        sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        sha256_plain: None,
    },
    KnownFile {
        name: "t10k-labels-idx1-ubyte.gz",
        url: MNIST_URL,
        sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        sha256_plain: None,
    },
];

/// Fashion-MNIST's four files (gzip IDX).
pub const FASHION_FILES: [KnownFile; 4] = [
    KnownFile {
        name: "train-images-idx3-ubyte.gz",
        url: FASHION_URL,
        sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        sha256_plain: None,
    },
    KnownFile {
        name: "train-labels-idx1-ubyte.gz",
        url: FASHION_URL,
        sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        sha256_plain: None,
    },
    KnownFile {
        name: "t10k-images-idx3-ubyte.gz",
        url: FASHION_URL,
        sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        sha256_plain: None,
    },
    KnownFile {
        name: "t10k-labels-idx1-ubyte.gz",
        url: FASHION_URL,
        sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        sha256_plain: None,
    },
];

/// Binarized MNIST: the canonical downloads are plain `.amat`; a `.amat.gz` (ours: `gzip -9 -n`)
/// is accepted and checked by its decompressed SHA-256.
pub const BMNIST_FILES: [KnownFile; 3] = [
    KnownFile {
        name: "binarized_mnist_train.amat",
        url: BMNIST_URL,
        sha256: "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
        sha256_plain: None,
    },
    KnownFile {
        name: "binarized_mnist_valid.amat",
        url: BMNIST_URL,
        sha256: "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
        sha256_plain: None,
    },
    KnownFile {
        name: "binarized_mnist_test.amat",
        url: BMNIST_URL,
        sha256: "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
        sha256_plain: None,
    },
];

/// CIFAR-10, binary version: the canonical archive, which the user unpacks into
/// `cifar10/cifar-10-batches-bin/` (we read the unpacked batches).
pub const CIFAR_ARCHIVE: KnownFile = KnownFile {
    name: "cifar-10-binary.tar.gz",
    url: "https://www.cs.toronto.edu/~kriz/",
    sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    sha256_plain: None,
};

/// Number of training images kept for training when a set has no official validation split;
/// the rest of the official training set is the validation split (MNIST: 50k/10k).
const MNIST_TRAIN: usize = 50_000;
/// Seed of the one-off binarization of `mnist-dyn`'s validation and test splits.
const DYNAMIC_EVAL_SEED: u64 = 0x5EED_0001;
/// Seed of `mnist-dyn`'s per-epoch training binarization.
const DYNAMIC_TRAIN_SEED: u64 = 0x5EED_0002;
/// Sizes of the embedded `synth-digits` splits and their seeds.
const SYNTH_SPLITS: [(usize, u64); 3] = [(10_000, 11), (1_000, 12), (1_000, 13)];
/// Sizes of the embedded colour `synth-shapes` splits and their seeds.
const SHAPES_SPLITS: [(usize, u64); 3] = [(5_000, 21), (500, 22), (500, 23)];

/// A data set named on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Dataset {
    BinarizedMnist,
    Mnist,
    MnistDyn,
    FashionMnist,
    Cifar10,
    Folder(PathBuf),
    SynthDigits,
    SynthShapes,
}

/// Every fixed name, for listings and error messages.
pub const NAMES: [&str; 7] = [
    "binarized-mnist",
    "mnist",
    "mnist-dyn",
    "fashion-mnist",
    "cifar10",
    "synth-digits",
    "synth-shapes",
];

impl Dataset {
    /// Parses a data set name; `folder:PATH` names a folder of images.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "binarized-mnist" => Dataset::BinarizedMnist,
            "mnist" => Dataset::Mnist,
            "mnist-dyn" => Dataset::MnistDyn,
            "fashion-mnist" => Dataset::FashionMnist,
            "cifar10" => Dataset::Cifar10,
            "synth-digits" => Dataset::SynthDigits,
            "synth-shapes" => Dataset::SynthShapes,
            other => match other.strip_prefix("folder:") {
                Some(path) => Dataset::Folder(PathBuf::from(path)),
                None => {
                    return Err(Error::Invalid(format!(
                        "unknown data set {other:?}; known: {}, or folder:PATH",
                        NAMES.join(", ")
                    )));
                }
            },
        })
    }

    /// The name as written on the command line.
    pub fn name(&self) -> String {
        match self {
            Dataset::BinarizedMnist => "binarized-mnist".into(),
            Dataset::Mnist => "mnist".into(),
            Dataset::MnistDyn => "mnist-dyn".into(),
            Dataset::FashionMnist => "fashion-mnist".into(),
            Dataset::Cifar10 => "cifar10".into(),
            Dataset::Folder(p) => format!("folder:{}", p.display()),
            Dataset::SynthDigits => "synth-digits".into(),
            Dataset::SynthShapes => "synth-shapes".into(),
        }
    }

    /// Sub-folder of the data dir holding the files, and the files with their checksums.
    pub fn files(&self) -> Option<(&'static str, &'static [KnownFile])> {
        match self {
            Dataset::BinarizedMnist => Some(("binarized-mnist", &BMNIST_FILES)),
            Dataset::Mnist | Dataset::MnistDyn => Some(("mnist", &MNIST_FILES)),
            Dataset::FashionMnist => Some(("fashion-mnist", &FASHION_FILES)),
            Dataset::Cifar10 | Dataset::Folder(_) | Dataset::SynthDigits | Dataset::SynthShapes => {
                None
            }
        }
    }

    /// Loads one split.
    pub fn load(&self, split: Split, data_dir: &Path) -> Result<ImageSet> {
        let name = self.name();
        let set = match self {
            Dataset::SynthDigits => {
                let index = split as usize;
                let (n, seed) = SYNTH_SPLITS[index];
                let (pixels, labels) = synth::generate(n, seed);
                ImageSet {
                    dataset: name.clone(),
                    split,
                    shape: mnist_shape(),
                    levels: Levels::Binary,
                    binarization: Binarization::Static,
                    pixels,
                    labels: Some(labels),
                    dynamic_seed: None,
                }
            }
            Dataset::SynthShapes => {
                let (n, seed) = SHAPES_SPLITS[split as usize];
                let (pixels, labels) = shapes::generate(n, seed);
                ImageSet {
                    dataset: name.clone(),
                    split,
                    shape: ImageShape {
                        channels: 3,
                        height: shapes::SIDE,
                        width: shapes::SIDE,
                    },
                    levels: Levels::Bits8,
                    binarization: Binarization::None,
                    pixels,
                    labels: Some(labels),
                    dynamic_seed: None,
                }
            }
            Dataset::BinarizedMnist => {
                let file = &BMNIST_FILES[split as usize];
                let path = locate(self, "binarized-mnist", file.name, data_dir)?;
                let (_, pixels) = amat::read(&path, mnist_shape().dims())?;
                ImageSet {
                    dataset: name.clone(),
                    split,
                    shape: mnist_shape(),
                    levels: Levels::Binary,
                    binarization: Binarization::Static,
                    pixels,
                    labels: None,
                    dynamic_seed: None,
                }
            }
            Dataset::Mnist | Dataset::MnistDyn | Dataset::FashionMnist => {
                let folder = self.files().map(|f| f.0).unwrap_or_default();
                let (pixels, labels) = load_idx_split(self, folder, split, data_dir)?;
                let mut set = ImageSet {
                    dataset: name.clone(),
                    split,
                    shape: mnist_shape(),
                    levels: Levels::Bits8,
                    binarization: Binarization::None,
                    pixels,
                    labels: Some(labels),
                    dynamic_seed: None,
                };
                if *self == Dataset::MnistDyn {
                    set.levels = Levels::Binary;
                    set.binarization = Binarization::Dynamic;
                    if split == Split::Train {
                        set.dynamic_seed = Some(DYNAMIC_TRAIN_SEED);
                    } else {
                        set.pixels = super::binarize_stochastic(
                            &set.pixels,
                            DYNAMIC_EVAL_SEED + split as u64,
                        );
                    }
                }
                set
            }
            Dataset::Cifar10 => {
                let dir = data_dir.join("cifar10").join("cifar-10-batches-bin");
                let (pixels, labels) = cifar::load_split(&dir, split)?;
                ImageSet {
                    dataset: name.clone(),
                    split,
                    shape: cifar::SHAPE,
                    levels: Levels::Bits8,
                    binarization: Binarization::None,
                    pixels,
                    labels: Some(labels),
                    dynamic_seed: None,
                }
            }
            Dataset::Folder(path) => {
                let (shape, pixels) = folder::load_split(path, split)?;
                ImageSet {
                    dataset: name.clone(),
                    split,
                    shape,
                    levels: Levels::Bits8,
                    binarization: Binarization::None,
                    pixels,
                    labels: None,
                    dynamic_seed: None,
                }
            }
        };
        if set.is_empty() {
            return Err(Error::Invalid(format!(
                "{name}: split {split} holds no image"
            )));
        }
        Ok(set)
    }
}

fn mnist_shape() -> ImageShape {
    ImageShape {
        channels: 1,
        height: synth::SIDE,
        width: synth::SIDE,
    }
}

/// Finds `name` (or its `.gz` twin, or its plain twin) in `data_dir/folder`.
pub fn locate(dataset: &Dataset, folder: &str, name: &str, data_dir: &Path) -> Result<PathBuf> {
    let dir = data_dir.join(folder);
    let plain = name.strip_suffix(".gz").unwrap_or(name);
    for candidate in [name.to_string(), format!("{plain}.gz"), plain.to_string()] {
        let path = dir.join(&candidate);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(Error::MissingFile {
        dataset: dataset.name(),
        path: dir.join(name),
        looked_in: data_dir.to_path_buf(),
        hint: format!(
            "run `genmodels datasets download {}` or point --data-dir / GENMODELS_DATA at a folder holding {folder}/",
            dataset.name()
        ),
    })
}

/// MNIST-style IDX split: train = first 50k of the official training set, valid = the last 10k.
fn load_idx_split(
    dataset: &Dataset,
    folder: &str,
    split: Split,
    data_dir: &Path,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let (images_name, labels_name) = match split {
        Split::Train | Split::Valid => ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        Split::Test => ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    };
    let images_path = locate(dataset, folder, images_name, data_dir)?;
    let labels_path = locate(dataset, folder, labels_name, data_dir)?;
    let images = idx::read(&images_path)?;
    let labels = idx::read(&labels_path)?;
    if images.dims.len() != 3 || images.dims[1] != synth::SIDE || images.dims[2] != synth::SIDE {
        return Err(Error::bad_file(
            &images_path,
            format!(
                "expected images of shape [n, 28, 28], found {:?}",
                images.dims
            ),
        ));
    }
    if labels.dims.len() != 1 || labels.dims[0] != images.dims[0] {
        return Err(Error::bad_file(
            &labels_path,
            format!(
                "{:?} labels for {} images in {}",
                labels.dims,
                images.dims[0],
                images_path.display()
            ),
        ));
    }
    if let Some(bad) = labels.data.iter().find(|&&l| l > 9) {
        return Err(Error::bad_file(
            &labels_path,
            format!("label {bad} outside 0..=9"),
        ));
    }
    let n = images.dims[0];
    let dims = synth::SIDE * synth::SIDE;
    let range = match split {
        Split::Train if n > MNIST_TRAIN => 0..MNIST_TRAIN,
        Split::Valid if n > MNIST_TRAIN => MNIST_TRAIN..n,
        Split::Valid => {
            return Err(Error::bad_file(
                &images_path,
                format!("{n} training images: a validation split needs more than {MNIST_TRAIN}"),
            ));
        }
        _ => 0..n,
    };
    Ok((
        images.data[range.start * dims..range.end * dims].to_vec(),
        labels.data[range].to_vec(),
    ))
}

/// State of one known file in a data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Missing,
    /// Present; checksum not computed (listing only).
    Present,
    Verified,
    /// Present but no reference checksum exists for this form (e.g. a raw IDX).
    Unverifiable,
    Mismatch {
        found: String,
    },
}

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks one file against its reference. A `.gz` twin of a plain canonical file is checked
/// by its decompressed content.
pub fn verify_file(path: &Path, file: &KnownFile) -> Result<FileState> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let found = sha256_hex(&bytes);
    if found == file.sha256 || Some(found.as_str()) == file.sha256_plain {
        return Ok(FileState::Verified);
    }
    let canonical_is_gz = file.name.ends_with(".gz");
    let stored_is_gz = path.extension().is_some_and(|e| e == "gz");
    if stored_is_gz && !canonical_is_gz {
        let plain = super::read_maybe_gz(path)?;
        let found = sha256_hex(&plain);
        return Ok(if found == file.sha256 {
            FileState::Verified
        } else {
            FileState::Mismatch { found }
        });
    }
    if canonical_is_gz && !stored_is_gz {
        return Ok(FileState::Unverifiable);
    }
    Ok(FileState::Mismatch { found })
}

/// Each known file of `dataset` with its path (where found) and state.
pub fn status(
    dataset: &Dataset,
    data_dir: &Path,
    check: bool,
) -> Vec<(KnownFile, PathBuf, FileState)> {
    let Some((folder, files)) = dataset.files() else {
        return vec![];
    };
    files
        .iter()
        .map(|file| match locate(dataset, folder, file.name, data_dir) {
            Err(_) => (
                *file,
                data_dir.join(folder).join(file.name),
                FileState::Missing,
            ),
            Ok(path) if !check => (*file, path, FileState::Present),
            Ok(path) => {
                let state = verify_file(&path, file).unwrap_or_else(|e| FileState::Mismatch {
                    found: e.to_string(),
                });
                (*file, path, state)
            }
        })
        .collect()
}
