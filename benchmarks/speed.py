"""Speed and memory of MMoERegressorClassifier against hand-written PyTorch and peers.

Every comparison runs both sides in this one process, alternating, after a warm-up, and
reports the median of paired ratios (ours / reference), so that a noisy shared machine
moves both sides alike.

    python benchmarks/speed.py            # full run, writes benchmarks/results/speed.md
    python benchmarks/speed.py --smoke    # seconds, for CI
    python benchmarks/speed.py --contended [--smoke]   # fit vs hand loop beside a busy
                                          # process; writes speed_contended.md
    python benchmarks/speed.py --step-rate [--smoke]   # (h), (k)-(m): ops per step, the
                                          # step's FLOP rate, fused Adam, fit times of the
                                          # defaults at 10k-1M rows; writes speed_step_rate.md
"""

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import skorch
import torch
from torch import nn

import sk_mmoe
from sk_mmoe import MMoERegressorClassifier
from sk_mmoe._network import BatchedMLP, MMoENetwork

# Run as a script (`python benchmarks/speed.py`) or imported as benchmarks.speed by tests.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _step_costs  # noqa: E402

FULL = dict(rows=100_000, features=500, epochs=5, pairs=5, batch=512,
            expert_counts=[1, 2, 4, 8, 16, 32, 64], scaling_rows=[10_000, 100_000, 1_000_000],
            memory_rows=1_000_000)
SMOKE = dict(rows=1_000, features=20, epochs=1, pairs=1, batch=512,
             expert_counts=[1, 2], scaling_rows=[1_000], memory_rows=5_000)
EXPERTS, EXPERT_SIZES, TOWERS = 8, (128, 64), (32,)


