//! The unit system, fixed once: energy in eV, length in Angstrom, mass in amu (unified atomic
//! mass units, daltons), time in fs, temperature in K; forces in eV/A, stress and pressure in
//! eV/A^3, velocities in A/fs.
//!
//! These units are not coherent: a mass times a squared velocity, `amu A^2 / fs^2`, is
//! [`AMU_A2_PER_FS2_IN_EV`] (about 103.6427) eV. Every place that mixes masses with energies
//! goes through that one constant:
//!
//! - kinetic energy `K = 1/2 sum_i m_i |v_i|^2 * AMU_A2_PER_FS2_IN_EV` (eV),
//! - acceleration `a_i = F_i / (m_i * AMU_A2_PER_FS2_IN_EV)` (A/fs^2),
//! - thermal velocity variance `k_B T / (m_i * AMU_A2_PER_FS2_IN_EV)` (A^2/fs^2).
//!
//! All constants are derived from the exact SI values of 2019 and CODATA 2018:
//!
//! ```
//! use md::units::{AMU_A2_PER_FS2_IN_EV, BOLTZMANN_EV_PER_K, GPA_PER_EV_PER_A3};
//! // 1 amu A^2/fs^2 = 1.66053906660e-27 kg * 1e-20 m^2 / 1e-30 s^2 = 1.66053906660e-17 J.
//! assert!((AMU_A2_PER_FS2_IN_EV - 103.642_696_6).abs() < 1e-6);
//! assert!((BOLTZMANN_EV_PER_K - 8.617_333_262e-5).abs() < 1e-14);
//! assert!((GPA_PER_EV_PER_A3 - 160.217_663_4).abs() < 1e-9);
//! ```

/// The elementary charge, in C: one eV is this many J (exact since 2019).
pub const ELECTRON_VOLT_J: f64 = 1.602_176_634e-19;

/// The unified atomic mass unit, in kg (CODATA 2018).
pub const AMU_KG: f64 = 1.660_539_066_60e-27;

/// The Boltzmann constant in J/K (exact since 2019).
pub const BOLTZMANN_J_PER_K: f64 = 1.380_649e-23;

/// The Boltzmann constant in eV/K: `k_B = 1.380649e-23 J/K / 1.602176634e-19 J/eV`.
pub const BOLTZMANN_EV_PER_K: f64 = BOLTZMANN_J_PER_K / ELECTRON_VOLT_J;

/// The energy `1 amu * (1 A / 1 fs)^2` in eV:
/// `1.66053906660e-27 kg * 1e-20 m^2 / 1e-30 s^2 / 1.602176634e-19 J/eV`, about 103.6427.
pub const AMU_A2_PER_FS2_IN_EV: f64 = AMU_KG * 1e-20 / 1e-30 / ELECTRON_VOLT_J;

/// One eV/A^3 in GPa: `1.602176634e-19 J / 1e-30 m^3 = 1.602176634e11 Pa`, about 160.2177.
pub const GPA_PER_EV_PER_A3: f64 = ELECTRON_VOLT_J / 1e-30 / 1e9;

/// Femtoseconds per picosecond.
pub const FS_PER_PS: f64 = 1000.0;
