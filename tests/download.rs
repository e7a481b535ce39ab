//! Downloads from a local HTTP server on 127.0.0.1: good files land verified, corrupt files and
//! refused connections give clear errors and leave nothing behind.

#[path = "common/http.rs"]
mod http;

use genmodels::data::catalog::{KnownFile, sha256_hex};
use genmodels::data::download::download_files;
use std::collections::HashMap;

fn known(name: &'static str, content: &[u8]) -> KnownFile {
    KnownFile {
        name,
        url: "http://unused.invalid/",
        sha256: Box::leak(sha256_hex(content).into_boxed_str()),
        sha256_plain: None,
    }
}

#[test]
fn good_file_is_verified_and_renamed_into_place() {
    let body = b"genuine bytes".to_vec();
    let url = http::serve(HashMap::from([("a.gz".to_string(), body.clone())]), 4);
    let dir = tempfile::tempdir().unwrap();
    let files = [known("a.gz", &body)];
    let written = download_files(&files, dir.path(), Some(&url), &mut |_, _| {}).unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(std::fs::read(dir.path().join("a.gz")).unwrap(), body);
    // Already verified: a second call fetches nothing.
    assert!(
        download_files(&files, dir.path(), Some(&url), &mut |_, _| {})
            .unwrap()
            .is_empty()
    );
}

#[test]
fn corrupt_download_is_rejected_and_never_replaces_anything() {
    let url = http::serve(
        HashMap::from([("b.gz".to_string(), b"tampered".to_vec())]),
        4,
    );
    let dir = tempfile::tempdir().unwrap();
    let files = [known("b.gz", b"the real content")];
    let msg = download_files(&files, dir.path(), Some(&url), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("checksum mismatch") && msg.contains("b.gz"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "left files behind"
    );
}

#[test]
fn missing_remote_file_and_refused_connection_are_clear_errors() {
    let url = http::serve(HashMap::new(), 4);
    let dir = tempfile::tempdir().unwrap();
    let files = [known("c.gz", b"x")];
    let msg = download_files(&files, dir.path(), Some(&url), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(msg.contains("c.gz") && msg.contains("404"), "{msg}");
    // A port nobody listens on: bind, learn the port, drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let offline = format!("http://127.0.0.1:{port}/");
    let msg = download_files(&files, dir.path(), Some(&offline), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("download of") && msg.contains("offline?"),
        "{msg}"
    );
}

#[test]
fn a_verified_gzip_twin_counts_as_present() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let content = b"0 1 0 1\n".to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&content).unwrap();
    std::fs::write(dir.path().join("x.amat.gz"), gz.finish().unwrap()).unwrap();
    let files = [known("x.amat", &content)];
    // No server at all: nothing may be fetched.
    let written = download_files(
        &files,
        dir.path(),
        Some("http://127.0.0.1:9/"),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(written.is_empty());
}
