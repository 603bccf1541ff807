"""The calculator against the CLI's predictions and against finite differences of its own
energy."""

import subprocess

import ase.io
import numpy as np
import pytest
from ase.calculators.calculator import PropertyNotImplementedError

from conftest import CU_DATA, ETHANOL_VALID, REPO, extxyz_frames, fresh_process
from equiformer import EquiformerCalculator


def cu_cell(index=20):
    return ase.io.read(CU_DATA, index=index)


def test_properties_of_a_periodic_cell(cu_run):
    atoms = cu_cell()
    atoms.calc = EquiformerCalculator(cu_run)
    energy = atoms.get_potential_energy()
    assert np.isfinite(energy)
    assert atoms.get_potential_energy(force_consistent=True) == energy
    forces = atoms.get_forces()
    assert forces.shape == (len(atoms), 3) and forces.dtype == np.float64
    # No external force on a periodic cell: the forces sum to zero.
    assert np.abs(forces.sum(axis=0)).max() < 1e-4
    stress = atoms.get_stress()
    assert stress.shape == (6,) and np.isfinite(stress).all()
    full = atoms.get_stress(voigt=False)
    assert np.allclose(full, full.T)


def test_matches_the_cli_prediction(cu_run, cli, tmp_path):
    frames = tmp_path / "frames.extxyz"
    frames.write_text(extxyz_frames(CU_DATA, 100, 5))
    output = tmp_path / "predicted.extxyz"
    subprocess.run(
        cli
        + ["predict", "--checkpoint", str(cu_run), "--input", str(frames)]
        + ["--output", str(output)],
        cwd=REPO,
        check=True,
    )
    calc = EquiformerCalculator(cu_run)
    predicted = ase.io.read(output, index=":")
    assert len(predicted) == 5
    for reference, atoms in zip(predicted, ase.io.read(frames, index=":")):
        atoms.calc = calc
        energy = reference.get_potential_energy()
        assert abs(atoms.get_potential_energy() - energy) < 1e-6
        assert np.abs(atoms.get_forces() - reference.get_forces()).max() < 1e-6
        assert np.abs(atoms.get_stress() - reference.get_stress()).max() < 1e-6


def relative_error(value, reference):
    return np.abs(value - reference).max() / np.abs(reference).max()


@fresh_process
def test_float64_derivatives_match_finite_differences(cu_run):
    atoms = cu_cell()
    calc = EquiformerCalculator(cu_run, precision="float64")
    atoms.calc = calc
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    # Central differences are off by O(d^2) (the tiny model has large third derivatives:
    # 3.7e-6 at d = 1e-4, 3.7e-8 at d = 1e-5); the error falling 100x per 10x in d shows
    # that the analytic derivatives are exact.
    coarse = relative_error(forces, calc.calculate_numerical_forces(atoms, d=1e-4))
    fine = relative_error(forces, calc.calculate_numerical_forces(atoms, d=1e-5))
    assert coarse < 1e-5 and fine < 1e-6 and coarse / fine > 50
    assert relative_error(stress, calc.calculate_numerical_stress(atoms, d=1e-5)) < 1e-6


def test_float32_derivatives_match_finite_differences(cu_run):
    atoms = cu_cell()
    calc = EquiformerCalculator(cu_run)
    atoms.calc = calc
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    # In f32 the energy is exact to about 1e-7 relative: differences of 1e-4 A and 1e-5
    # strain would be mostly rounding (1e-2 and 4e-3 relative error), so the steps with the
    # smallest error (measured 1.7e-3 and 2.5e-4).
    numerical_forces = calc.calculate_numerical_forces(atoms, d=1e-3)
    numerical_stress = calc.calculate_numerical_stress(atoms, d=3e-4)
    assert relative_error(forces, numerical_forces) < 3e-3
    assert relative_error(stress, numerical_stress) < 1e-3


@fresh_process
def test_a_molecule_with_a_molecule_model(ethanol_run):
    atoms = ase.io.read(ETHANOL_VALID, index=10)
    assert not atoms.pbc.any()
    calc = EquiformerCalculator(ethanol_run, precision="float64")
    atoms.calc = calc
    forces = atoms.get_forces()
    assert np.abs(forces.sum(axis=0)).max() < 1e-8
    numerical = calc.calculate_numerical_forces(atoms, d=1e-4)
    assert relative_error(forces, numerical) < 1e-6
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        atoms.get_stress()


def test_a_molecule_matches_the_cli_prediction(ethanol_run, cli, tmp_path):
    frames = tmp_path / "ethanol.extxyz"
    frames.write_text(extxyz_frames(ETHANOL_VALID, 0, 3))
    output = tmp_path / "predicted.extxyz"
    subprocess.run(
        cli
        + ["predict", "--checkpoint", str(ethanol_run), "--input", str(frames)]
        + ["--output", str(output)],
        cwd=REPO,
        check=True,
    )
    calc = EquiformerCalculator(ethanol_run)
    for reference, atoms in zip(ase.io.read(output, index=":"), ase.io.read(frames, index=":")):
        atoms.calc = calc
        assert abs(atoms.get_potential_energy() - reference.get_potential_energy()) < 1e-6
        assert np.abs(atoms.get_forces() - reference.get_forces()).max() < 1e-6


@fresh_process
def test_a_cu_cluster_without_pbc(cu_run):
    atoms = cu_cell()
    atoms.pbc = False
    calc = EquiformerCalculator(cu_run, precision="float64")
    atoms.calc = calc
    forces = atoms.get_forces()
    # O(d^2) differences (measured 2.3e-6 at d = 1e-4).
    numerical = calc.calculate_numerical_forces(atoms, d=1e-4)
    assert relative_error(forces, numerical) < 1e-5
    # Cut out of the crystal, the cluster has another energy than the periodic cell.
    periodic = cu_cell()
    periodic.calc = calc
    assert abs(periodic.get_potential_energy() - atoms.get_potential_energy()) > 1e-3


@fresh_process
def test_rotation_and_translation_leave_the_energy(cu_run):
    atoms = cu_cell()
    calc = EquiformerCalculator(cu_run, precision="float64")
    energy = calc.get_potential_energy(atoms)
    forces = calc.get_forces(atoms)
    moved = atoms.copy()
    moved.rotate(37, "x", rotate_cell=True)
    moved.rotate(-61, "z", rotate_cell=True)
    moved.translate([0.3, -1.2, 2.0])
    assert abs(calc.get_potential_energy(moved) - energy) < 1e-9 * abs(energy)
    rotation = np.linalg.solve(atoms.cell.array, moved.cell.array).T
    assert np.abs(calc.get_forces(moved) - forces @ rotation.T).max() < 1e-9
