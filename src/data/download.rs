//! Downloads a data set's files from their canonical URLs (or a mirror), checks each against
//! its SHA-256, and only then renames it into place: a failed or corrupt download leaves
//! nothing behind and never replaces a good file.

use super::catalog::{Dataset, FileState, KnownFile, sha256_hex, verify_file};
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Fetches every missing or corrupt file of `dataset` into `data_dir`. `mirror` replaces each
/// file's base URL (e.g. a local server); `on_file` hears each file name as it starts.
pub fn download(
    dataset: &Dataset,
    data_dir: &Path,
    mirror: Option<&str>,
    mut on_file: impl FnMut(&str, &str),
) -> Result<Vec<PathBuf>> {
    let Some((folder, files)) = dataset.files() else {
        return Err(Error::Invalid(match dataset {
            Dataset::Cifar10 => "cifar10 is not downloaded by this tool (170 MB archive): fetch cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it into DATA_DIR/cifar10/".into(),
            other => format!("{} needs no download", other.name()),
        }));
    };
    download_files(files, &data_dir.join(folder), mirror, &mut on_file)
}

/// Fetches each of `files` that is missing or fails its checksum into `dir`.
pub fn download_files(
    files: &[KnownFile],
    dir: &Path,
    mirror: Option<&str>,
    on_file: &mut dyn FnMut(&str, &str),
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::new();
    for file in files {
        let target = dir.join(file.name);
        // A verified copy under the name or its gzip twin (binarized_mnist_*.amat.gz) is enough.
        let plain = file.name.strip_suffix(".gz").unwrap_or(file.name);
        let present = [
            file.name.to_string(),
            format!("{plain}.gz"),
            plain.to_string(),
        ]
        .iter()
        .map(|name| dir.join(name))
        .filter(|path| path.is_file())
        .try_fold(false, |ok, path| {
            Ok::<_, Error>(ok || verify_file(&path, file)? == FileState::Verified)
        })?;
        if present {
            continue;
        }
        let url = format!("{}{}", mirror.unwrap_or(file.url), file.name);
        on_file(file.name, &url);
        fetch_verified(&url, file, &target)?;
        written.push(target);
    }
    Ok(written)
}

/// Downloads `url` to `target.part`, checks the SHA-256, then renames it to `target`.
fn fetch_verified(url: &str, file: &KnownFile, target: &Path) -> Result<()> {
    let fail = |problem: String| Error::Download {
        url: url.to_string(),
        problem,
    };
    let response = ureq::get(url).call().map_err(|e| {
        fail(format!(
            "{e} (offline? copy the files into {} by hand, or pass --mirror URL)",
            target
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ))
    })?;
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_reader()
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("connection broke: {e}")))?;
    let found = sha256_hex(&bytes);
    if found != file.sha256 {
        return Err(fail(format!(
            "checksum mismatch: SHA-256 {found}, expected {} ({} bytes received); nothing was saved",
            file.sha256,
            bytes.len()
        )));
    }
    let part = target.with_extension("part");
    std::fs::write(&part, &bytes).map_err(|e| Error::io(&part, e))?;
    std::fs::rename(&part, target).map_err(|e| Error::io(target, e))?;
    Ok(())
}
