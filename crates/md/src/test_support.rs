//! Analytic force fields and structures for the tests: Lennard-Jones, harmonic wells, fcc
//! crystals, the 13-atom icosahedron, and block averaging.

use atoms::Cell;

use crate::force_field::{Evaluation, ForceField, ForceFieldError};
use crate::neighbors::NeighborList;
use crate::state::State;

/// Argon's Lennard-Jones parameters: epsilon in eV (119.8 K), sigma in A.
pub(crate) const ARGON_EPSILON: f64 = 0.010_323;
pub(crate) const ARGON_SIGMA: f64 = 3.405;

/// `E = sum_{i<j} 4 eps ((sigma/r)^12 - (sigma/r)^6) - shift` over pairs closer than the
/// cutoff, with `shift` the pair energy at the cutoff (energy-shifted) or zero.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LennardJones {
    epsilon: f64,
    sigma: f64,
    cutoff: f64,
    shift: f64,
}

impl LennardJones {
    /// Shifted so that the pair energy is zero at the cutoff (the force jumps there).
    pub(crate) fn shifted(epsilon: f64, sigma: f64, cutoff: f64) -> Self {
        let plain = Self::unshifted(epsilon, sigma, cutoff);
        Self {
            shift: plain.pair(cutoff).0,
            ..plain
        }
    }

    /// The plain potential, cut at `cutoff` (for clusters smaller than it, exact).
    pub(crate) fn unshifted(epsilon: f64, sigma: f64, cutoff: f64) -> Self {
        Self {
            epsilon,
            sigma,
            cutoff,
            shift: 0.0,
        }
    }

    /// The pair energy (eV) and its derivative `dE/dr` (eV/A) at distance `r`.
    fn pair(&self, r: f64) -> (f64, f64) {
        let s6 = (self.sigma / r).powi(6);
        let energy = 4.0 * self.epsilon * (s6 * s6 - s6) - self.shift;
        let slope = -24.0 * self.epsilon * (2.0 * s6 * s6 - s6) / r;
        (energy, slope)
    }
}

impl ForceField for LennardJones {
    fn cutoff(&self) -> f64 {
        self.cutoff
    }

    fn evaluate(
        &mut self,
        state: &State,
        neighbors: &NeighborList,
    ) -> Result<Evaluation, ForceFieldError> {
        let mut energy = 0.0;
        let mut forces = vec![[0.0; 3]; state.atom_count()];
        // dE/d(strain)_ab = sum over edges of dE/d(r_a) r_b.
        let mut strain_derivative = [[0.0; 3]; 3];
        for edge in neighbors.iter() {
            let r = edge.distance();
            if r >= self.cutoff {
                continue;
            }
            // Every pair is there twice: each direction carries half.
            let (e, slope) = self.pair(r);
            energy += 0.5 * e;
            let gradient = edge.vector.map(|v| 0.5 * slope * v / r); // dE/d(r_ij)
            for c in 0..3 {
                // r_ij = x_j - x_i, F = -dE/dx.
                forces[edge.i][c] += gradient[c];
                forces[edge.j][c] -= gradient[c];
            }
            for (row, g) in strain_derivative.iter_mut().zip(gradient) {
                for (w, r) in row.iter_mut().zip(edge.vector) {
                    *w += g * r;
                }
            }
        }
        let stress = state.volume().map(|volume| {
            let w = strain_derivative;
            [w[0][0], w[1][1], w[2][2], w[1][2], w[0][2], w[0][1]].map(|v| v / volume)
        });
        Ok(Evaluation {
            energy,
            forces,
            stress,
        })
    }
}

/// Independent harmonic wells, `E = k/2 sum_i |x_i - a_i|^2`, ignoring the neighbours.
#[derive(Debug, Clone)]
pub(crate) struct Harmonic {
    /// The spring constant, eV/A^2.
    pub(crate) stiffness: f64,
    /// The well centres `a_i`, `[n][3]` in A.
    pub(crate) anchors: Vec<[f64; 3]>,
}

impl ForceField for Harmonic {
    fn cutoff(&self) -> f64 {
        1.0
    }

