//! Checkpoints: one self-checking file per save, written atomically.
//!
//! A checkpoint holds the run's configuration text, the fitted target normalisation, the
//! progress counters (epoch, batch, step: with the seed, the whole random state of a run, see
//! [`crate::rng`]), the metrics history, the model weights and the optimizer state (both as
//! Burn records in f64). The layout is a fixed header (magic, version, section lengths, a
//! 64-bit FNV-1a checksum of the sections) followed by the JSON metadata and the two
//! MessagePack records, so a truncated or damaged file is detected before anything is decoded.
//!
//! Files are written to a temporary file in the same folder, flushed to disk, then renamed
//! over the final name, and the folder is synced: a crash at any point leaves either the old
//! file or the new one, never a partial one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{DoublePrecisionSettings, NamedMpkBytesRecorder, Record, Recorder};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::history::EpochRecord;
use crate::task::Normalizer;

const MAGIC: &[u8; 8] = b"EQFCKPT\0";
const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 4 + 8 * 4;

/// Name of the copy of the checkpoint with the lowest validation loss.
pub const BEST: &str = "best.ckpt";

/// Where a run stands; with the seed, this determines every random draw still to come.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Seed of the run.
    pub seed: u64,
    /// Epoch in progress (0-based); equals the number of finished epochs at an epoch end.
    pub epoch: usize,
    /// Batches of `epoch` already trained on.
    pub batch: usize,
    /// Optimizer steps taken since the start of the run.
    pub step: usize,
    /// Sum of the training losses of the finished batches of `epoch`.
    pub epoch_loss_sum: f64,
    /// Seconds spent training and validating so far.
    pub elapsed_s: f64,
}

/// Everything in a checkpoint except the two records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// The configuration file's text.
    pub config_text: String,
    /// The folder its relative paths were resolved against.
    pub config_dir: PathBuf,
    /// Target normalisation fitted on the training split.
    pub normalizer: Normalizer,
    /// Progress counters.
    pub progress: Progress,
    /// Metrics of every finished epoch.
    pub history: Vec<EpochRecord>,
}

/// A decoded checkpoint file: metadata and the raw model and optimizer records.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The metadata.
    pub meta: CheckpointMeta,
    /// The model record (MessagePack).
    pub model: Vec<u8>,
    /// The optimizer record (MessagePack).
    pub optimizer: Vec<u8>,
}

fn fnv1a(sections: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for byte in sections.iter().flat_map(|s| s.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl Checkpoint {
    /// The file bytes of this checkpoint.
    ///
    /// # Errors
    /// Metadata that cannot be serialised.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let meta = serde_json::to_vec(&self.meta).map_err(|e| e.to_string())?;
        let sections: [&[u8]; 3] = [&meta, &self.model, &self.optimizer];
        let mut bytes =
            Vec::with_capacity(HEADER + sections.iter().map(|s| s.len()).sum::<usize>());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        for section in sections {
            bytes.extend_from_slice(&(section.len() as u64).to_le_bytes());
        }
        bytes.extend_from_slice(&fnv1a(&sections).to_le_bytes());
        for section in sections {
            bytes.extend_from_slice(section);
        }
        Ok(bytes)
    }

    /// Decodes checkpoint file bytes, checking the header, the lengths and the checksum.
    ///
    /// # Errors
    /// A file that is no checkpoint, of another version, truncated or damaged.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err("not a checkpoint file".into());
        }
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or([0; 4]));
        if version != VERSION {
            return Err(format!(
                "format version {version}, this build reads {VERSION}"
            ));
        }
        let lengths = [word(16), word(24), word(32)];
        let expected = lengths
            .iter()
            .try_fold(HEADER as u64, |total, &len| total.checked_add(len));
        if expected != Some(bytes.len() as u64) {
            return Err(
                "truncated or damaged: the section lengths do not match the file size".into(),
            );
        }
        let mut sections = Vec::with_capacity(3);
        let mut start = HEADER;
        for len in lengths {
            let end = start + len as usize;
            sections.push(&bytes[start..end]);
            start = end;
        }
        if fnv1a(&sections) != word(40) {
            return Err("damaged: checksum mismatch".into());
        }
        let meta =
            serde_json::from_slice(sections[0]).map_err(|e| format!("unreadable metadata: {e}"))?;
        Ok(Self {
            meta,
            model: sections[1].to_vec(),
            optimizer: sections[2].to_vec(),
        })
    }

    /// Reads and decodes a checkpoint file.
    ///
    /// # Errors
    /// An unreadable, truncated or damaged file, naming it.
    pub fn read(path: &Path) -> Result<Self, TrainError> {
        let bytes = std::fs::read(path).map_err(|e| TrainError::checkpoint(path, e.to_string()))?;
        Self::decode(&bytes).map_err(|problem| TrainError::checkpoint(path, problem))
    }
}

