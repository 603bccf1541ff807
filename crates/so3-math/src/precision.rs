//! Constants that must survive rounding to the tensor's float type.
//!
//! Floors such as `clamp_min(1e-24)` before a square root, or the logit given
//! to masked slots, are written for f32/f64. Half precision cannot hold them:
//! `1e-24` rounds to zero in f16 and bf16 alike (zero features then divide
//! 0 by 0), and `-1e9` overflows f16 to `-inf` (an all-masked softmax row then
//! computes `-inf - (-inf)`). These helpers return the constant itself for f32
//! and f64 (so results there do not change) and the nearest safe value in half
//! precision.

use burn::tensor::DType;

/// Smallest positive normal f16 (`2^-14`).
const F16_MIN_POSITIVE: f64 = 6.103_515_625e-5;
/// Smallest positive normal bf16 (`2^-126`, as f32).
const BF16_MIN_POSITIVE: f64 = 1.175_494_350_822_287_5e-38;
/// A large negative f16 (its largest finite is 65504), with room to subtract
/// ordinary logits without overflowing.
const F16_MASKED_LOGIT: f64 = -6.0e4;

/// `floor`, raised to the smallest positive normal number of `dtype` where it
/// would otherwise round to zero or to a subnormal.
///
/// ```
/// use burn::tensor::DType;
/// use so3_math::precision::positive_floor;
///
/// assert_eq!(positive_floor(1e-24, DType::F32), 1e-24);
/// assert!(positive_floor(1e-24, DType::F16) > 6e-5);
/// ```
pub fn positive_floor(floor: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F16 => floor.max(F16_MIN_POSITIVE),
        DType::BF16 => floor.max(BF16_MIN_POSITIVE),
        _ => floor,
    }
}

/// The logit of masked slots of a softmax: `-1e9`, or a finite stand-in
/// where `dtype` cannot hold it.
pub fn masked_logit(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => F16_MASKED_LOGIT,
        _ => -1e9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{bf16, f16};

    #[test]
    fn constants_survive_rounding_to_half_precision() {
        for floor in [1e-24, 1e-12] {
            assert!(f16::from_f64(positive_floor(floor, DType::F16)).to_f64() > 0.0);
            assert!(bf16::from_f64(positive_floor(floor, DType::BF16)).to_f64() > 0.0);
            assert_eq!(positive_floor(floor, DType::F32), floor);
        }
        assert!(f16::from_f64(masked_logit(DType::F16)).is_finite());
        assert!(bf16::from_f64(masked_logit(DType::BF16)).is_finite());
        assert_eq!(masked_logit(DType::F32), -1e9);
    }
}