def make_data(rows, features, seed=0):
    """Three tasks: regression, binary and 5-class, as float32 features."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features), dtype=np.float32)
    signal = X[:, :3].astype(np.float64)
    y = np.empty((rows, 3), dtype=np.float64)
    y[:, 0] = signal[:, 0] + 0.1 * rng.standard_normal(rows)
    y[:, 1] = signal[:, 1] > 0
    y[:, 2] = np.digitize(signal[:, 2], [-1.0, -0.3, 0.3, 1.0])
    return X, y


def estimator(batch, epochs, n_experts=EXPERTS):
    return MMoERegressorClassifier(
        tasks=["regression", "binary", "multiclass"], n_experts=n_experts,
        expert_layer_sizes=EXPERT_SIZES, tower_layer_sizes=TOWERS, max_epochs=epochs,
        batch_size=batch, lr=1e-3, random_state=0,
        # The hand loop's work: every row trains, raw features straight into the experts.
        early_stopping=False, numeric_embedding=None,
    )


def hand_written_fit(X, y, batch, epochs, n_experts=EXPERTS):
    """The loop a PyTorch user would write: randperm slicing, Adam, three losses."""
    torch.manual_seed(0)
    X_t = torch.from_numpy(X)
    y_t = torch.from_numpy(y.astype(np.float32))
    y_t[:, 0] = (y_t[:, 0] - y_t[:, 0].mean()) / y_t[:, 0].std()
    module = MMoENetwork(X.shape[1], [1, 1, 5], n_experts, EXPERT_SIZES, (), TOWERS, 0.1)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(X_t))
        for start in range(0, len(X_t), batch):
            index = order[start:start + batch]
            xb, yb = X_t[index], y_t[index]
            out = module(xb)
            loss = (
                nn.functional.mse_loss(out[:, 0, 0], yb[:, 0])
                + nn.functional.binary_cross_entropy_with_logits(out[:, 1, 0], yb[:, 1])
                + nn.functional.cross_entropy(out[:, 2, :5], yb[:, 2].long())
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return module


def hand_written_predict(module, X, batch):
    module.eval()
    X_t = torch.from_numpy(X)
    with torch.no_grad():
        return torch.cat([module(X_t[s:s + batch]) for s in range(0, len(X_t), batch)]).numpy()


def paired(ours, reference, pairs):
    """Median of ours/reference over alternating pairs, after one warm-up of each."""
    ours(), reference()
    ratios, ours_s, ref_s = [], [], []
    for _ in range(pairs):
        gc.collect()
        t0 = time.perf_counter(); ours(); t1 = time.perf_counter()
        reference(); t2 = time.perf_counter()
        ours_s.append(t1 - t0); ref_s.append(t2 - t1); ratios.append((t1 - t0) / (t2 - t1))
    return dict(ratio=statistics.median(ratios), ours_s=statistics.median(ours_s),
                reference_s=statistics.median(ref_s), pairs=pairs)


def bench_fit_and_predict(cfg):
    X, y = make_data(cfg["rows"], cfg["features"])
    fit = paired(lambda: estimator(cfg["batch"], cfg["epochs"]).fit(X, y),
                 lambda: hand_written_fit(X, y, cfg["batch"], cfg["epochs"]), cfg["pairs"])
    model = estimator(cfg["batch"], 1).fit(X, y)
    module = model.module_
    predict = paired(lambda: model.predict(X),
                     lambda: hand_written_predict(module, X, cfg["batch"]), cfg["pairs"])
    return fit, predict, X, y


def bench_sklearn_mlp(cfg, X, y):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    def mlps():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            kw = dict(hidden_layer_sizes=EXPERT_SIZES, batch_size=cfg["batch"], max_iter=cfg["epochs"],
                      random_state=0, tol=0, n_iter_no_change=cfg["epochs"] + 1)
            MLPRegressor(**kw).fit(X, y[:, 0])
            MLPClassifier(**kw).fit(X, y[:, 1])
            MLPClassifier(**kw).fit(X, y[:, 2])

    return paired(lambda: estimator(cfg["batch"], cfg["epochs"]).fit(X, y), mlps, cfg["pairs"])


class LoopExperts(nn.Module):
    """Experts as a Python list of MLPs, the way peer libraries build them."""

    def __init__(self, n_experts, n_features, sizes):
        super().__init__()
        def mlp():
            layers, n_in = [], n_features
            for n_out in sizes:
                layers += [nn.Linear(n_in, n_out), nn.ReLU()]
                n_in = n_out
            return nn.Sequential(*layers)
        self.experts = nn.ModuleList(mlp() for _ in range(n_experts))

    def forward(self, x):
        return torch.stack([expert(x) for expert in self.experts], dim=1)


def epoch_time(module, X_t, batch):
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    start = time.perf_counter()
    for s in range(0, len(X_t), batch):
        out = module(X_t[s:s + batch])
        loss = out.square().mean()
        optimizer.zero_grad(); loss.backward(); optimizer.step()
    return time.perf_counter() - start


def bench_scaling(cfg):
    rows = []
    X_t = torch.from_numpy(make_data(min(cfg["rows"], 20_000), cfg["features"])[0])
    for n in cfg["expert_counts"]:
        batched = BatchedMLP(n, X_t.shape[1], EXPERT_SIZES, activate_last=True)
        loop = LoopExperts(n, X_t.shape[1], EXPERT_SIZES)
        r = paired(lambda: epoch_time(batched, X_t, cfg["batch"]),
                   lambda: epoch_time(loop, X_t, cfg["batch"]), cfg["pairs"])
        rows.append(dict(n_experts=n, rows=len(X_t), batched_s=r["ours_s"], loop_s=r["reference_s"],
                         batched_over_loop=r["ratio"]))
    by_rows = []
    for n_rows in cfg["scaling_rows"]:
        X, y = make_data(n_rows, 100)
        model = estimator(cfg["batch"], 1)
        start = time.perf_counter(); model.fit(X, y); seconds = time.perf_counter() - start
        by_rows.append(dict(rows=n_rows, features=100, epoch_s=seconds, rows_per_s=n_rows / seconds))
        del X, y, model
        gc.collect()
    return rows, by_rows


MEMORY_CHILD = """
import sys
sys.path.insert(0, {root!r})
from benchmarks.speed import make_data, estimator

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))