/// A Burn record as bytes (f64 floats, so that f64 backends resume exactly).
///
/// # Errors
/// A record that cannot be serialised.
pub fn record_bytes<B: Backend, R: Record<B>>(record: R) -> Result<Vec<u8>, String> {
    NamedMpkBytesRecorder::<DoublePrecisionSettings>::new()
        .record(record, ())
        .map_err(|e| e.to_string())
}

/// A Burn record from bytes written by [`record_bytes`].
///
/// # Errors
/// Bytes that do not hold a record of this type.
pub fn record_from_bytes<B: Backend, R: Record<B>>(
    bytes: Vec<u8>,
    device: &B::Device,
) -> Result<R, String> {
    NamedMpkBytesRecorder::<DoublePrecisionSettings>::new()
        .load(bytes, device)
        .map_err(|e| e.to_string())
}

/// Loads the weights of a checkpoint into a freshly built module.
///
/// # Errors
/// Weights that do not fit the module (another model configuration).
pub fn load_module<B: Backend, M: Module<B>>(
    module: M,
    bytes: Vec<u8>,
    device: &B::Device,
    path: &Path,
) -> Result<M, TrainError> {
    let record = record_from_bytes::<B, M::Record>(bytes, device).map_err(|e| {
        TrainError::checkpoint(path, format!("the weights do not fit the model: {e}"))
    })?;
    Ok(module.load_record(record))
}

/// Writes `bytes` to a temporary file next to `path` and flushes it to disk; returns the
/// temporary file, to be [`commit`]ted.
///
/// # Errors
/// The file cannot be created or written.
pub fn stage(path: &Path, bytes: &[u8]) -> Result<PathBuf, TrainError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = File::create(&temporary).map_err(|e| TrainError::file(&temporary, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| TrainError::file(&temporary, e))?;
    Ok(temporary)
}

/// Renames a [`stage`]d file over `path` and syncs the folder.
///
/// # Errors
/// The rename fails.
pub fn commit(temporary: &Path, path: &Path) -> Result<(), TrainError> {
    std::fs::rename(temporary, path).map_err(|e| TrainError::file(path, e))?;
    #[cfg(unix)]
    if let Some(folder) = path.parent() {
        File::open(folder)
            .and_then(|f| f.sync_all())
            .map_err(|e| TrainError::file(folder, e))?;
    }
    Ok(())
}

/// Writes a file atomically: [`stage`], then [`commit`].
///
/// # Errors
/// The file cannot be written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let temporary = stage(path, bytes)?;
    commit(&temporary, path)
}

/// File name of the checkpoint after `step` steps.
pub fn step_file_name(step: usize) -> String {
    format!("step-{step:09}.ckpt")
}

/// The checkpoints of a folder by step, latest first (temporary files and `best.ckpt` are
/// not listed).
///
/// # Errors
/// The folder exists but cannot be read.
pub fn list(folder: &Path) -> Result<Vec<(usize, PathBuf)>, TrainError> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TrainError::file(folder, e)),
    };
    let mut found: Vec<(usize, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let step = name
                .strip_prefix("step-")?
                .strip_suffix(".ckpt")?
                .parse()
                .ok()?;
            Some((step, entry.path()))
        })
        .collect();
    found.sort_by_key(|(step, _)| std::cmp::Reverse(*step));
    Ok(found)
}

/// Removes temporary files left by an interrupted write.
pub fn remove_leftovers(folder: &Path) {
    if let Ok(entries) = std::fs::read_dir(folder) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".ckpt.tmp-") {
                // A leftover that cannot be removed is harmless: it is never read.
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Keeps the `keep` latest step checkpoints of a folder and deletes the others.
///
/// # Errors
/// A checkpoint that cannot be deleted.
pub fn prune(folder: &Path, keep: usize) -> Result<(), TrainError> {
    for (_, path) in list(folder)?.into_iter().skip(keep.max(1)) {
        std::fs::remove_file(&path).map_err(|e| TrainError::file(&path, e))?;
    }
    Ok(())
}

/// The checkpoint to evaluate: `path` itself if it is a file, else the latest checkpoint in
/// `path/checkpoints` or `path` that decodes.
///
/// # Errors
/// No checkpoint there, or none that decodes.
pub fn locate(path: &Path) -> Result<(PathBuf, Checkpoint), TrainError> {
    if path.is_file() {
        return Ok((path.to_path_buf(), Checkpoint::read(path)?));
    }
    if !path.is_dir() {
        return Err(TrainError::checkpoint(path, "no such file or folder"));
    }
    let nested = path.join("checkpoints");
    let folder = if nested.is_dir() {
        nested
    } else {
        path.to_path_buf()
    };
    let mut last_error = None;
    for (_, file) in list(&folder)? {
        match Checkpoint::read(&file) {
            Ok(checkpoint) => return Ok((file, checkpoint)),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        TrainError::checkpoint(&folder, "no checkpoint files (step-*.ckpt) here")
    }))
}

#[cfg(test)]
mod tests;
