#!/usr/bin/env python3
"""Ratio table of the PyTorch reference against equiformer-rs, written into docs/BENCHMARKS.md.

Reads the JSON of scripts/bench/reference.py and of the benchmark binary
(benches/equiformer.rs, --json), pairs the cases by (config, neighbours, N), and writes a
markdown table with reference/ours ratios of forward time, forward+backward time and peak
memory, and the equivariance errors side by side. The table replaces the generated block of
the section "## Equiformer against the PyTorch reference" (between the two marker comments);
the section is appended when missing, and nothing else in the file changes.

Standard library only; runs with any python3.
"""
import argparse
import json
import os

SECTION = '## Equiformer against the PyTorch reference'
BEGIN = '<!-- compare.sh: generated table, begin -->'
END = '<!-- compare.sh: generated table, end -->'
CONFIG_ORDER = {'readme': 0, 'mid': 1, 'mid_deg4': 2}
# Targets of the comparison: reference/ours at least this much for f+b time and peak memory.
TARGET_RATIO = 3.0


def load(paths):
    """Merge result files of one side: the first file's meta, every file's results."""
    merged = dict(meta={}, results=[])
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        merged['meta'] = merged['meta'] or doc.get('meta', {})
        merged['results'] += doc.get('results', [])
    return merged


def key(r):
    return (r.get('config'), r.get('neighbors'), r.get('n'))


BACKEND_ORDER = {'ndarray': 0, 'flex': 1}


def sort_key(r):
    return (CONFIG_ORDER.get(r.get('config'), 99), r.get('neighbors'), r.get('n'),
            BACKEND_ORDER.get(r.get('backend'), 9), r.get('backend', ''))


def num(value, spec):
    return '-' if value is None else format(value, spec)


def seconds(value):
    if value is None:
        return None
    return format(value, '.3f') if value < 10 else format(value, '.1f')


def failure(r):
    """A short reason why a measurement is missing, from the case status."""
    if r is None:
        return 'not run'
    status = r.get('status', '')
    if status.startswith('killed: timeout'):
        return 'timeout ' + status.split('>')[-1].strip()
    if status.startswith('killed: RSS'):
        return 'over ' + status.split('>')[-1].strip().replace(' guard', '')
    if status.startswith('skipped'):
        return 'skipped'
    if status.startswith('error'):
        return 'error'
    return '-'


def value_or_reason(r, field, fmt):
    v = None if r is None else r.get(field)
    return fmt(v) if v is not None else failure(r)


def ratio(ref, ours, field):
    a = None if ref is None else ref.get(field)
    b = None if ours is None else ours.get(field)
    if a is None or b is None or b <= 0:
        return None
    return a / b


def ratio_cell(value, ref, field):
    if value is not None:
        return f'**{value:.2f}**' if value >= TARGET_RATIO else f'{value:.2f}'
    if ref is not None and ref.get('status', 'ok') != 'ok' and ref.get(field) is None:
        # The reference did not finish: ours is at least this much faster/smaller (unknown).
        return f'ref {failure(ref)}'
    return '-'


def table(reference, ours):
    ref_by_key = {key(r): r for r in reference}
    rows = []
    header = ('config', 'nbrs', 'N', 'ours on', 'fwd ref s', 'fwd ours s', 'fwd ref/ours',
              'f+b ref s', 'f+b ours s', 'f+b ref/ours', 'peak ref MB', 'peak ours MB',
              'peak ref/ours', 'eq1 rel ref', 'eq1 rel ours', 'eq0 abs ref', 'eq0 abs ours', 'targets')
    cases = sorted(ours, key=sort_key)
    # Reference cases our run did not cover still get a row.
    covered = {key(r) for r in ours}
    cases += [dict(config=r['config'], neighbors=r['neighbors'], n=r['n'], backend='-', status='not run')
              for r in sorted(reference, key=sort_key) if key(r) not in covered]
    for o in cases:
        ref = ref_by_key.get(key(o))
        ours_ok = o.get('status') != 'not run'
        o_or_none = o if ours_ok else None
        fb = ratio(ref, o_or_none, 'fwdbwd_median_s')
        mem = ratio(ref, o_or_none, 'peak_rss_mb')
        if fb is not None and mem is not None:
            met = 'yes' if fb >= TARGET_RATIO and mem >= TARGET_RATIO else 'no'
        else:
            met = '-'
        rows.append((
            o['config'], o['neighbors'], str(o['n']), o.get('backend', '-'),
            value_or_reason(ref, 'fwd_median_s', seconds),
            value_or_reason(o_or_none, 'fwd_median_s', seconds),
            ratio_cell(ratio(ref, o_or_none, 'fwd_median_s'), ref, 'fwd_median_s'),
            value_or_reason(ref, 'fwdbwd_median_s', seconds),
            value_or_reason(o_or_none, 'fwdbwd_median_s', seconds),
            ratio_cell(fb, ref, 'fwdbwd_median_s'),
            value_or_reason(ref, 'peak_rss_mb', lambda v: f'{v:.0f}'),
            value_or_reason(o_or_none, 'peak_rss_mb', lambda v: f'{v:.0f}'),
            ratio_cell(mem, ref, 'peak_rss_mb'),
            num(None if ref is None else ref.get('equiv_relerr_type1_max'), '.1e'),
            num(o.get('equiv_relerr_type1_max'), '.1e'),
            num(None if ref is None else ref.get('equiv_err_type0_max'), '.1e'),
            num(o.get('equiv_err_type0_max'), '.1e'),
            met,
        ))
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join(' --- ' for _ in header) + '|']
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines)


