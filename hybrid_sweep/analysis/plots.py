"""Figures: scaling curves (mean and 95 % CI band over seeds, log-linear fit with bootstrap slope CI)
and cross-lingual heatmaps. Saved as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hybrid_sweep.analysis.stats import log_slope, mean_ci  # noqa: E402
from hybrid_sweep.results_schema import log_axes  # noqa: E402

LOG_AXES = tuple(log_axes())  # declared by the typed configs
SETTING_STYLE = {"mono": ("#1b9e77", "o"), "cross": ("#d95f02", "s"), "multi": ("#7570b3", "^")}
STYLE = {"figure.dpi": 120, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "font.size": 10}


def save(fig, path: Path) -> list[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_suffix(".png"), path.with_suffix(".svg")]
    for p in out:
        fig.savefig(p, bbox_inches="tight")
    plt.close(fig)
    return out


def scaling_plot(results: pd.DataFrame, axis: str, metric: str, benchmark: str, path: Path) -> tuple[list[Path], pd.DataFrame]:
    """One line per setting: the macro-average ``metric`` against ``axis``; returns files and the fits."""
    avg = results[(results.query_lang == "avg") & (results.metric == metric) & (results.benchmark == benchmark)]
    fits = []
    log_axis = axis in LOG_AXES  # counts scale in doublings; ratios and small counts with 0 linearly
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for setting, grp in avg.groupby("setting"):
            color, marker = SETTING_STYLE.get(setting, ("black", "o"))
            pts = grp.groupby(axis).value.apply(lambda v: mean_ci(v)).apply(pd.Series)
            pts.columns = ["mean", "ci", "n"]
            x = pts.index.to_numpy(dtype=float)
            fit = log_slope(grp[axis], grp.value, log=log_axis)
            fits.append({"benchmark": benchmark, "metric": metric, "axis": axis, "fit": "log2" if log_axis else "linear",
                         "setting": setting, **fit})
            unit = "per doubling" if log_axis else "per unit"
            label = f"{setting}: slope {unit} {fit['slope']:+.3f} [{fit['lo']:+.3f}, {fit['hi']:+.3f}]"
            ax.plot(x, pts["mean"], marker=marker, color=color, label=label)
            ax.fill_between(x, pts["mean"] - pts["ci"].fillna(0), pts["mean"] + pts["ci"].fillna(0), color=color, alpha=0.15)
            if np.isfinite(fit["slope"]):
                xs = np.linspace(x.min(), x.max(), 50)
                ax.plot(xs, fit["intercept"] + fit["slope"] * (np.log2(xs) if log_axis else xs), color=color, ls=":", lw=1)
        if log_axis and avg[axis].astype(float).max() / max(avg[axis].astype(float).min(), 1e-9) >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(axis.replace("_", " "))
        ax.set_ylabel(f"{metric} ({benchmark}, macro average)")
        ax.set_title(f"{metric} vs {axis.replace('_', ' ')} — mean and 95 % CI over seeds", fontsize=10)
        ax.legend(fontsize=8, frameon=False)
        return save(fig, path), pd.DataFrame(fits)


def cross_heatmap(results: pd.DataFrame, benchmark: str, title: str, path: Path, metric: str = "map") -> list[Path]:
    """Cross-lingual (and monolingual, on the diagonal) ``metric`` by query and candidate language."""
    rows = results[(results.benchmark == benchmark) & (results.metric == metric) & (results.query_lang != "avg")
                   & results.setting.isin(["mono", "cross"])]
    grid = rows.pivot_table(index="query_lang", columns="doc_lang", values="value", aggfunc="mean")
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(0.5 * len(grid.columns) + 2.5, 0.45 * len(grid) + 1.8))
        im = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=0, vmax=max(0.01, float(np.nanmax(grid.to_numpy()))))
        ax.set_xticks(range(len(grid.columns)), grid.columns, rotation=90)
        ax.set_yticks(range(len(grid.index)), grid.index)
        ax.set_xlabel("candidate language")
        ax.set_ylabel("query language")
        for i in range(len(grid.index)):
            for j in range(len(grid.columns)):
                v = grid.iat[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.5 else "black")
        fig.colorbar(im, ax=ax, label=metric)
        ax.set_title(title, fontsize=9)
        return save(fig, path)
