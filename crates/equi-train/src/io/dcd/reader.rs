//! Reading the header records and the frames of a DCD file.

use super::records::RecordReader;
use super::{DcdFrame, DcdHeader, DcdTrajectory, UnitCell};
use crate::io::{DcdProblem, IoError};

/// Parses a trajectory and returns it with the byte offset of its atom count record.
pub(super) fn parse(bytes: &[u8], file: &str) -> Result<(DcdTrajectory, u64), IoError> {
    let mut reader = RecordReader::detect(bytes, file)?;
    let header_record = reader.record_of_length("header", 84)?;
    let control = |index: usize| reader.i32_at(header_record, 4 + 4 * index);
    let charmm_version = control(19);
    let is_charmm = charmm_version != 0;
    let fixed_atoms = control(8);
    if fixed_atoms > 0 {
        return Err(reader.error(0, DcdProblem::FixedAtoms { count: fixed_atoms }));
    }
    let time_step = if is_charmm {
        f64::from(reader.f32_at(header_record, 40))
    } else {
        reader.f64_at(header_record, 40)
    };
    let (declared_frames, first_step, step_interval) = (control(0), control(1), control(2));
    let has_unit_cell = is_charmm && control(10) != 0;
    let has_fourth_dimension = is_charmm && control(11) != 0;

    let title_offset = reader.offset();
    let title_record = reader.record("title")?;
    if title_record.len() < 4 {
        let found = title_record.len() as u64;
        let problem = DcdProblem::RecordLength {
            record: "title",
            expected: 4,
            found,
        };
        return Err(reader.error(title_offset, problem));
    }
    let titles = title_record[4..]
        .chunks(80)
        .map(|line| String::from_utf8_lossy(line).trim_end().to_owned())
        .collect();

    let atom_count_offset = reader.offset();
    let count_record = reader.record_of_length("atom count", 4)?;
    let count = reader.i32_at(count_record, 0);
    let atom_count = usize::try_from(count)
        .ok()
        .filter(|&count| count > 0)
        .ok_or_else(|| {
            let problem = DcdProblem::AtomCount {
                found: i64::from(count),
            };
            reader.error(atom_count_offset, problem)
        })?;

    let coordinate_bytes = 4 * atom_count as u64;
    let mut frames = Vec::new();
    while !reader.at_end() {
        reader.frame = Some(frames.len() + 1);
        let unit_cell = if has_unit_cell {
            let cell = reader.record_of_length("unit cell", 48)?;
            Some(UnitCell::from_charmm(std::array::from_fn(|index| {
                reader.f64_at(cell, 8 * index)
            })))
        } else {
            None
        };
        let x = reader.record_of_length("X coordinate", coordinate_bytes)?;
        let y = reader.record_of_length("Y coordinate", coordinate_bytes)?;
        let z = reader.record_of_length("Z coordinate", coordinate_bytes)?;
        if has_fourth_dimension {
            reader.record_of_length("fourth-dimension", coordinate_bytes)?;
        }
        let positions = (0..atom_count)
            .map(|atom| [x, y, z].map(|axis| f64::from(reader.f32_at(axis, 4 * atom))))
            .collect();
        frames.push(DcdFrame {
            positions,
            unit_cell,
        });
    }
    let header = DcdHeader {
        declared_frames,
        first_step,
        step_interval,
        time_step,
        atom_count,
        titles,
        has_unit_cell,
        charmm_version,
        endianness: reader.endianness,
        marker_size: reader.marker_size,
    };
    Ok((DcdTrajectory { header, frames }, atom_count_offset))
}
