"""Time `atoms::neighbor_list` against ASE's and matscipy's neighbour lists in one run.

The structures are those of `crates/atoms/benches/neighbors.rs`: fcc Cu (a = 3.61 A)
conventional cells repeated n x n x n in ASE's order (n = 3, 6, 14, 29, 63: 108 to 1,000,188
atoms), every coordinate moved by (u - 0.5) * 0.1 A with u from splitmix64 seeded with 2024,
periodic, cutoff 5 A. The positions are built with the same floating-point operations as the
Rust bench, so all three lists see the same atoms and their edge counts are compared.

Each side is timed as the median wall time of repetitions filling about a second (at least
3), single-threaded: ours is `cargo bench -p atoms --bench neighbors -- --json` run as a
subprocess (or a prebuilt binary, `--rust-bin`), ASE's is
`ase.neighborlist.neighbor_list("ijS", atoms, 5.0)` and matscipy's
`matscipy.neighbours.neighbour_list("ijS", atoms, 5.0)`. A missing package is skipped with a
message; ASE is not run above `--ase-max-atoms` (it needs minutes there). Prints a markdown
table with the time ratios ASE/ours and matscipy/ours.

Run from the repository root (needs `numpy`, and `ase` and `matscipy` for their columns):

    python scripts/atoms/bench_neighbors.py [--max-atoms N] [--ase-max-atoms N] [--rust-bin PATH]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

A_CU = 3.61
CUTOFF = 5.0
REPEATS = (3, 6, 14, 29, 63)
SEED = 2024
BASIS = np.array([[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])

GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64_units(seed, count):
    """The first `count` draws of splitmix64 from `seed` as floats in [0, 1), as the bench's
    `SplitMix64::next_unit`."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(1, count + 1, dtype=np.uint64) * GAMMA
        z = (z ^ (z >> np.uint64(30))) * MIX1
        z = (z ^ (z >> np.uint64(27))) * MIX2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def supercell(n):
    """The rattled n x n x n supercell: (side of the cubic cell, positions)."""
    index = np.stack(np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij"), axis=-1)
    origin = index.reshape(-1, 1, 3).astype(np.float64) * A_CU
    positions = (origin + BASIS * A_CU).reshape(-1, 3)
    positions = positions + (splitmix64_units(SEED, positions.size).reshape(-1, 3) - 0.5) * 0.1
    return A_CU * n, positions


def median_time(function):
    """(result of the last call, median seconds, repetitions) over repetitions filling about a
    second, at least 3. A result is freed outside the timed call, as in the Rust bench."""
    times = []
    started = time.perf_counter()
    result = None
    while len(times) < 3 or (time.perf_counter() - started < 1.0 and len(times) < 200):
        result = None
        t = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - t)
    return result, statistics.median(times), len(times)


def rust_times(max_atoms, rust_bin):
    """Per atom count: (edges, median seconds) of `atoms::neighbor_list`, from the bench."""
    if rust_bin:
        command = [rust_bin, "--json", "--max-atoms", str(max_atoms)]
    else:
        command = ["cargo", "bench", "-p", "atoms", "--bench", "neighbors", "--",
                   "--json", "--max-atoms", str(max_atoms)]
    print("running: " + " ".join(command), file=sys.stderr, flush=True)
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {row["atoms"]: (row["edges"], row["seconds"]) for row in rows}


def optional_lists():
    """The available Python neighbour lists: name -> function(atoms) -> (i, j, S)."""
    lists = {}
    try:
        from ase.neighborlist import neighbor_list

        lists["ASE"] = lambda atoms: neighbor_list("ijS", atoms, CUTOFF)
    except ImportError as error:
        print(f"ASE skipped: {error}", file=sys.stderr)
    try:
        from matscipy.neighbours import neighbour_list

        lists["matscipy"] = lambda atoms: neighbour_list("ijS", atoms, CUTOFF)
    except ImportError as error:
        print(f"matscipy skipped: {error}", file=sys.stderr)
    return lists


def processor():
    """The CPU model, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions():
    parts = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    for module in ("ase", "matscipy"):
        try:
            parts.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            pass
    return ", ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-atoms", type=int, default=1_100_000)
    parser.add_argument("--ase-max-atoms", type=int, default=100_000,
                        help="largest structure ASE is run on (default 100000)")
    parser.add_argument("--rust-bin", help="a prebuilt bench binary instead of `cargo bench`")
    args = parser.parse_args()

    ours = rust_times(args.max_atoms, args.rust_bin)
    lists = optional_lists()
    try:
        from ase import Atoms
    except ImportError:
        lists = {}

    rows = []
    for n in REPEATS:
        atoms_count = 4 * n**3
        if atoms_count > args.max_atoms:
            break
        edges, seconds = ours[atoms_count]
        row = {"atoms": atoms_count, "edges": edges, "ours": seconds}
        side, positions = supercell(n)
        if lists:
            atoms = Atoms(f"Cu{atoms_count}", positions=positions,
                          cell=np.diag([side] * 3), pbc=True)
        for name, function in lists.items():
            if name == "ASE" and atoms_count > args.ase_max_atoms:
                row[name] = None
                continue
            result, median, reps = median_time(lambda: function(atoms))
            count = len(result[0])
            del result
            if count != edges:
                print(f"{name} finds {count} edges for {atoms_count} atoms, ours {edges}",
                      file=sys.stderr)
            row[name] = median
            print(f"{atoms_count} atoms: {name} {median:.4g} s ({reps} reps)",
                  file=sys.stderr, flush=True)
        rows.append(row)

    print(f"{os.cpu_count()} cores ({processor()}), "
          f"single-threaded; {versions()}")
    print()
    print("| atoms | edges | ours s | ASE s | matscipy s | ASE/ours | matscipy/ours |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        cells = [f"{row['atoms']:,}", f"{row['edges']:,}", f"{row['ours']:.4g}"]
        ratios = []
        for name in ("ASE", "matscipy"):
            if name not in lists:
                cells.append("not installed")
                ratios.append("-")
            elif row[name] is None:
                cells.append(f"not run (> {args.ase_max_atoms:,} atoms)")
                ratios.append("-")
            else:
                cells.append(f"{row[name]:.4g}")
                ratios.append(f"{row[name] / row['ours']:.2f}")
        print("| " + " | ".join(cells + ratios) + " |")


if __name__ == "__main__":
    main()
