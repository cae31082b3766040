"""Is the demo's winner stable? ``python -m sk_mmoe`` repeated over seeds.

    python benchmarks/demo_seeds.py --seeds 3  # 3 seeds (results/demo_seeds.md)
    python benchmarks/demo_seeds.py --smoke    # seconds: checks the script runs

Each seed draws new synthetic data (new task weights and sines) and new initial weights;
everything else is the demo's defaults.
"""

import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import command_line, log, markdown_table, parser, provenance  # noqa: E402
from sk_mmoe.__main__ import run  # noqa: E402


def main(argv=None):
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--seeds", type=int, default=3)
    args = cli.parse_args(argv)
    torch.set_num_threads(1)
    start = time.time()
    seeds = [0] if args.smoke else list(range(args.seeds))
    kwargs = dict(n_samples=400, max_epochs=2) if args.smoke else {}
    rows = []
    for seed in seeds:
        for row in run(seed=seed, n_jobs=2, **kwargs):
            rows.append(dict(row, seed=seed))
        log(f"seed {seed}: " + ", ".join(f"{r['model']} {r['mse_mean']:.3f}" for r in rows[-4:]))
    frame = pd.DataFrame(rows)
    table = frame.pivot(index="seed", columns="model", values="mse_mean")
    winners = Counter(table.idxmin(axis=1))
    ratio = table["mmoe"] / table["shared_bottom"]
    summary = frame.groupby("model", sort=False).agg(
        mse=("mse_mean", "median"), fit_s=("fit_s", "median"), epochs=("epochs", "median"))
    lines = [
        "# The demo over seeds",
        f"`python -m sk_mmoe --seed S` (task correlation 0.5, smooth tasks, 10,000 rows; the "
        f"paper's network sizes, the library's default training) for "
        f"{len(seeds)} seeds. Lowest mean test MSE: "
        + ", ".join(f"{model} in {count} of {len(seeds)}" for model, count in winners.most_common())
        + f". MMoE / Shared-Bottom mean test MSE: median {ratio.median():.2f} "
        f"(range {ratio.min():.2f}-{ratio.max():.2f}).",
        markdown_table(["model", "median mean test MSE", "median fit s", "median epochs"],
                       [[m, f"{r.mse:.3f}", f"{r.fit_s:.1f}", f"{r.epochs:.0f}"] for m, r in summary.iterrows()]),
        "Per seed (mean test MSE over the two tasks):",
        markdown_table(["seed", *table.columns], [[s, *[f"{v:.3f}" for v in r]] for s, r in table.iterrows()]),
        provenance(command_line("demo_seeds.py", argv), time.time() - start),
    ]
    report = "\n\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "demo_seeds_smoke" if args.smoke else "demo_seeds"
    (args.out / f"{stem}.md").write_text(report)
    frame.to_csv(args.out / f"{stem}.csv", index=False)
    print(report)


if __name__ == "__main__":
    main()
