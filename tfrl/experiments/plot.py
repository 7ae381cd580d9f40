"""Learning curves from run directories, Spinning Up's `plot` for tfrl.

A run directory is any folder holding a progress.csv. Runs are grouped into
experiments and each experiment becomes one curve: the mean over its runs
(seeds) with a ±std band, or, with `count=True`, one line per run.

  figures = plot_runs(["runs/ppo", "runs/vpg"], values=["avg_return"], out="cmp.png")

Grouping follows Spinning Up: without a legend, runs sharing an experiment
name are averaged (the run directory's name without its `_s<seed>` suffix,
the layout `ExperimentGrid` writes); with a legend, each log directory is one
experiment named by its legend entry. Figures are built without pyplot, so
nothing needs a display and no global figure state leaks.
"""

import dataclasses
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tfrl.errors import ConfigError
from tfrl.experiments.grid import split_seed

PROGRESS_FILE = "progress.csv"
DEFAULT_XAXIS = "env_steps"
DEFAULT_VALUE = "avg_return"


@dataclasses.dataclass
class Run:
  """One run directory's progress.csv, with the experiment it is averaged into."""
  path: str
  experiment: str
  seed: Optional[int]
  progress: pd.DataFrame


@dataclasses.dataclass
class Curve:
  """What one line of a figure shows; `std` and `runs_at` are None for a single run's line."""
  label: str
  experiment: str
  x: np.ndarray
  y: np.ndarray
  std: Optional[np.ndarray]
  num_runs: int
  runs_at: Optional[np.ndarray] = None  # how many runs the mean at each x is over


def expand_logdirs(logdirs: Sequence[str]) -> List[str]:
  """A directory as given; anything else is a prefix of sibling directories.

  `runs/bench_algo` matches `runs/bench_algo1` and `runs/bench_algo2`: comparing
  experiments takes one short argument.
  """
  expanded = []
  for logdir in logdirs:
    if os.path.isdir(logdir):
      matches = [logdir]
    else:
      parent, prefix = os.path.split(logdir)
      parent_dir = parent or "."
      names = sorted(os.listdir(parent_dir)) if os.path.isdir(parent_dir) else []
      matches = [os.path.join(parent, n) for n in names
                 if n.startswith(prefix) and os.path.isdir(os.path.join(parent_dir, n))]
    if not matches:
      raise ConfigError(f"no directory is or starts with {logdir!r}")
    expanded += [m for m in matches if m not in expanded]
  return expanded


def find_run_dirs(logdir: str) -> List[str]:
  """Every folder under `logdir` (itself included) that holds a progress.csv."""
  found = []
  for folder, subdirs, files in os.walk(logdir):
    if PROGRESS_FILE in files:
      found.append(folder)
      subdirs[:] = []  # a run's checkpoints/ and tensorboard/ hold no other runs
    subdirs.sort()
  return found


def load_runs(logdirs: Sequence[str], legend: Optional[Sequence[str]] = None,
              select: Sequence[str] = (), exclude: Sequence[str] = ()) -> List[Run]:
  """Loads every run under the (autocompleted) log directories.

  `select`/`exclude` keep runs whose path contains all / none of the substrings.
  `legend` names one experiment per log directory left after that filtering.
  """
  runs_by_logdir = {}
  for logdir in expand_logdirs(logdirs):
    run_dirs = find_run_dirs(logdir)
    if not run_dirs:
      raise ConfigError(f"no run directories (folders holding {PROGRESS_FILE}) under {logdir!r}")
    kept = [d for d in run_dirs
            if all(s in d for s in select) and not any(s in d for s in exclude)]
    if kept:
      runs_by_logdir[logdir] = kept
  if not runs_by_logdir:
    raise ConfigError(f"--select {list(select)} / --exclude {list(exclude)} leave no run "
                      "directories to plot")
  if legend and len(legend) != len(runs_by_logdir):
    entries = f"{len(legend)} entr{'y' if len(legend) == 1 else 'ies'}"
    raise ConfigError(f"--legend has {entries} for {len(runs_by_logdir)} log "
                      f"directories (after autocomplete and --select/--exclude): "
                      f"{', '.join(runs_by_logdir)}")
  runs = []
  for i, (logdir, run_dirs) in enumerate(runs_by_logdir.items()):
    for run_dir in run_dirs:
      progress = _read_progress(run_dir)
      if progress.empty:
        continue  # a run that has not evaluated yet has nothing to draw
      experiment, seed = split_seed(os.path.basename(os.path.abspath(run_dir)))
      runs.append(Run(run_dir, legend[i] if legend else experiment, seed, progress))
  if not runs:
    raise ConfigError(f"the {PROGRESS_FILE} files under {', '.join(runs_by_logdir)} hold no rows yet")
  return runs


