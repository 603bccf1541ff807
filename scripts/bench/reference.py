#!/usr/bin/env python3
"""Measure the PyTorch reference (PyPI equiformer-pytorch 0.5.4) on the shared benchmark configs.

The configurations, inputs and measurements mirror benches/equiformer.rs, so that the two
JSON outputs can be compared case by case (scripts/bench/report.py):

  * forward time under torch.no_grad(), median of repeated runs after one warm-up run;
  * forward+backward time, loss = sum of all outputs (type0.sum() + type1.sum()), median
    after one warm-up run;
  * peak memory: VmHWM of /proc/self/status of a fresh process per case, read after the
    forward phase and at the end (it includes the Python interpreter and torch);
  * equivariance error: max over random rotations R of |type0(xR) - type0(x)| and
    |type1(xR) - type1(x) R|, and the error under a translation.

Every case runs in a child process (this script with --child) under a wall-clock limit and
a resident-memory guard; a case that hits either is recorded with that status, and larger
sizes of the same config and neighbour mode are skipped.

Usage (inside a virtualenv with equiformer-pytorch, torch, e3nn and psutil):
  python3 reference.py --cases readme:full:32,readme:knn32:512 --threads 2 --json ref.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# The reference caches its basis under $CACHE_PATH; keep that out of the home directory.
os.environ.setdefault('CACHE_PATH', os.path.join(tempfile.gettempdir(), 'equiformer-reference-cache'))

NUM_TOKENS = 24
# Same names and options as benches/equiformer.rs.
CONFIGS = {
    # The reference README's usage example (MLP attention: l2_dist_attention=False).
    'readme': dict(num_tokens=NUM_TOKENS, dim=(4, 4, 2), dim_head=(4, 4, 4), heads=(2, 2, 2),
                   num_linear_attn_heads=0, num_degrees=3, depth=4, attend_self=True,
                   reduce_dim_out=True, l2_dist_attention=False),
    # Mid-size, with the constructor's default attention (L2 distance).
    'mid': dict(num_tokens=NUM_TOKENS, dim=(64, 32, 16), dim_head=(16, 16, 16), heads=(4, 4, 4),
                num_degrees=3, depth=2, reduce_dim_out=True),
    # `mid` with degrees 0..3.
    'mid_deg4': dict(num_tokens=NUM_TOKENS, dim=(64, 32, 16, 16), dim_head=(16, 16, 16, 16),
                     heads=(4, 4, 4, 4), num_degrees=4, depth=2, reduce_dim_out=True),
}
NEIGHBOR_MODES = {'full': None, 'knn32': 32}
RESULT_PREFIX = 'RESULT '


def proc_status_mb(field):
    """A memory figure of this process from /proc/self/status, in MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024.0
    return None


def emit(result):
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def randomize_zero_weights(model, torch):
    """Re-draw every all-zero weight matrix (zero-initialised output projections) from
    N(0, 1/fan_in), so that the equivariance check exercises every layer."""
    count = 0
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.ndim == 2 and bool((p == 0).all()):
                p.normal_(0, p.shape[0] ** -0.5)
                count += 1
    return count