X, y = make_data({rows}, 100)
# Reset the peak-RSS mark, so that only what fit allocates beyond the held data counts.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS:")
estimator(4096, 1).fit(X, y)
print(base, status("VmHWM:"), X.nbytes)
"""


def bench_memory(cfg):
    """Peak resident memory of one fit, in a fresh process, beyond the data already held.

    Linux only: it resets the peak-RSS mark (``/proc/self/clear_refs``) after the data
    are made, then reads the peak (``VmHWM``) after ``fit``.
    """
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD.format(root=root, rows=cfg["memory_rows"])],
                         capture_output=True, text=True, check=True).stdout.split()
    base_kb, peak_kb, x_bytes = map(int, out)
    extra = (peak_kb - base_kb) * 1024
    return dict(rows=cfg["memory_rows"], features=100, X_mb=x_bytes / 2**20,
                rss_before_fit_mb=base_kb / 1024, peak_rss_during_fit_mb=peak_kb / 1024,
                fit_extra_mb=extra / 2**20, fit_extra_in_copies_of_X=extra / x_bytes)


def flops_per_row(features, n_experts=EXPERTS, tasks=3, max_out=5):
    """Multiply-adds x 2 of one forward pass for one row (matmuls only)."""
    sizes = [features, *EXPERT_SIZES]
    macs = sum(a * b for a, b in zip(sizes, sizes[1:])) * n_experts
    macs += features * n_experts * tasks                 # gates
    macs += n_experts * EXPERT_SIZES[-1] * tasks        # mixture
    macs += EXPERT_SIZES[-1] * TOWERS[0] * tasks + TOWERS[0] * max_out * tasks
    return 2 * macs


def bench_efficiency(cfg, fit_result):
    n = 2048 if cfg is FULL else 512
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter(); reps = 10
    for _ in range(reps):
        torch.mm(a, b)
    peak = 2 * n**3 * reps / (time.perf_counter() - start)
    # Training does the forward pass and a backward pass of about twice its cost.
    train_flops = 3 * flops_per_row(cfg["features"]) * cfg["rows"] * cfg["epochs"]
    achieved = train_flops / fit_result["ours_s"]
    return dict(mm_gflops=peak / 1e9, fit_gflops=achieved / 1e9, fraction_of_mm=achieved / peak)


def rechub_fit(X, y2, batch, epochs, workdir):
    """torch-rechub's MMoE trained its own way: dict features, DataLoader, MTLTrainer."""
    import contextlib
    import io

    from torch_rechub.basic.features import DenseFeature
    from torch_rechub.models.multi_task import MMOE
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator

    torch.manual_seed(0)
    kinds = ["regression", "classification"]
    model = MMOE([DenseFeature("x", embed_dim=X.shape[1])], kinds, EXPERTS,
                 {"dims": list(EXPERT_SIZES)}, [{"dims": list(TOWERS)}] * 2)
    # Its trainer validates every epoch; one batch of validation rows keeps that cost small.
    valid = {"x": X[:batch]}, y2[:batch]
    train, val, _ = DataGenerator({"x": X}, y2).generate_dataloader(
        x_val=valid[0], y_val=valid[1], x_test=valid[0], y_test=valid[1], batch_size=batch)
    trainer = MTLTrainer(model, kinds, optimizer_params={"lr": 1e-3, "weight_decay": 0.0},
                         n_epoch=epochs, earlystop_patience=epochs + 1, model_path=workdir)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        trainer.fit(train, val)


def bench_rechub(cfg, X, y):
    """(c): both sides on the regression and binary tasks (torch-rechub has no multiclass)."""
    try:
        import torch_rechub  # noqa: F401
    except ImportError:
        return None
    import tempfile

    y2 = y[:, :2].astype(np.float32)
    ours = MMoERegressorClassifier(
        tasks=["regression", "binary"], n_experts=EXPERTS, expert_layer_sizes=EXPERT_SIZES,
        tower_layer_sizes=TOWERS, max_epochs=cfg["epochs"], batch_size=cfg["batch"], random_state=0)
    with tempfile.TemporaryDirectory() as workdir:
        return paired(lambda: ours.fit(X, y2), lambda: rechub_fit(X, y2, cfg["batch"], cfg["epochs"], workdir),
                      cfg["pairs"])


def header(cfg, seconds):
    return [
        f"- command: `python benchmarks/speed.py{' --smoke' if cfg is SMOKE else ''}`",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, "
        f"torch threads {torch.get_num_threads()}, no GPU",
        f"- versions: sk_mmoe {sk_mmoe.__version__}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, skorch {skorch.__version__}",
        f"- wall time: {seconds:.0f} s",
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--contended", action="store_true",
                        help="only (h) and (j): fit vs hand loop while another process is busy")
    parser.add_argument("--step-rate", action="store_true",
                        help="only (h) and (k)-(m): ops and FLOP rate per step, fused Adam, fit times")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    cfg = SMOKE if args.smoke else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.contended:
        return contended_main(args, out, start)
    if args.step_rate:
        return step_rate_main(args, out, start)
    fit, predict, X, y = bench_fit_and_predict(cfg)
    mlp = bench_sklearn_mlp(cfg, X, y)
    rechub = bench_rechub(cfg, X, y)
    del X, y
    experts, by_rows = bench_scaling(cfg)
    memory = bench_memory(cfg)
    efficiency = bench_efficiency(cfg, fit)
    ops = _step_costs.ops_per_step(make_data, estimator, hand_written_fit)
    first_fit = _step_costs.first_fit_cost()
    step_cfg = _step_costs.STEP_RATE_SMOKE if args.smoke else _step_costs.STEP_RATE
    step_rate = _step_costs.step_flop_rate(step_cfg, make_data, n=2048 if cfg is FULL else 512)
    results = dict(config={k: v for k, v in cfg.items()}, fit=fit, predict=predict, sklearn_mlp=mlp,
                   experts=experts, rows=by_rows, memory=memory, efficiency=efficiency,
                   rechub=rechub, ops_per_step=ops, first_fit=first_fit,
                   step_rate=dict(step_rate, config=step_cfg))
    seconds = time.perf_counter() - start
    name = "speed_smoke" if args.smoke else "speed"
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
    (out / f"{name}.md").write_text(report(cfg, results, seconds))
    return results