def _read_progress(run_dir: str) -> pd.DataFrame:
  path = os.path.join(run_dir, PROGRESS_FILE)
  try:
    return pd.read_csv(path)
  except pd.errors.EmptyDataError:
    return pd.DataFrame()
  except (pd.errors.ParserError, UnicodeDecodeError) as e:
    raise ConfigError(f"cannot read {path}: {str(e).splitlines()[0]}") from None


def columns(runs: Sequence[Run]) -> List[str]:
  """Every column any run's progress.csv has, in first-seen order."""
  seen = {}
  for run in runs:
    seen.update(dict.fromkeys(run.progress.columns))
  return list(seen)


def make_curves(runs: Sequence[Run], xaxis: str, value: str, smooth: int = 1,
                count: bool = False) -> List[Curve]:
  """The lines of one figure: a mean±std per experiment, or each run (`count`).

  Runs lacking `xaxis` or `value` (progress.csv from before that column
  existed) are left out; the caller has checked some run has both.
  """
  by_experiment: Dict[str, List[Run]] = {}
  for run in runs:
    if xaxis in run.progress.columns and value in run.progress.columns:
      by_experiment.setdefault(run.experiment, []).append(run)
  curves = []
  for experiment, members in by_experiment.items():
    xys = [_xy(run, xaxis, value, smooth) for run in members]
    if count:
      for i, (run, (x, y)) in enumerate(zip(members, xys)):
        tag = f"s{run.seed}" if run.seed is not None else f"#{i}"
        curves.append(Curve(f"{experiment} {tag}", experiment, x, y, None, 1))
    else:
      x, mean, std, runs_at = _mean_std(xys)
      curves.append(Curve(experiment, experiment, x, mean, std, len(members), runs_at))
  return curves


def _xy(run: Run, xaxis: str, value: str, smooth: int):
  data = run.progress[[xaxis, value]].apply(pd.to_numeric, errors="coerce").dropna()
  data = data.sort_values(xaxis, kind="stable")
  x, y = data[xaxis].to_numpy(float), data[value].to_numpy(float)
  if smooth > 1 and len(y):
    # Spinning Up's smoothing: a centred moving average, divided by how many
    # points the window really covers so the ends are not pulled toward 0.
    window = np.ones(smooth)
    y = np.convolve(y, window, "same") / np.convolve(np.ones_like(y), window, "same")
  return x, y


def _mean_std(xys):
  """Mean and std over runs at every x any run was evaluated at.

  Seeds evaluate at different env_steps (episodes differ in length), so each
  run is interpolated onto the union of x values; a run counts only inside
  its own x range (no extrapolation past where it stopped).
  """
  grid = np.unique(np.concatenate([x for x, _ in xys]))
  stacked = np.full((len(xys), len(grid)), np.nan)
  for i, (x, y) in enumerate(xys):
    if len(x):
      inside = (grid >= x[0]) & (grid <= x[-1])
      stacked[i, inside] = np.interp(grid[inside], x, y)
  runs_at = np.sum(~np.isnan(stacked), axis=0)
  return grid, np.nanmean(stacked, axis=0), np.nanstd(stacked, axis=0), runs_at


