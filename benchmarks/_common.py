"""Helpers shared by the paper benchmarks: command line, provenance footer, tables."""

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def parser(description):
    """An argument parser with the options every paper benchmark takes."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--smoke", action="store_true",
                        help="tiny rows, epochs and seeds: checks that the script runs (seconds)")
    result.add_argument("--out", type=Path, default=RESULTS,
                        help=f"folder for the result files (default {RESULTS})")
    return result


def command_line(script, argv):
    """The one command that regenerates a result, run from the repository root."""
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python", f"benchmarks/{script}", *map(shlex.quote, args)])


def provenance(command, elapsed_s, processes=1, threads=None):
    """Markdown bullets: how to regenerate, machine, wall time and package versions.

    ``threads`` replaces the default "torch.set_num_threads(1), one process" part."""
    import sklearn
    import skorch
    import torch

    import sk_mmoe

    gpu = "CUDA GPU" if torch.cuda.is_available() else "no GPU"
    return (
        f"- command (from the repository root): `{command}`\n"
        f"- machine: {os.cpu_count()}-core {platform.machine()} CPU, {gpu}, "
        + (threads or "torch.set_num_threads(1), "
           + ("one process" if processes == 1 else f"{processes} worker processes"))
        + f"; Python {platform.python_version()}\n"
        f"- wall time: {elapsed_s / 60:.1f} min ({elapsed_s:.0f} s), finished "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
        f"- versions: sk_mmoe {sk_mmoe.__version__}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, skorch {skorch.__version__}\n"
    )


def markdown_table(header, rows):
    """A markdown table from a header and rows of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def log(message):
    print(time.strftime("%H:%M:%S"), message, flush=True)


# For scripts run by run_case: peak resident memory of the process since the last reset.
PEAK_RSS = r"""
def reset_peak():
    open("/proc/self/clear_refs", "w").write("5")
    return peak_bytes()

def peak_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
"""


def run_case(script, *args):
    """Run ``script`` (source text) in a fresh interpreter; its last stdout line as JSON.

    ``script`` may call ``reset_peak()`` and ``peak_bytes()`` (Linux ``/proc``).
    """
    import json
    import subprocess

    out = subprocess.run([sys.executable, "-c", PEAK_RSS + script, *map(str, args)],
                         capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_report(args, stem, sections):
    """Join ``sections`` into ``{stem}.md`` (``{stem}_smoke.md`` with --smoke) under --out."""
    report = "\n\n".join(sections) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / (f"{stem}_smoke.md" if args.smoke else f"{stem}.md")).write_text(report)
    print(report)