def contended_main(args, out, start):
    cfg = _step_costs.CONTENDED_SMOKE if args.smoke else _step_costs.CONTENDED
    ops = _step_costs.ops_per_step(make_data, estimator, hand_written_fit)
    contended = [_step_costs.contended_fit(cfg, make_data, estimator, hand_written_fit, paired, threads)
                 for threads in sorted({os.cpu_count(), 1}, reverse=True)]
    results = dict(config=cfg, ops_per_step=ops, contended=contended)
    intro = [
        "# `fit` beside a busy process",
        "",
        f"Data: {cfg['rows']:,} rows x {cfg['features']} features, 3 tasks, {cfg['n_experts']} experts "
        f"x {EXPERT_SIZES}, batch {cfg['batch']}, {cfg['epochs']} epochs; another process spins on "
        f"one core throughout. Median of {cfg['pairs']} paired, alternating runs.",
        "",
    ]
    return _write_part(args, out, start, "contended", results, intro,
                       _step_costs.report_lines(ops=ops, contended=contended))


def _write_part(args, out, start, mode, results, intro, body):
    """``speed_{mode}.json`` and ``.md`` (``_smoke`` with --smoke) for one --mode run."""
    cfg = results["config"]
    seconds = time.perf_counter() - start
    name = f"speed_{mode}_smoke" if args.smoke else f"speed_{mode}"
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
    flag = mode.replace("_", "-")
    lines = [
        *intro,
        f"- command: `python benchmarks/speed.py --{flag}{' --smoke' if args.smoke else ''}`",
        *header(cfg, seconds)[1:],
        "",
        *body,
    ]
    (out / f"{name}.md").write_text("\n".join(lines))
    return results


def step_rate_main(args, out, start):
    torch.set_num_threads(1)
    cfg = _step_costs.STEP_RATE_SMOKE if args.smoke else _step_costs.STEP_RATE
    ops = _step_costs.ops_per_step(make_data, estimator, hand_written_fit)
    step_rate = _step_costs.step_flop_rate(cfg, make_data, n=512 if args.smoke else 2048)
    fused_cfg = _step_costs.FUSED_SMOKE if args.smoke else _step_costs.FUSED
    fused = _step_costs.fused_adam_fit(fused_cfg, make_data, paired)
    wait_cfg = _step_costs.WAIT_SMOKE if args.smoke else _step_costs.WAIT
    wait = _step_costs.user_wait(wait_cfg, make_data)
    levers_cfg = _step_costs.STEP_LEVERS_SMOKE if args.smoke else _step_costs.STEP_LEVERS
    levers = _step_costs.step_levers(levers_cfg, make_data, paired)
    results = dict(config=cfg, ops_per_step=ops, step_rate=step_rate, fused=fused, wait=wait,
                   levers=levers)
    intro = ["# The training step: torch ops, FLOP rate, fused Adam, fit times, compile", ""]
    return _write_part(args, out, start, "step_rate", results, intro, [
        *_step_costs.report_lines(ops=ops),
        *_step_costs.step_rate_lines(step_rate, cfg),
        *_step_costs.fused_lines(fused, fused_cfg),
        *_step_costs.wait_lines(wait, wait_cfg),
        *_step_costs.step_lever_lines(levers, levers_cfg),
    ])


