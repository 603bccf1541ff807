"""Trained equiformer-rs interatomic potentials in Python.

- :class:`EquiformerCalculator`: an ASE calculator (energy, free_energy, forces, stress);
- :class:`Potential`: the compiled potential it calls (NumPy arrays in, NumPy arrays out);
- :func:`train`: trains a TOML configuration, as ``equiformer train --config`` does.

Energies, forces and stress are computed in Rust on Burn's CPU backend.
"""

from ._native import Potential, __version__, train
from .calculator import EquiformerCalculator

__all__ = ["EquiformerCalculator", "Potential", "train", "__version__"]
