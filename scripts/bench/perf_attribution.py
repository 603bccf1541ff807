#!/usr/bin/env python3
"""Where the time goes: attribute perf samples of the benchmark binary to model code and ops.

Reads `perf script -F comm,tid,time,ip,sym` output of a run recorded with DWARF call graphs
(scripts/bench/profile.sh) and prints, per phase (inference forward, forward on the autodiff
backend, backward), the share of samples by

  * innermost equi_nn function on the stack (which part of the model);
  * that function with the innermost Burn layer or backend op below it (what it spends on);
  * tensor op (`matmul`, `cat`, `slice`, ...): the outermost Burn tensor API call, i.e. the
    op the model called (any backend);
  * backend function: the innermost function of the backend crate (burn-ndarray, burn-flex),
    i.e. the kernel family doing the work;
  * autodiff node (backward only: which op's gradient);
  * leaf symbol (the kernel or library function that was running).

Standard library only.
"""
import collections
import re
import sys

# Burn layers and activations recognised on the stack (innermost match wins).
COMPONENTS = [
    ('silu/sigmoid', r'activation::(silu|sigmoid)\b|::sigmoid$'),
    ('layer_norm', r'LayerNorm.*::forward'),
    ('linear', r'burn_nn::modules::linear::Linear.*::forward'),
    ('softmax', r'activation::softmax'),
    ('leaky_relu', r'activation::leaky_relu'),
]


def strip_generics(symbol):
    out, depth = [], 0
    for ch in symbol:
        if ch == '<':
            depth += 1
        elif ch == '>':
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return ''.join(out)


def read_samples(stream):
    """Stacks (leaf first) of every sample."""
    samples, current = [], None
    for line in stream:
        if not line.strip():
            if current is not None:
                samples.append(current)
            current = None
        elif not line[0].isspace():
            current = []
        elif current is not None:
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                current.append(parts[1])
    if current:
        samples.append(current)
    return samples


def phase_of(stack):
    joined = '\n'.join(stack)
    if 'execute_steps' in joined or 'AutodiffClient>::backward' in joined:
        return 'backward'
    if 'Config::init' in joined:
        return 'model construction'
    if 'burn_autodiff' in joined:
        return 'forward on the autodiff backend'
    if 'equi_nn' in joined:
        return 'forward (inference)'
    return 'other'


def tensor_op(clean):
    """The outermost Burn tensor API call on the stack: the op the model called."""
    op = None
    for symbol in clean:
        if symbol.startswith('burn_tensor::tensor::'):
            op = symbol.replace('::{{closure}}', '').rsplit('::', 1)[-1]
    return op


def backend_function(clean):
    """The innermost function of the backend crate: the kernel family doing the work."""
    for symbol in clean:
        if symbol.startswith(('burn_ndarray::', 'burn_flex::')) or symbol.startswith('::float_'):
            return symbol.replace('::{{closure}}', '')
    return None


def main():
    samples = read_samples(open(sys.argv[1], errors='replace') if len(sys.argv) > 1 else sys.stdin)
    total = len(samples)
    if not total:
        sys.exit('no samples')
    phases = collections.defaultdict(list)
    for stack in samples:
        phases[phase_of(stack)].append(stack)
    print(f'{total} samples')
    for phase, stacks in sorted(phases.items(), key=lambda kv: -len(kv[1])):
        n = len(stacks)
        print(f'\n=== {phase}: {100 * n / total:.1f}% of all samples')
        function, detail, ops, kernels, nodes, leaves = (collections.Counter() for _ in range(6))
        for stack in stacks:
            clean = [strip_generics(s) for s in stack]
            f = next((s for s in clean if s.startswith('equi_nn::')), None)
            component = next((name for s in stack for name, pat in COMPONENTS if re.search(pat, s)), None)
            op = tensor_op(clean)
            function[f] += 1
            detail[(f.rsplit('::', 2)[-2] + '::' + f.rsplit('::', 1)[-1] if f else None, component or op)] += 1
            ops[op] += 1
            kernels[backend_function(clean)] += 1
            leaves[clean[0][:100] if clean else None] += 1
            if phase == 'backward':
                node = next((m.group(1) for s in stack
                             for m in [re.search(r'::(\w+) as burn_autodiff::ops::backward::Backward', s)] if m),
                            None)
                nodes[node] += 1

        def show(title, counter, k):
            print(f'-- {title} (share of this phase)')
            for key, v in counter.most_common(k):
                print(f'  {100 * v / n:5.1f}%  {key}')

        if phase != 'backward':
            show('innermost equi_nn function', function, 12)
            show('function, with the Burn layer or tensor op under it', detail, 20)
            show('tensor op called', ops, 12)
        show('backend function', kernels, 12)
        if phase == 'backward':
            show('autodiff node', nodes, 12)
        show('leaf symbol', leaves, 10)


if __name__ == '__main__':
    main()
