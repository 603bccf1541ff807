#!/usr/bin/env bash
# Compare equiformer-rs with the PyTorch reference (PyPI equiformer-pytorch 0.5.4) on the
# shared benchmark configs, in one go, and write the ratio table into docs/BENCHMARKS.md.
#
#   1. creates (once) a throwaway virtualenv outside the repository with equiformer-pytorch,
#      torch, e3nn and psutil from PyPI (torch is large: allow several minutes);
#   2. builds the benchmark binary benches/equiformer.rs in release mode;
#   3. runs the reference (scripts/bench/reference.py) on --ref-cases and ours on the
#      --only x --neighbors x --ns grid for every --backends, both with --threads threads,
#      alternating per (config, neighbour mode);
#   4. writes reference/ours ratios of forward, forward+backward and peak memory, and the
#      equivariance errors, into the section "## Equiformer against the PyTorch reference"
#      of docs/BENCHMARKS.md (scripts/bench/report.py), with this command and the machine.
#
# Times on a shared machine drift: compare the ratios of one run, and run it while nothing
# else compiles (the load average before and after each side is recorded in the results).
#
# Usage: scripts/bench/compare.sh [options]
#   --ref-cases LIST   reference cases CONFIG:NEIGHBORS:N, comma-separated
#                      (default: readme:full:32,readme:full:128,readme:knn32:512,
#                       mid:knn32:512,mid_deg4:knn32:512)
#   --only LIST        our configs (default: readme,mid,mid_deg4)
#   --neighbors LIST   our neighbour modes (default: full,knn32)
#   --ns LIST          our sizes (default: 32,128,512,2048; full stops at 512)
#   --backends LIST    our backends (default: ndarray,flex)
#   --features LIST    cargo features of the build (default: flex)
#   --threads T        threads on both sides (default: 2)
#   --reps R           timed repetitions (default: 7; at most 5 from N = 512)
#   --budget S         fewer repetitions (at least 3) where R would take over S seconds
#                      (default: 120)
#   --timeout S        seconds per case, both sides (default: 600)
#   --rss-limit-gib G  memory guard per case, both sides (default: 16)
#   --results DIR      where the JSON results go (default: a new dated folder under
#                      ~/.cache/equiformer-rs/bench-results)
#   --max-load L       before each side, wait until the 1-minute load average is below L
#                      (at most --max-wait minutes, default 30; default: do not wait)
#   --no-docs          print the table instead of writing docs/BENCHMARKS.md
#   --skip-reference FILE / --skip-ours FILE
#                      reuse an earlier (merged) JSON result instead of running that side
# Environment: EQF_REFERENCE_VENV (default ~/.cache/equiformer-rs/reference-venv),
#   CARGO_TARGET_DIR (default ~/.cache/equiformer-rs/target).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$repo/scripts/bench"
cache="$HOME/.cache/equiformer-rs"
venv=${EQF_REFERENCE_VENV:-$cache/reference-venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}

ref_cases=readme:full:32,readme:full:128,readme:knn32:512,mid:knn32:512,mid_deg4:knn32:512
only=readme,mid,mid_deg4
neighbors=full,knn32
ns=32,128,512,2048
backends=ndarray,flex
features=flex
threads=2
reps=7
budget=120
timeout=600
rss_limit=16
results=
write_docs=1
max_load=
max_wait=30
reuse_reference=
reuse_ours=
invocation="scripts/bench/compare.sh${*:+ $*}"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --ref-cases) ref_cases=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --neighbors) neighbors=$2; shift 2 ;;
        --ns) ns=$2; shift 2 ;;
        --backends) backends=$2; shift 2 ;;
        --features) features=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --budget) budget=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --rss-limit-gib) rss_limit=$2; shift 2 ;;
        --results) results=$2; shift 2 ;;
        --max-load) max_load=$2; shift 2 ;;
        --max-wait) max_wait=$2; shift 2 ;;
        --no-docs) write_docs=0; shift ;;
        --skip-reference) reuse_reference=$2; shift 2 ;;
        --skip-ours) reuse_ours=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

