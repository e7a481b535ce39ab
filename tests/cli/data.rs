//! Data sets: listing, checksum verification, downloads from a mirror.

use super::http;
use super::{genmodels, text};

#[test]
fn datasets_lists_missing_files_and_the_embedded_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = genmodels(&["datasets"], dir.path());
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("binarized-mnist") && t.contains("missing"),
        "{t}"
    );
    assert!(t.contains("synth-digits") && t.contains("embedded"), "{t}");
}

#[test]
fn verify_reports_a_checksum_mismatch_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("mnist")).unwrap();
    std::fs::write(
        dir.path().join("mnist/t10k-labels-idx1-ubyte.gz"),
        b"not mnist",
    )
    .unwrap();
    let out = genmodels(&["datasets", "verify", "mnist"], dir.path());
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("CHECKSUM MISMATCH") && t.contains("t10k-labels-idx1-ubyte.gz"),
        "{t}"
    );
}

#[test]
fn download_from_a_corrupt_mirror_fails_cleanly() {
    let files = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    .map(|n| (n.to_string(), b"corrupt".to_vec()));
    let url = http::serve(files.into_iter().collect(), 8);
    let dir = tempfile::tempdir().unwrap();
    let out = genmodels(
        &["datasets", "download", "mnist", "--mirror", &url],
        dir.path(),
    );
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("checksum mismatch") && t.contains("nothing was saved"),
        "{t}"
    );
    let left = std::fs::read_dir(dir.path().join("mnist")).unwrap().count();
    assert_eq!(left, 0, "a corrupt download left files");
}
