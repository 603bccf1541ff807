//! CHARMM/NAMD DCD trajectories: binary Fortran unformatted records.
//!
//! The layout: a header record (`CORD` and 20 control integers), a title record, an atom count
//! record, then per frame an optional unit-cell record (six doubles, when control integer 11 is
//! set in a CHARMM file) and three records of `f32` X, Y and Z coordinates in Angstrom (and a
//! fourth-dimension record in CHARMM files that flag one, which is skipped). Record markers of
//! 4 or 8 bytes and both byte orders are detected from the first marker. Files with fixed
//! atoms store only the free atoms after the first frame and are refused.
//!
//! The frames are those the file holds: the frame count in the header is often the count
//! planned when the file was opened (`adk_dims.dcd` announces 500 and holds 98), so it is
//! reported in [`DcdHeader::declared_frames`] but not used. A file that ends inside a frame is
//! an error.

mod reader;
mod records;

use std::path::Path;

use super::pdb::PdbModel;
use super::text::read_bytes;
use super::{DcdProblem, IoError};

/// One AKMA time unit (CHARMM's internal unit of time) in picoseconds.
pub const AKMA_TIME_PS: f64 = 0.048_888_21;

/// Byte order of a binary file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endianness {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

/// Width of the Fortran record length markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerSize {
    /// 4-byte markers (the common case).
    Four,
    /// 8-byte markers (some 64-bit Fortran compilers).
    Eight,
}

impl MarkerSize {
    /// Width in bytes.
    pub fn bytes(self) -> usize {
        match self {
            Self::Four => 4,
            Self::Eight => 8,
        }
    }
}

/// What the header of a DCD file says.
#[derive(Debug, Clone, PartialEq)]
pub struct DcdHeader {
    /// Frame count written in the header (NSET); may differ from the frames in the file.
    pub declared_frames: i32,
    /// Time step of the first frame (ISTART).
    pub first_step: i32,
    /// Time steps between frames (NSAVC).
    pub step_interval: i32,
    /// Integration time step in AKMA units (see [`DcdHeader::time_step_ps`]).
    pub time_step: f64,
    /// Atoms per frame.
    pub atom_count: usize,
    /// Title lines, without trailing blanks.
    pub titles: Vec<String>,
    /// Whether every frame has a unit-cell record.
    pub has_unit_cell: bool,
    /// CHARMM version (last control integer); 0 for X-PLOR files.
    pub charmm_version: i32,
    /// Byte order of the file.
    pub endianness: Endianness,
    /// Width of the record markers.
    pub marker_size: MarkerSize,
}

impl DcdHeader {
    /// Integration time step in picoseconds.
    pub fn time_step_ps(&self) -> f64 {
        self.time_step * AKMA_TIME_PS
    }
}

/// A periodic cell: edge lengths in Angstrom and angles in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitCell {
    /// Edge lengths a, b, c.
    pub lengths: [f64; 3],
    /// Angles alpha (between b and c), beta (a, c), gamma (a, b).
    pub angles: [f64; 3],
}

impl UnitCell {
    /// Reads the CHARMM record order `[a, gamma, b, beta, alpha, c]`, whose angles are
    /// cosines when all three lie in `[-1, 1]` (newer CHARMM) and degrees otherwise.
    pub(super) fn from_charmm(raw: [f64; 6]) -> Self {
        let [a, gamma, b, beta, alpha, c] = raw;
        let mut angles = [alpha, beta, gamma];
        if angles.iter().all(|value| value.abs() <= 1.0) {
            angles = angles.map(|cosine| cosine.acos().to_degrees());
        }
        Self {
            lengths: [a, b, c],
            angles,
        }
    }
}

/// One frame of a trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct DcdFrame {
    /// Atom positions in Angstrom.
    pub positions: Vec<[f64; 3]>,
    /// The unit cell, for files that store one.
    pub unit_cell: Option<UnitCell>,
}

/// A DCD trajectory: its header and frames.
#[derive(Debug, Clone, PartialEq)]
pub struct DcdTrajectory {
    /// The header.
    pub header: DcdHeader,
    /// The frames, in file order.
    pub frames: Vec<DcdFrame>,
}

impl DcdTrajectory {
    /// A copy of `topology` with the positions of frame `frame` (0-based); `None` when the frame
    /// does not exist or the atom counts differ.
    pub fn frame_as_model(&self, frame: usize, topology: &PdbModel) -> Option<PdbModel> {
        let positions = &self.frames.get(frame)?.positions;
        if positions.len() != topology.atoms.len() {
            return None;
        }
        let mut model = topology.clone();
        for (atom, position) in model.atoms.iter_mut().zip(positions) {
            atom.position = *position;
        }
        Some(model)
    }
}

