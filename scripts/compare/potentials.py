#!/usr/bin/env python3
"""Our interatomic potential against MACE (mace-torch), same data, same epochs, one table.

For each data set (periodic Cu with EMT energies, forces and stress; ethanol with GFN2-xTB
energies and forces) both models are trained on the same training file for the same number of
epochs, validated on the same validation file and tested on a held-out file of other structures
where the data has one. See README.md beside this file for what each number means.

    python scripts/compare/potentials.py --epochs 20 --out docs/potentials_comparison.md
"""

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import ours_side  # noqa: E402
from table import markdown_report  # noqa: E402

DATASETS = {
    "cu": {
        "name": "cu",
        "title": "Cu bulk (EMT)",
        "train": "bulk/cu_emt_train.extxyz",
        "valid": "bulk/cu_emt_valid.extxyz",
        "heldout": "bulk/cu_emt_small_cells.extxyz",
        "heldout_title": "small cells (1 and 4 atoms, strained, rattled)",
        "stress": True,
        "r_max": 5.0,
    },
    "ethanol": {
        "name": "ethanol",
        "title": "ethanol (GFN2-xTB, 500 K MD)",
        "train": "md/ethanol_xtb_train.extxyz",
        "valid": "md/ethanol_xtb_valid.extxyz",
        "heldout": None,
        "heldout_title": "none in data/md (only one 500 K trajectory); pass --ethanol-heldout",
        "stress": False,
        "r_max": 5.0,
    },
}


