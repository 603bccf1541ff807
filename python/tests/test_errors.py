"""Inputs the potential cannot take raise Python exceptions with a clear message."""

import ase.io
import numpy as np
import pytest
from ase import Atoms

from conftest import CU_DATA
from equiformer import EquiformerCalculator, Potential


@pytest.fixture(scope="module")
def potential(cu_run):
    return Potential(str(cu_run))


def cell_arrays():
    atoms = ase.io.read(CU_DATA, index=0)
    return (
        atoms.numbers.astype(np.int64),
        atoms.positions.copy(),
        atoms.cell.array.copy(),
        np.array([True, True, True]),
    )


def test_the_arrays_are_accepted(potential):
    energy, forces, stress = potential.compute(*cell_arrays())
    assert np.isfinite(energy) and forces.shape == (32, 3) and stress.shape == (3, 3)
    # Strided views are read as they are.
    numbers, positions, cell, pbc = cell_arrays()
    wide = np.zeros((32, 6))
    wide[:, ::2] = positions
    assert potential.compute(numbers, wide[:, ::2], cell, pbc)[0] == energy
    assert potential.compute(numbers, np.asfortranarray(positions), cell, pbc)[0] == energy


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: (a[0], a[1][:, :2], a[2], a[3]), r"positions must have shape \(n, 3\)"),
        (lambda a: (a[0], a[1].ravel(), a[2], a[3]), r"positions must have shape \(n, 3\)"),
        (lambda a: (a[0][:5], a[1], a[2], a[3]), r"numbers must have shape \(32,\)"),
        (lambda a: (a[0][:0], a[1][:0], a[2], a[3]), "no atoms"),
        (lambda a: (a[0], a[1], a[2][:2], a[3]), r"cell must have shape \(3, 3\)"),
        (lambda a: (a[0], a[1], a[2], a[3][:2]), r"pbc must have shape \(3,\)"),
        (lambda a: (a[0], a[1], np.zeros((3, 3)), a[3]), "cell .* is unusable"),
        (lambda a: (a[0], a[1], a[2] * np.nan, a[3]), "cell .* is unusable"),
    ],
)
def test_bad_shapes_and_cells(potential, change, message):
    with pytest.raises(ValueError, match=message):
        potential.compute(*change(cell_arrays()))


def test_non_finite_positions(potential):
    numbers, positions, cell, pbc = cell_arrays()
    positions[7, 1] = np.nan
    with pytest.raises(ValueError, match="position of atom 7 is not finite"):
        potential.compute(numbers, positions, cell, pbc)
    positions[7, 1] = np.inf
    with pytest.raises(ValueError, match="position of atom 7 is not finite"):
        potential.compute(numbers, positions, cell, pbc)


@pytest.mark.parametrize(
    "z, message",
    [
        (8, r"atom 3 is O \(Z = 8\), an element the model was not trained on \(it knows Cu\)"),
        (0, "atom 3 has atomic number 0, which is no element"),
        (300, "atom 3 has atomic number 300, which is no element"),
        (-1, "atom 3 has atomic number -1, which is no element"),
    ],
)
def test_unknown_elements(potential, z, message):
    numbers, positions, cell, pbc = cell_arrays()
    numbers[3] = z
    with pytest.raises(ValueError, match=message):
        potential.compute(numbers, positions, cell, pbc)


def test_coincident_atoms(potential):
    numbers, positions, cell, pbc = cell_arrays()
    positions[1] = positions[0]
    with pytest.raises(ValueError):
        potential.compute(numbers, positions, cell, pbc)


def test_wrong_dtypes_are_type_errors(potential):
    numbers, positions, cell, pbc = cell_arrays()
    with pytest.raises(TypeError):
        potential.compute(numbers, positions.astype(np.float32), cell, pbc)


def test_through_the_calculator(cu_run):
    calc = EquiformerCalculator(cu_run)
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    with pytest.raises(ValueError, match="not trained on"):
        calc.get_potential_energy(water)
    slab = ase.io.read(CU_DATA, index=0)
    slab.cell = np.zeros((3, 3))
    with pytest.raises(ValueError, match="unusable"):
        calc.get_potential_energy(slab)
    # The calculator still works after an error.
    assert np.isfinite(calc.get_potential_energy(ase.io.read(CU_DATA, index=0)))


def test_bad_checkpoints(cu_run, tmp_path):
    with pytest.raises(ValueError, match="no such file or folder"):
        Potential(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no checkpoint files"):
        Potential(str(tmp_path))
    broken = tmp_path / "step-1.ckpt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError):
        Potential(str(broken))
    with pytest.raises(ValueError, match="precision must be"):
        Potential(str(cu_run), "float16")


def test_one_precision_per_process(cu_run):
    # Training (float32) came first in this process.
    with pytest.raises(ValueError, match="already computes in float32"):
        Potential(str(cu_run), "float64")


def test_attributes(cu_run):
    potential = Potential(str(cu_run))
    assert potential.elements == [29]
    assert potential.cutoff == 4.0
    assert potential.model == "equiformer"
    assert potential.precision == "float32"
    assert potential.checkpoint.suffix == ".ckpt"
