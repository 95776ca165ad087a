//! Training checkpoints: `<out>/checkpoint/` holds the graph with its current weights
//! (`model.onnx`, BatchNorm running statistics included), the optimizer state
//! (`optimizer.bpk`, burnpack) and the loop state (`state.json`). It is replaced atomically,
//! so a kill -9 at any moment leaves the previous complete checkpoint.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{IoError, StagedDir};

pub const CHECKPOINT_DIR: &str = "checkpoint";
pub const MODEL_FILE: &str = "model.onnx";
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
pub const STATE_FILE: &str = "state.json";

/// One finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    /// Validation metric (accuracy or mAP), when there was a validation set.
    pub metric: Option<f64>,
    pub seconds: f64,
}

/// Where the loop stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// The epoch in progress (0-based) and how many of its batches are done.
    pub epoch: usize,
    pub batches_done: usize,
    pub global_step: usize,
    /// Summed loss and batch count of the epoch in progress.
    pub epoch_loss_sum: f64,
    pub epoch_seconds: f64,
    pub history: Vec<EpochRecord>,
    pub best_epoch: Option<usize>,
    pub best_metric: Option<f64>,
    /// Output classes and network input (height, width): a resume with different ones is refused.
    pub classes: Vec<String>,
    pub input_hw: (usize, usize),
    pub metric_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("checkpoint {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

pub fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join(CHECKPOINT_DIR)
}

/// Writes a checkpoint (replacing the previous one).
pub fn save(
    out: &Path,
    model_onnx: &[u8],
    optimizer: &[u8],
    state: &LoopState,
) -> Result<(), CheckpointError> {
    let staged = StagedDir::new(&checkpoint_dir(out))?;
    staged.write(MODEL_FILE, model_onnx)?;
    staged.write(OPTIMIZER_FILE, optimizer)?;
    let json = serde_json::to_vec_pretty(state).expect("loop state serialises");
    staged.write(STATE_FILE, &json)?;
    staged.commit()?;
    Ok(())
}

/// A checkpoint read back: the model path (for the graph loader), optimizer bytes, state.
pub struct Checkpoint {
    pub model: PathBuf,
    pub optimizer: Vec<u8>,
    pub state: LoopState,
}

/// Reads `<out>/checkpoint`, or `None` when there is none.
pub fn load(out: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let dir = checkpoint_dir(out);
    if !dir.is_dir() {
        return Ok(None);
    }
    let corrupt = |reason: String| CheckpointError::Corrupt {
        path: dir.clone(),
        reason,
    };
    let state_path = dir.join(STATE_FILE);
    let text = std::fs::read(&state_path).map_err(|e| corrupt(format!("{STATE_FILE}: {e}")))?;
    let state: LoopState =
        serde_json::from_slice(&text).map_err(|e| corrupt(format!("{STATE_FILE}: {e}")))?;
    let optimizer = std::fs::read(dir.join(OPTIMIZER_FILE))
        .map_err(|e| corrupt(format!("{OPTIMIZER_FILE}: {e}")))?;
    let model = dir.join(MODEL_FILE);
    if !model.is_file() {
        return Err(corrupt(format!("{MODEL_FILE} is missing")));
    }
    Ok(Some(Checkpoint {
        model,
        optimizer,
        state,
    }))
}