    fn evaluate(
        &mut self,
        state: &State,
        _neighbors: &NeighborList,
    ) -> Result<Evaluation, ForceFieldError> {
        let mut energy = 0.0;
        let forces = state
            .positions()
            .iter()
            .zip(&self.anchors)
            .map(|(x, a)| {
                let d: [f64; 3] = std::array::from_fn(|c| x[c] - a[c]);
                energy += 0.5 * self.stiffness * (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
                d.map(|v| -self.stiffness * v)
            })
            .collect();
        Ok(Evaluation {
            energy,
            forces,
            stress: None,
        })
    }
}

/// An fcc crystal of `reps` conventional cubic cells of side `a` (A): positions `[4 n][3]` and
/// the cell.
pub(crate) fn fcc(a: f64, reps: [usize; 3]) -> (Vec<[f64; 3]>, Cell) {
    let basis = [
        [0.0, 0.0, 0.0],
        [0.0, 0.5, 0.5],
        [0.5, 0.0, 0.5],
        [0.5, 0.5, 0.0],
    ];
    let mut positions = Vec::new();
    for i in 0..reps[0] {
        for j in 0..reps[1] {
            for k in 0..reps[2] {
                for b in basis {
                    let corner = [i as f64, j as f64, k as f64];
                    positions.push(std::array::from_fn(|c| a * (corner[c] + b[c])));
                }
            }
        }
    }
    let side = reps.map(|r| a * r as f64);
    let cell = Cell::new([
        [side[0], 0.0, 0.0],
        [0.0, side[1], 0.0],
        [0.0, 0.0, side[2]],
    ])
    .expect("a cubic cell of positive side");
    (positions, cell)
}

/// 32 argon atoms, fcc with lattice constant `a` (A), periodic, at rest.
pub(crate) fn argon_crystal(a: f64) -> State {
    let (positions, cell) = fcc(a, [2, 2, 2]);
    State::new(vec![18; positions.len()], positions)
        .and_then(|s| s.with_cell(Some(cell), [true; 3]))
        .expect("a valid crystal")
}

/// The 13-atom icosahedron: a centre atom and 12 vertices at `radius` (A) from it.
pub(crate) fn icosahedron(radius: f64) -> Vec<[f64; 3]> {
    let phi = 0.5 * (1.0 + 5.0f64.sqrt());
    let scale = radius / (1.0 + phi * phi).sqrt();
    let mut positions = vec![[0.0; 3]];
    for a in [-1.0, 1.0] {
        for b in [-phi, phi] {
            // The cyclic permutations of (0, +-1, +-phi).
            for v in [[0.0, a, b], [a, b, 0.0], [b, 0.0, a]] {
                positions.push(v.map(|x| scale * x));
            }
        }
    }
    positions
}

/// The mean of `samples` and its standard error from `blocks` block averages (blocks much
/// longer than the correlation time give an honest error for correlated samples).
pub(crate) fn block_mean_and_error(samples: &[f64], blocks: usize) -> (f64, f64) {
    let length = samples.len() / blocks;
    let means: Vec<f64> = samples
        .chunks_exact(length)
        .take(blocks)
        .map(|block| block.iter().sum::<f64>() / length as f64)
        .collect();
    let mean = means.iter().sum::<f64>() / blocks as f64;
    let variance = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (blocks as f64 - 1.0);
    (mean, (variance / blocks as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A shaken argon crystal in a slightly sheared cell, so that no symmetry hides an error.
    fn shaken_argon() -> State {
        let (positions, _) = fcc(5.3, [2, 2, 2]);
        let cell = Cell::new([[10.6, 0.0, 0.0], [0.4, 10.5, 0.0], [-0.3, 0.2, 10.7]]).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let positions = positions
            .into_iter()
            .map(|x| x.map(|v| v + rng.random_range(-0.2..0.2)))
            .collect();
        State::new(vec![18; 32], positions)
            .unwrap()
            .with_cell(Some(cell), [true; 3])
            .unwrap()
    }

    fn energy(potential: &mut LennardJones, state: &State) -> f64 {
        let neighbors = NeighborList::new(state, potential.cutoff()).unwrap();
        potential.evaluate(state, &neighbors).unwrap().energy
    }

    #[test]
    fn lennard_jones_forces_are_minus_the_energy_gradient() {
        let mut potential = LennardJones::shifted(ARGON_EPSILON, ARGON_SIGMA, 8.0);
        let state = shaken_argon();
        let neighbors = NeighborList::new(&state, 8.0).unwrap();
        let forces = potential.evaluate(&state, &neighbors).unwrap().forces;
        let h = 1e-5;
        let mut worst: f64 = 0.0;
        for atom in [0, 7, 31] {
            for (c, force) in forces[atom].iter().enumerate() {
                let mut moved = state.clone();
                moved.positions_mut()[atom][c] += h;
                let up = energy(&mut potential, &moved);
                moved.positions_mut()[atom][c] -= 2.0 * h;
                let down = energy(&mut potential, &moved);
                worst = worst.max((force + (up - down) / (2.0 * h)).abs());
            }
        }
        // Central differences: O(h^2) truncation and ~1e-16 E / h of rounding, both < 1e-9.
        assert!(worst < 1e-8, "largest force error {worst:e} eV/A");
        let total: [f64; 3] = std::array::from_fn(|c| forces.iter().map(|f| f[c]).sum());
        assert!(total.iter().all(|f| f.abs() < 1e-14));
    }

    #[test]
    fn lennard_jones_stress_is_the_strain_derivative_over_the_volume() {
        let mut potential = LennardJones::shifted(ARGON_EPSILON, ARGON_SIGMA, 8.0);
        let state = shaken_argon();
        let neighbors = NeighborList::new(&state, 8.0).unwrap();
        let stress = potential
            .evaluate(&state, &neighbors)
            .unwrap()
            .stress
            .unwrap();
        let volume = state.volume().unwrap();
        let h = 1e-6;
        // Voigt order xx yy zz yz xz xy; a shear component is strained symmetrically.
        let voigt = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)];
        for (k, &(a, b)) in voigt.iter().enumerate() {
            let strained = |amount: f64| {
                let mut strain = [[0.0; 3]; 3];
                strain[a][b] += 0.5 * amount;
                strain[b][a] += 0.5 * amount;
                let deform = |x: [f64; 3]| -> [f64; 3] {
                    std::array::from_fn(|r| x[r] + (0..3).map(|s| strain[r][s] * x[s]).sum::<f64>())
                };
                let cell = Cell::new(state.cell().unwrap().rows().map(deform)).unwrap();
                let positions = state.positions().iter().map(|&x| deform(x)).collect();
                let mut moved = state.clone().with_cell(Some(cell), [true; 3]).unwrap();
                moved.set_positions(positions).unwrap();
                moved
            };
            let up = energy(&mut potential, &strained(h));
            let down = energy(&mut potential, &strained(-h));
            let expected = (up - down) / (2.0 * h) / volume;
            assert!(
                (stress[k] - expected).abs() < 1e-9,
                "component {k}: {} vs {expected}",
                stress[k]
            );
        }
    }

    #[test]
    fn the_icosahedron_has_twelve_equidistant_vertices() {
        let positions = icosahedron(1.5);
        assert_eq!(positions.len(), 13);
        for x in &positions[1..] {
            let r = (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]).sqrt();
            assert!((r - 1.5).abs() < 1e-12);
        }
    }
}
