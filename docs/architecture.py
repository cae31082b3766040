"""Draw docs/architecture.png, the MMoE figure in the README: python docs/architecture.py"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402


def box(ax, x, y, w, h, text, color):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                facecolor=color, edgecolor="black", linewidth=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def arrow(ax, start, end, style="-|>", color="black"):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=10,
                                 color=color, linewidth=1))


def main():
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 7)
    ax.axis("off")
    box(ax, 5, 0.6, 3.2, 0.6, "input features x", "#eeeeee")
    experts = [2.5, 4.2, 5.9, 7.6]
    for i, x in enumerate(experts):
        label = "expert E" if i == len(experts) - 1 else f"expert {i + 1}"
        box(ax, x, 2.3, 1.3, 0.7, label, "#cfe2f3")
        arrow(ax, (5, 0.9), (x, 1.95))
    for t, (x, color) in enumerate([(2.0, "#f4cccc"), (8.0, "#d9ead3")], start=1):
        box(ax, x, 3.9, 1.9, 0.7, f"gate {t}: softmax\n(gate dropout)", "#fff2cc")
        arrow(ax, (5, 0.9), (x, 3.55), color="#b7950b")
        box(ax, x, 5.2, 1.5, 0.6, f"tower {t}", color)
        box(ax, x, 6.4, 1.5, 0.5, f"task {t}", "white")
        arrow(ax, (x, 4.25), (x, 4.9))
        arrow(ax, (x, 5.5), (x, 6.15))
        for e in experts:
            arrow(ax, (e, 2.65), (x, 3.55), style="-", color="#999999")
    ax.text(5, 3.9, "each task mixes the experts\nwith its own gate weights", ha="center",
            va="center", fontsize=8, style="italic")
    fig.tight_layout()
    fig.savefig(Path(__file__).with_suffix(".png"), dpi=120)


if __name__ == "__main__":
    main()
