//! Structures from files: molecules from extended XYZ, protein backbones from PDB and DCD.

use std::path::Path;

use super::{Structure, MAX_COORDINATE};
use crate::config::TrajectoryConfig;
use crate::error::TrainError;
use crate::io::dcd::read_dcd_for_structure;
use crate::io::extxyz::{read_extxyz, Frame};
use crate::io::pdb::{backbone, read_pdb, BackboneResidue, PdbModel, PdbOptions, UnknownResidues};
use crate::io::PeriodicProblem;

/// Which labels to read from extended XYZ frames.
#[derive(Clone, Copy, Debug)]
pub struct LabelSpec<'a> {
    /// Name of the per-frame number (e.g. `U0`, `energy`).
    pub scalar: Option<&'a str>,
    /// Name of the per-atom three-column array (e.g. `forces`).
    pub vectors: Option<&'a str>,
    /// Whether to read the stress (`stress`, or else `virial`, see [`Frame::stress`]).
    pub stress: bool,
    /// Whether a frame without these labels is an error (training, evaluation) or not
    /// (prediction).
    pub required: bool,
}

/// Reads every frame of every extended XYZ file as a molecule or periodic structure; tokens
/// are atomic numbers. The cell and pbc come from every frame that has them (see
/// [`crate::io::extxyz`]), the stress when `labels.stress` asks for it.
///
/// # Errors
/// Unreadable or malformed files (an invalid `Lattice`, `pbc`, `stress` or `virial`
/// included), files without frames, non-finite labels and (with `labels.required`) frames
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
    let periodic = |problem: PeriodicProblem| TrainError::Dataset(format!("{origin}: {problem}"));
    let cell = frame.cell().map_err(periodic)?;
    let pbc = frame.pbc().map_err(periodic)?;
    let stress = if labels.stress {
        frame.stress().map_err(periodic)?
    } else {
        None
    };
    let scalar = labels.scalar.and_then(|key| frame.info_f64(key));
    let vectors = labels.vectors.and_then(|key| frame.vectors(key));
    if labels.required {
        check_required(&origin, labels, scalar, vectors.is_some(), stress.is_some())?;
    }
    let non_finite = scalar.is_some_and(|value| !value.is_finite())
        || vectors
            .iter()
            .flatten()
            .flatten()
            .chain(stress.iter().flatten().flatten())
            .any(|value| !value.is_finite());
    if non_finite {
        return Err(TrainError::Dataset(format!(
            "{origin}: labels are not finite"
        )));
    }
    check_coordinates(&origin, &frame.positions)?;
    Ok(Structure {
        origin,
        tokens: frame.atomic_numbers.iter().map(|&z| i64::from(z)).collect(),
        atomic_numbers: frame.atomic_numbers,
        positions: frame.positions,
        scalar,
        vectors,
        cell,
        pbc,
        stress,
    })
}

/// The error for the first label that `labels` asks for and the frame lacks.
fn check_required(
    origin: &str,
    labels: LabelSpec,
    scalar: Option<f64>,
    has_vectors: bool,
    has_stress: bool,
) -> Result<(), TrainError> {
    let missing = if let (Some(key), None) = (labels.scalar, scalar) {
        format!("no numeric property '{key}' on the comment line")
    } else if let (Some(key), false) = (labels.vectors, has_vectors) {
        format!("no real three-column per-atom array '{key}'")
    } else if labels.stress && !has_stress {
        "no 'stress' (or 'virial') on the comment line".to_owned()
    } else {
        return Ok(());
    };
    Err(TrainError::Dataset(format!("{origin}: {missing}")))
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
    let structure = backbone_atoms(&residues, origin);
    check_coordinates(&structure.origin, &structure.positions)?;
    Ok(structure)
}

