//! `trainer doctor`: which backends this build has and which this machine can run, and the
//! NVIDIA pieces found (GPU, TensorRT, DeepStream metadata), each with the reason when absent.

use std::process::ExitCode;

use anyhow::Result;
use nvtl_core::backend::{self, gpu};

pub fn run() -> Result<ExitCode> {
    println!("nvtl {}", env!("CARGO_PKG_VERSION"));
    println!("\ninference backends (nvtlinfer's backend property; eval, infer and prune run cpu):");
    for status in backend::backend_report() {
        let state = match (&status.usable, status.built) {
            (_, false) => "not built".to_string(),
            (Ok(detail), true) => format!("usable ({detail})"),
            (Err(why), true) => format!("built, unusable here: {why}"),
        };
        println!("  {:12} {state}", status.kind.name());
    }
    println!("  built: {}", backend::built_backends_text());
    println!("\ntraining devices (train.devices / --devices):");
    println!("  cpu          usable (burn flex)");
    if nvtl_trainer::devices::CUDA_BUILT {
        println!("  cuda         built (burn-cuda); usable when a GPU is: see below");
    } else {
        println!(
            "  cuda         not built (cargo build --release -p nvtl-trainer --features cuda)"
        );
    }
    println!("\nmachine:");
    match gpu::gpu_info(0) {
        Ok(info) => println!(
            "  GPU 0        {} (SM {}.{})",
            info.name, info.sm.0, info.sm.1
        ),
        Err(why) => println!("  GPU 0        none found: {why}"),
    }
    match gpu::tensorrt_version() {
        Ok(version) => println!("  TensorRT     {version}"),
        Err(why) => println!("  TensorRT     not found: {why}"),
    }
    match nvtl_core::nvmm::dsmeta::DsMeta::load() {
        Ok(_) => {
            println!("  DeepStream   metadata libraries found (NvDsBatchMeta is read and written)")
        }
        Err(why) => println!("  DeepStream   not found ({why}): GStreamer metadata only"),
    }
    Ok(ExitCode::SUCCESS)
}
