"""Our side of the comparison: the `equiformer` CLI through cargo, timed from outside.

The run's configuration is the caller's TOML file with three things changed, so that both
sides see the same data and the same number of epochs: `[training] epochs`, `[run] dir` (a fresh
folder under `runs/compare/`) and `[data] train` / `valid` (the files the MACE side reads). The
changed copy is written next to the original (so that any other relative path in it still
resolves) and removed afterwards.
"""

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from metrics import parse_last_epoch, parse_metric_lines, parse_parameter_count, standard_metrics


def count_xyz_frames(path):
    """Frames of an extended XYZ file (atom-count line, comment line, one line per atom)."""
    frames = 0
    with open(path, encoding="utf-8") as handle:
        while True:
            line = handle.readline()
            if not line.strip():
                return frames
            atoms = int(line.split()[0])
            for _ in range(atoms + 1):
                handle.readline()
            frames += 1


def _set_in_section(text, section, key, value):
    """`key = value` inside `[section]` of a TOML text (replacing a one- or multi-line value,
    or adding the key, or the section, when absent)."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*" + re.escape(section) + r"\s*\]\s*(#.*)?$")
    any_header = re.compile(r"^\s*\[")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return text.rstrip("\n") + f"\n\n[{section}]\n{key} = {value}\n"
    end = next((i for i in range(start + 1, len(lines)) if any_header.match(lines[i])), len(lines))
    assignment = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    for i in range(start + 1, end):
        if assignment.match(lines[i]):
            last = i
            rest = lines[i].split("=", 1)[1].split("#", 1)[0]
            depth = rest.count("[") - rest.count("]")
            while depth > 0 and last + 1 < end:
                last += 1
                depth += lines[last].count("[") - lines[last].count("]")
            lines[i:last + 1] = [f"{key} = {value}"]
            return "\n".join(lines) + "\n"
    lines.insert(start + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def derived_config(text, epochs, run_dir, train, valid):
    text = _set_in_section(text, "training", "epochs", str(epochs))
    text = _set_in_section(text, "run", "dir", json.dumps(str(run_dir)))
    text = _set_in_section(text, "data", "train", json.dumps([str(train)]))
    return _set_in_section(text, "data", "valid", json.dumps([str(valid)]))


def _run(command, cwd, log_path):
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log_path.write_text(
        f"$ {' '.join(command)}\n# exit {completed.returncode}, {seconds:.1f} s\n"
        f"## stdout\n{completed.stdout}\n## stderr\n{completed.stderr}\n",
        encoding="utf-8",
    )
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"`{' '.join(command)}` failed (exit {completed.returncode}); log {log_path}\n{tail}")
    return completed.stdout, completed.stderr, seconds


def run(dataset, paths, config, args, repo, log):
    """Train with our CLI on the same files and epochs, evaluate on valid and held-out."""
    config = (repo / config).resolve()
    if not config.is_file():
        raise RuntimeError(f"our config {config} does not exist (pass --ours-config-{dataset['name']})")
    work = repo / "runs" / "compare"
    work.mkdir(parents=True, exist_ok=True)
    run_dir = work / dataset["name"]
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cargo = ["cargo", "run", "--release", "--quiet", "--"]

    log(f"[ours {dataset['name']}] building (cargo build --release; not timed)")
    _run(["cargo", "build", "--release", "--quiet"], repo, work / "build.log")

    copy = config.with_name(f".{config.stem}.compare.toml")
    copy.write_text(
        derived_config(config.read_text(encoding="utf-8"), args.epochs, run_dir, paths["train"], paths["valid"]),
        encoding="utf-8",
    )
    try:
        log(f"[ours {dataset['name']}] training {args.epochs} epochs with {config.relative_to(repo)}")
        out, err, train_s = _run(cargo + ["train", "--config", str(copy)], repo, work / f"{dataset['name']}_train.log")
    finally:
        copy.unlink(missing_ok=True)
    text = out + "\n" + err
    result = {
        "dataset": dataset["name"],
        "model": "ours",
        "config": str(config.relative_to(repo)),
        "epochs_requested": args.epochs,
        "epochs_done": args.epochs,
        "parameters": parse_parameter_count(text),
        "train_wall_s": train_s,
        "s_per_epoch": train_s / args.epochs,
        "s_per_epoch_note": "wall time of `cargo run --release -- train` divided by the epochs; nothing subtracted "
                            "(includes process start-up, data loading, neighbour lists, per-epoch validation and checkpoints)",
        "files": {k: str(v) if v else None for k, v in paths.items()},
    }
    last = parse_last_epoch(out)
    if last:
        result["epochs_done"] = last[0]
        result["in_loop_s_per_epoch"] = last[2] / last[0]

    extra = args.ours_eval_args.split() if args.ours_eval_args else []
    for split in ("valid", "heldout"):
        if not paths.get(split):
            continue
        command = cargo + ["eval", "--checkpoint", str(run_dir), "--data", str(paths[split])] + extra
        out, err, seconds = _run(command, repo, work / f"{dataset['name']}_eval_{split}.log")
        found = parse_metric_lines(out)
        metrics = standard_metrics(found)
        if "forces_mae_meV_per_A" not in metrics:
            raise RuntimeError(f"no force MAE in the output of `{' '.join(command)}`:\n{out}")
        frames = count_xyz_frames(paths[split])
        result[split] = metrics
        result[f"{split}_all_printed"] = found
        result[f"{split}_structures"] = frames
        if split == "valid":
            result["infer_ms_per_structure"] = 1000.0 * seconds / frames
            result["infer_note"] = ("wall time of `cargo run --release -- eval` on the valid file divided by its "
                                    "structures; includes process start-up, checkpoint and file loading")
    log(f"[ours {dataset['name']}] done: {result.get('parameters')} parameters, {result['s_per_epoch']:.1f} s/epoch")
    return result
