#!/usr/bin/env bash
# The Python package: lints of its Rust crate, then a build from source with pip in a fresh
# virtual environment (maturin, ase, pytest and numpy from PyPI), then its tests. The tests
# train tiny potentials and build the `equiformer` CLI (release) to compare predictions.
set -euo pipefail
cd "$(dirname "$0")"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/equiformer-rs/target}"
export CARGO_TERM_COLOR=never
venv="${EQUIFORMER_PY_VENV:-$CARGO_TARGET_DIR/python-venv}"

echo "== python venv $venv"
python3 -m venv --clear "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet maturin ase pytest numpy

echo "== cargo fmt --check, cargo clippy (python/)"
cargo fmt --manifest-path Cargo.toml --check
PYO3_PYTHON="$venv/bin/python" cargo clippy --manifest-path Cargo.toml --locked -- -D warnings

echo "== pip install ./python"
started=$(date +%s)
"$venv/bin/python" -m pip install --quiet .
echo "built and installed in $(( $(date +%s) - started )) s"

echo "== pytest python/tests"
# Not `python -m pytest`: that would import ./equiformer (no compiled module) first.
"$venv/bin/pytest" -q -rs tests
