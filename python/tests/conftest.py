"""Tiny potentials trained once per test session, the `equiformer` command-line tool, and
tests run in a fresh process (for float64: one process computes in one precision)."""

import functools
import os
import sys
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import equiformer

REPO = Path(__file__).resolve().parents[2]
CU_DATA = REPO / "data" / "bulk" / "cu_emt_train.extxyz"
ETHANOL_TRAIN = REPO / "data" / "md" / "ethanol_xtb_train.extxyz"
ETHANOL_VALID = REPO / "data" / "md" / "ethanol_xtb_valid.extxyz"

# Small enough to train in seconds; smooth (dot-product attention, cutoff envelope) so that
# finite differences of the energy are meaningful.
MODEL = """
[model.equiformer]
dim = [8, 4]
num_degrees = 2
heads = 2
dim_head = 4
depth = 1
valid_radius = 4.0
num_neighbors = 64
radial_basis_cutoff = 4.0
attention = "DotProduct"
message_path = "So2"
cutoff_envelope = true
"""

TRAINING = """
[optimizer]
lr = 5e-3

[training]
epochs = 1
batch_size = 4
valid_batch_size = 4
"""


def extxyz_frames(source, first, count):
    """The text of frames ``first .. first + count`` of an extended XYZ file."""
    lines = Path(source).read_text().splitlines(keepends=True)
    frames, at = [], 0
    while at < len(lines) and len(frames) < first + count:
        atoms = int(lines[at])
        frames.append("".join(lines[at : at + atoms + 2]))
        at += atoms + 2
    return "".join(frames[first:])


def train_tiny(tmp_path_factory, name, train_text, valid_text, task):
    """The run folder of a tiny potential ``name`` (given by the parent process of a
    :func:`fresh_process` test, or trained here)."""
    given = os.environ.get(f"EQUIFORMER_TEST_{name.upper()}_RUN")
    if given:
        return Path(given)
    folder = tmp_path_factory.mktemp(name)
    (folder / "train.extxyz").write_text(train_text)
    (folder / "valid.extxyz").write_text(valid_text)
    config = folder / "config.toml"
    config.write_text(
        '[run]\ndir = "run"\nseed = 0\n'
        + MODEL
        + task
        + '\n[data]\ntrain = ["train.extxyz"]\nvalid = ["valid.extxyz"]\n'
        + TRAINING
    )
    started = time.perf_counter()
    checkpoint = equiformer.train(config)
    print(f"trained {name} in {time.perf_counter() - started:.1f} s")
    assert checkpoint is not None and Path(checkpoint).is_file()
    return folder / "run"


@pytest.fixture(scope="session")
def cu_run(tmp_path_factory):
    """Run folder of a Cu potential (energies, forces, stress) trained on 8 EMT cells."""
    return train_tiny(
        tmp_path_factory,
        "cu",
        extxyz_frames(CU_DATA, 0, 8),
        extxyz_frames(CU_DATA, 8, 4),
        """
[task.energy_forces]
forces = "conservative"
energy_weight = 1.0
forces_weight = 10.0
stress_weight = 10.0
baseline = "elements"
""",
    )


@pytest.fixture(scope="session")
def ethanol_run(tmp_path_factory):
    """Run folder of an ethanol potential (energies, forces) trained on 8 frames."""
    return train_tiny(
        tmp_path_factory,
        "ethanol",
        extxyz_frames(ETHANOL_TRAIN, 0, 8),
        extxyz_frames(ETHANOL_VALID, 0, 4),
        """
[task.energy_forces]
forces = "conservative"
energy_weight = 1.0
forces_weight = 10.0
baseline = "elements"
""",
    )


@pytest.fixture(scope="session")
def cli():
    """A command line that runs the `equiformer` program (built once, release)."""
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.skip("cargo is not installed: cannot build the equiformer CLI")
    command = [cargo, "run", "--release", "--quiet", "--"]
    try:
        built = subprocess.run(
            [cargo, "build", "--release", "--quiet"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=float(os.environ.get("EQUIFORMER_CLI_BUILD_TIMEOUT", "3600")),
        )
    except subprocess.TimeoutExpired:
        pytest.skip("building the equiformer CLI took too long")
    if built.returncode != 0:
        pytest.skip(f"the equiformer CLI does not build:\n{built.stderr[-2000:]}")
    return command


def fresh_process(test):
    """Runs ``test`` in a new Python process, with the run folders of the parent's fixtures.

    Burn 0.21 fixes the float type of the CPU device at the first tensor of a process, and
    these tests train (float32) before they build float64 potentials.
    """
    if os.environ.get("EQUIFORMER_TEST_IN_FRESH_PROCESS") == test.__name__:
        return test

    @functools.wraps(test)
    def in_a_child(**fixtures):
        env = dict(os.environ, EQUIFORMER_TEST_IN_FRESH_PROCESS=test.__name__)
        for name, value in fixtures.items():
            if isinstance(value, Path):
                env[f"EQUIFORMER_TEST_{name.upper()}"] = str(value)
        module = Path(sys.modules[test.__module__].__file__)
        child = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
            + [f"{module.name}::{test.__name__}"],
            cwd=module.parent,
            env=env,
            capture_output=True,
            text=True,
        )
        assert child.returncode == 0, child.stdout[-4000:] + child.stderr[-2000:]

    return in_a_child
