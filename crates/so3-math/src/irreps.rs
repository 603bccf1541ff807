//! Feature layouts: how many channels of each degree a tensor holds.
//!
//! An [`Irreps`] value describes a feature vector as a sum of irreducible
//! representations of SO(3) (or O(3) when parities are given), written as a
//! small string language:
//!
//! ```
//! use so3_math::Irreps;
//!
//! let irreps: Irreps = "64x0e + 32x1o + 16x2e".parse()?;
//! assert_eq!(irreps.dim(), 64 + 32 * 3 + 16 * 5);
//! assert_eq!(irreps.lmax(), Some(2));
//! assert_eq!(irreps.to_string(), "64x0e + 32x1o + 16x2e");
//!
//! // Without parities the layout describes SO(3) features only.
//! let so3: Irreps = "4x0 + 4x1 + 2x2".parse()?;
//! assert_eq!(so3.channels_of_degree(1), 4);
//! # Ok::<(), so3_math::IrrepsError>(())
//! ```
//!
//! Within one irrep entry `mul x l`, the `mul * (2l+1)` components are stored
//! channel-major: component `m` of channel `c` sits at `c * (2l+1) + (m + l)`.

use std::fmt;
use std::str::FromStr;

/// Behaviour of a feature under spatial inversion `r -> -r`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Parity {
    /// Unchanged under inversion (written `e`).
    Even,
    /// Sign flips under inversion (written `o`).
    Odd,
}

impl Parity {
    /// The parity of the spherical harmonics of degree `l`: `(-1)^l`.
    pub fn of_spherical_harmonic(l: usize) -> Self {
        if l.is_multiple_of(2) {
            Parity::Even
        } else {
            Parity::Odd
        }
    }

    /// The factor `+1` (even) or `-1` (odd) a feature picks up under inversion.
    pub fn sign(self) -> f64 {
        match self {
            Parity::Even => 1.0,
            Parity::Odd => -1.0,
        }
    }
}

/// One irreducible representation: a degree `l` and, for O(3), a parity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Irrep {
    /// The degree; the representation has dimension `2l + 1`.
    pub l: usize,
    /// The parity, or `None` for a purely rotational (SO(3)) feature.
    pub parity: Option<Parity>,
}

impl Irrep {
    /// Dimension `2l + 1` of the representation.
    pub fn dim(&self) -> usize {
        2 * self.l + 1
    }
}

impl fmt::Display for Irrep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parity {
            None => write!(f, "{}", self.l),
            Some(Parity::Even) => write!(f, "{}e", self.l),
            Some(Parity::Odd) => write!(f, "{}o", self.l),
        }
    }
}

/// `mul` copies (channels) of one irrep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MulIrrep {
    /// Number of channels.
    pub mul: usize,
    /// The representation each channel carries.
    pub irrep: Irrep,
}

impl MulIrrep {
    /// Number of scalar components: `mul * (2l + 1)`.
    pub fn dim(&self) -> usize {
        self.mul * self.irrep.dim()
    }
}

/// An immutable description of a feature layout; see the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Irreps {
    entries: Vec<MulIrrep>,
}

/// Why an irreps string could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid irreps {input:?} at byte {position}: {reason}")]
pub struct IrrepsError {
    /// The whole string that was parsed.
    pub input: String,
    /// Byte offset of the offending term.
    pub position: usize,
    /// What is wrong there.
    pub reason: String,
}

impl Irreps {
    /// A layout from explicit entries; entries with zero channels are kept.
    ///
    /// Fails if some entries carry a parity and others do not.
    pub fn new(entries: Vec<MulIrrep>) -> Result<Self, IrrepsError> {
        let with_parity = entries.iter().filter(|e| e.irrep.parity.is_some()).count();
        if with_parity != 0 && with_parity != entries.len() {
            let input = Irreps {
                entries: entries.clone(),
            }
            .to_string();
            return Err(IrrepsError {
                input,
                position: 0,
                reason: "either every term or no term must give a parity".into(),
            });
        }
        Ok(Irreps { entries })
    }

    /// SO(3) layout with `channels[l]` channels of degree `l`, for `l = 0..channels.len()`.
    ///
    /// ```
    /// let irreps = so3_math::Irreps::from_channels(&[4, 4, 2]);
    /// assert_eq!(irreps.to_string(), "4x0 + 4x1 + 2x2");
    /// ```
    pub fn from_channels(channels: &[usize]) -> Self {
        let entries = channels
            .iter()
            .enumerate()
            .map(|(l, &mul)| MulIrrep {
                mul,
                irrep: Irrep { l, parity: None },
            })
            .collect();
        Irreps { entries }
    }

