"""Write crates/atoms/tests/fixtures/ase_neighbors.json: ASE's neighbour lists for a set of
structures, against which `crates/atoms/tests/neighbors.rs` checks `atoms::neighbor_list`.

Every case holds the positions (as given, not wrapped), the cell rows (or null), the pbc flags,
the cutoff, and ASE's edges as `[i, j, S0, S1, S2]` sorted lexicographically, with their
distances, from `ase.neighborlist.neighbor_list("ijSd", atoms, cutoff)` (no self-interaction).

Run from the repository root (needs `ase` and `numpy`):

    python scripts/atoms/make_neighbor_fixture.py \
        [--frames ../shared/data/bulk/cu_emt_small_cells.extxyz]
"""

import argparse
import json
from pathlib import Path

import ase
import numpy as np
from ase.build import bulk, fcc111, molecule
from ase.io import read
from ase.neighborlist import neighbor_list

A_CU = 3.61
OUT = Path("crates/atoms/tests/fixtures/ase_neighbors.json")


def case(name, atoms, cutoff):
    i, j, S, d = neighbor_list("ijSd", atoms, cutoff, self_interaction=False)
    order = np.lexsort((S[:, 2], S[:, 1], S[:, 0], j, i))
    edges = np.column_stack([i, j, S])[order]
    cell = atoms.cell.array
    has_cell = bool(abs(np.linalg.det(cell)) > 0)
    return {
        "name": name,
        "positions": atoms.positions.tolist(),
        "cell": cell.tolist() if has_cell else None,
        "pbc": [bool(p) for p in atoms.pbc],
        "cutoff": cutoff,
        "edges": edges.tolist(),
        "distances": d[order].tolist(),
    }


def strained(atoms, strain):
    atoms = atoms.copy()
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + np.asarray(strain)), scale_atoms=True)
    return atoms


def cases(frames_path, rng):
    out = []

    out.append(case("fcc Cu 3x3x3 conventional", bulk("Cu", "fcc", a=A_CU, cubic=True) * (3, 3, 3), 5.0))

    tri = strained(
        bulk("Cu", "fcc", a=A_CU, cubic=True) * (2, 1, 1),
        [[0.03, 0.06, -0.02], [0.01, -0.02, 0.08], [0.05, 0.0, 0.01]],
    )
    tri.rattle(0.05, rng=rng)
    out.append(case("strained triclinic fcc, 8 atoms", tri, 4.5))

    out.append(case("primitive fcc Cu, 1 atom", bulk("Cu", "fcc", a=A_CU), 5.0))

    out.append(case("conventional fcc Cu, 4 atoms, cutoff 6.5", bulk("Cu", "fcc", a=A_CU, cubic=True), 6.5))

    slab = fcc111("Cu", size=(2, 2, 3), a=A_CU, vacuum=6.0)
    slab.rattle(0.05, rng=rng)
    out.append(case("fcc(111) slab, pbc T T F", slab, 5.0))

    wire = bulk("Cu", "fcc", a=A_CU, cubic=True) * (1, 1, 2)
    wire.set_cell([[14.0, 0.0, 0.0], [0.0, 15.0, 0.0], [0.3, -0.2, 2 * A_CU]], scale_atoms=False)
    wire.pbc = [False, False, True]
    wire.rattle(0.05, rng=rng)
    out.append(case("wire, pbc F F T", wire, 4.0))

    cell = np.array([[4.2, 0.1, -0.3], [1.1, 3.9, 0.2], [-0.6, 0.9, 4.4]])
    outside = ase.Atoms("Cu6", scaled_positions=rng.random((6, 3)), cell=cell, pbc=True)
    outside.positions += rng.choice([-1.7, 1.7], size=(6, 3)) @ cell
    out.append(case("atoms outside the cell (+-1.7 lattice vectors)", outside, 4.5))

    mixed = outside.copy()
    mixed.pbc = [True, False, True]
    out.append(case("atoms outside a cell, pbc T F T", mixed, 4.5))

    ethanol = molecule("CH3CH2OH")
    out.append(case("ethanol, no cell", ethanol, 2.5))

    boxed = ethanol.copy()
    boxed.cell = [[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]]
    out.append(case("ethanol in a small cell, pbc F F F", boxed, 2.5))

    left = ase.Atoms(
        "Cu5",
        scaled_positions=rng.random((5, 3)),
        cell=[[0.2, 4.1, 0.0], [3.8, 0.0, 0.4], [0.5, 0.3, 3.6]],
        pbc=True,
    )
    assert np.linalg.det(left.cell.array) < 0
    out.append(case("left-handed cell", left, 4.0))

    skew = ase.Atoms(
        "Cu10",
        scaled_positions=rng.random((10, 3)),
        cell=[[4.0, 0.0, 0.0], [3.6, 2.0, 0.0], [1.0, 1.7, 3.0]],
        pbc=True,
    )
    out.append(case("random atoms in a skewed cell", skew, 4.0))

    pair = ase.Atoms("Cu3", positions=[[0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [2.0, 1.0, 0.3]],
                     cell=[[3.0, 0.0, 0.0], [0.0, 3.2, 0.0], [0.0, 0.0, 3.4]], pbc=True)
    out.append(case("coincident atoms", pair, 3.3))

    frames = read(frames_path, index=":")
    one = next(f for f in frames if len(f) == 1)
    four = next(f for f in frames if len(f) == 4)
    out.append(case(f"{Path(frames_path).name}: first 1-atom frame", one, 5.0))
    out.append(case(f"{Path(frames_path).name}: first 4-atom frame", four, 5.0))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="../shared/data/bulk/cu_emt_small_cells.extxyz")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rng = np.random.default_rng(20240611)
    data = {
        "generator": f"scripts/atoms/make_neighbor_fixture.py, ASE {ase.__version__}, numpy {np.__version__}",
        "cases": cases(args.frames, rng),
    }
    args.out.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    for c in data["cases"]:
        print(f"{len(c['positions']):5d} atoms {len(c['edges']):6d} edges  {c['name']}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
