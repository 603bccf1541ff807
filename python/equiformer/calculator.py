"""The ASE calculator of a trained equiformer-rs potential."""

import os

import numpy as np
from ase.calculators.calculator import (
    Calculator,
    PropertyNotImplementedError,
    all_changes,
)
from ase.stress import full_3x3_to_voigt_6_stress

from ._native import Potential


class EquiformerCalculator(Calculator):
    """Energy, forces and stress of a trained ``energy_forces`` checkpoint with conservative
    forces (``forces = "conservative"``).

    ``checkpoint`` is a ``.ckpt`` file or a run folder (its latest checkpoint). ``precision``
    is ``"float32"`` (as in training and ``equiformer predict``) or ``"float64"`` (the same
    weights in double precision: smoother energies for finite differences and long MD).

    Units are ASE's: eV, Angstrom, eV/Angstrom, eV/Angstrom^3. Forces are ``-dE/dx``; the
    stress, for atoms with a periodic axis, is ``(1/V) dE/d(strain)`` in Voigt order
    ``xx, yy, zz, yz, xz, xy`` (ASE's sign: negative under compression). Atoms without a
    periodic axis are a molecule: their cell is not read and they have no stress.

    Inputs the potential cannot take (bad shapes, non-finite positions, elements it was not
    trained on, a periodic axis without a usable cell) raise ``ValueError``.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, checkpoint, precision="float32", **kwargs):
        Calculator.__init__(self, **kwargs)
        self.potential = Potential(os.fspath(checkpoint), precision)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        atoms = self.atoms
        pbc = np.asarray(atoms.pbc, dtype=bool)
        if "stress" in properties and not pbc.any():
            raise PropertyNotImplementedError(
                "stress is defined for periodic atoms only (atoms.pbc is all False)"
            )
        # Already of these types in ASE's Atoms: np.asarray returns the arrays themselves.
        energy, forces, stress = self.potential.compute(
            np.asarray(atoms.numbers, dtype=np.int64),
            np.asarray(atoms.positions, dtype=np.float64),
            np.asarray(atoms.cell.array, dtype=np.float64),
            pbc,
        )
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}
        if stress is not None:
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress)