    /// The entries in order.
    pub fn entries(&self) -> &[MulIrrep] {
        &self.entries
    }

    /// Total number of scalar components.
    pub fn dim(&self) -> usize {
        self.entries.iter().map(MulIrrep::dim).sum()
    }

    /// Total number of channels (irreps counted with multiplicity).
    pub fn num_channels(&self) -> usize {
        self.entries.iter().map(|e| e.mul).sum()
    }

    /// Highest degree present, `None` for an empty layout.
    pub fn lmax(&self) -> Option<usize> {
        self.entries.iter().map(|e| e.irrep.l).max()
    }

    /// Number of channels of degree `l`, summed over entries (and parities).
    pub fn channels_of_degree(&self, l: usize) -> usize {
        self.entries
            .iter()
            .filter(|e| e.irrep.l == l)
            .map(|e| e.mul)
            .sum()
    }

    /// Whether the layout carries parities (describes O(3) rather than SO(3) features).
    pub fn has_parity(&self) -> bool {
        self.entries.iter().any(|e| e.irrep.parity.is_some())
    }
}

impl fmt::Display for Irreps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(" + ")?;
            }
            write!(f, "{}x{}", entry.mul, entry.irrep)?;
        }
        Ok(())
    }
}

impl FromStr for Irreps {
    type Err = IrrepsError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = |position: usize, reason: String| IrrepsError {
            input: input.to_string(),
            position,
            reason,
        };
        if input.trim().is_empty() {
            return Ok(Irreps::default());
        }
        let mut entries = Vec::new();
        let mut offset = 0;
        for term in input.split('+') {
            let position = offset + (term.len() - term.trim_start().len());
            offset += term.len() + 1;
            let term = term.trim();
            if term.is_empty() {
                return Err(error(position, "empty term between '+' signs".into()));
            }
            let (mul, irrep) = match term.split_once('x') {
                Some((mul, irrep)) => {
                    let mul = mul.trim().parse::<usize>().map_err(|_| {
                        error(
                            position,
                            format!("multiplicity {mul:?} is not a non-negative integer"),
                        )
                    })?;
                    (mul, irrep.trim())
                }
                None => (1, term),
            };
            let (degree, parity) = match irrep.chars().last() {
                Some('e') => (&irrep[..irrep.len() - 1], Some(Parity::Even)),
                Some('o') => (&irrep[..irrep.len() - 1], Some(Parity::Odd)),
                Some(c) if c.is_ascii_digit() => (irrep, None),
                _ => {
                    return Err(error(
                        position,
                        format!(
                            "term {term:?} must end in a degree, optionally followed by 'e' or 'o'"
                        ),
                    ))
                }
            };
            let l = degree.parse::<usize>().map_err(|_| {
                error(
                    position,
                    format!("degree {degree:?} is not a non-negative integer"),
                )
            })?;
            entries.push(MulIrrep {
                mul,
                irrep: Irrep { l, parity },
            });
        }
        Irreps::new(entries).map_err(|e| error(0, e.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for text in ["64x0e + 32x1o + 16x2e", "4x0 + 4x1 + 2x2", "1x3o", ""] {
            let irreps: Irreps = text.parse().unwrap();
            assert_eq!(irreps.to_string(), text);
        }
        let short: Irreps = "0e+2x1o".parse().unwrap();
        assert_eq!(short.to_string(), "1x0e + 2x1o");
        assert_eq!(short.dim(), 7);
        assert_eq!(short.num_channels(), 3);
    }

    #[test]
    fn errors_name_the_position_and_the_problem() {
        let err = "4x0e + 3y1o".parse::<Irreps>().unwrap_err();
        assert_eq!(err.position, 7);
        assert!(err.to_string().contains("byte 7"), "{err}");

        let err = "4x0e + + 2x1o".parse::<Irreps>().unwrap_err();
        assert!(err.reason.contains("empty term"), "{err}");

        let err = "-1x0e".parse::<Irreps>().unwrap_err();
        assert!(err.reason.contains("multiplicity"), "{err}");

        let err = "4x1e + 2x2".parse::<Irreps>().unwrap_err();
        assert!(err.reason.contains("parity"), "{err}");

        let err = "4xae".parse::<Irreps>().unwrap_err();
        assert!(err.reason.contains("degree"), "{err}");
    }

    #[test]
    fn counts_channels_per_degree() {
        let irreps: Irreps = "8x0e + 4x1o + 2x1e".parse().unwrap();
        assert_eq!(irreps.channels_of_degree(1), 6);
        assert_eq!(irreps.lmax(), Some(1));
        assert!(irreps.has_parity());
        assert_eq!(Parity::of_spherical_harmonic(3), Parity::Odd);
    }
}
