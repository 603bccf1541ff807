"""The MACE side of the comparison: build a small MACE, train it in-process, measure it.

Everything here uses mace-torch's own Python API (data conversion, neighbour lists, the
`ScaleShiftMACE` model that `mace_run_train --model MACE` builds, its weighted
energy/forces/stress loss, its E0 least-squares fit and force-RMS scaling, its ASE calculator);
only the training loop is written out here, so that the epochs, the seed, the threads and the
timing are under this script's control.

Imported only when the MACE side runs: `potentials.py` checks first that mace-torch is installed.
"""

import math
import random
import time

import ase.io
import numpy as np
import torch
from e3nn import o3
from mace import data as mace_data
from mace import modules, tools
from mace.calculators import MACECalculator
from mace.tools import torch_geometric

from metrics import EV_PER_A3_TO_GPA, structure_errors, summarize_errors

HEAD = "Default"


def read_frames(path):
    """ASE frames with their labels copied where MACE's key specification reads them."""
    frames = ase.io.read(path, ":")
    for atoms in frames:
        atoms.info["REF_energy"] = atoms.get_potential_energy()
        atoms.arrays["REF_forces"] = atoms.get_forces()
        if atoms.pbc.all():
            atoms.info["REF_stress"] = atoms.get_stress(voigt=False)
    return frames


def key_specification(with_stress):
    info = {"energy": "REF_energy"}
    if with_stress:
        info["stress"] = "REF_stress"
    return mace_data.KeySpecification(info_keys=info, arrays_keys={"forces": "REF_forces"})


def graphs(frames, keys, z_table, r_max):
    configs = mace_data.config_from_atoms_list(frames, key_specification=keys)
    return configs, [
        mace_data.AtomicData.from_config(c, z_table=z_table, cutoff=r_max, heads=[HEAD])
        for c in configs
    ]


