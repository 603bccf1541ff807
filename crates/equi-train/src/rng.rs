//! Deterministic, counter-derived random numbers for shuffling, cropping and noise.
//!
//! Every random draw of a run comes from a stream derived from the run's seed and a position
//! (`[stream, epoch, batch]`), never from a generator that carries state across steps. The
//! "random state" of a run is therefore its seed plus its progress counters, which checkpoints
//! store; a resumed run draws exactly the numbers an uninterrupted one would. The generator is
//! SplitMix64 (Steele, Lea and Flood, 2014), fixed here so that checkpoints keep their meaning
//! across versions of any dependency.

/// Streams of random numbers used by the training loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The order of the training samples in an epoch.
    Shuffle = 1,
    /// Crops and noise of one training batch.
    Batch = 2,
    /// Fixed crops and noise of the validation samples.
    Validation = 3,
    /// The train/validation split of a single data set.
    Split = 4,
    /// The seed handed to the backend (dropout) before each step.
    Backend = 5,
}

/// A SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The generator of `stream` at `position` (e.g. `[epoch, batch]`) of the run seeded `seed`.
    pub fn derive(seed: u64, stream: Stream, position: &[u64]) -> Self {
        let mut state = mix(seed ^ (stream as u64).wrapping_mul(GOLDEN_GAMMA));
        for &index in position {
            state = mix(state ^ mix(index.wrapping_add(GOLDEN_GAMMA)));
        }
        Self { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// A uniform number in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal number (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A uniform integer in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let value = self.next_u64();
            if value < zone {
                return (value % n) as usize;
            }
        }
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// A random permutation of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        self.shuffle(&mut order);
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| Rng::derive(7, Stream::Batch, &[2, 3]).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let b = Rng::derive(7, Stream::Batch, &[3, 2]).next_u64();
        let c = Rng::derive(7, Stream::Shuffle, &[2, 3]).next_u64();
        let d = Rng::derive(8, Stream::Batch, &[2, 3]).next_u64();
        assert!(a[0] != b && a[0] != c && a[0] != d && b != c);
    }

    #[test]
    fn uniform_normal_and_permutations() {
        let mut rng = Rng::new(1);
        let n = 20_000;
        let normals: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = normals.iter().sum::<f64>() / n as f64;
        let var = normals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        assert!((0..1000).all(|_| (0.0..1.0).contains(&rng.uniform())));
        let mut order = rng.permutation(50);
        assert_ne!(order, (0..50).collect::<Vec<_>>());
        order.sort_unstable();
        assert_eq!(order, (0..50).collect::<Vec<_>>());
    }
}
