//! Fortran unformatted records: a length marker, the data, the same marker again.

use super::{Endianness, MarkerSize};
use crate::io::{DcdProblem, IoError};

/// Reads records one after the other, checking their markers.
pub(super) struct RecordReader<'a> {
    bytes: &'a [u8],
    offset: usize,
    pub(super) endianness: Endianness,
    pub(super) marker_size: MarkerSize,
    file: &'a str,
    /// 1-based frame being read, for error messages.
    pub(super) frame: Option<usize>,
}

/// Length of the header record, which starts every DCD file.
const HEADER_LENGTH: u64 = 84;

impl<'a> RecordReader<'a> {
    /// Detects the marker size and byte order from the first marker, which must announce the
    /// 84-byte header record starting with `CORD`.
    pub(super) fn detect(bytes: &'a [u8], file: &'a str) -> Result<Self, IoError> {
        let candidates = [
            (Endianness::Little, MarkerSize::Four),
            (Endianness::Big, MarkerSize::Four),
            (Endianness::Little, MarkerSize::Eight),
            (Endianness::Big, MarkerSize::Eight),
        ];
        let mut reader = Self {
            bytes,
            offset: 0,
            endianness: Endianness::Little,
            marker_size: MarkerSize::Four,
            file,
            frame: None,
        };
        let mut announced = None;
        for (endianness, marker_size) in candidates {
            reader.endianness = endianness;
            reader.marker_size = marker_size;
            if reader.marker_at(0) != Some(HEADER_LENGTH) {
                continue;
            }
            let width = marker_size.bytes();
            let magic = bytes.get(width..width + 4).unwrap_or_default();
            if magic == b"CORD" {
                return Ok(reader);
            }
            announced.get_or_insert(magic);
        }
        let problem = match announced {
            Some(magic) => DcdProblem::NotCord {
                found: String::from_utf8_lossy(magic).into_owned(),
            },
            None => DcdProblem::UnknownMarker,
        };
        Err(reader.error(0, problem))
    }

    /// Byte offset of the next record.
    pub(super) fn offset(&self) -> u64 {
        self.offset as u64
    }

    pub(super) fn at_end(&self) -> bool {
        self.offset >= self.bytes.len()
    }

    pub(super) fn error(&self, offset: u64, problem: DcdProblem) -> IoError {
        IoError::Dcd {
            file: self.file.to_owned(),
            frame: self.frame,
            offset,
            problem,
        }
    }

    fn marker_at(&self, at: usize) -> Option<u64> {
        let width = self.marker_size.bytes();
        let raw = self.bytes.get(at..at.checked_add(width)?)?;
        Some(match (self.marker_size, self.endianness) {
            (MarkerSize::Four, Endianness::Little) => u64::from(u32::from_le_bytes(array(raw)?)),
            (MarkerSize::Four, Endianness::Big) => u64::from(u32::from_be_bytes(array(raw)?)),
            (MarkerSize::Eight, Endianness::Little) => u64::from_le_bytes(array(raw)?),
            (MarkerSize::Eight, Endianness::Big) => u64::from_be_bytes(array(raw)?),
        })
    }

    /// The data of the next record, named `record` in errors.
    pub(super) fn record(&mut self, record: &'static str) -> Result<&'a [u8], IoError> {
        let start = self.offset;
        let width = self.marker_size.bytes();
        let available = (self.bytes.len() - start) as u64;
        let truncated = |needed: u64| DcdProblem::Truncated {
            record,
            needed,
            available,
        };
        let length = self
            .marker_at(start)
            .ok_or_else(|| self.error(start as u64, truncated(width as u64)))?;
        let needed = length.saturating_add(2 * width as u64);
        if needed > available {
            return Err(self.error(start as u64, truncated(needed)));
        }
        // `needed <= available` fits in usize.
        let data_start = start + width;
        let data_end = data_start + length as usize;
        let trailing = self
            .marker_at(data_end)
            .ok_or_else(|| self.error(start as u64, truncated(needed)))?;
        if trailing != length {
            return Err(self.error(
                start as u64,
                DcdProblem::MarkerMismatch {
                    record,
                    leading: length,
                    trailing,
                },
            ));
        }
        self.offset = data_end + width;
        Ok(&self.bytes[data_start..data_end])
    }

    /// The next record, which must be `expected` bytes long.
    pub(super) fn record_of_length(
        &mut self,
        record: &'static str,
        expected: u64,
    ) -> Result<&'a [u8], IoError> {
        let start = self.offset();
        let data = self.record(record)?;
        if data.len() as u64 == expected {
            Ok(data)
        } else {
            let found = data.len() as u64;
            Err(self.error(
                start,
                DcdProblem::RecordLength {
                    record,
                    expected,
                    found,
                },
            ))
        }
    }

    /// The `i32` at byte `at` of record data whose length was checked (0 past its end).
    pub(super) fn i32_at(&self, data: &[u8], at: usize) -> i32 {
        let raw = data.get(at..at + 4).and_then(array).unwrap_or_default();
        match self.endianness {
            Endianness::Little => i32::from_le_bytes(raw),
            Endianness::Big => i32::from_be_bytes(raw),
        }
    }

    /// The `f32` at byte `at` of record data whose length was checked.
    pub(super) fn f32_at(&self, data: &[u8], at: usize) -> f32 {
        f32::from_bits(self.i32_at(data, at) as u32)
    }

    /// The `f64` at byte `at` of record data whose length was checked.
    pub(super) fn f64_at(&self, data: &[u8], at: usize) -> f64 {
        let raw = data.get(at..at + 8).and_then(array).unwrap_or_default();
        match self.endianness {
            Endianness::Little => f64::from_le_bytes(raw),
            Endianness::Big => f64::from_be_bytes(raw),
        }
    }
}

fn array<const N: usize>(raw: &[u8]) -> Option<[u8; N]> {
    raw.try_into().ok()
}
