"""Data-parallel throughput: training rows per second of 1 vs 2 ranks (``distributed=True``,
torchrun, gloo on CPU), one torch thread each, on the same data and global batch.

With ``--threads``, also one process with 2 torch threads: the other way to spend two
cores (on a busy machine its threads wait for each other, and one run took minutes where
the others took seconds). The configurations run alternately, a few rounds, and each
ratio is the median of its rounds' ratios, so that load from other users of a shared
machine moves them alike.

    python benchmarks/scale.py            # writes benchmarks/results/scale.md
    python benchmarks/scale.py --smoke    # seconds, for CI
    python benchmarks/scale.py --device cuda   # on a GPU machine: 1 process, and 2 NCCL
                                               # ranks when it has 2 GPUs
    python benchmarks/scale.py --ids      # writes benchmarks/results/scale_ids.md: step
                                          # time with a 10**6-level vs a 100-level ID
                                          # column, 1 process and 2 gloo ranks

A worker (``--worker CONFIG``) fits once and prints its measurements as the last line.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

FULL = dict(rows=50_000, features=20, epochs=3, rounds=3, batch_sizes=[256, 1024, 4096, 16384])
SMOKE = dict(rows=4_000, features=5, epochs=1, rounds=1, batch_sizes=[256])
REPO = Path(__file__).resolve().parents[1]


def worker(config):
    """One fit, as configured; rank 0 prints the measurements as JSON."""
    import torch

    torch.set_num_threads(config["threads"])
    from speed import make_data

    from sk_mmoe import MMoERegressorClassifier

    X, y = make_data(config["rows"], config["features"])
    model = MMoERegressorClassifier(
        n_experts=8, expert_layer_sizes=(64,), tower_layer_sizes=(32,),
        batch_size=config["batch_size"], max_epochs=config["epochs"], early_stopping=False,
        random_state=0, device=config["device"], distributed=config["ranks"] > 1,
        tasks=["regression", "binary", "multiclass"],
    )
    started = time.perf_counter()
    model.fit(X, y)
    fit_s = time.perf_counter() - started
    if int(os.environ.get("RANK", 0)) == 0:
        epochs = model.history_[:, "dur"]
        # The first epoch carries one-off costs (DDP's first buckets, allocator growth).
        steady = epochs[1:] or epochs
        print(json.dumps({"fit_s": fit_s, "epoch_s": statistics.median(steady),
                          "rows_per_s": config["rows"] / statistics.median(steady)}))


IDS_FULL = dict(rows=1_000_000, levels=[100, 1_000_000], features=8, batch_size=1024,
                steps=200, rounds=4)
IDS_SMOKE = dict(rows=4_000, levels=[100, 4_000], features=4, batch_size=256, steps=10,
                 rounds=1)


def id_worker(config):
    """``config["steps"]`` training steps on numeric columns and an ID column of
    ``config["levels"]`` levels (each seen at fit); rank 0 prints the median step time as
    JSON."""
    import numpy as np
    import pandas as pd
    import torch
    from skorch.callbacks import Callback

    torch.set_num_threads(config["threads"])
    from sk_mmoe import MMoERegressorClassifier, _embeddings

    if config.get("dense_table"):
        _embeddings.MIN_SPARSE_TABLE_ROWS = 10**12  # the table as it trained before
    rng = np.random.RandomState(0)
    rows, levels = config["rows"], config["levels"]
    X = pd.DataFrame(rng.normal(size=(rows, config["features"])).astype(np.float32),
                     columns=[f"x{j}" for j in range(config["features"])])
    ids = rng.permutation(rows) % levels  # every level seen
    X["user"] = pd.Categorical(ids)
    effect = rng.normal(size=levels)
    y = X["x0"].to_numpy() + effect[ids] + rng.normal(size=rows)

    class StepTimes(Callback):
        def initialize(self):
            self.times = []
            return self

        def on_batch_end(self, net, training=False, **kwargs):
            if training:
                self.times.append(time.perf_counter())
                if len(self.times) > config["steps"]:
                    # skorch's way to end training early; every rank ends at this step.
                    raise KeyboardInterrupt

    steps = StepTimes()
    model = MMoERegressorClassifier(
        batch_size=config["batch_size"], max_epochs=1, early_stopping=False, random_state=0,
        distributed=config["ranks"] > 1, callbacks=[("step_times", steps)],
    )
    started = time.perf_counter()
    model.fit(X, y)
    if int(os.environ.get("RANK", 0)) == 0:
        durations = np.diff(steps.times)
        print(json.dumps({
            "step_s": float(np.median(durations)), "steps": len(steps.times),
            "fit_s": time.perf_counter() - started,
            "table_rows": int(model.module_.embedding.categories.num_embeddings),
            "sparse": bool(model.module_.embedding.categories.sparse),
        }))


def _worker_command(config):
    """The command and environment of one worker process fitting as ``config`` says."""
    env = dict(os.environ, OMP_NUM_THREADS=str(config["threads"]), PYTHONPATH=str(REPO))
    flag = "--id-worker" if "levels" in config else "--worker"
    return [sys.executable, str(Path(__file__).resolve()), flag, json.dumps(config)], env


def _launch(config):
    command, env = _worker_command(config)
    if config["ranks"] > 1:
        command[1:1] = ["-m", "torch.distributed.run", "--standalone",
                        "--nproc-per-node", str(config["ranks"])]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True,
                          cwd=REPO, timeout=3600)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def _launch_independent(config, copies=2):
    """``copies`` one-process fits at once, each on ``1/copies`` of the rows with
    ``1/copies`` of the batch, that never communicate: what the ranks of a data-parallel
    fit compute, without the exchange. Their rows per second add up to the most that
    ``copies`` ranks could reach on this machine."""
    share = dict(config, rows=config["rows"] // copies, batch_size=config["batch_size"] // copies)
    command, env = _worker_command(share)
    started = time.perf_counter()
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, cwd=REPO)
                 for _ in range(copies)]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=3600)
        if process.returncode:
            raise subprocess.CalledProcessError(process.returncode, command)
        results.append(json.loads(out.strip().splitlines()[-1]))
    return {"fit_s": max(r["fit_s"] for r in results),
            "epoch_s": max(r["epoch_s"] for r in results),
            "rows_per_s": sum(r["rows_per_s"] for r in results),
            "wall_s": time.perf_counter() - started}


INDEPENDENT = "2 processes, half the rows and batch each, no exchange (ceiling)"


def configurations(device, with_threads=False):
    """(label, ranks, threads per rank) to compare; the first is the reference."""
    import torch

    if device == "cuda":
        gpus = torch.cuda.device_count()
        return [("1 process, 1 GPU", 1, 1)] + (
            [("2 ranks (NCCL), 1 GPU each", 2, 1)] if gpus >= 2 else []
        )
    return [("1 process, 1 thread", 1, 1), ("2 ranks (gloo), 1 thread each", 2, 1),
            (INDEPENDENT, 1, 1)] + (
        [("1 process, 2 threads", 1, 2)] if with_threads else []
    )


def main(argv=None):
    parser = _common.parser(__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse_hidden())
    parser.add_argument("--id-worker", help=argparse_hidden())
    parser.add_argument("--ids", action="store_true",
                        help="step time with a 10**6-level vs a 100-level ID column instead")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", action="store_true",
                        help="also one process with 2 torch threads (CPU)")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    if args.id_worker:
        return id_worker(json.loads(args.id_worker))
    if args.ids:
        return id_steps(args, argv)
    sizes = SMOKE if args.smoke else FULL
    started = time.perf_counter()
    load_before = os.getloadavg()
    configs = configurations(args.device, args.threads)
    rows, results = [], {}
    for batch_size in sizes["batch_sizes"]:
        runs = {label: [] for label, _, _ in configs}
        for round_ in range(sizes["rounds"]):
            # Alternate the order between rounds so that drifting load is shared.
            order = configs if round_ % 2 == 0 else configs[::-1]
            for label, ranks, threads in order:
                config = dict(rows=sizes["rows"], features=sizes["features"],
                              epochs=sizes["epochs"] + 1, batch_size=batch_size,
                              ranks=ranks, threads=threads, device=args.device)
                launch = _launch_independent if label == INDEPENDENT else _launch
                runs[label].append(launch(config))
                _common.log(f"batch {batch_size}, {label}: {runs[label][-1]}")
        reference = runs[configs[0][0]]
        for label, _, _ in configs:
            ratios = [run["rows_per_s"] / ref["rows_per_s"]
                      for run, ref in zip(runs[label], reference)]
            results[(batch_size, label)] = statistics.median(ratios)
            rows.append([
                f"{batch_size:,}", label,
                f"{statistics.median(r['rows_per_s'] for r in runs[label]):,.0f}",
                f"{statistics.median(ratios):.2f}",
                " ".join(f"{r:.2f}" for r in ratios),
                f"{statistics.median(r['fit_s'] for r in runs[label]):.1f}",
                f"{statistics.median(r['wall_s'] for r in runs[label]):.1f}",
            ])
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    sections = [
        "# Data-parallel throughput: 1 vs 2 ranks\n\n"
        f"Data: {sizes['rows']:,} rows x {sizes['features']} float32 features, 3 tasks "
        "(regression, binary, 5-class), the default piecewise-linear embedding; 8 experts "
        "x (64,), towers (32,), Adam, early stopping off (all rows train). The same global "
        f"batch for every configuration; {sizes['epochs'] + 1} epochs per fit, rows per "
        "second from the median epoch after the first (fit's own `dur`), so process start, "
        "encoding and the DDP set-up are outside it (they are in 'fit' and 'wall'). "
        f"{sizes['rounds']} rounds, configurations alternating; 'vs 1 process' is the "
        "median of the rounds' ratios to the one-process, one-thread run of the same round. "
        "The 'ceiling' runs two ordinary one-process fits at once, each on half the rows "
        "with half the batch: the arithmetic of two ranks without their exchange, so the "
        "most that two ranks could reach on this machine (they share its memory bandwidth "
        "and caches, and each repeats the per-step work whose cost does not fall with the "
        "batch: Python, the optimizer step, small ops).",
        _common.markdown_table(
            ["global batch", "configuration", "rows / s", "vs 1 process", "per round",
             "fit (s)", "wall (s)"], rows),
        "The machine was shared with other users' processes while this ran (load average "
        f"over 1, 5, 15 min at the start: {', '.join(f'{x:.1f}' for x in load_before)}; at the "
        f"end: {', '.join(f'{x:.1f}' for x in load_after)}, on {os.cpu_count()} cores): absolute "
        "rows per second move with that load, hence the ratios within each round.",
        _common.provenance(
            _common.command_line("scale.py", argv), elapsed,
            threads="torch threads as each configuration says (OMP_NUM_THREADS and "
                    "torch.set_num_threads), each fit in fresh processes",
        ),
    ]
    _common.write_report(args, "scale", sections)
    return {f"{batch}:{label}": ratio for (batch, label), ratio in results.items()}


def id_steps(args, argv):
    """Median training step time with an ID column of 10**6 levels against one of 100,
    in one process and in 2 gloo ranks, one torch thread each; configurations alternate
    over rounds, and each ratio is taken within its round."""
    sizes = IDS_SMOKE if args.smoke else IDS_FULL
    started = time.perf_counter()
    load_before = os.getloadavg()
    small, large = sizes["levels"]
    configs = [(f"{levels:,} levels, {label}", dict(levels=levels, ranks=ranks))
               for label, ranks in (("1 process", 1), ("2 ranks (gloo)", 2))
               for levels in (small, large)]
    # The table trained densely, as before the rule, in one process (under DDP a dense
    # step of this table took 1.2 s in the design notes' runs: too slow to repeat here).
    configs.append((f"{large:,} levels, 1 process, dense table (before)",
                    dict(levels=large, ranks=1, dense_table=True)))
    runs = {label: [] for label, _ in configs}
    for round_ in range(sizes["rounds"]):
        for label, extra in configs if round_ % 2 == 0 else configs[::-1]:
            config = dict(rows=sizes["rows"], features=sizes["features"], threads=1,
                          batch_size=sizes["batch_size"], steps=sizes["steps"],
                          device="cpu", **extra)
            runs[label].append(_launch(config))
            _common.log(f"{label}: {runs[label][-1]}")
    rows, ratios = [], {}
    for label, extra in configs:
        setting = "2 ranks (gloo)" if extra["ranks"] > 1 else "1 process"
        reference = runs[f"{small:,} levels, {setting}"]
        per_round = [run["step_s"] / ref["step_s"] for run, ref in zip(runs[label], reference)]
        ratios[label] = statistics.median(per_round)
        first = runs[label][0]
        rows.append([label, f"{first['table_rows']:,}", "sparse" if first["sparse"] else "dense",
                     f"{statistics.median(r['step_s'] for r in runs[label]) * 1e3:.1f}",
                     f"{ratios[label]:.2f}", " ".join(f"{r:.2f}" for r in per_round),
                     f"{statistics.median(r['fit_s'] for r in runs[label]):.0f}"])
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    sections = [
        "# Step time with an ID column of 10**6 levels\n\n"
        f"Data: {sizes['rows']:,} rows, {sizes['features']} float32 features and one ID column "
        f"(pandas category) of {small:,} or {large:,} levels, every level seen at fit; one "
        "regression task; the defaults otherwise (piecewise-linear embedding, 8 experts, "
        f"Adam), global batch {sizes['batch_size']:,}, early stopping off; training ends "
        f"after {sizes['steps']} steps (a callback raises skorch's KeyboardInterrupt). Step "
        "time: the median time between training batches, so encoding, process start and "
        "DDP set-up are outside it ('fit' includes the encoding of the ID column). A "
        "categorical table from 50,000 rows trains with sparse gradients and SparseAdam "
        "(`sk_mmoe._embeddings.sparse_category_table`); 'dense table (before)' is the "
        "10**6-level table trained densely by fused Adam, as before that rule. "
        f"{sizes['rounds']} rounds, configurations alternating; 'vs 100 levels' is the median "
        "of the rounds' ratios to the 100-level run of the same configuration and round, "
        "measured side by side because the machine is shared.",
        _common.markdown_table(
            ["configuration", "table rows", "table", "step (ms)", f"vs {small:,} levels",
             "per round", "fit (s)"], rows),
        "The machine was shared with other users' processes while this ran (load average "
        f"over 1, 5, 15 min at the start: {', '.join(f'{x:.1f}' for x in load_before)}; at the "
        f"end: {', '.join(f'{x:.1f}' for x in load_after)}, on {os.cpu_count()} cores).",
        _common.provenance(
            _common.command_line("scale.py", argv), elapsed,
            threads="one torch thread per process (OMP_NUM_THREADS=1), each fit in fresh "
                    "processes, 2 ranks by torchrun",
        ),
    ]
    _common.write_report(args, "scale_ids", sections)
    return ratios


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