def report(cfg, r, seconds):
    c = cfg
    lines = [
        "# Speed and memory",
        "",
        f"Data: {c['rows']:,} rows x {c['features']} float32 features, 3 tasks (regression, binary, "
        f"5-class); {EXPERTS} experts x {EXPERT_SIZES}, towers {TOWERS}, batch {c['batch']}, "
        f"{c['epochs']} epochs, Adam. Ratios are ours / reference, median of {c['pairs']} paired, "
        "alternating runs after a warm-up (below 1 means we are faster).",
        "",
        *header(cfg, seconds),
        "",
        "| comparison | ours (s) | reference (s) | ratio | target |",
        "|---|---|---|---|---|",
        f"| (a) `fit` vs hand-written PyTorch loop | {r['fit']['ours_s']:.2f} | {r['fit']['reference_s']:.2f} | "
        f"{r['fit']['ratio']:.3f} | <= 1.10: {'met' if r['fit']['ratio'] <= 1.10 else 'NOT met'} |",
        f"| (b) `predict` vs hand-written no_grad forward | {r['predict']['ours_s']:.3f} | "
        f"{r['predict']['reference_s']:.3f} | {r['predict']['ratio']:.3f} | <= 1.10: "
        f"{'met' if r['predict']['ratio'] <= 1.10 else 'NOT met'} |",
        f"| (d) `fit` vs 3 x scikit-learn MLP (one per task, hidden {EXPERT_SIZES}) | "
        f"{r['sklearn_mlp']['ours_s']:.2f} | {r['sklearn_mlp']['reference_s']:.2f} | "
        f"{r['sklearn_mlp']['ratio']:.3f} | measured |",
        "",
        rechub_line(r["rechub"]),
        "",
        "## (e) Scaling",
        "",
        "Time of one training epoch of the experts alone, batched (one einsum per layer) against "
        "a Python loop over per-expert `nn.Sequential` MLPs:",
        "",
        "| n_experts | rows | batched (s) | loop (s) | batched / loop |",
        "|---|---|---|---|---|",
        *[f"| {e['n_experts']} | {e['rows']:,} | {e['batched_s']:.3f} | {e['loop_s']:.3f} | "
          f"{e['batched_over_loop']:.3f} |" for e in r["experts"]],
        "",
        "One epoch of `fit` (100 features) against the number of rows:",
        "",
        "| rows | epoch (s) | rows / s |",
        "|---|---|---|",
        *[f"| {e['rows']:,} | {e['epoch_s']:.2f} | {e['rows_per_s']:,.0f} |" for e in r["rows"]],
        "",
        "## (f) Peak memory",
        "",
        f"`fit` on {r['memory']['rows']:,} x 100 float32 (X = {r['memory']['X_mb']:.0f} MiB), one epoch, "
        f"in a fresh process: resident memory {r['memory']['rss_before_fit_mb']:.0f} MiB before `fit` "
        f"(interpreter, libraries, X and y), peak {r['memory']['peak_rss_during_fit_mb']:.0f} MiB during "
        f"it: `fit` added {r['memory']['fit_extra_mb']:.0f} MiB = "
        f"{r['memory']['fit_extra_in_copies_of_X']:.2f} copies of X, so X is held "
        f"{1 + r['memory']['fit_extra_in_copies_of_X']:.2f} times at the peak (target: at most about 2).",
        "",
        "## (g) Efficiency",
        "",
        f"A large `torch.mm` reaches {r['efficiency']['mm_gflops']:.1f} GFLOP/s here; `fit` in (a) "
        f"achieved {r['efficiency']['fit_gflops']:.1f} GFLOP/s of matmul work (forward + backward "
        f"counted as 3x the forward's multiply-adds x 2) = {r['efficiency']['fraction_of_mm']:.1%} of it.",
        "",
        *_step_costs.report_lines(ops=r["ops_per_step"], first_fit=r["first_fit"]),
        *_step_costs.step_rate_lines(r["step_rate"], r["step_rate"]["config"]),
    ]
    return "\n".join(lines)


def rechub_line(result):
    if result is None:
        return "(c) torch-rechub: not installed (`pip install torch-rechub`), not measured."
    return (
        f"(c) vs torch-rechub 0.9 `MMOE` + `MTLTrainer`, on the regression and binary tasks only "
        f"(it has no multiclass task), same sizes, its own data path (dict features, DataLoader) "
        f"and its own architecture details (BatchNorm in every MLP layer; one validation batch per "
        f"epoch): ours {result['ours_s']:.2f} s, torch-rechub {result['reference_s']:.2f} s, ratio "
        f"{result['ratio']:.3f} = {1 / result['ratio']:.2f}x faster (target: at least 2x: "
        f"{'met' if result['ratio'] <= 0.5 else 'NOT met'})."
    )


if __name__ == "__main__":
    main()
