"""Costs beyond the matmuls: torch ops per training step, the first fit in a process, and
``fit`` against a hand loop while another process keeps a core busy.

Used by ``benchmarks/speed.py`` (``--contended`` for the last; ``--smoke`` for seconds).
"""

import collections
import subprocess
import sys
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
