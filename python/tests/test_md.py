"""A few steps of ASE molecular dynamics on the calculator."""

import ase.io
import numpy as np
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

from conftest import CU_DATA, fresh_process
from equiformer import EquiformerCalculator


@fresh_process
def test_velocity_verlet(cu_run):
    atoms = ase.io.read(CU_DATA, index=0)
    atoms.calc = EquiformerCalculator(cu_run, precision="float64")
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    start = atoms.get_positions()
    total = [atoms.get_total_energy()]
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dynamics.attach(lambda: total.append(atoms.get_total_energy()), interval=1)
    dynamics.run(10)
    assert dynamics.nsteps == 10
    assert np.abs(atoms.get_positions() - start).max() > 1e-3
    assert np.isfinite(total).all()
    # NVE with a 1 fs step conserves the total energy of 32 atoms to well below 10 meV.
    assert max(total) - min(total) < 1e-2
