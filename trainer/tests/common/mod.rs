//! Shared test setup for the trainer: test assets and zoo bundles (pulled on first use, like a
//! user would).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Mutex;

use nvtl_core::zoo::{self, Manifest, PulledBundle};

/// The test data folder that `scripts/fetch-assets.sh` fills.
pub fn assets_dir() -> PathBuf {
    std::env::var_os("NVTL_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/nvtl/assets"))
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

pub fn asset(name: &str) -> PathBuf {
    let path = assets_dir().join(name);
    assert!(
        path.is_file(),
        "test asset {} is missing: run scripts/fetch-assets.sh",
        path.display()
    );
    path
}

/// A zoo bundle, pulled into the cache on first use (one pull at a time across tests).
pub fn bundle(name: &str) -> PulledBundle {
    static PULL: Mutex<()> = Mutex::new(());
    let _guard = PULL.lock().unwrap_or_else(|p| p.into_inner());
    let manifest = Manifest::builtin().expect("built-in zoo manifest");
    let model = manifest.get(name).expect("zoo model");
    zoo::pull(model, &|_| {}).unwrap_or_else(|e| panic!("pulling {name}: {e}"))
}