/// Reads a DCD trajectory.
///
/// Errors name the file, the frame and the byte offset of the record: a file that is no DCD,
/// a truncated record, record markers that differ, fixed atoms.
pub fn read_dcd(path: impl AsRef<Path>) -> Result<DcdTrajectory, IoError> {
    let path = path.as_ref();
    let bytes = read_bytes(path)?;
    parse_dcd(&bytes, &path.display().to_string())
}

/// Reads a DCD trajectory whose atoms are those of `structure`, in its order (e.g. the model
/// of the PDB file the trajectory was written for); a different atom count is an error.
pub fn read_dcd_for_structure(
    path: impl AsRef<Path>,
    structure: &PdbModel,
) -> Result<DcdTrajectory, IoError> {
    let path = path.as_ref();
    let bytes = read_bytes(path)?;
    let file = path.display().to_string();
    let (trajectory, atom_count_offset) = reader::parse(&bytes, &file)?;
    if trajectory.header.atom_count == structure.atoms.len() {
        Ok(trajectory)
    } else {
        Err(IoError::Dcd {
            file,
            frame: None,
            offset: atom_count_offset,
            problem: DcdProblem::StructureMismatch {
                trajectory: trajectory.header.atom_count,
                structure: structure.atoms.len(),
            },
        })
    }
}