def arguments(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="cu,ethanol", help="comma-separated subset of: " + ",".join(DATASETS))
    p.add_argument("--data-root", default="data", help="folder holding bulk/ and md/ (relative to the repo; default data)")
    p.add_argument("--cu-heldout", default=None, help="held-out file for Cu relative to --data-root ('none' to skip)")
    p.add_argument("--ethanol-heldout", default=None, help="held-out file for ethanol relative to --data-root")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--energy-weight", type=float, default=1.0)
    p.add_argument("--forces-weight", type=float, default=10.0)
    p.add_argument("--stress-weight", type=float, default=100.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--valid-batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-2, help="MACE's learning rate (MACE's default 1e-2)")
    p.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                   help="MACE's learning-rate schedule over all steps (cosine to lr*--min-lr-factor)")
    p.add_argument("--min-lr-factor", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for MACE")
    p.add_argument("--mace-params", type=int, default=None,
                   help="target parameter count for MACE (default: ours, when ours runs first; else --mace-channels)")
    p.add_argument("--mace-channels", type=int, default=16, help="channels per degree when no target is known")
    p.add_argument("--mace-max-L", type=int, default=1, help="highest degree of MACE's hidden features")
    p.add_argument("--mace-dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--mace-time-budget-min", type=float, default=None,
                   help="stop MACE's training after the epoch that passes this many minutes")
    p.add_argument("--mace-results", default=None,
                   help="folder of saved mace_<dataset>_<epochs>ep.json to reuse instead of training MACE")
    p.add_argument("--ours-results", default=None,
                   help="folder of saved ours_<dataset>_<epochs>ep.json to reuse instead of training ours")
    p.add_argument("--results-dir", default=str((HERE / "results").relative_to(REPO)),
                   help="where fresh results are saved as JSON (relative to the repo)")
    p.add_argument("--ours-config-cu", default="configs/cu_bulk.toml")
    p.add_argument("--ours-config-ethanol", default="configs/ethanol_potential.toml")
    p.add_argument("--ours-eval-args", default="", help="extra arguments for `eval`, e.g. '--forces gradient'")
    p.add_argument("--skip-ours", action="store_true")
    p.add_argument("--skip-mace", action="store_true")
    p.add_argument("--out", default=None, help="also write the Markdown report to this file")
    return p.parse_args(argv)


def log(line):
    print(line, file=sys.stderr, flush=True)


def repo_path(path):
    path = Path(path)
    return path if path.is_absolute() else REPO / path


def dataset_paths(dataset, args):
    root = repo_path(args.data_root)
    override = getattr(args, f"{dataset['name']}_heldout")
    heldout = dataset["heldout"] if override is None else (None if override.lower() == "none" else override)
    if override is not None:
        dataset["heldout_title"] = heldout or "none (--{}-heldout none)".format(dataset["name"])
    paths = {split: root / dataset[split] for split in ("train", "valid")}
    paths["heldout"] = root / heldout if heldout else None
    for split, path in paths.items():
        if path is not None and not path.is_file():
            raise SystemExit(f"error: {dataset['name']} {split} file {path} does not exist (see --data-root)")
    return paths


def versions():
    found = {"python": platform.python_version()}
    for package in ("torch", "mace-torch", "e3nn", "ase", "numpy"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    found["cpus"] = os.cpu_count()
    found["machine"] = f"{platform.system()} {platform.machine()}"
    return found


def mace_missing():
    try:
        import mace  # noqa: F401
        import ase  # noqa: F401
    except ImportError:
        return True
    return False


def saved_mace(args, name):
    path = repo_path(args.mace_results) / f"mace_{name}_{args.epochs}ep.json"
    if path.is_file():
        log(f"[mace {name}] reusing {path}")
        return json.loads(path.read_text(encoding="utf-8"))
    log(f"[mace {name}] no saved results at {path}")
    return None


def save(result, args):
    folder = repo_path(args.results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    # named by the epochs asked for, which is what a later --mace-results run looks up
    path = folder / f"{result['model'].lower()}_{result['dataset']}_{result['epochs_requested']}ep.json"
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    log(f"[{result['model'].lower()} {result['dataset']}] results saved to {path}")


def main(argv):
    args = arguments(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise SystemExit(f"error: unknown data set(s) {unknown}; choose from {list(DATASETS)}")
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0]))] + argv)
    started = time.strftime("%Y-%m-%d %H:%M")
    mace_run = None
    notes = []
    if not args.skip_mace and mace_missing():
        if not args.mace_results:
            print("MACE side skipped: mace-torch is not installed (pip install mace-torch ase)")
            notes.append("MACE side skipped: mace-torch is not installed.")
            args.skip_mace = True
    elif not args.skip_mace:
        import mace_side
        mace_run = mace_side.run

    rows = []
    failures = []
    for name in names:
        dataset = DATASETS[name]
        paths = dataset_paths(dataset, args)
        ours = None
        saved_ours = repo_path(args.ours_results) / f"ours_{name}_{args.epochs}ep.json" if args.ours_results else None
        if saved_ours is not None and saved_ours.is_file():
            log(f"[ours {name}] reusing {saved_ours}")
            ours = json.loads(saved_ours.read_text(encoding="utf-8"))
            rows.append(ours)
        elif not args.skip_ours:
            config = getattr(args, f"ours_config_{name}")
            try:
                ours = ours_side.run(dataset, paths, config, args, REPO, log)
                save(ours, args)
                rows.append(ours)
            except (RuntimeError, OSError) as error:
                failures.append(f"ours on {name}: {error}")
                log(f"[ours {name}] FAILED: {error}")
        if args.skip_mace:
            continue
        mace = saved_mace(args, name) if args.mace_results else None
        if mace is None and mace_run is None:
            print(f"MACE side skipped for {name}: mace-torch is not installed and no saved results were found")
            continue
        if mace is None:
            target = args.mace_params if args.mace_params else (ours or {}).get("parameters")
            mace = mace_run(dataset, paths, argparse.Namespace(**{**vars(args), "mace_params": target}), log)
            mace["command"] = command
            mace["versions"] = versions()
            mace["started"] = started
            save(mace, args)
        rows.append(mace)

    report = markdown_report(rows, DATASETS, command, versions(), args, notes + [f"FAILED: {f}" for f in failures])
    print(report)
    if args.out:
        out = repo_path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report, encoding="utf-8")
        log(f"report written to {out}")
    if failures or not rows:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
