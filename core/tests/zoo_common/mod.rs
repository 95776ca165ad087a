//! Helpers shared by the zoo tests: pulled bundles and test images.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Mutex;

use nvtl_core::zoo::{self, Manifest, PulledBundle, Source, SourceFile, SourceKind};

/// Serialises pulls inside one test binary (two tests pulling the same model would race on the
/// network for nothing; the cache itself is safe either way).
static PULL: Mutex<()> = Mutex::new(());

/// Pulls a built-in model (reusing the cache).
pub fn pulled(name: &str) -> PulledBundle {
    let _guard = PULL.lock().unwrap_or_else(|e| e.into_inner());
    let manifest = Manifest::builtin().unwrap();
    let model = manifest.get(name).unwrap();
    zoo::pull(model, &|stage| eprintln!("{name}: {stage}"))
        .unwrap_or_else(|e| panic!("pull {name}: {e}"))
}

/// `${NVTL_ASSETS:-$HOME/.cache/nvtl/assets}/<name>`, fetched from its package when missing (the
/// same sources and sha256 as scripts/fetch-assets.sh).
pub fn asset(name: &str) -> PathBuf {
    let dir = std::env::var_os("NVTL_ASSETS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            dirs::home_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join(".cache/nvtl/assets")
        });
    let path = dir.join(name);
    let (kind, package, version, inner, sha256) = match name {
        "dog.jpg" => (
            SourceKind::Debian,
            "darknet",
            "0.0.0+git20180914.61c9d02e-2+b4",
            "usr/share/darknet/data/dog.jpg",
            "5a9522051c3cec2bbd2f6323fccba32e8fbf3ddcc2b3e2fd46b04c720bc6f866",
        ),
        "astronaut.png" => (
            SourceKind::Pypi,
            "scikit-image",
            "0.25.2",
            "skimage/data/astronaut.png",
            "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        ),
        other => panic!("no source for asset {other}"),
    };
    if let Ok(bytes) = std::fs::read(&path) {
        if zoo::sha256_hex(&bytes) == sha256 {
            return path;
        }
    }
    let _guard = PULL.lock().unwrap_or_else(|e| e.into_inner());
    let source = Source {
        kind,
        package: package.into(),
        version: version.into(),
        files: vec![SourceFile {
            path: inner.into(),
            sha256: sha256.into(),
        }],
    };
    let files = zoo::fetch_files(&source).unwrap_or_else(|e| panic!("fetching {name}: {e}"));
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::write(&tmp, &files[inner]).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// An RGB image resized (bilinear) to `w` x `h`, as NHWC f32 with `f(pixel)` applied.
pub fn nhwc(path: &std::path::Path, w: u32, h: u32, f: impl Fn(f32) -> f32) -> Vec<f32> {
    let img = image::open(path).unwrap().to_rgb8();
    let img = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
    img.as_raw().iter().map(|&p| f(f32::from(p))).collect()
}
