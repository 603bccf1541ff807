#!/usr/bin/env bash
# Profile one benchmark case with perf (timer sampling, DWARF call graphs) and print where the
# time goes: per phase, by model function, Burn layer, backend op, autodiff node and kernel.
#
# Usage: scripts/bench/profile.sh [--features F] [--backend B] CONFIG NEIGHBORS N [bench options]
#   e.g. scripts/bench/profile.sh readme full 128
#        scripts/bench/profile.sh --features flex --backend flex mid knn32 512 --reps 2
# Needs `perf` (Debian: linux-perf) with perf_event_paranoid <= 2; the cpu-clock software
# event works where hardware counters are unavailable (virtual machines). Writes perf.data
# and the attribution under ~/.cache/equiformer-rs/profiles/.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/equiformer-rs/target}
features=
backend=ndarray
while [[ $# -gt 0 && $1 == --* ]]; do
    case "$1" in
        --features) features=$2; shift 2 ;;
        --backend) backend=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [[ $# -lt 3 ]]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
config=$1 neighbors=$2 n=$3
shift 3

exe=$(cd "$repo" && cargo bench --bench equiformer --no-run ${features:+--features "$features"} \
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
out=$HOME/.cache/equiformer-rs/profiles/$config-$neighbors-$n-$backend
mkdir -p "$out"
RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2} perf record -e cpu-clock -F 200 --call-graph dwarf,16384 \
    -o "$out/perf.data" -- "$exe" --child --backend "$backend" --only "$config" \
    --neighbors "$neighbors" --ns "$n" --reps 3 --rotations 1 "$@" >"$out/result.txt"
perf script -i "$out/perf.data" -F comm,tid,time,ip,sym 2>/dev/null >"$out/stacks.txt"
python3 "$repo/scripts/bench/perf_attribution.py" "$out/stacks.txt" | tee "$out/attribution.txt"
echo "perf data and attribution in $out" >&2