def draw(curves: Sequence[Curve], xaxis: str, value: str, count: bool = False) -> Figure:
  """One figure: a line per curve, a ±std band around each mean (dotted where partial)."""
  fig = Figure(figsize=(8, 5), dpi=100, layout="constrained")
  ax = fig.add_subplot()
  partial = False
  colors = {}  # one colour per experiment, so its runs match under `count`
  for curve in curves:
    color = colors.setdefault(curve.experiment, f"C{len(colors) % 10}")
    y = curve.y
    if curve.runs_at is not None and np.any(curve.runs_at < curve.num_runs):
      # Where some runs have stopped (shorter, or still running) the mean is
      # over fewer of them and can jump: dotted, so it does not pass for a trend.
      ax.plot(curve.x, y, color=color, linewidth=1.2, linestyle=":")
      partial = True
      y = np.where(curve.runs_at == curve.num_runs, y, np.nan)
    ax.plot(curve.x, y, color=color, label=curve.label,
            linewidth=1.0 if count else 1.8, alpha=0.85 if count else 1.0)
    if curve.std is not None and curve.num_runs > 1:
      ax.fill_between(curve.x, curve.y - curve.std, curve.y + curve.std, color=color,
                      alpha=0.2, linewidth=0)
  if count:
    ax.set_title(f"{value}: every run")
  else:
    seeds = sorted({c.num_runs for c in curves})
    over = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    ax.set_title(f"{value}: mean ± std over {over} run{'s' if seeds[-1] > 1 else ''} "
                 "per experiment")
  ax.set_xlabel(xaxis)
  ax.set_ylabel(value)
  if max((c.x.max() for c in curves if len(c.x)), default=0) > 5e3:
    ax.ticklabel_format(style="sci", axis="x", scilimits=(0, 0))
  ax.grid(alpha=0.3)
  ax.legend(loc="best", fontsize="small", title_fontsize="small",
            title="dotted: mean of fewer runs" if partial else None)
  return fig


def plot_runs(logdirs: Sequence[str], legend: Optional[Sequence[str]] = None,
              xaxis: str = DEFAULT_XAXIS, values: Sequence[str] = (DEFAULT_VALUE,),
              count: bool = False, smooth: int = 1, select: Sequence[str] = (),
              exclude: Sequence[str] = (), out: Optional[str] = None) -> Dict[str, Figure]:
  """One figure per value; saved as PNG if `out` is given. Returns {value: Figure}.

  With several values, `out` "fig.png" becomes "fig_<value>.png" for each.
  Bad input (no runs, an unknown column, a legend of the wrong length)
  raises ConfigError with one line saying what is wrong.
  """
  if smooth < 1:
    raise ConfigError(f"--smooth must be >= 1, got {smooth}")
  values = list(values) or [DEFAULT_VALUE]
  runs = load_runs(logdirs, legend, select, exclude)
  available = columns(runs)
  for flag, name in [("--xaxis", xaxis)] + [("--value", v) for v in values]:
    if name not in available:
      raise ConfigError(f"unknown {flag} {name!r}; progress.csv columns are: "
                        f"{', '.join(available)}")
  figures = {}
  for value in values:
    lacking = [r.path for r in runs
               if xaxis not in r.progress.columns or value not in r.progress.columns]
    if len(lacking) == len(runs):
      raise ConfigError(f"no run has both {xaxis!r} and {value!r} in its progress.csv")
    if lacking:
      print(f"note: {len(lacking)} run(s) have no {xaxis!r}/{value!r} column and are left out "
            f"of that figure: {', '.join(lacking)}", file=sys.stderr)
    figures[value] = draw(make_curves(runs, xaxis, value, smooth, count), xaxis, value, count)
  if out:
    for value, path in output_paths(out, values).items():
      if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
      figures[value].savefig(path)
  return figures


def output_paths(out: str, values: Sequence[str]) -> Dict[str, str]:
  """`out` for one value; `<stem>_<value><ext>` for each of several (".png" if none)."""
  stem, ext = os.path.splitext(out)
  ext = ext or ".png"
  if len(values) == 1:
    return {values[0]: stem + ext}
  return {v: f"{stem}_{v}{ext}" for v in values}