def build_model(settings, channels, z_table, atomic_energies, avg_num_neighbors, scale):
    """The model `mace_run_train --model MACE` builds (ScaleShiftMACE, shift 0, scale = force RMS)."""
    hidden = o3.Irreps(
        " + ".join(f"{channels}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(settings["max_L"] + 1))
    )
    model = modules.ScaleShiftMACE(
        r_max=settings["r_max"],
        num_bessel=settings["num_bessel"],
        num_polynomial_cutoff=settings["num_polynomial_cutoff"],
        max_ell=settings["max_ell"],
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
        num_interactions=settings["num_interactions"],
        num_elements=len(z_table),
        hidden_irreps=hidden,
        MLP_irreps=o3.Irreps(settings["MLP_irreps"]),
        atomic_energies=atomic_energies,
        avg_num_neighbors=avg_num_neighbors,
        atomic_numbers=z_table.zs,
        correlation=settings["correlation"],
        gate=torch.nn.functional.silu,
        radial_MLP=settings["radial_MLP"],
        atomic_inter_scale=scale,
        atomic_inter_shift=0.0,
        heads=[HEAD],
    )
    return model, str(hidden)


def parameter_count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def choose_channels(settings, target, make):
    """Channels per degree whose model has the parameter count closest to `target`."""
    if target is None:
        return settings["channels"]
    counts = {}

    def count(c):
        if c not in counts:
            counts[c] = parameter_count(make(c)[0])
        return counts[c]

    low, high = 2, 256
    while high - low > 1:
        middle = (low + high) // 2
        if count(middle) < target:
            low = middle
        else:
            high = middle
    return min((low, high), key=lambda c: abs(count(c) - target))


def predict(model, batch, with_stress):
    out = model(batch.to_dict(), training=False, compute_force=True, compute_stress=with_stress)
    return {k: out[k].detach() for k in ("energy", "forces", "stress") if out.get(k) is not None}


def evaluate(model, loader, with_stress):
    """Per-structure absolute errors, summarized like the Rust `eval` command's metrics."""
    errors = []
    for batch in loader:
        pred = predict(model, batch, with_stress)
        for g in range(batch.num_graphs):
            lo, hi = int(batch.ptr[g]), int(batch.ptr[g + 1])
            errors.append(
                structure_errors(
                    energy_ref=float(batch.energy[g]),
                    energy_pred=float(pred["energy"][g]),
                    forces_ref=batch.forces[lo:hi].numpy(),
                    forces_pred=pred["forces"][lo:hi].numpy(),
                    stress_ref=batch.stress[g].numpy() if with_stress else None,
                    stress_pred=pred["stress"][g].numpy() if with_stress else None,
                )
            )
    return summarize_errors(errors)


def time_batched_inference(model, frames, keys, z_table, r_max, batch_size, with_stress):
    """Milliseconds per structure from ase.Atoms: neighbour lists, collation, energy, forces
    (and stress), in batches of `batch_size`, after one untimed warm-up batch."""
    _, warm = graphs(frames[:batch_size], keys, z_table, r_max)
    for batch in torch_geometric.dataloader.DataLoader(warm, batch_size=batch_size):
        predict(model, batch, with_stress)
    start = time.perf_counter()
    _, data = graphs(frames, keys, z_table, r_max)
    for batch in torch_geometric.dataloader.DataLoader(data, batch_size=batch_size):
        predict(model, batch, with_stress)
    return 1000.0 * (time.perf_counter() - start) / len(frames)


def time_calculator_inference(model, frames, dtype, with_stress, count=50):
    """Milliseconds per structure through mace-torch's ASE calculator, one structure per call,
    on the first `count` frames, after one untimed warm-up call."""
    calculator = MACECalculator(models=model, device="cpu", default_dtype=dtype)
    frames = [a.copy() for a in frames[:count]]

    def one(atoms):
        atoms.calc = calculator
        atoms.get_forces()
        if with_stress:
            atoms.get_stress()

    one(frames[0].copy())
    start = time.perf_counter()
    for atoms in frames:
        one(atoms)
    return 1000.0 * (time.perf_counter() - start) / len(frames)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epochs_that_fit(requested, done, seconds, budget):
    """Epochs (at least those done, at most those requested) that fit in `budget` seconds at the
    mean pace of the epochs done so far."""
    return max(done, min(requested, int(budget / (seconds / done))))


def learning_rate(schedule, base, floor, step, total):
    if schedule == "constant":
        return base
    return floor + 0.5 * (base - floor) * (1.0 + math.cos(math.pi * min(step, total) / total))


def run(dataset, paths, args, log):
    """Train MACE on `paths['train']`, validate on `paths['valid']`, test on `paths['heldout']`.

    Returns a JSON-ready dictionary of settings, metrics, timings and the per-epoch history.
    """
    torch.set_num_threads(args.threads)
    dtype = args.mace_dtype
    torch.set_default_dtype(getattr(torch, dtype))
    seed_everything(args.seed)
    with_stress = dataset["stress"]
    settings = {
        "model": "ScaleShiftMACE (as `mace_run_train --model MACE`)",
        "channels": args.mace_channels,
        "max_L": args.mace_max_L,
        "r_max": dataset["r_max"],
        "num_bessel": 8,
        "num_polynomial_cutoff": 5,
        "max_ell": 3,
        "num_interactions": 2,
        "correlation": 3,
        "MLP_irreps": "16x0e",
        "radial_MLP": [64, 64, 64],
        "interaction_first": "RealAgnosticInteractionBlock",
        "interaction": "RealAgnosticResidualInteractionBlock",
        "dtype": dtype,
    }
    keys = key_specification(with_stress)

    start = time.perf_counter()
    train_frames = read_frames(paths["train"])
    valid_frames = read_frames(paths["valid"])
    zs = sorted({int(z) for atoms in train_frames for z in atoms.numbers})
    z_table = tools.AtomicNumberTable(zs)
    train_configs, train_data = graphs(train_frames, keys, z_table, settings["r_max"])
    _, valid_data = graphs(valid_frames, keys, z_table, settings["r_max"])
    e0 = mace_data.compute_average_E0s(train_configs, z_table)
    atomic_energies = np.array([e0[z] for z in z_table.zs])
    stats_loader = torch_geometric.dataloader.DataLoader(train_data, batch_size=args.batch_size)
    avg_num_neighbors = modules.compute_avg_num_neighbors(stats_loader)
    _, force_rms = modules.compute_mean_rms_energy_forces(stats_loader, atomic_energies)
    force_rms = float(np.asarray(force_rms).reshape(-1)[0])
    preprocessing_s = time.perf_counter() - start

    def make(channels):
        torch.manual_seed(args.seed)
        return build_model(settings, channels, z_table, atomic_energies, avg_num_neighbors, force_rms)

    channels = choose_channels(settings, args.mace_params, make)
    settings["channels"] = channels
    model, hidden = make(channels)
    settings["hidden_irreps"] = hidden
    params = parameter_count(model)
    log(f"[mace {dataset['name']}] hidden irreps {hidden}, {params} parameters, "
        f"E0s {dict((int(z), round(float(e), 6)) for z, e in e0.items())}, "
        f"avg neighbours {avg_num_neighbors:.2f}, force RMS {force_rms:.4f} eV/A")

    seed_everything(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    train_loader = torch_geometric.dataloader.DataLoader(
        train_data, batch_size=args.batch_size, shuffle=True, drop_last=False, generator=generator
    )
    valid_loader = torch_geometric.dataloader.DataLoader(valid_data, batch_size=args.valid_batch_size)
    if with_stress:
        loss_fn = modules.WeightedEnergyForcesStressLoss(
            energy_weight=args.energy_weight, forces_weight=args.forces_weight, stress_weight=args.stress_weight
        )
    else:
        loss_fn = modules.WeightedEnergyForcesLoss(energy_weight=args.energy_weight, forces_weight=args.forces_weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, amsgrad=True)
    planned = args.epochs
    total_steps = planned * len(train_loader)
    step = 0
    history = []
    train_seconds = 0.0
    epoch_seconds = 0.0
    for epoch in range(args.epochs):
        if epoch >= planned:
            break
        epoch_start = time.perf_counter()
        model.train()
        running = 0.0
        for batch in train_loader:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(args.schedule, args.lr, args.lr * args.min_lr_factor, step, total_steps)
            optimizer.zero_grad(set_to_none=True)
            out = model(batch.to_dict(), training=True, compute_force=True, compute_stress=with_stress)
            loss = loss_fn(batch, out)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
            optimizer.step()
            running += float(loss.detach()) * batch.num_graphs
            step += 1
        train_end = time.perf_counter()
        model.eval()
        valid = evaluate(model, valid_loader, with_stress)
        epoch_end = time.perf_counter()
        train_seconds += train_end - epoch_start
        epoch_seconds += epoch_end - epoch_start
        record = {
            "epoch": epoch + 1,
            "train_loss": running / len(train_data),
            "lr": optimizer.param_groups[0]["lr"],
            "train_s": train_end - epoch_start,
            "epoch_s": epoch_end - epoch_start,
            **{f"valid_{k}": v for k, v in valid.items()},
        }
        history.append(record)
        line = (f"[mace {dataset['name']}] epoch {epoch + 1}/{args.epochs} loss {record['train_loss']:.5f} "
                f"valid E {valid['energy_mae_meV_per_atom']:.2f} meV/atom F {valid['forces_mae_meV_per_A']:.2f} meV/A")
        if with_stress:
            line += f" S {valid['stress_mae_meV_per_A3']:.3f} meV/A^3"
        log(line + f"  {record['epoch_s']:.1f} s")
        if args.mace_time_budget_min and epoch + 1 == min(2, planned):
            planned = epochs_that_fit(args.epochs, epoch + 1, epoch_seconds, 60.0 * args.mace_time_budget_min)
            total_steps = planned * len(train_loader)
            if planned < args.epochs:
                log(f"[mace {dataset['name']}] {epoch_seconds / (epoch + 1):.1f} s/epoch: {planned} of {args.epochs} "
                    f"epochs fit in {args.mace_time_budget_min} min; the schedule now ends after epoch {planned}")
    epochs_done = len(history)

    model.eval()
    result = {
        "dataset": dataset["name"],
        "model": "MACE",
        "epochs_requested": args.epochs,
        "epochs_done": epochs_done,
        "epochs_note": (f"time budget {args.mace_time_budget_min} min: {epochs_done} of {args.epochs} epochs fit at the pace "
                        "of the first two, and the learning-rate schedule was shortened to end with them")
        if epochs_done < args.epochs else None,
        "parameters": params,
        "settings": settings,
        "training": {
            "optimizer": "Adam (amsgrad, no weight decay)",
            "lr": args.lr,
            "schedule": args.schedule,
            "min_lr": args.lr * args.min_lr_factor if args.schedule == "cosine" else args.lr,
            "batch_size": args.batch_size,
            "valid_batch_size": args.valid_batch_size,
            "loss": f"mace {type(loss_fn).__name__} (per-atom energy MSE, force component MSE"
                    + (", stress component MSE)" if with_stress else ")"),
            "energy_weight": args.energy_weight,
            "forces_weight": args.forces_weight,
            "stress_weight": args.stress_weight if with_stress else 0.0,
            "grad_clip_norm": 10.0,
            "seed": args.seed,
            "threads": args.threads,
            "E0s": "least squares on the training set (mace compute_average_E0s, as E0s='average')",
            "E0s_eV": {str(int(z)): float(e) for z, e in e0.items()},
            "avg_num_neighbors": avg_num_neighbors,
            "atomic_inter_scale_force_rms": force_rms,
        },
        "files": {k: str(v) if v else None for k, v in paths.items()},
        "preprocessing_s": preprocessing_s,
        "train_s_per_epoch": train_seconds / epochs_done,
        "s_per_epoch": epoch_seconds / epochs_done,
        "s_per_epoch_note": "training loop plus the validation pass of each epoch; neighbour lists built once before (preprocessing_s)",
        "valid": evaluate(model, valid_loader, with_stress),
        "history": history,
    }
    result["infer_ms_per_structure"] = time_batched_inference(
        model, valid_frames, keys, z_table, settings["r_max"], args.valid_batch_size, with_stress
    )
    result["infer_note"] = (f"batched evaluation (batch {args.valid_batch_size}) of the valid set from ase.Atoms: "
                            "neighbour lists, collation, energy, forces" + (", stress" if with_stress else "")
                            + "; one warm-up batch untimed")
    try:
        result["infer_ms_per_structure_ase_calculator"] = time_calculator_inference(
            model, valid_frames, dtype, with_stress
        )
    except Exception as error:  # the calculator is a second opinion; its failure is recorded, not fatal
        result["infer_ms_per_structure_ase_calculator"] = None
        result["ase_calculator_error"] = f"{type(error).__name__}: {error}"
    if paths.get("heldout"):
        heldout_frames = read_frames(paths["heldout"])
        _, heldout_data = graphs(heldout_frames, keys, z_table, settings["r_max"])
        loader = torch_geometric.dataloader.DataLoader(heldout_data, batch_size=args.valid_batch_size)
        result["heldout"] = evaluate(model, loader, with_stress)
        result["heldout_structures"] = len(heldout_frames)
    result["valid_structures"] = len(valid_frames)
    result["stress_GPa_per_eV_per_A3"] = EV_PER_A3_TO_GPA
    return result