def generated_block(ref_doc, ours_doc, command, machine):
    rmeta, ometa = ref_doc.get('meta', {}), ours_doc.get('meta', {})
    baseline = [r['rss_after_construct_mb'] for r in ref_doc.get('results', [])
                if r.get('rss_after_construct_mb') is not None]
    baseline = f'{min(baseline) / 1024:.2f} GB' if baseline else 'the memory'
    lines = [
        BEGIN,
        '',
        f'Measured with `{command}`',
        f'on {machine}.',
        '',
        f"- Reference: equiformer-pytorch {rmeta.get('equiformer-pytorch')}, torch {rmeta.get('torch')}, "
        f"e3nn {rmeta.get('e3nn')}, Python {rmeta.get('python')}; torch.set_num_threads({rmeta.get('threads')}); "
        f"at most {rmeta.get('timeout_s', 0):.0f} s and {rmeta.get('rss_limit_gib', 0):g} GiB per case.",
        f"- Ours: release build, cargo features {', '.join(ometa.get('features', []))}; "
        f"RAYON_NUM_THREADS={ometa.get('rayon_threads')}; backends {', '.join(ometa.get('backends', []))}.",
        f"- Both: float32, batch 1, median of {rmeta.get('reps')} timed runs after one warm-up "
        f"(at most 5 from N = 512, and at least 3 but no more than fit in {rmeta.get('budget_s', 120):g} s); "
        "forward without gradients; forward+backward with loss = sum of "
        "all outputs; peak = VmHWM of a fresh process per case (the reference's includes "
        f"{baseline} of Python and torch after building the model); equivariance: max over "
        f"{rmeta.get('rotations')} random rotations, relative to max |type 1 output| (eq1 rel) "
        "and absolute for type 0 (eq0 abs).",
        "- Ratios are reference/ours (above 1: ours is faster or smaller); **bold** meets the "
        f"target of {TARGET_RATIO:g}; \"targets\" says whether both forward+backward and peak "
        "memory meet it; \"timeout\" and \"over\" mark cases stopped by the time limit or the "
        "memory guard, \"not run\" cases outside that side's list.",
        '',
        table(ref_doc.get('results', []), ours_doc.get('results', [])),
        '',
        END,
    ]
    return '\n'.join(lines)


def write_docs(path, block):
    text = open(path).read() if os.path.exists(path) else '# Benchmarks\n'
    if SECTION not in text:
        text = text.rstrip('\n') + f'\n\n{SECTION}\n\n{block}\n'
    elif BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        # Section present without a generated block: put the block right under its title.
        head, tail = text.split(SECTION, 1)
        text = head + SECTION + '\n\n' + block + '\n' + tail
    with open(path, 'w') as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reference', required=True, nargs='+', help='JSON files of scripts/bench/reference.py')
    ap.add_argument('--ours', required=True, nargs='+', help='JSON files of the benchmark binary (--json)')
    ap.add_argument('--merged-dir', help='also write the merged reference.json and ours.json here')
    ap.add_argument('--command', required=True, help='the command that produced both, quoted in the docs')
    ap.add_argument('--machine', required=True, help='a description of the machine')
    ap.add_argument('--docs', help='write the table into this markdown file (else print it)')
    args = ap.parse_args()
    reference, ours = load(args.reference), load(args.ours)
    if args.merged_dir:
        for name, doc in (('reference.json', reference), ('ours.json', ours)):
            with open(os.path.join(args.merged_dir, name), 'w') as f:
                json.dump(doc, f, indent=1)
    block = generated_block(reference, ours, args.command, args.machine)
    if args.docs:
        write_docs(args.docs, block)
        print(f'wrote the table into {args.docs}')
    print(block)


if __name__ == '__main__':
    main()
