//! The `equiformer` program: train, evaluate and predict from a TOML configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use equi_train::commands::{evaluate_file, predict_file, train_from_file, InferenceOptions};
use equi_train::config::ForceSource;
use equi_train::train::TrainOptions;
use equi_train::TrainError;

/// Train, evaluate and apply equivariant networks on atomistic data.
#[derive(Parser)]
#[command(name = "equiformer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model as a TOML configuration says.
    Train {
        /// The run configuration.
        #[arg(long)]
        config: PathBuf,
        /// Continue from the latest checkpoint of the run folder.
        #[arg(long)]
        resume: bool,
        /// Print nothing but errors.
        #[arg(long)]
        quiet: bool,
    },
    /// Print the metrics of a checkpoint on a labelled file.
    Eval {
        /// A checkpoint file, or a run folder (its latest checkpoint).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Extended XYZ file (PDB for denoising) with the task's labels.
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        inference: Inference,
    },
    /// Write predictions for every structure of a file as extended XYZ.
    Predict {
        /// A checkpoint file, or a run folder (its latest checkpoint).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Extended XYZ file (PDB for denoising).
        #[arg(long)]
        input: PathBuf,
        /// Extended XYZ file to write.
        #[arg(long)]
        output: PathBuf,
        #[command(flatten)]
        inference: Inference,
    },
}

#[derive(clap::Args)]
struct Inference {
    /// Forces from the force head (`direct`), as minus the energy gradient (`gradient`), or
    /// as the derivatives of the energy with stress and periodic cells (`conservative`).
    #[arg(long, value_enum)]
    forces: Option<Forces>,
    /// Structures per batch.
    #[arg(long)]
    batch_size: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Forces {
    Conservative,
    Direct,
    Gradient,
}

impl Inference {
    fn options(&self) -> InferenceOptions {
        InferenceOptions {
            forces: self.forces.map(|f| match f {
                Forces::Conservative => ForceSource::Conservative,
                Forces::Direct => ForceSource::Direct,
                Forces::Gradient => ForceSource::Gradient,
            }),
            batch_size: self.batch_size,
        }
    }
}

fn run(command: Command) -> Result<(), TrainError> {
    match command {
        Command::Train {
            config,
            resume,
            quiet,
        } => {
            let report = train_from_file(&config, TrainOptions { resume, quiet })?;
            if let Some(path) = report.last_checkpoint.filter(|_| !quiet) {
                let per_epoch = report
                    .history
                    .last()
                    .map(|last| last.elapsed_s / report.history.len() as f64);
                match per_epoch {
                    Some(seconds) => println!(
                        "{} steps, {} epochs, {seconds:.1} s per epoch; last checkpoint {}",
                        report.steps,
                        report.history.len(),
                        path.display()
                    ),
                    None => println!("{} steps; last checkpoint {}", report.steps, path.display()),
                }
            }
        }
        Command::Eval {
            checkpoint,
            data,
            inference,
        } => {
            for (name, value) in evaluate_file(&checkpoint, &data, &inference.options())? {
                println!("{name:<24} {value:.6}");
            }
        }
        Command::Predict {
            checkpoint,
            input,
            output,
            inference,
        } => {
            let count = predict_file(&checkpoint, &input, &output, &inference.options())?;
            println!("wrote {count} structures to {}", output.display());
        }
    }
    Ok(())
}

/// Edge-sized buffers are allocated and freed at every tensor operation; see
/// [`equiformer::allocator`].
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    equiformer::allocator::keep_freed_memory();
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        eprintln!(
            "error: internal failure: {}",
            message.lines().next().unwrap_or("")
        );
    }));
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
