#!/usr/bin/env bash
# Instructions executed per call of model components (valgrind's callgrind): a measure of
# cost that, unlike wall-clock or CPU time, does not move when other processes load the
# machine. Runs the whole-model benchmark's `--breakdown` under callgrind, counting only
# the timed calls (the functions `measured_forward` and `measured_forward_backward`), and
# prints instructions per call, forward and forward+backward, per component.
#
# Usage: scripts/bench/instructions.sh [--features F] [--backend B] CONFIG NEIGHBORS N [COMPONENTS]
#   e.g. scripts/bench/instructions.sh readme full 128 radial,"attention block"
#        scripts/bench/instructions.sh --backend flex mid knn32 512 "whole model"
# COMPONENTS: comma-separated words, each selecting the breakdown components whose names
# contain it (default: each component in turn), one valgrind run each. One thread.
# EQF_BENCH_EXE=PATH runs that benchmark binary instead of building one (A/B comparisons).
# Valgrind hides AVX-512 from the program, so the backends take their AVX2 kernels.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/equiformer-rs/target}
features=flex,cpu-parallel
backend=ndarray
while [[ $# -gt 0 && $1 == --* ]]; do
    case "$1" in
        --features) features=$2; shift 2 ;;
        --backend) backend=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [[ $# -lt 3 ]]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
config=$1 neighbors=$2 n=$3 components=${4:-}
reps=2

exe=${EQF_BENCH_EXE:-}
[[ -n $exe ]] || exe=$(cd "$repo" && cargo bench --bench equiformer --no-run --features "$features" \
    --message-format=json-render-diagnostics |
    python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "equiformer" \
            and m.get("executable"):
        print(m["executable"])')
out=$(mktemp -d)
printf '%-36s | %14s | %14s\n' component "fwd M instr" "f+b M instr"
IFS=, read -r -a selected <<<"${components:-edge geometry,radial,edge_messages,whole layer,attention block,feed-forward,input projection,whole model}"
for component in "${selected[@]}"; do
    file="$out/callgrind.${component// /_}.out"
    RAYON_NUM_THREADS=1 valgrind --tool=callgrind --collect-atstart=no \
        --toggle-collect='*measured_forward*' --callgrind-out-file="$file" \
        "$exe" --breakdown --backend "$backend" --only "$config" --neighbors "$neighbors" \
        --ns "$n" --reps "$reps" --components "$component" >"$out/breakdown.txt" 2>"$out/valgrind.txt"
    # The component runs once to warm up and `reps` times timed, all through the measured
    # functions: instructions per call are the totals over `reps + 1`.
    callgrind_annotate --inclusive=yes "$file" 2>/dev/null | python3 -c '
import re, sys
runs, name = int(sys.argv[1]) + 1, sys.argv[2]
totals = {"measured_forward": 0, "measured_forward_backward": 0}
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+)\s.*::(measured_forward_backward|measured_forward)\b", line)
    if m:
        totals[m.group(2)] += int(m.group(1).replace(",", ""))
fwd, both = (totals[k] / runs / 1e6 for k in ("measured_forward", "measured_forward_backward"))
print(f"{name:<36} | {fwd:>14.1f} | {both:>14.1f}")
' "$reps" "$component"
done
echo "callgrind outputs in $out" >&2
