//! Standard atomic masses by atomic number.

/// The heaviest element [`atomic_mass`] knows: plutonium.
pub const MAX_ATOMIC_NUMBER: u8 = 94;

/// Masses in amu, index `z - 1`: the IUPAC 2016 standard atomic weights (one conventional value
/// where IUPAC gives an interval, e.g. H 1.008, C 12.011); for elements without a standard
/// weight (Tc, Pm, Po to Ac, Np, Pu) the mass of a long-lived isotope (Tc-98, Pm-145, Po-209,
/// At-210, Rn-222, Fr-223, Ra-226, Ac-227, Np-237, Pu-244).
const MASSES: [f64; MAX_ATOMIC_NUMBER as usize] = [
    1.008,          // H
    4.002_602,      // He
    6.94,           // Li
    9.012_183_1,    // Be
    10.81,          // B
    12.011,         // C
    14.007,         // N
    15.999,         // O
    18.998_403_163, // F
    20.1797,        // Ne
    22.989_769_28,  // Na
    24.305,         // Mg
    26.981_538_5,   // Al
    28.085,         // Si
    30.973_761_998, // P
    32.06,          // S
    35.45,          // Cl
    39.948,         // Ar
    39.0983,        // K
    40.078,         // Ca
    44.955_908,     // Sc
    47.867,         // Ti
    50.9415,        // V
    51.9961,        // Cr
    54.938_044,     // Mn
    55.845,         // Fe
    58.933_194,     // Co
    58.6934,        // Ni
    63.546,         // Cu
    65.38,          // Zn
    69.723,         // Ga
    72.630,         // Ge
    74.921_595,     // As
    78.971,         // Se
    79.904,         // Br
    83.798,         // Kr
    85.4678,        // Rb
    87.62,          // Sr
    88.905_84,      // Y
    91.224,         // Zr
    92.906_37,      // Nb
    95.95,          // Mo
    97.907_21,      // Tc
    101.07,         // Ru
    102.905_50,     // Rh
    106.42,         // Pd
    107.8682,       // Ag
    112.414,        // Cd
    114.818,        // In
    118.710,        // Sn
    121.760,        // Sb
    127.60,         // Te
    126.904_47,     // I
    131.293,        // Xe
    132.905_451_96, // Cs
    137.327,        // Ba
    138.905_47,     // La
    140.116,        // Ce
    140.907_66,     // Pr
    144.242,        // Nd
    144.912_76,     // Pm
    150.36,         // Sm
    151.964,        // Eu
    157.25,         // Gd
    158.925_35,     // Tb
    162.500,        // Dy
    164.930_33,     // Ho
    167.259,        // Er
    168.934_22,     // Tm
    173.054,        // Yb
    174.9668,       // Lu
    178.49,         // Hf
    180.947_88,     // Ta
    183.84,         // W
    186.207,        // Re
    190.23,         // Os
    192.217,        // Ir
    195.084,        // Pt
    196.966_569,    // Au
    200.592,        // Hg
    204.38,         // Tl
    207.2,          // Pb
    208.980_40,     // Bi
    208.982_43,     // Po
    209.987_15,     // At
    222.017_58,     // Rn
    223.019_74,     // Fr
    226.025_41,     // Ra
    227.027_75,     // Ac
    232.0377,       // Th
    231.035_88,     // Pa
    238.028_91,     // U
    237.048_17,     // Np
    244.064_21,     // Pu
];

/// The standard atomic mass of element `z` (1 = H up to 94 = Pu), in amu; `None` outside.
///
/// ```
/// assert_eq!(md::atomic_mass(18), Some(39.948));
/// assert_eq!(md::atomic_mass(0), None);
/// assert_eq!(md::atomic_mass(95), None);
/// assert_eq!(md::atomic_mass(u8::MAX), None);
/// ```
pub fn atomic_mass(z: u8) -> Option<f64> {
    MASSES.get(usize::from(z.checked_sub(1)?)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masses_grow_with_the_atomic_number_except_the_known_inversions() {
        // Ar/K, Co/Ni, Te/I, Th/Pa and U/Np are the inversions of the periodic table
        // (Po/At and Ra/Ac are not: both are isotope masses here, in order).
        let inversions = [(18, 19), (27, 28), (52, 53), (90, 91), (92, 93)];
        for z in 1..MAX_ATOMIC_NUMBER {
            let (light, heavy) = (atomic_mass(z).unwrap(), atomic_mass(z + 1).unwrap());
            assert_eq!(light > heavy, inversions.contains(&(z, z + 1)), "z = {z}");
        }
    }

    #[test]
    fn a_few_familiar_masses() {
        assert_eq!(atomic_mass(1), Some(1.008));
        assert_eq!(atomic_mass(6), Some(12.011));
        assert_eq!(atomic_mass(29), Some(63.546));
        assert_eq!(atomic_mass(79), Some(196.966_569));
        assert_eq!(atomic_mass(94), Some(244.064_21));
    }
}