/// Parses DCD bytes; `file` names the source in errors.
pub fn parse_dcd(bytes: &[u8], file: &str) -> Result<DcdTrajectory, IoError> {
    reader::parse(bytes, file).map(|(trajectory, _)| trajectory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::pdb::{parse_pdb, read_pdb, PdbOptions};

    /// Byte layout of a synthetic trajectory.
    #[derive(Clone, Copy)]
    struct Layout {
        endianness: Endianness,
        marker_size: MarkerSize,
        unit_cell: Option<[f64; 6]>,
        fixed_atoms: i32,
    }

    const LITTLE: Layout = Layout {
        endianness: Endianness::Little,
        marker_size: MarkerSize::Four,
        unit_cell: None,
        fixed_atoms: 0,
    };

    fn encode(layout: Layout, frames: &[Vec<[f32; 3]>]) -> Vec<u8> {
        let big = layout.endianness == Endianness::Big;
        let int = |value: i32| {
            if big {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            }
        };
        let mut bytes = Vec::new();
        let mut record = |data: Vec<u8>| {
            let length = data.len() as u64;
            let marker = match (layout.marker_size, big) {
                (MarkerSize::Four, false) => (length as u32).to_le_bytes().to_vec(),
                (MarkerSize::Four, true) => (length as u32).to_be_bytes().to_vec(),
                (MarkerSize::Eight, false) => length.to_le_bytes().to_vec(),
                (MarkerSize::Eight, true) => length.to_be_bytes().to_vec(),
            };
            bytes.extend(&marker);
            bytes.extend(data);
            bytes.extend(&marker);
        };
        let mut control = [0_i32; 20];
        control[0] = frames.len() as i32;
        (control[1], control[2], control[8]) = (100, 10, layout.fixed_atoms);
        control[9] = 0.5_f32.to_bits() as i32;
        control[10] = i32::from(layout.unit_cell.is_some());
        control[19] = 24;
        let mut header = b"CORD".to_vec();
        header.extend(control.iter().flat_map(|&value| int(value)));
        record(header);
        let mut title = int(1).to_vec();
        title.extend(format!("{:<80}", "* SYNTHETIC TRAJECTORY").bytes());
        record(title);
        record(int(frames[0].len() as i32).to_vec());
        for frame in frames {
            if let Some(cell) = layout.unit_cell {
                let to_bytes = |v: f64| {
                    if big {
                        v.to_be_bytes()
                    } else {
                        v.to_le_bytes()
                    }
                };
                record(cell.iter().flat_map(|&value| to_bytes(value)).collect());
            }
            for axis in 0..3 {
                let to_bytes = |v: f32| {
                    if big {
                        v.to_be_bytes()
                    } else {
                        v.to_le_bytes()
                    }
                };
                record(
                    frame
                        .iter()
                        .flat_map(|position| to_bytes(position[axis]))
                        .collect(),
                );
            }
        }
        bytes
    }

    fn two_frames() -> Vec<Vec<[f32; 3]>> {
        vec![
            vec![[1.0, 2.0, 3.0], [-4.5, 5.25, 6.125]],
            vec![[1.5, 2.5, 3.5], [-4.0, 5.0, 6.0]],
        ]
    }

    fn dcd_error(bytes: &[u8]) -> (Option<usize>, u64, DcdProblem, String) {
        match parse_dcd(bytes, "broken.dcd") {
            Err(error) => {
                let message = error.to_string();
                match error {
                    IoError::Dcd {
                        frame,
                        offset,
                        problem,
                        ..
                    } => (frame, offset, problem, message),
                    other => panic!("expected a DCD error, got {other}"),
                }
            }
            Ok(trajectory) => panic!("expected an error, got {trajectory:?}"),
        }
    }

    #[test]
    fn every_marker_size_and_byte_order() {
        let cell = [10.0, 0.5, 20.0, 0.0, 0.0, 30.0];
        for endianness in [Endianness::Little, Endianness::Big] {
            for marker_size in [MarkerSize::Four, MarkerSize::Eight] {
                let layout = Layout {
                    endianness,
                    marker_size,
                    unit_cell: Some(cell),
                    fixed_atoms: 0,
                };
                let trajectory = parse_dcd(&encode(layout, &two_frames()), "t.dcd").expect("valid");
                let header = &trajectory.header;
                assert_eq!(
                    (header.endianness, header.marker_size),
                    (endianness, marker_size)
                );
                assert_eq!(
                    (
                        header.declared_frames,
                        header.first_step,
                        header.step_interval
                    ),
                    (2, 100, 10)
                );
                assert_eq!(
                    (header.atom_count, header.charmm_version, header.time_step),
                    (2, 24, 0.5)
                );
                assert_eq!(header.titles, vec!["* SYNTHETIC TRAJECTORY".to_owned()]);
                assert_eq!(trajectory.frames.len(), 2);
                assert_eq!(trajectory.frames[1].positions[1], [-4.0, 5.0, 6.0]);
                let unit_cell = trajectory.frames[0].unit_cell.expect("unit cell");
                assert_eq!(unit_cell.lengths, [10.0, 20.0, 30.0]);
                let expected = [90.0, 90.0, 60.0];
                assert!(unit_cell
                    .angles
                    .iter()
                    .zip(expected)
                    .all(|(a, e)| (a - e).abs() < 1e-9));
            }
        }
        let degrees = Layout {
            unit_cell: Some([10.0, 120.0, 10.0, 90.0, 90.0, 15.0]),
            ..LITTLE
        };
        let trajectory = parse_dcd(&encode(degrees, &two_frames()), "t.dcd").expect("valid");
        assert_eq!(
            trajectory.frames[0].unit_cell.map(|cell| cell.angles),
            Some([90.0, 90.0, 120.0])
        );
    }

    #[test]
    fn truncated_record() {
        let bytes = encode(LITTLE, &two_frames());
        let (frame, offset, problem, message) = dcd_error(&bytes[..bytes.len() - 5]);
        let z_of_second_frame = bytes.len() as u64 - 16;
        assert_eq!((frame, offset), (Some(2), z_of_second_frame));
        assert_eq!(
            problem,
            DcdProblem::Truncated {
                record: "Z coordinate",
                needed: 16,
                available: 11
            }
        );
        assert!(
            message.starts_with(&format!(
                "broken.dcd: frame 2, byte offset {z_of_second_frame}: the file ends inside"
            )),
            "{message}"
        );
        let (frame, _, problem, _) = dcd_error(&bytes[..100]);
        assert_eq!(frame, None);
        assert!(matches!(
            problem,
            DcdProblem::Truncated {
                record: "title",
                ..
            }
        ));
    }

    #[test]
    fn mismatched_record_markers() {
        let mut bytes = encode(LITTLE, &two_frames());
        let header_end = 4 + 84 + 4;
        let title_end = header_end + 4 + 84 + 4;
        let first_x = title_end + 12;
        bytes[first_x + 4 + 8] = 9;
        let (frame, offset, problem, message) = dcd_error(&bytes);
        assert_eq!((frame, offset), (Some(1), first_x as u64));
        assert_eq!(
            problem,
            DcdProblem::MarkerMismatch {
                record: "X coordinate",
                leading: 8,
                trailing: 9
            }
        );
        assert!(
            message.contains("markers differ: 8 before, 9 after"),
            "{message}"
        );
    }

    #[test]
    fn unsupported_and_foreign_files() {
        let fixed = Layout {
            fixed_atoms: 3,
            ..LITTLE
        };
        let (_, offset, problem, _) = dcd_error(&encode(fixed, &two_frames()));
        assert_eq!((offset, problem), (0, DcdProblem::FixedAtoms { count: 3 }));
        let (_, _, problem, _) = dcd_error(b"HEADER    PDB FILE, NOT A TRAJECTORY");
        assert_eq!(problem, DcdProblem::UnknownMarker);
        let (_, _, problem, _) = dcd_error(&[]);
        assert_eq!(problem, DcdProblem::UnknownMarker);
        let mut bytes = encode(LITTLE, &two_frames());
        bytes[4..8].copy_from_slice(b"VELD");
        let (_, _, problem, _) = dcd_error(&bytes);
        assert_eq!(
            problem,
            DcdProblem::NotCord {
                found: "VELD".to_owned()
            }
        );
    }

    #[test]
    fn atom_count_must_match_the_structure() {
        let pdb = "\
ATOM      1  N   GLY A   1       0.000   0.000   0.000  1.00  0.00           N
ATOM      2  CA  GLY A   1       1.458   0.000   0.000  1.00  0.00           C
ATOM      3  C   GLY A   1       2.009   1.420   0.000  1.00  0.00           C
";
        let structure = parse_pdb(pdb, "gly.pdb", &PdbOptions::default()).expect("valid");
        let path = std::env::temp_dir().join(format!("equi-train-{}-two.dcd", std::process::id()));
        std::fs::write(&path, encode(LITTLE, &two_frames())).expect("write temporary file");
        let error = read_dcd_for_structure(&path, &structure.models[0]).expect_err("3 vs 2 atoms");
        let trajectory = read_dcd(&path).expect("valid");
        std::fs::remove_file(&path).expect("remove temporary file");
        assert!(matches!(
            error,
            IoError::Dcd {
                problem: DcdProblem::StructureMismatch {
                    trajectory: 2,
                    structure: 3
                },
                ..
            }
        ));
        assert!(
            error
                .to_string()
                .ends_with("the trajectory holds 2 atoms, the structure 3"),
            "{error}"
        );
        assert_eq!(trajectory.frame_as_model(0, &structure.models[0]), None);
    }

    #[test]
    fn adenylate_kinase_transition() {
        let data = format!("{}/../../data/proteins", env!("CARGO_MANIFEST_DIR"));
        let read_model = |name: &str| {
            let structure =
                read_pdb(format!("{data}/{name}"), &PdbOptions::default()).expect("PDB");
            structure.models[0].clone()
        };
        let (open, closed) = (read_model("adk_open.pdb"), read_model("adk_closed.pdb"));
        let trajectory =
            read_dcd_for_structure(format!("{data}/adk_dims.dcd"), &open).expect("DCD");
        let header = &trajectory.header;
        assert_eq!(
            (
                header.atom_count,
                header.declared_frames,
                trajectory.frames.len()
            ),
            (3341, 500, 98)
        );
        assert_eq!(
            (header.endianness, header.marker_size, header.has_unit_cell),
            (Endianness::Little, MarkerSize::Four, false)
        );
        assert_eq!(header.titles.len(), 3);
        assert!((header.time_step_ps() - 0.001).abs() < 1e-6);

        // The frames are centred at the origin, unlike the PDB files, so the geometry is
        // compared through the CA-CA distances, which do not depend on the placement.
        let first = &trajectory.frames[0].positions;
        let centroid = first.iter().fold([0.0; 3], |sum, p| {
            [sum[0] + p[0], sum[1] + p[1], sum[2] + p[2]]
        });
        assert!(
            centroid.iter().all(|c| (c / 3341.0).abs() < 0.1),
            "{centroid:?}"
        );
        let alpha_carbons: Vec<usize> = (0..open.atoms.len())
            .filter(|&i| open.atoms[i].name == "CA")
            .collect();
        let distance_rms = |a: &[[f64; 3]], b: &[[f64; 3]]| {
            let distance = |p: [f64; 3], q: [f64; 3]| {
                ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt()
            };
            let mut sum = 0.0;
            let mut count = 0.0;
            for (k, &i) in alpha_carbons.iter().enumerate() {
                for &j in &alpha_carbons[k + 1..] {
                    sum += (distance(a[i], a[j]) - distance(b[i], b[j])).powi(2);
                    count += 1.0;
                }
            }
            (sum / count).sqrt()
        };
        let last = &trajectory.frames[97].positions;
        let (open, closed) = (open.positions(), closed.positions());
        assert!(distance_rms(first, &closed) < 0.5);
        assert!(distance_rms(last, &open) < 0.5);
        assert!(distance_rms(first, &open) > 5.0);
        let model = trajectory
            .frame_as_model(97, &read_model("adk_open.pdb"))
            .expect("same atoms");
        assert_eq!(model.positions(), *last);
    }
}
