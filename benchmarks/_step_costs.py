"""Costs beyond the matmuls: torch ops per training step, the first fit in a process, and
``fit`` against a hand loop while another process keeps a core busy.

Used by ``benchmarks/speed.py`` (``--contended`` for the last; ``--smoke`` for seconds).
"""

import collections
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = str(Path(__file__).resolve().parents[1])

# The contended case: 60k x 200, 6 experts, 3 epochs, torch's default threads.
CONTENDED = dict(rows=60_000, features=200, n_experts=6, epochs=3, batch=256, pairs=5)
CONTENDED_SMOKE = dict(rows=512, features=20, n_experts=2, epochs=1, batch=256, pairs=1)


def top_level_ops(action):
    """Count the aten operators ``action`` dispatches, outermost calls only."""
    action()  # warm-up: lazy initialisation must not count
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        action()
    counts = collections.Counter()
    for event in prof.events():
        parent = event.cpu_parent
        if event.name.startswith("aten::") and not (parent and parent.name.startswith("aten::")):
            counts[event.name] += 1
    return counts


def ops_per_step(make_data, estimator, hand_written_fit, rows=2048, batch=512):
    """Top-level torch ops per training step of ``fit`` and of the hand loop.

    A count, not a time: it is the same on a quiet or a busy machine, and every op is a
    point where torch's threads meet, which is what a busy machine makes expensive.
    """
    X, y = make_data(rows, 50)
    steps = -(-rows // batch)
    # A fit of two epochs minus a fit of one: the per-fit set-up cancels out, what stays
    # is one epoch's steps (and the per-epoch callbacks).
    ours = top_level_ops(lambda: estimator(batch, 2).fit(X, y))
    ours.subtract(top_level_ops(lambda: estimator(batch, 1).fit(X, y)))
    hand = top_level_ops(lambda: hand_written_fit(X, y, batch, 2))
    hand.subtract(top_level_ops(lambda: hand_written_fit(X, y, batch, 1)))
    extra = {name: (ours[name] - hand[name]) / steps for name in set(ours) | set(hand)}
    extra = dict(sorted(((k, v) for k, v in extra.items() if v), key=lambda kv: -abs(kv[1])))
    return dict(ours=sum(ours.values()) / steps, hand=sum(hand.values()) / steps,
                ratio=sum(ours.values()) / sum(hand.values()), extra_by_op=extra)


FIRST_FIT_CHILD = """
import sys, time
start = time.perf_counter()
import numpy as np
import torch
torch.set_num_threads(1)
sys.path.insert(0, {root!r})
from sk_mmoe import MMoERegressorClassifier
imported = time.perf_counter()
X = np.random.RandomState(0).normal(size=(200, 5)).astype(np.float32)
dynamo_before = "torch._dynamo" in sys.modules
times = []
for _ in range(2):
    t0 = time.perf_counter()
    MMoERegressorClassifier(n_experts=2, expert_layer_sizes=(8,), max_epochs=2, random_state=0).fit(X, X[:, 0])
    times.append(time.perf_counter() - t0)
print(imported - start, times[0], times[1], int(dynamo_before), int("torch._dynamo" in sys.modules))
"""


def first_fit_cost():
    """A fresh process: cold import, then the first and the second fit of a tiny model."""
    out = subprocess.run([sys.executable, "-c", FIRST_FIT_CHILD.format(root=ROOT)],
                         capture_output=True, text=True, check=True).stdout.split()
    import_s, first_s, second_s = map(float, out[:3])
    return dict(import_s=import_s, first_fit_s=first_s, second_fit_s=second_s,
                dynamo_loaded_before_fit=bool(int(out[3])), dynamo_loaded_by_fit=bool(int(out[4])))


@contextmanager
def busy_process():
    """Another process spinning on one core for the duration of the block."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def contended_fit(cfg, make_data, estimator, hand_written_fit, paired, threads):
    """Paired fit / hand-loop ratio with ``threads`` torch threads beside a busy process."""
    X, y = make_data(cfg["rows"], cfg["features"])
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with busy_process():
            result = paired(
                lambda: estimator(cfg["batch"], cfg["epochs"], cfg["n_experts"]).fit(X, y),
                lambda: hand_written_fit(X, y, cfg["batch"], cfg["epochs"], cfg["n_experts"]),
                cfg["pairs"],
            )
    finally:
        torch.set_num_threads(previous)
    return dict(result, threads=threads)


def report_lines(ops=None, first_fit=None, contended=None):
    lines = []
    if ops is not None:
        top = ", ".join(f"{name} {count:+.2f}" for name, count in list(ops["extra_by_op"].items())[:8])
        lines += [
            "## (h) Torch ops per training step",
            "",
            f"Top-level aten ops per step (profiler count, not time): `fit` {ops['ours']:.1f}, "
            f"hand loop {ops['hand']:.1f}, ratio {ops['ratio']:.3f}. Largest differences per "
            f"step: {top}.",
            "",
        ]
    if first_fit is not None:
        lines += [
            "## (i) First fit in a process",
            "",
            f"Fresh process: `import sk_mmoe` {first_fit['import_s']:.2f} s, first `fit` of a tiny "
            f"model {first_fit['first_fit_s']:.2f} s, second {first_fit['second_fit_s']:.2f} s. "
            f"torch._dynamo loaded by the first fit: {first_fit['dynamo_loaded_by_fit']} (every "
            "torch optimizer's `add_param_group` imports it on first use).",
            "",
        ]
    if contended:
        lines += [
            "## (j) `fit` vs hand loop beside a busy process",
            "",
            "| torch threads | ours (s) | hand loop (s) | ratio |",
            "|---|---|---|---|",
            *[f"| {r['threads']} | {r['ours_s']:.2f} | {r['reference_s']:.2f} | {r['ratio']:.3f} |"
              for r in contended],
            "",
        ]
    return lines


# Issue 19's profile: the default model on a narrow table (6 numeric columns, 3 tasks).
STEP_RATE = dict(rows=50_000, features=6, batches=(256, 1024, 4096), steps=30)
STEP_RATE_SMOKE = dict(rows=2_000, features=6, batches=(256, 1024), steps=2)


def matmul_gflops(n=2048, reps=10):
    """GFLOP/s of a large square ``torch.mm`` on this process's torch threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def fitted_step(X, y, batch, **params):
    """A model (the defaults, but for ``params``) after one epoch at ``batch`` rows, one
    training batch of ``X``, and the matmul FLOPs of a step on it (after a warm-up)."""
    from torch.utils.flop_counter import FlopCounterMode

    from sk_mmoe import MMoERegressorClassifier
    from sk_mmoe._fit_data import training_dataset

    model = MMoERegressorClassifier(tasks=["regression", "binary", "multiclass"], max_epochs=1,
                                    batch_size=batch, early_stopping=False, random_state=0,
                                    **params)
    # Enough rows for the defaults' piecewise-linear embedding (from 1,000 rows).
    model.fit(X[:max(2 * batch, 2_000)], y[:max(2 * batch, 2_000)])
    dataset = training_dataset(model, X[:batch], y[:batch], None, reset=False)[0]
    batch_tensors = next(iter(model.get_iterator(dataset, training=True)))
    model.train_step(batch_tensors)  # warm-up
    with FlopCounterMode(display=False) as counter:
        model.train_step(batch_tensors)
    return model, batch_tensors, counter.get_total_flops()


def step_flop_rate(cfg, make_data, n=2048):
    """The default model's training step (forward, loss, backward, Adam) in GFLOP/s,
    against a large matmul's, at the default batch and the largest one.

    FLOPs are counted by torch's ``FlopCounterMode`` over one step (matmuls, forward and
    backward); the time is the median of ``steps`` steps of ``fit``'s own ``train_step``.
    """
    X, y = make_data(cfg["rows"], cfg["features"])
    peak = matmul_gflops(n)
    rows = []
    for batch in cfg["batches"]:
        model, batch_tensors, flops = fitted_step(X, y, batch)
        times = []
        for _ in range(cfg["steps"]):
            start = time.perf_counter()
            model.train_step(batch_tensors)
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        rows.append(dict(batch=batch, step_ms=seconds * 1e3, mflop_per_step=flops / 1e6,
                         step_gflops=flops / seconds / 1e9, mm_gflops=peak,
                         fraction_of_mm=flops / seconds / 1e9 / peak,
                         numeric_embedding=model._feature_encoder.numeric_embedding_,
                         n_parameters=sum(p.numel() for p in model.module_.parameters())))
    return dict(rows=rows, mm_size=n)


def step_rate_lines(result, cfg):
    rows, n = result["rows"], result["mm_size"]
    return [
        "## (k) The training step against the hardware",
        "",
        f"The default model (3 tasks, {cfg['features']} numeric columns, "
        f"numeric_embedding={rows[0]['numeric_embedding']!r}, {rows[0]['n_parameters']:,} "
        "weights): one `train_step` (forward, loss, backward, fused Adam) on a fixed batch, "
        f"median of {cfg['steps']} steps; matmul FLOPs counted by torch's `FlopCounterMode` "
        f"(forward and backward). A large `torch.mm` ({n} x {n}) with the same torch threads "
        f"reaches {rows[0]['mm_gflops']:.1f} GFLOP/s.",
        "",
        "| batch | step (ms) | MFLOP per step | step GFLOP/s | share of large matmul |",
        "|---|---|---|---|---|",
        *[f"| {r['batch']:,} | {r['step_ms']:.2f} | {r['mflop_per_step']:.1f} | "
          f"{r['step_gflops']:.2f} | {r['fraction_of_mm']:.1%} |" for r in rows],
        "",
    ]


# The optimizer lever: the default model with fused Adam (the default) against Adam's
# per-tensor loop (the default before issue 19), fixed epochs, paired runs.
FUSED = dict(rows=50_000, features=6, epochs=2, pairs=5)
FUSED_SMOKE = dict(rows=1_000, features=6, epochs=1, pairs=1)


def fused_adam_fit(cfg, make_data, paired):
    """Paired fits: the optimizer lever at 256-row batches, then the batch lever."""
    from sk_mmoe import MMoERegressorClassifier

    X, y = make_data(cfg["rows"], cfg["features"])

    def fit(**params):
        MMoERegressorClassifier(tasks=["regression", "binary", "multiclass"], early_stopping=False,
                                max_epochs=cfg["epochs"], random_state=0, **params).fit(X, y)

    fused = paired(lambda: fit(batch_size=256), lambda: fit(batch_size=256, optimizer__foreach=False),
                   cfg["pairs"])
    batch = paired(fit, lambda: fit(batch_size=256), cfg["pairs"])
    return dict(fused, batch=batch)


def fused_lines(result, cfg):
    from sk_mmoe._training import resolve_batch_size

    batch = result["batch"]
    return [
        "## (l) The levers: fused Adam, larger batches",
        "",
        f"The default model on {cfg['rows']:,} rows x {cfg['features']} numeric columns, 3 "
        f"tasks, {cfg['epochs']} epochs without early stopping, median of {result['pairs']} "
        "paired runs:",
        "",
        f"- at 256-row batches, `fit` with fused Adam (the default) {result['ours_s']:.2f} s, "
        f"with Adam's per-tensor loop (`optimizer__foreach=False`, the default before) "
        f"{result['reference_s']:.2f} s: ratio {result['ratio']:.3f};",
        f"- `batch_size=\"auto\"` ({resolve_batch_size('auto', cfg['rows'])} rows at "
        f"{cfg['rows']:,} rows, lr raised to match) {batch['ours_s']:.2f} s against 256-row "
        f"batches (the cap before) {batch['reference_s']:.2f} s per {cfg['epochs']} epochs: "
        f"ratio {batch['ratio']:.3f} (the number of epochs early stopping takes stayed the "
        "same on census-income's validation rows).",
        "",
    ]


# What a user waits for: a default fit (early stopping on) at 10k and 100k rows, and one
# epoch at 1M rows (the number of epochs early stopping takes is read off the others).
WAIT = dict(features=20, full_fit_rows=(10_000, 100_000), epoch_rows=(1_000_000,))
WAIT_SMOKE = dict(features=20, full_fit_rows=(1_000,), epoch_rows=(2_000,))


def user_wait(cfg, make_data):
    from sk_mmoe import MMoERegressorClassifier

    rows = []
    for n in (*cfg["full_fit_rows"], *cfg["epoch_rows"]):
        X, y = make_data(n, cfg["features"])
        full = n in cfg["full_fit_rows"]
        model = MMoERegressorClassifier(tasks=["regression", "binary", "multiclass"], random_state=0,
                                        **({} if full else {"max_epochs": 1, "early_stopping": False}))
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
        rows.append(dict(rows=n, full_fit=full, seconds=seconds, epochs=model.n_iter_,
                         seconds_per_epoch=seconds / model.n_iter_))
        del X, y, model
    return rows


def wait_lines(rows, cfg):
    return [
        "## (m) What a user waits for",
        "",
        f"`MMoERegressorClassifier(tasks=[...])` at its defaults on synthetic tables of "
        f"{cfg['features']} numeric columns and 3 tasks (regression, binary, 5-class), one "
        "torch thread. Full fits stop early on their own; at the largest size one epoch "
        "without the hold-out was timed.",
        "",
        "| rows | timed | seconds | epochs | seconds per epoch |",
        "|---|---|---|---|---|",
        *[f"| {r['rows']:,} | {'full fit' if r['full_fit'] else 'one epoch'} | {r['seconds']:.1f} | "
          f"{r['epochs']} | {r['seconds_per_epoch']:.2f} |" for r in rows],
        "",
    ]


# Issue 19, third round: how much of a step the experts' matmuls are, and whether
# torch.compile buys time. The default model at 1,024-row batches (the "auto" batch from
# 32,768 rows) against the same model with a quarter of the experts' arithmetic.
STEP_LEVERS = dict(rows=50_000, features=6, batch=1024, steps=30, compile=True)
STEP_LEVERS_SMOKE = dict(rows=2_000, features=6, batch=256, steps=2, compile=False)
QUARTER_EXPERTS = {"n_experts": 4, "expert_layer_sizes": (32,)}


def step_levers(cfg, make_data, paired):
    """Step times of the default model and of one with a quarter of the experts'
    arithmetic; with ``cfg["compile"]``, the default network's forward and backward under
    ``torch.compile`` against eager, and the time of its first (compiling) call. Both
    comparisons are ``paired`` runs (alternating, medians)."""
    X, y = make_data(cfg["rows"], cfg["features"])
    default, default_batch, default_flops = fitted_step(X, y, cfg["batch"])
    small, small_batch, small_flops = fitted_step(X, y, cfg["batch"], **QUARTER_EXPERTS)
    steps = paired(lambda: default.train_step(default_batch),
                   lambda: small.train_step(small_batch), cfg["steps"])
    result = dict(default_ms=steps["ours_s"] * 1e3, default_mflop=default_flops / 1e6,
                  small_ms=steps["reference_s"] * 1e3, small_mflop=small_flops / 1e6,
                  compile=None)
    if not cfg["compile"]:
        return result
    module = default.module_
    X, y = default_batch

    def backward(net):
        default.get_loss(net(X), y, training=True).backward()

    compiled = torch.compile(module)
    start = time.perf_counter()
    backward(compiled)  # compiles
    compile_s = time.perf_counter() - start
    timed = paired(lambda: backward(compiled), lambda: backward(module), cfg["steps"])
    module.zero_grad()
    result["compile"] = dict(compile_s=compile_s, eager_ms=timed["reference_s"] * 1e3,
                             compiled_ms=timed["ours_s"] * 1e3)
    return result


def step_lever_lines(result, cfg):
    lines = [
        "## (n) Beyond the experts' matmuls; torch.compile",
        "",
        f"The default model ({cfg['features']} numeric columns, 3 tasks) and the same model "
        f"with a quarter of the experts' arithmetic ({QUARTER_EXPERTS}), one `train_step` "
        f"each on a fixed {cfg['batch']:,}-row batch, in turns, median of {cfg['steps']}:",
        "",
        "| model | matmul MFLOP per step | step (ms) |",
        "|---|---|---|",
        f"| defaults | {result['default_mflop']:.1f} | {result['default_ms']:.2f} |",
        f"| a quarter of the experts' arithmetic | {result['small_mflop']:.1f} | "
        f"{result['small_ms']:.2f} |",
        "",
        f"{result['small_mflop'] / result['default_mflop']:.2f}x the matmul work took "
        f"{result['small_ms'] / result['default_ms']:.2f}x the time.",
        "",
    ]
    compiled = result["compile"]
    if compiled is None:
        return lines + ["torch.compile: not run with `--smoke`.", ""]
    return lines + [
        f"`torch.compile(module)` (inductor, default mode, gcc on this machine) of the "
        f"default network: the first call took {compiled['compile_s']:.1f} s to compile; "
        f"then forward, loss and backward took {compiled['compiled_ms']:.2f} ms against "
        f"{compiled['eager_ms']:.2f} ms eager (ratio "
        f"{compiled['compiled_ms'] / compiled['eager_ms']:.2f}), same batch, in turns.",
        "",
    ]
