//! The per-epoch metrics of a run and their CSV file.

use std::fmt::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checkpoint::write_atomic;
use crate::error::TrainError;

/// Metrics of one finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Optimizer steps taken since the start of the run.
    pub step: usize,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Validation metrics by name (`loss` first).
    pub valid: Vec<(String, f64)>,
    /// Seconds since the start of the run.
    pub elapsed_s: f64,
}

impl EpochRecord {
    /// The validation loss.
    pub fn valid_loss(&self) -> Option<f64> {
        self.valid
            .iter()
            .find(|(name, _)| name == "loss")
            .map(|(_, value)| *value)
    }

    /// One line for the terminal.
    pub fn summary(&self, epochs: usize) -> String {
        let mut line = format!(
            "epoch {}/{epochs}  step {}  train loss {:.5}",
            self.epoch, self.step, self.train_loss
        );
        for (name, value) in &self.valid {
            let _ = write!(line, "  valid {name} {value:.5}");
        }
        let _ = write!(line, "  lr {:.2e}  {:.1} s", self.lr, self.elapsed_s);
        line
    }
}

/// The history as CSV text: `epoch,step,lr,train_loss,valid_<metric>...,elapsed_s`.
pub fn to_csv(history: &[EpochRecord]) -> String {
    let names: Vec<&str> = history
        .first()
        .map(|r| r.valid.iter().map(|(name, _)| name.as_str()).collect())
        .unwrap_or_default();
    let mut text = String::from("epoch,step,lr,train_loss");
    for name in &names {
        let _ = write!(text, ",valid_{name}");
    }
    text.push_str(",elapsed_s\n");
    for record in history {
        let _ = write!(
            text,
            "{},{},{},{}",
            record.epoch, record.step, record.lr, record.train_loss
        );
        for name in &names {
            let value = record
                .valid
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v);
            let _ = write!(text, ",{}", value.map_or(String::new(), |v| v.to_string()));
        }
        let _ = writeln!(text, ",{:.3}", record.elapsed_s);
    }
    text
}

/// Writes the history as CSV, atomically.
///
/// # Errors
/// The file cannot be written.
pub fn write_csv(path: &Path, history: &[EpochRecord]) -> Result<(), TrainError> {
    write_atomic(path, to_csv(history).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_one_row_per_epoch() {
        let record = |epoch: usize, loss: f64| EpochRecord {
            epoch,
            step: 10 * epoch,
            lr: 1e-3,
            train_loss: loss,
            valid: vec![("loss".into(), loss / 2.0), ("mae".into(), 0.25)],
            elapsed_s: 1.5,
        };
        let history = [record(1, 1.0), record(2, 0.5)];
        assert_eq!(
            to_csv(&history),
            "epoch,step,lr,train_loss,valid_loss,valid_mae,elapsed_s\n\
             1,10,0.001,1,0.5,0.25,1.500\n2,20,0.001,0.5,0.25,0.25,1.500\n"
        );
        assert_eq!(history[1].valid_loss(), Some(0.25));
        assert!(history[0]
            .summary(3)
            .starts_with("epoch 1/3  step 10  train loss 1.00000"));
    }
}