/// Refuses non-finite coordinates and those beyond [`MAX_COORDINATE`], naming the atom.
fn check_coordinates(origin: &str, positions: &[[f64; 3]]) -> Result<(), TrainError> {
    let outside = positions
        .iter()
        .enumerate()
        .find(|(_, x)| x.iter().any(|v| !v.is_finite() || v.abs() > MAX_COORDINATE));
    match outside {
        None => Ok(()),
        Some((atom, x)) => Err(TrainError::Dataset(format!(
            "{origin} atom {}: position {x:?} is not finite or beyond +-{MAX_COORDINATE} A \
             (f32 distances lose their precision there; centre the structure)",
            atom + 1
        ))),
    }
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
        cell: None,
        pbc: [false; 3],
        stress: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    const POTENTIAL: LabelSpec<'static> = LabelSpec {
        scalar: Some("energy"),
        vectors: Some("forces"),
        stress: true,
        required: true,
    };

    fn bulk(file: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../data/bulk/{file}"))
    }

    /// A file whose first frame is a valid periodic Cu atom and whose second frame has the
    /// comment line `info`; the error of loading it with `labels`.
    fn second_frame_error(info: &str, labels: LabelSpec) -> String {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("bad.extxyz");
        let good = "Lattice=\"2 0 0 0 2 0 0 0 2\" energy=1.0 stress=\"1 1 1 0 0 0\"";
        let frame = |comment: &str| {
            format!("1\n{comment} Properties=species:S:1:pos:R:3:forces:R:3\nCu 0 0 0 0 0 0\n")
        };
        std::fs::write(&path, frame(good) + &frame(info)).expect("write temporary file");
        let error = load_molecules(&[&path], labels)
            .expect_err(info)
            .to_string();
        let file = path.display().to_string();
        assert!(
            error.starts_with(&format!("{file}: frame 2"))
                || error.starts_with(&format!("{file} frame 2")),
            "{info}: {error}"
        );
        error
    }

    #[test]
    fn bundled_cu_cells_pbc_and_stress() {
        let path = bulk("cu_emt_valid.extxyz");
        let structures = load_molecules(&[&path], POTENTIAL).expect("Cu EMT validation set");
        let frames = read_extxyz(&path).expect("readable");
        assert_eq!(structures.len(), 200);
        for (structure, frame) in structures.iter().zip(&frames) {
            assert_eq!(structure.cell, frame.cell().expect("valid cell"));
            assert!(structure.cell.is_some());
            assert_eq!(structure.pbc, [true; 3]);
            assert_eq!(structure.stress, frame.stress().expect("valid stress"));
            assert_eq!(structure.len(), 32);
        }
        let first = &structures[0];
        let cell = first.cell.expect("a cell");
        assert_eq!(
            cell.rows()[0],
            [7.036584096301855, -0.04194131373465188, -0.0932372783145538]
        );
        let stress = first.stress.expect("a stress");
        assert_eq!(
            stress[1],
            [
                -0.004822313252768289,
                0.013131841668386426,
                -0.004918258418846576
            ]
        );
        assert_eq!(first.scalar, Some(1.6167059174392318));
        let unstressed = LabelSpec {
            stress: false,
            ..POTENTIAL
        };
        let without = load_molecules(&[&path], unstressed).expect("without stress");
        assert!(without
            .iter()
            .all(|s| s.stress.is_none() && s.cell.is_some()));
        let slice = first.slice(0..4);
        assert_eq!(
            (slice.cell, slice.pbc, slice.stress),
            (first.cell, first.pbc, None)
        );
    }

    #[test]
    fn molecules_have_no_cell() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/md/ethanol_xtb_valid.extxyz");
        let labels = LabelSpec {
            stress: false,
            ..POTENTIAL
        };
        let structures = load_molecules(&[&path], labels).expect("ethanol");
        assert!(structures
            .iter()
            .all(|s| s.cell.is_none() && s.pbc == [false; 3]));
        let error = load_molecules(&[&path], POTENTIAL)
            .expect_err("no stress")
            .to_string();
        assert!(
            error.ends_with("frame 1: no 'stress' (or 'virial') on the comment line"),
            "{error}"
        );
        let optional = LabelSpec {
            required: false,
            ..POTENTIAL
        };
        let structures = load_molecules(&[&path], optional).expect("stress optional");
        assert!(structures.iter().all(|s| s.stress.is_none()));
    }

    #[test]
    fn invalid_periodic_frames_are_named() {
        let lattice = "Lattice=\"2 0 0 0 2 0 0 0 2\" energy=1.0";
        for (info, reason) in [
            (
                "pbc=\"T T F\" energy=1.0 stress=\"1 1 1 0 0 0\"",
                "but the frame has no 'Lattice'",
            ),
            ("Lattice=\"2 0 0 0 2 0 0 0\" energy=1.0", "found 8 numbers"),
            (
                "Lattice=\"2 0 0 0 two 0 0 0 2\" energy=1.0",
                "found the text",
            ),
            ("Lattice=\"2 0 0 0 2 0 2 2 0\" energy=1.0", "degenerate"),
            (
                "Lattice=\"2 0 0 0 inf 0 0 0 2\" energy=1.0",
                "non-finite component",
            ),
            (&format!("{lattice} stress=\"1 2 3\""), "found 3 numbers"),
            (
                &format!("{lattice} stress=\"1 2 3 nan 0 0\""),
                "'stress' has a non-finite",
            ),
            (
                &format!("{lattice} stress=\"1 0.5 0 0.4 1 0 0 0 1\""),
                "not symmetric",
            ),
            (
                "energy=1.0 virial=\"1 0 0 0 1 0 0 0 1\"",
                "'virial' needs a 'Lattice'",
            ),
            (lattice, "no 'stress' (or 'virial')"),
        ] {
            let error = second_frame_error(info, POTENTIAL);
            assert!(error.contains(reason), "{info}: {error}");
        }
    }
}