def child(args):
    """Run one case in this process, printing a result line after every phase."""
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from equiformer_pytorch import Equiformer

    config, neighbors, n = args.config, args.neighbors, args.n
    result = dict(config=config, neighbors=neighbors, n=n, dtype='float32', backend='reference',
                  threads=torch.get_num_threads(), torch=torch.__version__)
    kwargs = dict(CONFIGS[config])
    if NEIGHBOR_MODES[neighbors] is not None:
        kwargs['num_neighbors'] = NEIGHBOR_MODES[neighbors]
    t0 = time.perf_counter()
    model = Equiformer(**kwargs)
    result['n_randomized_zero_weights'] = randomize_zero_weights(model, torch)
    result['construct_s'] = time.perf_counter() - t0
    result['params'] = sum(p.numel() for p in model.parameters())
    result['edges_per_node'] = min(NEIGHBOR_MODES[neighbors] or n - 1, n - 1)
    result['rss_after_construct_mb'] = proc_status_mb('VmRSS:')

    g = torch.Generator().manual_seed(1)
    feats = torch.randint(0, NUM_TOKENS, (1, n), generator=g)
    coors = torch.randn(1, n, 3, generator=g, dtype=torch.float64).float() * 3.0
    mask = torch.ones(1, n, dtype=torch.bool)

    def forward(x):
        with torch.no_grad():
            return model(feats, x, mask)

    t0 = time.perf_counter()
    out = forward(coors)
    result['first_forward_s'] = time.perf_counter() - t0
    type0, type1 = out.type0, out.type1
    result['out_type0_maxabs'] = float(type0.abs().max())
    result['out_type1_maxabs'] = float(type1.abs().max())
    emit(result)
    def repetitions(warm_up):
        """--reps (at most 5 from N = 512), fewer (at least 3) beyond --budget seconds."""
        reps = min(args.reps, 5) if n >= 512 else args.reps
        return max(1, min(reps, max(3, int(args.budget // max(warm_up, 1e-9)))))

    reps = repetitions(result['first_forward_s'])
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        forward(coors)
        times.append(time.perf_counter() - t0)
    result.update(fwd_times_s=times, fwd_min_s=min(times), fwd_median_s=statistics.median(times))
    emit(result)

    from e3nn import o3
    e0 = e1 = 0.0
    for k in range(args.rotations):
        torch.manual_seed(100 + k)
        r = o3.rand_matrix(dtype=torch.float64).float()
        o = forward(coors @ r)
        e0 = max(e0, float((o.type0 - type0).abs().max()))
        e1 = max(e1, float((o.type1 - type1 @ r).abs().max()))
    shift = torch.randn(1, 1, 3, generator=g, dtype=torch.float64).float() * 10.0
    o = forward(coors + shift)
    result.update(
        equiv_err_type0_max=e0, equiv_err_type1_max=e1,
        equiv_relerr_type0_max=e0 / max(float(type0.abs().max()), 1e-30),
        equiv_relerr_type1_max=e1 / max(float(type1.abs().max()), 1e-30),
        translation_err_type0=float((o.type0 - type0).abs().max()),
        translation_err_type1=float((o.type1 - type1).abs().max()),
        peak_rss_fwd_mb=proc_status_mb('VmHWM:'))
    emit(result)

    if not args.skip_bwd:
        def forward_backward():
            model.zero_grad(set_to_none=True)
            out = model(feats, coors, mask)
            loss = out.type0.sum() + out.type1.sum()
            loss.backward()

        t0 = time.perf_counter()
        forward_backward()
        result['first_fwdbwd_s'] = time.perf_counter() - t0
        emit(result)
        reps = repetitions(result['first_fwdbwd_s'])
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            forward_backward()
            times.append(time.perf_counter() - t0)
        result.update(fwdbwd_times_s=times, fwdbwd_min_s=min(times),
                      fwdbwd_median_s=statistics.median(times),
                      peak_rss_fwdbwd_mb=proc_status_mb('VmHWM:'))
    result['peak_rss_mb'] = proc_status_mb('VmHWM:')
    result['status'] = 'ok'
    emit(result)


def rss_of_mb(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def run_case(args, config, neighbors, n):
    """Run one case in a child process under the time limit and the memory guard."""
    cmd = [sys.executable, os.path.abspath(__file__), '--child', '--config', config,
           '--neighbors', neighbors, '--n', str(n), '--reps', str(args.reps),
           '--rotations', str(args.rotations), '--threads', str(args.threads),
           '--budget', str(args.budget)]
    if args.skip_bwd:
        cmd.append('--skip-bwd')
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results, errors = [], []
    readers = [threading.Thread(target=lambda: [results.append(json.loads(l[len(RESULT_PREFIX):]))
                                                for l in proc.stdout if l.startswith(RESULT_PREFIX)]),
               threading.Thread(target=lambda: errors.extend(proc.stderr))]
    for t in readers:
        t.start()
    status, peak = None, 0.0
    while proc.poll() is None:
        rss = rss_of_mb(proc.pid)
        peak = max(peak, rss)
        if rss > args.rss_limit_gib * 1024:
            status = f'killed: RSS > {args.rss_limit_gib:g} GiB guard'
        elif time.perf_counter() - t0 > args.timeout:
            status = f'killed: timeout > {args.timeout:g}s'
        if status:
            proc.kill()
            break
        time.sleep(0.1)
    proc.wait()
    for t in readers:
        t.join()
    result = results[-1] if results else dict(config=config, neighbors=neighbors, n=n,
                                              dtype='float32', backend='reference')
    if status is None:
        if proc.returncode == 0:
            status = 'ok'
        else:
            last = next((l.strip() for l in reversed(errors) if l.strip()), '')
            status = f'error rc={proc.returncode}: {last[:300]}'
    result.update(status=status, case_wall_s=time.perf_counter() - t0, watchdog_peak_rss_mb=peak)
    return result


def parse_cases(text):
    cases = []
    for item in filter(None, (s.strip() for s in text.split(','))):
        config, neighbors, n = item.split(':')
        if config not in CONFIGS or neighbors not in NEIGHBOR_MODES:
            raise SystemExit(f'bad case {item!r}: expected CONFIG:full|knn32:N with CONFIG in {list(CONFIGS)}')
        cases.append((config, neighbors, int(n)))
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cases', default='readme:full:32,readme:full:128',
                    help='comma-separated CONFIG:NEIGHBORS:N, run in this order')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--reps', type=int, default=7, help='timed repetitions (at most 5 from N=512)')
    ap.add_argument('--budget', type=float, default=120.0,
                    help='fewer repetitions (at least 3) where --reps would take longer (seconds)')
    ap.add_argument('--rotations', type=int, default=3)
    ap.add_argument('--skip-bwd', action='store_true')
    ap.add_argument('--timeout', type=float, default=600.0, help='seconds per case')
    ap.add_argument('--rss-limit-gib', type=float, default=16.0)
    ap.add_argument('--json', help='write the results here')
    # one case in this process
    ap.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--config', help=argparse.SUPPRESS)
    ap.add_argument('--neighbors', help=argparse.SUPPRESS)
    ap.add_argument('--n', type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    import platform
    import importlib.metadata as md
    meta = dict(python=platform.python_version(), threads=args.threads, reps=args.reps, budget_s=args.budget,
                rotations=args.rotations, timeout_s=args.timeout, rss_limit_gib=args.rss_limit_gib,
                loss='sum of all outputs',
                peak_memory='VmHWM of a fresh process per case, after the forward phase and at the end')
    for package in ('equiformer-pytorch', 'torch', 'e3nn'):
        try:
            meta[package] = md.version(package)
        except md.PackageNotFoundError:
            meta[package] = None
    results, failed = [], {}
    for config, neighbors, n in parse_cases(args.cases):
        smaller = failed.get((config, neighbors))
        if smaller is not None and n > smaller:
            r = dict(config=config, neighbors=neighbors, n=n, dtype='float32', backend='reference',
                     status=f'skipped: N={smaller} already failed')
        else:
            print(f'>>> reference {config} {neighbors} N={n}', file=sys.stderr, flush=True)
            r = run_case(args, config, neighbors, n)
            if r['status'] != 'ok':
                failed[(config, neighbors)] = min(n, failed.get((config, neighbors), n))
        results.append(r)
        print(f"reference {config} {neighbors} N={n}: fwd {r.get('fwd_median_s', '-')} s, "
              f"f+b {r.get('fwdbwd_median_s', '-')} s, peak {r.get('peak_rss_mb', '-')} MB, "
              f"eq1 rel {r.get('equiv_relerr_type1_max', '-')}, {r['status']}", flush=True)
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(dict(meta=meta, results=results), f, indent=1)


if __name__ == '__main__':
    main()
