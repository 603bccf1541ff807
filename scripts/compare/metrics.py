"""Error metrics both sides report, defined once, and the parser of the Rust `eval` output.

Definitions (the same as the Rust `eval` command's for energy and forces):
- energy MAE: mean over structures of |E_pred - E_ref| / atoms, in meV/atom;
- force MAE: mean over all atoms and the 3 Cartesian components of |F_pred - F_ref|, in meV/A;
- stress MAE: mean over structures and the 9 components of the 3x3 stress of
  |sigma_pred - sigma_ref|, in meV/A^3 and GPa (ASE sign convention, sigma = (1/V) dE/d(strain)).

No third-party import here, so that the Rust side of the comparison runs without numpy.
"""

import re

EV_PER_A3_TO_GPA = 160.21766208

METRIC_NAMES = (
    "energy_mae_meV_per_atom",
    "forces_mae_meV_per_A",
    "stress_mae_meV_per_A3",
    "stress_mae_GPa",
)


def structure_errors(energy_ref, energy_pred, forces_ref, forces_pred, stress_ref=None, stress_pred=None):
    """Sums of absolute errors of one structure (numpy arrays in, plain floats out)."""
    atoms = len(forces_ref)
    errors = {
        "atoms": atoms,
        "energy_per_atom": abs(energy_pred - energy_ref) / atoms,
        "forces_sum": float(abs(forces_pred - forces_ref).sum()),
    }
    if stress_ref is not None:
        errors["stress_sum"] = float(abs(stress_pred - stress_ref).sum())
    return errors


def summarize_errors(errors):
    """The metrics of a list of `structure_errors`, named as the Rust `eval` command names them."""
    structures = len(errors)
    atoms = sum(e["atoms"] for e in errors)
    summary = {
        "energy_mae_meV_per_atom": 1000.0 * sum(e["energy_per_atom"] for e in errors) / structures,
        "forces_mae_meV_per_A": 1000.0 * sum(e["forces_sum"] for e in errors) / (3 * atoms),
    }
    if all("stress_sum" in e for e in errors):
        stress = sum(e["stress_sum"] for e in errors) / (9 * structures)
        summary["stress_mae_meV_per_A3"] = 1000.0 * stress
        summary["stress_mae_GPa"] = EV_PER_A3_TO_GPA * stress
    return summary


_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
_LINE = re.compile(rf"^\s*([A-Za-z][\w./^-]*)\s*(?:[:=]\s*|\s+)({_NUMBER})\b", re.IGNORECASE)


def parse_metric_lines(text):
    """`name value`, `name = value` or `name: value` lines of a text, as a dictionary."""
    found = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def _fuzzy(found, *needles, exclude=()):
    for name, value in found.items():
        lowered = name.lower()
        if all(n in lowered for n in needles) and not any(x in lowered for x in exclude):
            return value
    return None


def standard_metrics(found):
    """The four metrics by their standard names, found exactly or by the words in their names
    (a renamed metric such as `force_mae_mev_per_a` is still found); stress in GPa is derived
    from meV/A^3 when only that is printed, and the other way round."""
    metrics = {name: found[name] for name in METRIC_NAMES if name in found}
    metrics.setdefault("energy_mae_meV_per_atom", _fuzzy(found, "energy", "mae"))
    metrics.setdefault("forces_mae_meV_per_A", _fuzzy(found, "force", "mae"))
    metrics.setdefault("stress_mae_GPa", _fuzzy(found, "stress", "mae", "gpa"))
    metrics.setdefault("stress_mae_meV_per_A3", _fuzzy(found, "stress", "mae", exclude=("gpa",)))
    if metrics["stress_mae_GPa"] is None and metrics["stress_mae_meV_per_A3"] is not None:
        metrics["stress_mae_GPa"] = metrics["stress_mae_meV_per_A3"] / 1000.0 * EV_PER_A3_TO_GPA
    if metrics["stress_mae_meV_per_A3"] is None and metrics["stress_mae_GPa"] is not None:
        metrics["stress_mae_meV_per_A3"] = metrics["stress_mae_GPa"] / EV_PER_A3_TO_GPA * 1000.0
    return {k: v for k, v in metrics.items() if v is not None}


_PARAMETERS = (
    re.compile(r"(\d[\d,_]*)\s+(?:trainable\s+|learnable\s+)?param", re.IGNORECASE),
    re.compile(r"param(?:eter)?s?(?:\s+count)?\s*[:=]?\s*(\d[\d,_]*)", re.IGNORECASE),
)


def parse_parameter_count(text):
    """The parameter count a training log states (`12345 parameters`, `parameters: 12,345`)."""
    for pattern in _PARAMETERS:
        match = pattern.search(text)
        if match:
            return int(re.sub(r"[,_]", "", match.group(1)))
    return None


_EPOCH_ELAPSED = re.compile(r"^epoch\s+(\d+)/(\d+)\b.*?([\d.]+)\s*s\s*$", re.MULTILINE)


def parse_last_epoch(text):
    """(epoch, epochs, cumulative seconds) of the last `epoch k/N ... 12.3 s` line, or None."""
    matches = _EPOCH_ELAPSED.findall(text)
    if not matches:
        return None
    epoch, epochs, seconds = matches[-1]
    return int(epoch), int(epochs), float(seconds)
