//! Checkpoints: weights (safetensors), optimiser state (burnpack) and training state (JSON),
//! written into a fresh folder that only a pointer file (`last.json` / `best.json`, rewritten
//! atomically) makes current. A crash or a full disk mid-write leaves the previous checkpoint
//! current and intact.
//!
//! Safetensors carries no parameter identity, but burn keys optimiser state by `ParamId`, so the
//! ids are saved in `state.json` (in module visiting order) and given back to the rebuilt model.

use crate::error::{Error, Result};
use crate::run::write_atomic;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::ModuleOptimizer;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Tensor;
use std::path::{Path, PathBuf};

/// Where training stands; saved with each checkpoint.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    /// The epoch in progress (0-based).
    pub epoch: usize,
    /// Batches of `epoch` already done.
    pub batch_in_epoch: usize,
    /// Optimiser steps so far.
    pub step: u64,
    /// Seconds of training so far (across resumptions).
    pub seconds: f64,
    /// Best validation NLL so far, nats per image.
    pub best_valid_nll: Option<f64>,
    /// Parameter ids in visiting order (see the module doc).
    pub param_ids: Vec<u64>,
}

const MODEL_FILE: &str = "model.safetensors";
const OPTIM_FILE: &str = "optimizer.bpk";
const STATE_FILE: &str = "state.json";

/// Which checkpoint of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Last,
    Best,
}

impl Which {
    fn pointer(self) -> &'static str {
        match self {
            Which::Last => "last.json",
            Which::Best => "best.json",
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Pointer {
    dir: String,
}

/// Saves a checkpoint into `checkpoints/<name>/` and points `which` at it. With an optimiser it
/// is a resumable training checkpoint; without, weights and state only (the best model).
pub fn save<M: Module>(
    run_dir: &Path,
    which: Which,
    model: &M,
    optimizer: Option<&ModuleOptimizer>,
    state: &TrainState,
) -> Result<PathBuf> {
    let name = match which {
        Which::Last => format!("step-{:09}", state.step),
        Which::Best => format!("best-step-{:09}", state.step),
    };
    let dir = run_dir.join("checkpoints").join(&name);
    let tmp = run_dir.join("checkpoints").join(format!(".{name}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let write = || -> Result<()> {
        let model_path = tmp.join(MODEL_FILE);
        let mut store = SafetensorsStore::from_file(&model_path);
        model
            .save_into(&mut store)
            .map_err(|e| Error::bad_file(&model_path, format!("cannot write weights: {e}")))?;
        if let Some(optimizer) = optimizer {
            let path = tmp.join(OPTIM_FILE);
            let bytes = optimizer
                .into_bytes()
                .map_err(|e| Error::bad_file(&path, format!("cannot serialise optimiser: {e}")))?;
            write_atomic(&path, &bytes)?;
        }
        let mut state = state.clone();
        state.param_ids = param_ids(model);
        let json = serde_json::to_vec_pretty(&state).expect("state serialises");
        write_atomic(&tmp.join(STATE_FILE), &json)?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let pointer = serde_json::to_vec(&Pointer { dir: name }).expect("pointer serialises");
    write_atomic(&run_dir.join(which.pointer()), &pointer)?;
    prune(run_dir);
    Ok(dir)
}

/// Removes checkpoint folders no pointer refers to.
fn prune(run_dir: &Path) {
    let keep: Vec<String> = [Which::Last, Which::Best]
        .iter()
        .filter_map(|w| current_dir_name(run_dir, *w).ok().flatten())
        .collect();
    if let Ok(entries) = std::fs::read_dir(run_dir.join("checkpoints")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !name.starts_with('.') && !keep.contains(&name) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn current_dir_name(run_dir: &Path, which: Which) -> Result<Option<String>> {
    let path = run_dir.join(which.pointer());
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let pointer: Pointer = serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_file(&path, format!("corrupt checkpoint pointer: {e}")))?;
    Ok(Some(pointer.dir))
}

/// The folder of the `which` checkpoint, if the run has one.
pub fn locate(run_dir: &Path, which: Which) -> Result<Option<PathBuf>> {
    Ok(current_dir_name(run_dir, which)?.map(|d| run_dir.join("checkpoints").join(d)))
}

/// A loaded checkpoint: the model with its saved weights and ids, and the training state.
pub struct Loaded<M> {
    pub model: M,
    pub state: TrainState,
    pub dir: PathBuf,
}

/// Loads weights and state from `dir` into `model` (built from the run config).
pub fn load<M: Module>(dir: &Path, mut model: M) -> Result<Loaded<M>> {
    let state_path = dir.join(STATE_FILE);
    let bytes = std::fs::read(&state_path).map_err(|e| Error::io(&state_path, e))?;
    let state: TrainState = serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_file(&state_path, format!("corrupt training state: {e}")))?;
    let model_path = dir.join(MODEL_FILE);
    if !model_path.is_file() {
        return Err(Error::bad_file(&model_path, "checkpoint weights missing"));
    }
    let mut store = SafetensorsStore::from_file(&model_path);
    let result = model.load_from(&mut store).map_err(|e| {
        Error::bad_file(
            &model_path,
            format!("weights do not fit this model (a checkpoint of another model family or size?), or the file is corrupt or truncated: {e}"),
        )
    })?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(Error::bad_file(
            &model_path,
            format!(
                "weights do not fit this model (a checkpoint of another model or size?): {} errors, missing {:?}, unexpected {:?}",
                result.errors.len(),
                result.missing.iter().take(3).collect::<Vec<_>>(),
                result.unused.iter().take(3).collect::<Vec<_>>()
            ),
        ));
    }
    let model = if state.param_ids.len() == param_ids(&model).len() {
        model.map(&mut SetIds {
            ids: state.param_ids.clone(),
            next: 0,
        })
    } else {
        model
    };
    Ok(Loaded {
        model,
        state,
        dir: dir.to_path_buf(),
    })
}

/// Loads the optimiser state saved beside a checkpoint.
pub fn load_optimizer(dir: &Path, optimizer: ModuleOptimizer) -> Result<ModuleOptimizer> {
    let path = dir.join(OPTIM_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    optimizer
        .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| Error::bad_file(&path, format!("corrupt optimiser state: {e}")))
}

/// Parameter ids in visiting order.
pub fn param_ids<M: Module>(model: &M) -> Vec<u64> {
    struct Ids(Vec<u64>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id.val());
        }
    }
    let mut ids = Ids(Vec::new());
    model.visit(&mut ids);
    ids.0
}

struct SetIds {
    ids: Vec<u64>,
    next: usize,
}

impl ModuleMapper for SetIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_, value, mapper) = param.consume();
        let id = ParamId::from(self.ids[self.next]);
        self.next += 1;
        Param::from_mapped_value(id, value, mapper)
    }
}
