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

/// Removes what killed processes left beside `path`: siblings `.name.TAG-PID` of each tag whose
/// process is gone (checked in /proc; where there is no /proc nothing is removed). A live
/// process's staging is never touched.
fn remove_stale_siblings(path: &Path, tags: &[&str]) {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let name = name.to_string_lossy();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&format!(".{name}.")) else {
            continue;
        };
        let stale = tags.iter().any(|tag| {
            rest.strip_prefix(&format!("{tag}-"))
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| {
                    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
                })
        });
        if stale {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
    }
    remove_stale_siblings(path, &["tmp"]);
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
        remove_stale_siblings(dest, &["partial", "old"]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_left_by_a_dead_process_is_removed_and_a_live_ones_kept() {
        let dir = std::env::temp_dir().join(format!("nvtl-fsutil-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A pid above the kernel's pid_max (4194304) never runs; pid 1 always does.
        let dead = dir.join(".checkpoint.partial-4294967");
        let dead_old = dir.join(".checkpoint.old-4294967");
        let dead_tmp = dir.join(".state.json.tmp-4294967");
        let live = dir.join(".checkpoint.partial-1");
        let other = dir.join(".bundle.partial-4294967");
        for d in [&dead, &dead_old, &live, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&dead_tmp, b"half").unwrap();
        let staged = StagedDir::new(&dir.join("checkpoint")).unwrap();
        staged.write("a", b"1").unwrap();
        staged.commit().unwrap();
        write_atomic(&dir.join("state.json"), b"{}").unwrap();
        assert!(!dead.exists() && !dead_old.exists() && !dead_tmp.exists());
        assert!(live.exists(), "a running process's staging stays");
        assert!(
            other.exists(),
            "only the destination's own siblings are touched"
        );
        assert_eq!(std::fs::read(dir.join("checkpoint/a")).unwrap(), b"1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
