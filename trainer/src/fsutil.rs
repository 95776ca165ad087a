//! Writes that are complete or absent: a file is written beside its destination and renamed
//! over it; a folder is staged beside its destination and swapped in. A kill -9 at any moment
//! leaves either the old or the new version, never a half-written one.

use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct IoError {
    pub what: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn io<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> IoError + 'p {
    move |source| IoError {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// `path` with `.name.tmp-PID` as its file name, in the same folder (so rename is atomic).
fn sibling(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
    }
    let tmp = sibling(path, "tmp");
    let result = (|| {
        let mut file = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
        file.write_all(bytes).map_err(io("writing", &tmp))?;
        file.sync_all().map_err(io("syncing", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("renaming into", path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A folder being filled beside its destination; [`StagedDir::commit`] swaps it in. Dropped
/// without commit, it is removed.
pub struct StagedDir {
    staged: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl StagedDir {
    pub fn new(dest: &Path) -> Result<StagedDir, IoError> {
        let staged = sibling(dest, "partial");
        if staged.exists() {
            std::fs::remove_dir_all(&staged).map_err(io("removing", &staged))?;
        }
        std::fs::create_dir_all(&staged).map_err(io("creating", &staged))?;
        Ok(StagedDir {
            staged,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.staged
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), IoError> {
        let path = self.staged.join(name);
        std::fs::write(&path, bytes).map_err(io("writing", &path))
    }

    /// Replaces the destination with the staged folder.
    pub fn commit(mut self) -> Result<(), IoError> {
        let old = sibling(&self.dest, "old");
        if self.dest.exists() {
            std::fs::rename(&self.dest, &old).map_err(io("moving aside", &self.dest))?;
        }
        std::fs::rename(&self.staged, &self.dest).map_err(io("renaming into", &self.dest))?;
        self.committed = true;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io("removing", &old))?;
        }
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staged);
        }
    }
}
