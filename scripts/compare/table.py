"""The Markdown report: one row per (data set, model), then how the numbers were made."""


def _number(value, digits):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if abs(value) >= 1000 else f"{value:.{digits}f}"


def _row(result, datasets):
    valid = result.get("valid", {})
    heldout = result.get("heldout")
    stress = "-"
    if "stress_mae_meV_per_A3" in valid:
        stress = f"{valid['stress_mae_meV_per_A3']:.3f} ({valid['stress_mae_GPa']:.4f})"
    held_f, ratio = "-", "-"
    if heldout and "forces_mae_meV_per_A" in heldout:
        held_f = _number(heldout["forces_mae_meV_per_A"], 1)
        ratio = f"{heldout['forces_mae_meV_per_A'] / valid['forces_mae_meV_per_A']:.2f}"
    epochs = result.get("epochs_done", result.get("epochs_requested"))
    params = result.get("parameters")
    return "| " + " | ".join([
        datasets[result["dataset"]]["title"],
        result["model"],
        f"{params:,}" if params else "?",
        str(epochs),
        _number(result.get("s_per_epoch"), 1),
        _number(valid.get("energy_mae_meV_per_atom"), 2),
        _number(valid.get("forces_mae_meV_per_A"), 1),
        stress,
        held_f,
        ratio,
        _number(result.get("infer_ms_per_structure"), 2),
    ]) + " |"


def markdown_report(rows, datasets, command, versions, args, notes):
    lines = [
        "# Interatomic potentials: ours against MACE",
        "",
        "| data set | model | params | epochs | s/epoch | valid E MAE (meV/atom) | valid F MAE (meV/A) "
        "| valid stress MAE (meV/A^3 (GPa)) | held-out F MAE (meV/A) | held-out / valid F | inference ms/structure |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [_row(r, datasets) for r in rows]
    lines += ["", "Held-out sets:"]
    for name in dict.fromkeys(r["dataset"] for r in rows):
        lines.append(f"- {datasets[name]['title']}: {datasets[name]['heldout_title']}")
    lines += [
        "",
        "How the numbers were made:",
        "- Metrics: energy MAE per atom (mean over structures of |dE|/atoms); force MAE over all atoms "
        "and Cartesian components; stress MAE over structures and the 9 components of the 3x3 stress "
        "(ASE convention), GPa = 160.21766 x eV/A^3.",
        "- s/epoch, ours: wall time of `cargo run --release -- train` / epochs, nothing subtracted "
        "(start-up, data loading, neighbour lists, per-epoch validation, checkpoints included; the build is run "
        "before and not timed). MACE: training loop plus the per-epoch validation pass; the neighbour lists "
        "are built once beforehand and not counted.",
        "- Inference, ours: wall time of `cargo run --release -- eval` on the validation file / structures, "
        "process start-up and loading included. MACE: batched evaluation of the validation file from ase.Atoms "
        f"(batch {args.valid_batch_size}, neighbour lists included, one warm-up batch untimed); the JSON also "
        "holds the time through mace-torch's ASE calculator, one structure per call.",
        f"- MACE trained in-process with mace-torch's Python API: ScaleShiftMACE as `mace_run_train --model MACE` "
        f"builds it (max_L {args.mace_max_L}, 2 interactions, correlation 3, spherical harmonics up to 3, "
        "8 Bessel functions, radial MLP [64, 64, 64], readout MLP 16x0e, E0s by least squares on the training "
        "set, scale = force RMS); Adam (amsgrad), "
        f"lr {args.lr:g} {args.schedule}, batch {args.batch_size}, loss weights energy {args.energy_weight:g} / "
        f"forces {args.forces_weight:g} / stress {args.stress_weight:g} (per-atom energy MSE, force and stress "
        f"component MSE), torch {args.mace_dtype}, {args.threads} threads, seed {args.seed}.",
        "- Timings come from a shared machine (other jobs, e.g. compilation, may have run at the same time); "
        "compare them as rough ratios.",
    ]
    for r in rows:
        if r.get("epochs_done") != r.get("epochs_requested"):
            why = r.get("epochs_note") or "time budget"
            lines.append(f"- {r['model']} on {r['dataset']}: {r['epochs_done']} of {r['epochs_requested']} epochs ({why}).")
        if r.get("started") and r.get("command") and r["command"] != command:
            lines.append(f"- {r['model']} on {r['dataset']}: reused from a run of {r['started']}: `{r['command']}`")
    lines += [f"- {n}" for n in notes]
    lines += [
        "",
        "Command:",
        "",
        f"    {command}",
        "",
        "Versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in versions.items() if k not in ("cpus", "machine"))
        + f"; {versions['machine']}, {versions['cpus']} CPUs.",
        "",
    ]
    return "\n".join(lines)