results=${results:-$cache/bench-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$results"
log() { printf '[compare] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- 1. reference virtualenv
setup_reference() {
    local marker="$venv/.equiformer-reference-ready"
    if [[ -f "$marker" ]]; then
        return
    fi
    log "creating the reference virtualenv in $venv (PyPI: equiformer-pytorch==0.5.4, torch, e3nn)"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --upgrade pip
    "$venv/bin/python" -m pip install "equiformer-pytorch==0.5.4" torch e3nn psutil
    "$venv/bin/python" -c 'import equiformer_pytorch, torch, e3nn, psutil'
    touch "$marker"
}

# ---------------------------------------------------------------- 2. our benchmark binary
build_ours() {
    log "building benches/equiformer.rs (release, features: $features) in $CARGO_TARGET_DIR"
    (cd "$repo" && cargo bench --bench equiformer --no-run --features "$features" \
        --message-format=json-render-diagnostics) |
        python3 -c '
import json, sys
exe = None
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "equiformer" \
            and "bench" in m["target"].get("kind", []) and m.get("executable"):
        exe = m["executable"]
if not exe:
    sys.exit("no benchmark executable in the cargo output")
print(exe)'
}

machine() {
    local cpu mem
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
    mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
    echo "$cpu, nproc $(nproc), $mem RAM, $(uname -sr)"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Wait (bounded) for other work on the machine to calm down before measuring.
wait_for_quiet() {
    [[ -n "$max_load" ]] || return 0
    local deadline=$((SECONDS + 60 * max_wait))
    while awk -v limit="$max_load" '{ exit !($1 >= limit) }' /proc/loadavg; do
        if ((SECONDS >= deadline)); then
            log "load average still $(loadavg) after $max_wait min; measuring anyway"
            return 0
        fi
        sleep 15
    done
}

# ---------------------------------------------------------------- 3. run both sides
# The two sides alternate per (config, neighbour mode) group, so that drifting load on a
# shared machine hits both alike; each group of each side writes its own JSON file.
run_reference() { # config mode cases
    local out="$results/reference-$1-$2.json"
    wait_for_quiet
    log "reference $1 $2: $3 (load average $(loadavg))"
    # From a scratch directory: nothing of the reference lands in the repository.
    (cd "$(mktemp -d)" && OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads \
        "$venv/bin/python" "$here/reference.py" --cases "$3" --threads "$threads" \
        --reps "$reps" --budget "$budget" --timeout "$timeout" --rss-limit-gib "$rss_limit" \
        --json "$out")
}

run_ours() { # config mode
    local out="$results/ours-$1-$2"
    wait_for_quiet
    log "ours $1 $2: N in $ns, backends $backends (load average $(loadavg))"
    RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
        "$exe" --backend "$backends" --only "$1" --neighbors "$2" --ns "$ns" \
        --reps "$reps" --budget "$budget" --timeout "$timeout" --rss-limit-gib "$rss_limit" \
        --json "$out.json" --csv "$out.csv"
}

contains() { [[ ",$1," == *",$2,"* ]]; }

if [[ -z "$reuse_reference" ]]; then
    setup_reference
fi
if [[ -z "$reuse_ours" ]]; then
    exe=$(build_ours)
fi
log "start (load average $(loadavg))"
for config in readme mid mid_deg4; do
    for mode in full knn32; do
        group_cases=$(tr ',' '\n' <<<"$ref_cases" | grep "^$config:$mode:" | paste -sd, - || true)
        if [[ -z "$reuse_reference" && -n "$group_cases" ]]; then
            run_reference "$config" "$mode" "$group_cases"
        fi
        if [[ -z "$reuse_ours" ]] && contains "$only" "$config" && contains "$neighbors" "$mode"; then
            run_ours "$config" "$mode"
        fi
    done
done
log "done (load average $(loadavg))"

# ---------------------------------------------------------------- 4. the ratio table
shopt -s nullglob
reference_files=("$results"/reference-*.json)
ours_files=("$results"/ours-*.json)
shopt -u nullglob
if [[ -n "$reuse_reference" ]]; then reference_files=("$reuse_reference"); fi
if [[ -n "$reuse_ours" ]]; then ours_files=("$reuse_ours"); fi
docs_args=()
if [[ $write_docs == 1 ]]; then
    docs_args=(--docs "$repo/docs/BENCHMARKS.md")
fi
python3 "$here/report.py" --reference "${reference_files[@]}" --ours "${ours_files[@]}" \
    --merged-dir "$results" --command "$invocation" --machine "$(machine)" "${docs_args[@]}"
log "results in $results"
