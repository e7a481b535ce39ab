//! Atomic file writes: a temp file in the same folder, fsync, then rename, so a crash or a
//! full disk never leaves a half-written file where a good one was.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temp file in the same folder, fsync, then rename.
/// On any error the old file (if any) is untouched and the temp file removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = tmp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Writes `value` as pretty JSON to `path` atomically (see [`write_atomic`]).
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let json = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Invalid(format!("cannot serialise {}: {e}", path.display())))?;
    write_atomic(path, &json)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file left behind"
        );
    }

    /// A full disk (the temp file is /dev/full, which refuses every write with ENOSPC): a clear
    /// error naming the file, and the previous content intact.
    #[cfg(target_os = "linux")]
    #[test]
    fn full_disk_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        write_atomic(&path, b"good").unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.path().join("checkpoint.tmp")).unwrap();
        let err = write_atomic(&path, &vec![7u8; 1 << 16])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("checkpoint") && err.to_lowercase().contains("space"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"good");
    }
}
