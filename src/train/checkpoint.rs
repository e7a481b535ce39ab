//! Checkpoints: weights (safetensors), optimiser state (burnpack) and training state (JSON),
//! written into a fresh folder that only a pointer file (`last.json` / `best.json`, rewritten
//! atomically) makes current. A crash or a full disk mid-write leaves the previous checkpoint
//! current and intact.
//!
//! Safetensors carries no parameter identity, but burn keys optimiser state by `ParamId`, so the
//! ids are saved in `state.json` (in module visiting order) and given back to the rebuilt model.

use crate::config::write_atomic;
use crate::data::catalog::sha256_hex;
use crate::error::{Error, Result};
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
    /// Epochs completed when that best validation NLL was reached (1-based).
    #[serde(default)]
    pub best_epoch: Option<usize>,
    /// Parameter ids in visiting order (see the module doc).
    pub param_ids: Vec<u64>,
    /// SHA-256 of each file saved beside this state, checked on load: a corrupted weights file
    /// (one flipped byte) is an error, not a model that scores wrong.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sha256: std::collections::BTreeMap<String, String>,
}

use crate::layout::CHECKPOINT_STATE as STATE_FILE;
/// The exponential moving average of the weights, beside a resumable checkpoint.
use crate::layout::EMA_WEIGHTS as EMA_FILE;
pub use crate::layout::MODEL_WEIGHTS as MODEL_FILE;
use crate::layout::OPTIMIZER_STATE as OPTIM_FILE;
/// The files beside `state.json` that it records a SHA-256 of (and that `slim` removes).
const PAYLOAD_FILES: [&str; 3] = [MODEL_FILE, EMA_FILE, OPTIM_FILE];

/// Which checkpoint of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Last,
    Best,
}

