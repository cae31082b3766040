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

FULL = dict(rows=50_000, features=20, epochs=3, rounds=3, batch_sizes=[256, 1024, 4096])
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


def _launch(config):
    env = dict(os.environ, OMP_NUM_THREADS=str(config["threads"]), PYTHONPATH=str(REPO))
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(config)]
    if config["ranks"] > 1:
        command[1:1] = ["-m", "torch.distributed.run", "--standalone",
                        "--nproc-per-node", str(config["ranks"])]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True,
                          cwd=REPO, timeout=3600)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def configurations(device, with_threads=False):
    """(label, ranks, threads per rank) to compare; the first is the reference."""
    import torch

    if device == "cuda":
        gpus = torch.cuda.device_count()
        return [("1 process, 1 GPU", 1, 1)] + (
            [("2 ranks (NCCL), 1 GPU each", 2, 1)] if gpus >= 2 else []
        )
    return [("1 process, 1 thread", 1, 1), ("2 ranks (gloo), 1 thread each", 2, 1)] + (
        [("1 process, 2 threads", 1, 2)] if with_threads else []
    )


def main(argv=None):
    parser = _common.parser(__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse_hidden())
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", action="store_true",
                        help="also one process with 2 torch threads (CPU)")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
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
                runs[label].append(_launch(config))
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
        "median of the rounds' ratios to the one-process, one-thread run of the same round.",
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


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
