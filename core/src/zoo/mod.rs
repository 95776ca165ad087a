//! Pretrained models: a manifest of where each comes from, pulls through package registries,
//! sha256 checks, conversion to ONNX bundles, and a cache under the user's cache folder.