impl Which {
    fn pointer(self) -> &'static str {
        match self {
            Which::Last => crate::layout::LAST_POINTER,
            Which::Best => crate::layout::BEST_POINTER,
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Pointer {
    dir: String,
}

/// Saves a checkpoint into `checkpoints/<name>/` and points `which` at it. With an optimiser it
/// is a resumable training checkpoint (and `ema`, the moving average of the weights, is saved
/// beside it); without, weights and state only (the best model).
pub fn save<M: Module>(
    run_dir: &Path,
    which: Which,
    model: &M,
    optimizer: Option<&ModuleOptimizer>,
    ema: Option<&M>,
    state: &TrainState,
) -> Result<PathBuf> {
    let name = match which {
        Which::Last => format!("step-{:09}", state.step),
        Which::Best => format!("best-step-{:09}", state.step),
    };
    let dir = run_dir.join(crate::layout::CHECKPOINTS).join(&name);
    let tmp = run_dir
        .join(crate::layout::CHECKPOINTS)
        .join(format!(".{name}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let write = || -> Result<()> {
        let model_path = tmp.join(MODEL_FILE);
        let mut store = SafetensorsStore::from_file(&model_path);
        model
            .save_into(&mut store)
            .map_err(|e| Error::bad_file(&model_path, format!("cannot write weights: {e}")))?;
        if let Some(ema) = ema {
            let path = tmp.join(EMA_FILE);
            let mut store = SafetensorsStore::from_file(&path);
            ema.save_into(&mut store)
                .map_err(|e| Error::bad_file(&path, format!("cannot write weights: {e}")))?;
        }
        if let Some(optimizer) = optimizer {
            let path = tmp.join(OPTIM_FILE);
            let bytes = optimizer
                .into_bytes()
                .map_err(|e| Error::bad_file(&path, format!("cannot serialise optimiser: {e}")))?;
            write_atomic(&path, &bytes)?;
        }
        let mut state = state.clone();
        state.param_ids = param_ids(model);
        state.sha256.clear();
        for file in PAYLOAD_FILES {
            let path = tmp.join(file);
            if path.is_file() {
                let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                state.sha256.insert(file.to_string(), sha256_hex(&bytes));
            }
        }
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
    if let Ok(entries) = std::fs::read_dir(run_dir.join(crate::layout::CHECKPOINTS)) {
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
    Ok(current_dir_name(run_dir, which)?.map(|d| run_dir.join(crate::layout::CHECKPOINTS).join(d)))
}

/// A loaded checkpoint: the model with its saved weights and ids, and the training state.
pub struct Loaded<M> {
    pub model: M,
    pub state: TrainState,
    pub dir: PathBuf,
}

/// Reads the training state saved in the checkpoint folder `dir`.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    let state_path = dir.join(STATE_FILE);
    let bytes = std::fs::read(&state_path).map_err(|e| Error::io(&state_path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_file(&state_path, format!("corrupt training state: {e}")))
}

/// Loads weights and state from `dir` into `model` (built from the run config).
pub fn load<M: Module>(dir: &Path, model: M) -> Result<Loaded<M>> {
    let state = read_state(dir)?;
    verify(dir, MODEL_FILE, &state)?;
    let model = load_weights(&dir.join(MODEL_FILE), model)?;
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

/// The moving average of the weights saved beside the checkpoint in `dir`, loaded into
/// `model` (a copy of the checkpoint's model); `None` when the run kept no average.
pub fn load_ema<M: Module>(dir: &Path, model: M) -> Result<Option<M>> {
    let path = dir.join(EMA_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    verify(dir, EMA_FILE, &read_state(dir)?)?;
    load_weights(&path, model).map(Some)
}

/// Checks `file` in the checkpoint folder `dir` against the SHA-256 its state recorded
/// (checkpoints written before hashes were recorded have none to check).
fn verify(dir: &Path, file: &str, state: &TrainState) -> Result<()> {
    let Some(expected) = state.sha256.get(file) else {
        return Ok(());
    };
    let path = dir.join(file);
    if !path.is_file() {
        return Err(missing(&path));
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let found = sha256_hex(&bytes);
    if &found != expected {
        return Err(Error::bad_file(
            &path,
            format!(
                "corrupt checkpoint file: SHA-256 {found}, but {STATE_FILE} recorded {expected} when it was saved"
            ),
        ));
    }
    Ok(())
}

/// A payload file of a checkpoint is not there: say whether the checkpoint was slimmed on
/// purpose (its `state.json` is left) or is incomplete.
fn missing(path: &Path) -> Error {
    let note = match path.parent().map(|d| d.join(STATE_FILE)) {
        Some(state) if state.is_file() => {
            "checkpoint file missing: this checkpoint keeps only its training state (the run finished or was stopped, and its weights and optimiser state were dropped to keep the zoo small); train the recipe again into a new folder"
        }
        _ => "checkpoint file missing",
    };
    Error::bad_file(path, note)
}

/// Loads a safetensors file into `model`, refusing missing, unexpected or malformed tensors.
fn load_weights<M: Module>(model_path: &Path, mut model: M) -> Result<M> {
    if !model_path.is_file() {
        return Err(missing(model_path));
    }
    let mut store = SafetensorsStore::from_file(model_path);
    let result = model.load_from(&mut store).map_err(|e| {
        Error::bad_file(
            model_path,
            format!("weights do not fit this model (a checkpoint of another model family or size?), or the file is corrupt or truncated: {e}"),
        )
    })?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(Error::bad_file(
            model_path,
            format!(
                "weights do not fit this model (a checkpoint of another model or size?): {} errors, missing {:?}, unexpected {:?}",
                result.errors.len(),
                result.missing.iter().take(3).collect::<Vec<_>>(),
                result.unused.iter().take(3).collect::<Vec<_>>()
            ),
        ));
    }
    Ok(model)
}

/// Removes the weights, their average and the optimiser state from the checkpoint folder
/// `dir`, keeping its `state.json`: what a finished (or stopped) run keeps of its last
/// checkpoint, so that where it stopped is still known but a repository does not carry state
/// no one resumes. Returns the bytes removed.
pub fn slim(dir: &Path) -> Result<u64> {
    let mut freed = 0;
    for file in PAYLOAD_FILES {
        let path = dir.join(file);
        if path.is_file() {
            freed += std::fs::metadata(&path).map_or(0, |m| m.len());
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(freed)
}

/// Loads the optimiser state saved beside a checkpoint.
pub fn load_optimizer(dir: &Path, optimizer: ModuleOptimizer) -> Result<ModuleOptimizer> {
    verify(dir, OPTIM_FILE, &read_state(dir)?)?;
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
