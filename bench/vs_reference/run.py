#!/usr/bin/env python3
"""
sasha-wsi against the official SASHA code (github.com/coglabiisc/SASHA), side by side in one run.

The official code runs through its own modules (HAFED, FGlobal, Actor/Critic/Agent,
WSICosineObservationEnv) on PyTorch, at 1 and 2 threads; sasha-wsi runs on its default
embedded backend (tfjs wasm, one thread). Both get the same inputs: the same random features
(drawn here with numpy) and the same initial weights (the official modules' own initialisation,
seeded, copied into ours). Every measurement is a fresh process (so that its peak RSS is its
own), and the contenders alternate within every round, so that load on the machine hits them
alike. Reported: medians over the runs with their range, ratios of medians, peak RSS, and checks
that both computed the same thing (same greedy actions, same probabilities, same old values).

Workloads (d = 384, k = 16, f = 0.2, tau = 0.95, the CAMELYON16 settings of the official configs):
- the two matrix products under HAFED stage 1 at N = 1000 and 3000 (each backend's own product,
  one thread), the arithmetic floor of the HAFED rows;
- HAFED training step and inference at N = 1000 and 3000 (U of shape [N, 16, 384]);
- one greedy episode of the policy at N = 1000, 3000 and 10000 (the slide loop of
  step7_inference.py), on Z with 50 clusters of near-duplicate rows;
- the PPO update of one slide (2 episodes of T = ceil(0.2 N) steps, 4 epochs) at N = 1000 and
  2000, and ours alone at N = 10000 and 20000.

Needs: Debian's python3-torch with OpenBLAS (`apt-get install -y python3-torch
libopenblas0-pthread`; without OpenBLAS torch uses the reference BLAS, 20x slower, and the run
refuses to start), Node 20 with `npm ci` done in the repository, and a checkout of the official
code. Without --reference the script clones it (git, network) into bench/vs_reference/.cache/.

Run (from the repository root):
    nice -n 10 /usr/bin/python3 bench/vs_reference/run.py [--reference DIR] [--reps 3]
Writes the section `vs-reference` of bench/RESULTS.md and bench/vs_reference/summary.json
(skip both with --no-write; --quick runs small sizes only, to check the setup).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REFERENCE_URL = 'https://github.com/coglabiisc/SASHA'
REFERENCE_COMMIT = '6385fe6'
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
D = 384
K = 16
FRAC = 0.2
TAU = 0.95
SEED = 1130
# Greedy episodes timed per process below N = 10000 (each on a new env of the same slide).
EPISODES_PER_PROCESS = 3
CLUSTERS = 50


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--reference', help='checkout of github.com/coglabiisc/SASHA (default: clone into bench/vs_reference/.cache/SASHA)')
    p.add_argument('--reps', type=int, default=3, help='rounds of alternating runs (default 3)')
    p.add_argument('--threads', default='1,2', help='thread counts of the official code (default 1,2)')
    p.add_argument('--only', default='gemm,hafed,episode,ppo', help='workloads to run (default gemm,hafed,episode,ppo)')
    p.add_argument('--work', help='directory for the generated inputs (default: a temporary one, removed at the end)')
    p.add_argument('--sizes', help='only these N (comma-separated), for a partial run (implies --no-write)')
    p.add_argument('--quick', action='store_true', help='small sizes only, to check the setup (implies --no-write)')
    p.add_argument('--no-write', action='store_true', help='do not write bench/RESULTS.md and summary.json')
    p.add_argument('--skip-heavy', action='store_true', help='skip the official PPO update at N = 2000 (about 11 GB and 500 s)')
    p.add_argument('--two-threads-max-n', type=int, default=1000,
                   help='largest N of the greedy episode and the PPO update at which the official code also runs at 2 threads '
                        '(default 1000; HAFED runs at every thread count)')
    p.add_argument('--long-reps', type=int, default=None,
                   help='rounds of the long runs: the official greedy episode at N >= 10000, the official PPO update at N = 1000 '
                        '(about 90 CPU s each) and the PPO update of sasha-wsi at N >= 10000 (default: --reps; the official update '
                        'at N = 2000 always runs once)')
    p.add_argument('--ratio-basis', choices=['cpu', 'wall'], default='cpu',
                   help='what the speed-ups of summary.json divide: process CPU seconds (default; one thread against one thread, '
                        'which load from other jobs disturbs little) or wall-clock seconds (on an idle machine)')
    p.add_argument('--report-only', action='store_true',
                   help='run nothing: report the runs recorded in WORK/runs.jsonl (needs --work; what was not run shows as such)')
    p.add_argument('--resume', action='store_true',
                   help='keep the runs already recorded in WORK/runs.jsonl (needs --work) and run only the missing ones')
    return p.parse_args()


# ---------------------------------------------------------------------------------------------
# Setup


def ensure_reference(path):
    if path is None:
        path = os.path.join(HERE, '.cache', 'SASHA')
        if not os.path.isdir(path):
            log(f'cloning {REFERENCE_URL} into {path}')
            os.makedirs(os.path.dirname(path), exist_ok=True)
            r = subprocess.run(['git', 'clone', '-q', REFERENCE_URL, path], capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f'Could not clone {REFERENCE_URL} ({r.stderr.strip()}). Clone it yourself and pass its directory: '
                         f'git clone {REFERENCE_URL} SASHA && python3 bench/vs_reference/run.py --reference SASHA')
            subprocess.run(['git', '-C', path, 'checkout', '-q', REFERENCE_COMMIT], check=True)
    path = os.path.abspath(path)
    for f in ('architecture/transformer.py', 'rl_algorithms/ppo.py', 'envs/WSI_cosine_env.py', 'modules/fglobal_mlp.py'):
        if not os.path.isfile(os.path.join(path, f)):
            sys.exit(f'{path} is not a checkout of {REFERENCE_URL}: {f} is missing. Pass --reference DIR of a clone.')
    r = subprocess.run(['git', '-C', path, 'rev-parse', 'HEAD'], capture_output=True, text=True)
    commit = r.stdout.strip()[:7] if r.returncode == 0 else 'unknown'
    if commit != REFERENCE_COMMIT:
        log(f'note: the reference checkout is at {commit}, the figures in bench/RESULTS.md were taken at {REFERENCE_COMMIT}')
    return path, commit


def write_array(work, name, array):
    array = np.ascontiguousarray(array, dtype='<f4')
    os.makedirs(os.path.dirname(os.path.join(work, name)), exist_ok=True)
    array.tofile(os.path.join(work, name + '.bin'))
    with open(os.path.join(work, name + '.json'), 'w') as f:
        json.dump({'shape': list(array.shape)}, f)


def clustered(n, rng):
    """Z [n, d]: 50 clusters, row = centre + sigma_c * noise with sigma_c in [0.1, 0.35] per cluster
    (so that |cos| >= 0.95 holds within some clusters and not others); V = Z + 0.3 * noise."""
    centres = rng.standard_normal((CLUSTERS, D))
    sigma = rng.uniform(0.1, 0.35, CLUSTERS)
    c = rng.integers(0, CLUSTERS, n)
    z = centres[c] + sigma[c, None] * rng.standard_normal((n, D))
    v = z + 0.3 * rng.standard_normal((n, D))
    return z.astype('<f4'), v.astype('<f4')


def write_gemm_graphs(work):
    """The two products of the `gemm` workload as ONNX graphs for ONNX Runtime (False without the onnx package)."""
    try:
        import onnx
        from onnx import helper as h
    except ImportError:
        return False
    f = onnx.TensorProto.FLOAT

    def save(node, name, inputs, output):
        values = [h.make_tensor_value_info(n, f, shape) for n, shape in inputs]
        graph = h.make_graph([node], name, values, [h.make_tensor_value_info(output[0], f, output[1])])
        onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid('', 13)]), os.path.join(work, name + '.onnx'))

    save(h.make_node('MatMul', ['x', 'w'], ['y']), 'gemm_forward', [('x', ['R', 'd']), ('w', ['d', 'D'])], ('y', ['R', 'D']))
    save(h.make_node('Gemm', ['x', 'g'], ['dw'], transA=1), 'gemm_kernel_grad', [('x', ['R', 'd']), ('g', ['R', 'D'])], ('dw', ['d', 'D']))
    return True


def make_inputs(work, sizes_u, sizes_z):
    rng = np.random.default_rng(SEED)
    for tag, n in [('warmup', 100)] + [(str(n), n) for n in sizes_z]:
        z, v = clustered(n, rng)
        write_array(work, f'z_{tag}', z)
        write_array(work, f'v_{tag}', v)
    for tag, n in [('warmup', 100)] + [(str(n), n) for n in sizes_u]:
        base, _ = clustered(n, rng)
        u = base[:, None, :] + 0.5 * rng.standard_normal((n, K, D)).astype('<f4')
        write_array(work, f'u_{tag}', u)
    with open(os.path.join(work, 'shared.json'), 'w') as f:
        json.dump({'dim': D, 'k': K, 'frac': FRAC, 'tau': TAU, 'seed': SEED}, f)


# ---------------------------------------------------------------------------------------------
# Children


def run_child(cmd, env=None, label=''):
    load0 = os.getloadavg()[0]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [l for l in r.stdout.strip().split('\n') if l.startswith('{')]
    if r.returncode != 0 or not lines:
        sys.exit(f'{label} failed (exit {r.returncode}):\n{r.stderr[-3000:]}')
    out = json.loads(lines[-1])
    out['loadStart'] = load0
    out['loadEnd'] = os.getloadavg()[0]
    out['processSeconds'] = time.time() - t0
    return out


def reference_cmd(task, work, ref, n, reps, threads):
    env = dict(os.environ)
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        env[var] = str(threads)
    cmd = [sys.executable, os.path.join(HERE, 'reference_child.py'), task, '--work', work, '--reference', ref,
           '--n', str(n), '--reps', str(reps), '--threads', str(threads)]
    return cmd, env


def ours_cmd(task, work, n, reps, threads=1, native=False):
    cmd = ['node', '--import', 'tsx', os.path.join(HERE, 'ours_child.ts'), task, '--work', work, '--n', str(n), '--reps', str(reps),
           '--workers', str(threads - 1)] + (['--native'] if native else [])
    return cmd, dict(os.environ)


def mem_available_gb():
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) / 2 ** 20
    return float('nan')


# ---------------------------------------------------------------------------------------------
# Figures


def med(xs):
    return statistics.median(xs) if xs else float('nan')


def fmt_s(x):
    if x != x:
        return 'n/a'
    return f'{x:.3f}' if x < 1 else f'{x:.2f}' if x < 100 else f'{x:.0f}'


def spread(xs):
    if not xs:
        return 'n/a'
    return f'{fmt_s(min(xs))}-{fmt_s(max(xs))}' if len(xs) > 1 else fmt_s(xs[0])


def mb(b):
    return 'n/a' if b != b else f'{b / 2 ** 20:.0f}'


def table(header, rows):
    line = lambda cells: '| ' + ' | '.join(str(c) for c in cells) + ' |'
    return '\n'.join([line(header), line(['---'] * len(header))] + [line(r) for r in rows])


def write_results(section, title, command, body):
    path = os.path.join(ROOT, 'bench', 'RESULTS.md')
    start, end = f'<!-- bench:{section} -->', f'<!-- /bench:{section} -->'
    text = open(path).read() if os.path.exists(path) else '# Benchmark results\n'
    block = '\n'.join([start, f'## {title}', '', f'Command: `{command}`  ', f'Run: {datetime.date.today().isoformat()} on {machine_line()}', '',
                       body.strip(), end])
    i, j = text.find(start), text.find(end)
    text = text[:i] + block + text[j + len(end):] if i >= 0 and j > i else text.rstrip() + '\n\n' + block + '\n'
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.replace(path + '.tmp', path)


_machine = {}


def machine_line():
    return _machine.get('line', platform.platform())


def describe_machine(torch_info):
    cpu = 'unknown cpu'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemTotal:'):
                mem = round(int(line.split()[1]) / 2 ** 20)
    node = subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()
    blas = 'unknown'
    for b in torch_info['blas']:
        m = re.search(r'libopenblas(\w*)-r([\d.]+)\.so', os.path.basename(b))
        if m:
            blas = f'OpenBLAS {m.group(2)}' + (' (pthread)' if 'pthread' in b else '')
    _machine['line'] = (f'{os.cpu_count()} x {cpu}, {mem} GiB, Linux {platform.release()}; official code: Python {platform.python_version()}, '
                        f'torch {torch_info["torch"]} (Debian python3-torch), BLAS {blas}; sasha-wsi: Node {node}, tfjs backend `wasm`')
    _machine['short'] = f'{os.cpu_count()} x {cpu}, {mem} GiB'
    return _machine['line']


# ---------------------------------------------------------------------------------------------


def main():
    args = parse_args()
    threads = [int(t) for t in args.threads.split(',') if t]
    only = set(args.only.split(','))
    if args.report_only:
        args.resume = True
    if args.resume and not args.work:
        sys.exit('--resume and --report-only need --work DIR, the directory of the run to continue.')
    write = not (args.no_write or args.quick or args.sizes)
    ref, commit = ensure_reference(args.reference)
    work = args.work or tempfile.mkdtemp(prefix='sasha-vs-reference-')
    os.makedirs(work, exist_ok=True)
    if args.quick:
        hafed_sizes, episode_sizes, ppo_pairs, ppo_alone = [300], [300], [200], [400]
    else:
        hafed_sizes, episode_sizes, ppo_pairs, ppo_alone = [1000, 3000], [1000, 3000, 10000], [1000, 2000], [10000, 20000]
    if args.sizes:
        keep = {int(x) for x in args.sizes.split(',')}
        hafed_sizes, episode_sizes = [n for n in hafed_sizes if n in keep], [n for n in episode_sizes if n in keep]
        ppo_pairs, ppo_alone = [n for n in ppo_pairs if n in keep], [n for n in ppo_alone if n in keep]
    load_start = os.getloadavg()
    t_start = time.time()
    log(f'inputs in {work}')
    prep_path = os.path.join(work, 'prepare.json')
    if args.resume and os.path.exists(prep_path):
        # the same seed gives the same inputs and weights: keep those of the first start
        with open(prep_path) as f:
            prep = json.load(f)
    else:
        make_inputs(work, hafed_sizes, sorted(set(episode_sizes + ppo_pairs + ppo_alone)))
        prep = run_child(reference_cmd('prepare', work, ref, 0, 1, 1)[0], reference_cmd('prepare', work, ref, 0, 1, 1)[1], 'prepare')
        with open(prep_path, 'w') as f:
            json.dump(prep, f)
    if not any('openblas' in b for b in prep['blas']):
        sys.exit(f'torch uses {prep["blas"] or "an unknown BLAS"}, not OpenBLAS: the official code would run about 20x slower than it '
                 'does for its users. Install it: apt-get install -y libopenblas0-pthread')
    describe_machine(prep)
    log(machine_line())
    if 'ppo' in only and not args.report_only:
        for tag in ['warmup'] + [str(n) for n in ppo_pairs + ppo_alone]:
            if args.resume and os.path.exists(os.path.join(work, f'episodes_{tag}.json')):
                continue
            r = run_child(*ours_cmd('prepare-episodes', work, tag, 1), label=f'episodes {tag}')
            log(f'episodes N={tag}: {r["samples"]} steps, {r["changedRows"]} changed rows')

    # (workload, N, inner repetitions per process, contenders); a contender is ('ours', 1) or ('ref', threads)
    plan = []
    if 'gemm' in only:
        # the arithmetic under HAFED stage 1: the backends' matrix products alone, both at one thread
        # and ONNX Runtime's (MLAS) products, the kernels under createNativeStage1
        native_gemm = args.report_only or write_gemm_graphs(work)
        if not native_gemm:
            log('no onnx Python package (apt-get install -y python3-onnx): the gemm workload runs without ONNX Runtime')
        for n in hafed_sizes:
            plan.append(('gemm', n, 3, [('ours', 1)] + ([('native', 1)] if native_gemm else []) + [('ref', 1)]))
    if 'hafed' in only:
        for n in hafed_sizes:
            # sasha-wsi at 2 threads: stage 1 over this thread and one worker thread
            # and with stage 1 on ONNX Runtime's CPU kernels (createNativeStage1, one thread)
            plan.append(('hafed-train', n, 3, [('ours', t) for t in threads] + [('native', 1)] + [('ref', t) for t in threads]))
            plan.append(('hafed-infer', n, 3, [('ours', t) for t in threads] + [('native', 1)] + [('ref', t) for t in threads]))
    def ref_threads_at(n):
        return [t for t in threads if t == 1 or n <= args.two_threads_max_n]

    if 'episode' in only:
        for n in episode_sizes:
            # several slides per process below N = 10000, as in the slide loop of a cohort's evaluation
            plan.append(('episode', n, EPISODES_PER_PROCESS if n < 10000 else 1, [('ours', 1)] + [('ref', t) for t in ref_threads_at(n)]))
    if 'ppo' in only:
        for n in ppo_pairs:
            heavy = n >= 2000
            ref_threads = [] if heavy and args.skip_heavy else [1] if heavy else ref_threads_at(n)
            plan.append(('ppo', n, 1, [('ours', 1)] + [('ref', t) for t in ref_threads]))
        for n in ppo_alone:
            plan.append(('ppo', n, 1, [('ours', 1)]))

    # Every run is appended to WORK/runs.jsonl as it ends, so that a cut-short run keeps its figures (--resume).
    raw_path = os.path.join(work, 'runs.jsonl')
    done = {}
    if args.resume and os.path.exists(raw_path):
        with open(raw_path) as f:
            for line in f:
                rec = json.loads(line)
                done[(rec['task'], rec['n'], rec['who'], rec['threads'], rec['round'])] = rec['result']
        log(f'resuming: {len(done)} runs already recorded in {raw_path}')
        _machine['resumed'] = len(done)
    elif os.path.exists(raw_path):
        os.remove(raw_path)

    results = {}
    for task, n, inner, contenders in plan:
        key = (task, n)
        results[key] = {c: [] for c in contenders}
        for rnd in range(args.reps):
            order = contenders[rnd % len(contenders):] + contenders[:rnd % len(contenders)]
            for who, t in order:
                heavy_ref = who == 'ref' and task == 'ppo' and n >= 2000
                if heavy_ref and rnd > 0:
                    continue  # about 11 GB and 500 s: one run
                long_run = (who == 'ref' and ((task == 'episode' and n >= 10000) or (task == 'ppo' and n >= 1000))) or (
                    who == 'ours' and task == 'ppo' and n >= 10000)
                if long_run and args.long_reps is not None and rnd >= args.long_reps:
                    continue
                if heavy_ref:
                    avail = mem_available_gb()
                    if avail < 14:
                        log(f'skipping the official PPO update at N={n}: {avail:.1f} GB available, about 12 GB needed')
                        continue
                label = f'{task} N={n} {f"sasha-wsi {t}T" if who == "ours" else "sasha-wsi on onnxruntime-node" if who == "native" else f"official {t}T"} round {rnd + 1}'
                if (task, n, who, t, rnd) in done:
                    results[key][(who, t)].append(done[(task, n, who, t, rnd)])
                    continue
                if args.report_only:
                    continue
                cmd, env = ours_cmd(task, work, n, inner, t, native=who == 'native') if who in ('ours', 'native') else reference_cmd(task, work, ref, n, inner, t)
                r = run_child(cmd, env, label)
                results[key][(who, t)].append(r)
                with open(raw_path, 'a') as f:
                    f.write(json.dumps({'task': task, 'n': n, 'who': who, 'threads': t, 'round': rnd, 'result': r}) + '\n')
                log(f'{label}: {", ".join(fmt_s(s) for s in r["seconds"])} s (CPU {", ".join(fmt_s(s) for s in r["cpuSeconds"])}), '
                    f'RSS {mb(r["maxRssBytes"])} MB, load {r["loadStart"]:.1f}->{r["loadEnd"]:.1f}')

    load_end = os.getloadavg()
    minutes = (time.time() - t_start) / 60
    report(results, threads, load_start, load_end, minutes, commit, write, args)
    if not args.work and not args.resume:
        shutil.rmtree(work, ignore_errors=True)


def command_options():
    """The options of this run, with the directories left out."""
    out, argv = [], sys.argv[1:]
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ('--reference', '--work'):
            skip = True
            out.append(a + (' SASHA' if a == '--reference' else ' DIR'))
            continue
        out.append(a)
    return (' ' + ' '.join(out)) if out else ''


def report(results, threads, load_start, load_end, minutes, commit, write, args):
    def runs(task, n, who, t=1):
        return results.get((task, n), {}).get((who, t), [])

    def secs(task, n, who, t=1, cpu=False):
        return [s for r in runs(task, n, who, t) for s in r['cpuSeconds' if cpu else 'seconds']]

    def peak(task, n, who, t=1):
        rs = runs(task, n, who, t)
        return max(r['maxRssBytes'] for r in rs) if rs else float('nan')

    def ours_threads(task, n, t):
        """sasha-wsi's thread count compared with the official code at t threads (1 unless it ran at t)."""
        return t if runs(task, n, 'ours', t) else 1

    def speedup(task, n, t=1, ours_t=1, cpu=False, who='ours'):
        ours, ref = med(secs(task, n, who, ours_t, cpu)), med(secs(task, n, 'ref', t, cpu))
        return ref / ours if ours == ours and ref == ref else float('nan')

    def x(v):
        return 'n/a' if v != v else f'{v:.1f}x' if v < 100 else f'{v:.0f}x'

    def row(label, task, n, who, ot, t):
        """One line of the table: sasha-wsi (`who` at `ot` threads) against the official code at `t` threads."""
        o, rs = secs(task, n, who, ot), secs(task, n, 'ref', t)
        out = [label, n, f'{ot} / {t}', f'{fmt_s(med(o))} ({spread(o)}, {len(o)})', fmt_s(med(secs(task, n, who, ot, cpu=True))), mb(peak(task, n, who, ot))]
        if not rs:
            return out + ['not run', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a']
        return out + [f'{fmt_s(med(rs))} ({spread(rs)}, {len(rs)})', fmt_s(med(secs(task, n, 'ref', t, cpu=True))), mb(peak(task, n, 'ref', t)),
                      x(speedup(task, n, t, ot, who=who)), x(speedup(task, n, t, ot, cpu=True, who=who)), f'{peak(task, n, "ref", t) / peak(task, n, who, ot):.1f}x']

    sizes = sorted({n for (_task, n) in results})
    rows = []
    names = {'gemm': 'matrix products of HAFED stage 1', 'hafed-train': 'HAFED training step', 'hafed-infer': 'HAFED inference', 'episode': 'greedy episode', 'ppo': 'PPO update of one slide'}
    for task in ['gemm', 'hafed-train', 'hafed-infer', 'episode', 'ppo']:
        for n in sizes:
            if (task, n) not in results or not any(w == 'ref' for (w, _t) in results[(task, n)]):
                continue
            for t in threads:
                if not secs(task, n, 'ref', t) and t > 1:
                    continue
                rows.append(row(names[task], task, n, 'ours', ours_threads(task, n, t), t))
    for task in ['hafed-train', 'hafed-infer']:
        for n in sizes:
            if secs(task, n, 'native') and secs(task, n, 'ref', 1):
                rows.append(row(names[task] + ', stage 1 on onnxruntime-node', task, n, 'native', 1, 1))
    header = ['workload', 'N', 'threads (sasha-wsi / official)', 'sasha-wsi s (range, runs)', 'sasha-wsi CPU s', 'sasha-wsi peak RSS MB',
              'official s (range, runs)', 'official CPU s', 'official peak RSS MB', 'speed-up', 'speed-up in CPU s', 'RSS official / sasha-wsi']

    checks = []
    for (task, n), by in results.items():
        ours = by.get(('ours', 1), [])
        refs = [r for (who, _t), rs in by.items() if who == 'ref' for r in rs]
        if not ours or not refs:
            continue
        if task == 'hafed-infer':
            diff = max(abs(a - b) for r in refs for a, b in zip(ours[0]['check'], r['check']))
            checks.append([f'HAFED inference N={n}', f'max abs difference of the slide probabilities: {diff:.1e}'])
            native = by.get(('native', 1), [])
            if native:
                diff = max(abs(a - b) for r in refs for a, b in zip(native[0]['check'], r['check']))
                checks.append([f'HAFED inference N={n}, stage 1 on onnxruntime-node', f'max abs difference of the slide probabilities: {diff:.1e}'])
        elif task == 'episode':
            a = ours[0]['actions']
            same = []
            for r in refs:
                b = r['actions']
                first = next((i for i, (p, q) in enumerate(zip(a, b)) if p != q), None)
                same.append('identical' if first is None and len(a) == len(b) else f'first difference at step {first}')
            diff = max(abs(p - q) for r in refs for p, q in zip(ours[0]['check'], r['check']))
            checks.append([f'greedy episode N={n}', f'{len(a)} actions: {", ".join(sorted(set(same)))}; final probabilities differ by at most {diff:.1e}'])
        elif task == 'ppo':
            diff = max(abs(p - q) for r in refs for p, q in zip(ours[0]['oldValues'], r['oldValues']))
            checks.append([f'PPO update N={n}', f'{ours[0]["numSamples"]} samples, {ours[0]["numVersions"]} row versions; old values V_old(S_t) differ by at most {diff:.1e}'])

    gemm = []
    for n in sizes:
        ours, refs = runs('gemm', n, 'ours'), runs('gemm', n, 'ref')
        if ours and refs:
            flops = ours[0]['flops']
            o, r = med(secs('gemm', n, 'ours', cpu=True)), med(secs('gemm', n, 'ref', cpu=True))
            nat = med(secs('gemm', n, 'native', cpu=True)) if secs('gemm', n, 'native', cpu=True) else None
            gemm.append([n, n * 16, f'{flops / 1e9:.2f}', f'{flops / o / 1e9:.1f}', f'{flops / nat / 1e9:.1f}' if nat else '-',
                         f'{flops / r / 1e9:.1f}', f'{o / r:.2f}', f'{nat / r:.2f}' if nat else '-'])

    alone = [[n, fmt_s(med(secs('ppo', n, 'ours', cpu=True))), fmt_s(med(secs('ppo', n, 'ours'))), mb(peak('ppo', n, 'ours')),
              runs('ppo', n, 'ours')[0]['numSamples'], runs('ppo', n, 'ours')[0]['numVersions']]
             for n in sizes if ('ppo', n) in results and not any(w == 'ref' for (w, _t) in results[('ppo', n)]) and runs('ppo', n, 'ours')]

    loads = [r['loadStart'] for by in results.values() for rs in by.values() for r in rs] + [r['loadEnd'] for by in results.values() for rs in by.values() for r in rs]
    body = '\n'.join([
        'The official code (github.com/coglabiisc/SASHA at ' + commit + ') through its own modules on PyTorch, against sasha-wsi on its '
        'default backend (tfjs wasm, one thread), on the same random inputs (d = 384, k = 16; Z with 50 clusters of near-duplicate '
        'rows) and the same initial weights (the official modules\' seeded initialisation, copied into ours). Settings of the '
        'official CAMELYON16 configs: HAFED M1 = 1, M2 = 5, D = 128, STKIM 10/20 at 0.24, AdamW; f = 0.2, tau = 0.95, f_S '
        '1152 -> 768 -> 384; PPO with 2 episodes per slide, 4 epochs, AdamW lr 1e-5. Each run is a fresh process (its peak RSS '
        f'is its own); the contenders alternate within each of {args.reps} rounds. Times are wall-clock seconds, medians over '
        'the runs (range and number of runs in brackets); speed-up = official median / sasha-wsi median (> 1: sasha-wsi faster); '
        'CPU s = process CPU seconds of the timed part (all threads); "speed-up in CPU s" is the same ratio of the CPU-second medians, '
        'which load from other jobs on a shared machine disturbs less than wall-clock time (for one thread against one thread). sasha-wsi at 2 threads splits HAFED stage 1 over its thread and one '
        'worker thread (`createHafedWorkerPool(1)`); its other workloads run on one thread, compared with the official code at 1 and at 2. '
        'The rows "stage 1 on onnxruntime-node" run HAFED with `createNativeStage1({ threads: 1 })` (stage 1 as ONNX graphs on ONNX Runtime\'s CPU kernels, stage 2 on tfjs wasm). '
        f'HAFED rows time 3 steps per process after a warm-up step; episodes are timed after a warm-up episode on N = min(N, 1000), {EPISODES_PER_PROCESS} per process below N = 10000 (one process classifying several slides, as the official evaluation loop does) and one at N = 10000, '
        'an update after a warm-up update on N = 100. '
        'The official PPO update at N = 2000 (about 11 GB) ran once, at one thread; '
        + (f'the official greedy episode and PPO update ran at 2 threads up to N = {args.two_threads_max_n} only'
           if args.two_threads_max_n > 0 else 'the official greedy episode and PPO update ran at one thread only')
        + ' (on a loaded 2-core machine two threads slow it down many times over).'
        + (f' The long runs (official episode at N = 10000, official PPO update at N = 1000, ours at N >= 10000) ran {args.long_reps} '
           'time(s) each.' if args.long_reps is not None else ''),
        '',
        f'This script ran at nice {os.nice(0)}. Machine load (1-minute average, {_machine.get("short", "")} shared with other jobs): '
        + ('' if args.report_only else f'{load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end, ')
        + f'{min(loads):.1f}-{max(loads):.1f} at the starts and ends of the runs'
        + ('' if args.report_only else f'. Whole run: {minutes:.0f} min')
        + (f'; the tables were written with --report-only from the {_machine["resumed"]} runs recorded in WORK/runs.jsonl by the measuring run (the same options, without --report-only).' if args.report_only
           else f' after a restart with --resume, which kept the {_machine["resumed"]} runs recorded before it.' if _machine.get('resumed') else '.'),
        '',
        table(header, rows),
        '',
        'Both implementations computed the same thing:',
        '',
        table(['workload', 'check'], checks),
    ])
    if gemm:
        body += ('\n\nThe matrix products alone (`gemm` rows): HAFED stage 1 at N patches is two products over R = 16 N rows, '
                 '[R, 384] x [384, 256] for the gates and [384, R] x [R, 256] for the kernel gradient; the rest of its step is passes '
                 'over those rows. Throughput in GFLOP per CPU second, both at one thread:\n\n' + table(
                     ['N', 'R', 'GFLOP per step', 'sasha-wsi (tfjs wasm, XNNPACK) GFLOP/s', 'onnxruntime-node (MLAS) GFLOP/s',
                      'official (torch, OpenBLAS) GFLOP/s', 'CPU time wasm / official', 'CPU time onnxruntime-node / official'], gemm))
    if alone:
        body += '\n\nsasha-wsi alone (the official update does not fit in 24 GB beyond N of about 2700):\n\n' + table(
            ['PPO update N', 'CPU s', 'wall s', 'peak RSS MB', 'samples', 'row versions'], alone)
    summary = {
        'hafedTrainSpeedup1000': speedup('hafed-train', 1000, cpu=args.ratio_basis == 'cpu'),
        'hafedTrainSpeedup3000': speedup('hafed-train', 3000, cpu=args.ratio_basis == 'cpu'),
        'hafedInferSpeedup1000': speedup('hafed-infer', 1000, cpu=args.ratio_basis == 'cpu'),
        'hafedTrainSpeedupNative1000': speedup('hafed-train', 1000, cpu=args.ratio_basis == 'cpu', who='native'),
        'hafedTrainSpeedupNative3000': speedup('hafed-train', 3000, cpu=args.ratio_basis == 'cpu', who='native'),
        'hafedInferSpeedupNative1000': speedup('hafed-infer', 1000, cpu=args.ratio_basis == 'cpu', who='native'),
        'episodeSpeedup1000': speedup('episode', 1000, cpu=args.ratio_basis == 'cpu'),
        'episodeSpeedup3000': speedup('episode', 3000, cpu=args.ratio_basis == 'cpu'),
        'episodeSpeedup10000': speedup('episode', 10000, cpu=args.ratio_basis == 'cpu'),
        'ppoUpdateSpeedup1000': speedup('ppo', 1000, cpu=args.ratio_basis == 'cpu'),
        'ppoUpdateSpeedup2000': speedup('ppo', 2000, cpu=args.ratio_basis == 'cpu'),
        'ppoUpdateMemoryRatio2000': peak('ppo', 2000, 'ref') / peak('ppo', 2000, 'ours') if runs('ppo', 2000, 'ref') else float('nan'),
        'ppoUpdate10000Seconds': med(secs('ppo', 10000, 'ours', cpu=True)),
        'ppoUpdate20000Seconds': med(secs('ppo', 20000, 'ours', cpu=True)),
        'ppoUpdate20000PeakMB': peak('ppo', 20000, 'ours') / 2 ** 20 if runs('ppo', 20000, 'ours') else float('nan'),
        'machine': machine_line(),
        'date': datetime.date.today().isoformat(),
    }
    summary = {k: (round(v, 3) if isinstance(v, float) and v == v else None if isinstance(v, float) else v) for k, v in summary.items()}
    # the targets of the benchmark's acceptance, each against its measured figure
    targets = [
        ('HAFED training step, N = 1000, 1 thread', 'hafedTrainSpeedup1000', '>=', 1.0, 'x'),
        ('HAFED training step, N = 3000, 1 thread', 'hafedTrainSpeedup3000', '>=', 1.0, 'x'),
        ('HAFED inference, N = 1000, 1 thread', 'hafedInferSpeedup1000', '>=', 1.5, 'x'),
        ('the same three with stage 1 on onnxruntime-node: training N = 1000', 'hafedTrainSpeedupNative1000', '>=', 1.0, 'x'),
        ('training N = 3000', 'hafedTrainSpeedupNative3000', '>=', 1.0, 'x'),
        ('inference N = 1000', 'hafedInferSpeedupNative1000', '>=', 1.5, 'x'),
        ('greedy episode, N = 1000', 'episodeSpeedup1000', '>=', 15, 'x'),
        ('greedy episode, N = 3000', 'episodeSpeedup3000', '>=', 40, 'x'),
        ('greedy episode, N = 10000', 'episodeSpeedup10000', '>=', 100, 'x'),
        ('PPO update, N = 1000', 'ppoUpdateSpeedup1000', '>=', 50, 'x'),
        ('PPO update, N = 2000', 'ppoUpdateSpeedup2000', '>=', 100, 'x'),
        ('PPO update, N = 2000, peak RSS official / ours', 'ppoUpdateMemoryRatio2000', '>=', 20, 'x'),
        ('PPO update, N = 10000, sasha-wsi CPU s', 'ppoUpdate10000Seconds', '<=', 20, ' s'),
        ('PPO update, N = 20000, sasha-wsi CPU s', 'ppoUpdate20000Seconds', '<=', 90, ' s'),
        ('PPO update, N = 20000, sasha-wsi peak RSS MB', 'ppoUpdate20000PeakMB', '<', 2048, ' MB'),
    ]
    target_rows = []
    for label, key, op, bound, unit in targets:
        v = summary[key]
        verdict = 'not measured' if v is None else ('met' if (v >= bound if op == '>=' else v <= bound if op == '<=' else v < bound) else '**missed**')
        target_rows.append([label, f'{op} {bound:g}{unit}', 'n/a' if v is None else f'{v:g}{unit}', verdict])
    body += ('\n\nThe targets (speed-ups ' + ('in CPU seconds' if args.ratio_basis == 'cpu' else 'in wall-clock seconds') + ', official code at one thread):\n\n'
             + table(['target', 'bound', 'measured', ''], target_rows))
    print(body)
    print(json.dumps(summary, indent=2))
    if write:
        basis = 'in CPU seconds' if args.ratio_basis == 'cpu' else 'in wall-clock seconds'
        body += (f'\n\n`bench/vs_reference/summary.json` holds the ratios at one thread of the official code (speed-ups {basis}; '
                 '`ppoUpdateMemoryRatio2000` = official peak RSS / ours; `ppoUpdate*Seconds` are sasha-wsi CPU seconds; '
                 '`ppoUpdate20000PeakMB` its peak RSS).')
        write_results('vs-reference', 'sasha-wsi vs the official SASHA code, side by side',
                      f'nice -n {os.nice(0)} /usr/bin/python3 bench/vs_reference/run.py' + command_options(), body)
        with open(os.path.join(HERE, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=2)
            f.write('\n')


if __name__ == '__main__':
    main()
