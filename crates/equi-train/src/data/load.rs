//! Structures from files: molecules from extended XYZ, protein backbones from PDB and DCD.

use std::path::Path;

use super::Structure;
use crate::config::TrajectoryConfig;
use crate::error::TrainError;
use crate::io::dcd::read_dcd_for_structure;
use crate::io::extxyz::{read_extxyz, Frame};
use crate::io::pdb::{backbone, read_pdb, BackboneResidue, PdbModel, PdbOptions, UnknownResidues};

/// Which labels to read from extended XYZ frames.
#[derive(Clone, Copy, Debug)]
pub struct LabelSpec<'a> {
    /// Name of the per-frame number (e.g. `U0`, `energy`).
    pub scalar: Option<&'a str>,
    /// Name of the per-atom three-column array (e.g. `forces`).
    pub vectors: Option<&'a str>,
    /// Whether a frame without these labels is an error (training, evaluation) or not
    /// (prediction).
    pub required: bool,
}

/// Reads every frame of every extended XYZ file as a molecule; tokens are atomic numbers.
///
/// # Errors
/// Unreadable or malformed files, files without frames, and (with `labels.required`) frames
/// without the requested labels, naming the file and frame.
pub fn load_molecules(
    paths: &[impl AsRef<Path>],
    labels: LabelSpec,
) -> Result<Vec<Structure>, TrainError> {
    let mut structures = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let frames = read_extxyz(path)?;
        if frames.is_empty() {
            return Err(TrainError::Dataset(format!(
                "{}: no frames",
                path.display()
            )));
        }
        for (index, frame) in frames.into_iter().enumerate() {
            let origin = format!("{} frame {}", path.display(), index + 1);
            structures.push(molecule(frame, origin, labels)?);
        }
    }
    Ok(structures)
}

pub(crate) fn molecule(
    frame: Frame,
    origin: String,
    labels: LabelSpec,
) -> Result<Structure, TrainError> {
    if frame.is_empty() {
        return Err(TrainError::Dataset(format!("{origin}: no atoms")));
    }
    let scalar = labels.scalar.and_then(|key| frame.info_f64(key));
    let vectors = labels.vectors.and_then(|key| frame.vectors(key));
    if labels.required {
        if let (Some(key), None) = (labels.scalar, scalar) {
            return Err(TrainError::Dataset(format!(
                "{origin}: no numeric property '{key}' on the comment line"
            )));
        }
        if let (Some(key), None) = (labels.vectors, &vectors) {
            return Err(TrainError::Dataset(format!(
                "{origin}: no real three-column per-atom array '{key}'"
            )));
        }
    }
    let non_finite = scalar.is_some_and(|value| !value.is_finite())
        || vectors
            .iter()
            .flatten()
            .flatten()
            .any(|value| !value.is_finite());
    if non_finite {
        return Err(TrainError::Dataset(format!(
            "{origin}: labels are not finite"
        )));
    }
    Ok(Structure {
        origin,
        tokens: frame.atomic_numbers.iter().map(|&z| i64::from(z)).collect(),
        atomic_numbers: frame.atomic_numbers,
        positions: frame.positions,
        scalar,
        vectors,
    })
}

/// Reads protein backbones (N, CA, C of every residue that has all three): every model of
/// every PDB file (hetero atoms, water and ions dropped), and every `stride`-th frame of every
/// trajectory.
///
/// # Errors
/// Unreadable or malformed files, a trajectory whose atoms differ from its topology, and
/// files without any backbone residue.
pub fn load_backbones(
    pdb_files: &[impl AsRef<Path>],
    trajectories: &[TrajectoryConfig],
) -> Result<Vec<Structure>, TrainError> {
    let protein_only = PdbOptions {
        skip_hetero: true,
        skip_water: true,
        skip_ions: true,
        model: None,
    };
    let mut structures = Vec::new();
    for path in pdb_files {
        let path = path.as_ref();
        let structure = read_pdb(path, &protein_only)?;
        let several = structure.models.len() > 1;
        for model in &structure.models {
            let origin = if several {
                format!("{} model {}", path.display(), model.serial)
            } else {
                path.display().to_string()
            };
            structures.push(backbone_structure(model, origin)?);
        }
    }
    for trajectory in trajectories {
        let topology = read_pdb(&trajectory.topology, &PdbOptions::default())?;
        let Some(model) = topology.models.first() else {
            return Err(TrainError::Dataset(format!(
                "{}: no model",
                trajectory.topology.display()
            )));
        };
        let frames = read_dcd_for_structure(&trajectory.dcd, model)?;
        for index in (0..frames.frames.len()).step_by(trajectory.stride.max(1)) {
            let origin = format!("{} frame {}", trajectory.dcd.display(), index + 1);
            let Some(frame) = frames.frame_as_model(index, model) else {
                return Err(TrainError::Dataset(format!(
                    "{origin}: does not fit the topology"
                )));
            };
            structures.push(backbone_structure(&frame, origin)?);
        }
    }
    Ok(structures)
}

fn backbone_structure(model: &PdbModel, origin: String) -> Result<Structure, TrainError> {
    let residues = backbone(model, UnknownResidues::Token)?;
    if residues.is_empty() {
        return Err(TrainError::Dataset(format!(
            "{origin}: no residue with N, CA and C atoms"
        )));
    }
    Ok(backbone_atoms(&residues, origin))
}

/// The N, CA and C atoms of `residues`, in that order, as one structure.
fn backbone_atoms(residues: &[BackboneResidue], origin: String) -> Structure {
    let mut structure = Structure {
        origin,
        atomic_numbers: Vec::with_capacity(3 * residues.len()),
        tokens: Vec::with_capacity(3 * residues.len()),
        positions: Vec::with_capacity(3 * residues.len()),
        scalar: None,
        vectors: None,
    };
    for residue in residues {
        for (role, (element, position)) in [(7, residue.n), (6, residue.ca), (6, residue.c)]
            .into_iter()
            .enumerate()
        {
            structure.atomic_numbers.push(element);
            structure
                .tokens
                .push(3 * i64::from(residue.token) + role as i64);
            structure.positions.push(position);
        }
    }
    structure
}
