"""Diagnostics in the spirit of Spinning Up's EpochLogger.

Values are stored as they happen (`store(key=value)`, any number of times
per iteration); `row(...)` reduces everything stored since the last row to
its mean (and, for keys asked with `stats=True`, std/min/max), clears the
store, and `write` sends the row to progress.csv (every column), TensorBoard
and the console: a compact table (`format_table`) of what is worth reading.
`format_summary` is the run's last console line.

TensorBoard holds exactly progress.csv's rows: scalars as simple values
(what `EventAccumulator.Scalars` reads), one event per row at its env_steps,
with the values as progress.csv rounds them; `ScalarEvents.rebuild` rewrites
them from progress.csv when a run resumes, so rows a restart dropped vanish
from TensorBoard too.
"""

import collections
import math
import os
import shutil
from typing import Callable, Dict, Iterable, Optional, Sequence

import numpy as np
import tensorflow as tf
import tree

from tfrl.train.run_dir import ProgressCsv, format_value

# progress.csv columns that are no TensorBoard scalar.
_NOT_SCALARS = ("iteration",)


class ScalarEvents:
  """TensorBoard event files in `directory`: one event per progress row."""

  def __init__(self, directory: str):
    self._dir = directory
    self._writer = None

  def rebuild(self, rows):
    """Replaces the events by `rows` (progress.csv's, as strings): written
    into a fresh directory, then swapped in."""
    self.close()
    fresh = self._dir + ".rebuild"
    shutil.rmtree(fresh, ignore_errors=True)
    if rows:
      writer = tf.summary.create_file_writer(fresh)
      for row in rows:
        _write_scalars(writer, row, step=int(float(row["env_steps"])))
      writer.close()
    shutil.rmtree(self._dir, ignore_errors=True)
    if rows:
      os.rename(fresh, self._dir)

  def write(self, row: Dict[str, object], step: int):
    if self._writer is None:
      self._writer = tf.summary.create_file_writer(self._dir)
    _write_scalars(self._writer, {k: format_value(v) for k, v in row.items()}, step)

  def close(self):
    if self._writer is not None:
      self._writer.close()
      self._writer = None


def _write_scalars(writer, row: Dict[str, str], step: int):
  values = []
  for key, text in row.items():
    try:
      value = float(text)
    except (TypeError, ValueError):
      continue  # empty cells of columns this row does not have
    if key not in _NOT_SCALARS:
      values.append(tf.compat.v1.Summary.Value(tag=key, simple_value=value))
  with writer.as_default():
    tf.summary.experimental.write_raw_pb(
        tf.compat.v1.Summary(value=values).SerializeToString(), step=step)
  writer.flush()


def flatten_diagnostics(extra, prefix: str = "") -> Dict[str, float]:
  """An agent's LossInfo.extra (dict or namedtuple nest of tensors) as
  {'name': float}; non-scalar entries (per-sample TD errors) by their mean."""
  flat = {}
  for path, value in tree.flatten_with_path(extra):
    value = np.asarray(value)
    if value.dtype.kind not in "biuf" or value.size == 0:
      continue
    name = prefix + "/".join(str(p) for p in path)
    flat[name] = float(np.mean(value))
  return flat


class EpochLogger:

  def __init__(self, progress: ProgressCsv, events: Optional[ScalarEvents] = None,
               console: Callable[[str], None] = print):
    self.progress = progress
    self._events = events
    self._console = console
    self._stored = collections.defaultdict(list)
    self._nonzero = set()  # row keys that were non-zero in a row written so far

  def store(self, **values):
    for key, value in values.items():
      self._stored[key].extend(np.ravel(np.asarray(value, dtype=np.float64)).tolist())

  def row(self, stats: Iterable[str] = (), **fixed) -> Dict[str, float]:
    """`fixed` columns first, then each stored key's mean (plus `<key>_std`,
    `_min`, `_max` for keys in `stats`); clears the store."""
    row = dict(fixed)
    stats = set(stats)
    for key, values in self._stored.items():
      values = np.asarray(values) if values else np.asarray([math.nan])
      row[key] = float(np.mean(values))
      if key in stats:
        row.update({f"{key}_std": float(np.std(values)), f"{key}_min": float(np.min(values)),
                    f"{key}_max": float(np.max(values))})
    self._stored.clear()
    return row

  def finish(self, last_row: Optional[dict]) -> dict:
    """Flushes TensorBoard and returns the run's last row: `last_row`, or
    progress.csv's last when this process wrote none (a finished run
    started again)."""
    if self._events is not None:
      self._events.close()
    return last_row if last_row is not None else dict((self.progress.rows() or [{}])[-1])

  def write(self, row: Dict[str, float], step: Optional[int] = None):
    self.progress.append(row)
    if self._events is not None:
      self._events.write(row, step)
    self._console(format_table(row, keep=self._nonzero))
    self._nonzero.update(k for k, v in row.items() if not _zero_or_nan(v))


# The table's header line, always shown.
_COUNTERS = ("iteration", "env_steps", "train_steps", "episodes", "wall_s")
# Returns, always shown, each on one line with its spread and episode length:
# (row key, prefix of its _std/_min/_max columns, its length column).
_RETURNS = (("avg_return", "eval_return", "eval_length"),
            ("train_return", "train_return", "train_length"))
_SPREAD = ("_std", "_min", "_max")


def format_table(row: Dict[str, object], keep: Iterable[str] = ()) -> str:
  """The row for the console: the counters on one line, then one line per
  return (`mean ± std [min, max]  length L`), the loss and the agent's
  diagnostics. Diagnostics that are 0 or NaN (REINFORCE's value loss, unused
  regularization losses) are left out unless named in `keep` (the logger
  keeps those that were non-zero in an earlier row). progress.csv has them all."""
  keep = set(keep)
  # A counter a mode cannot know (the off-policy learner's episodes) is None.
  header = "  ".join(f"{k} {_short(row[k])}" for k in _COUNTERS if row.get(k) is not None)
  used = set(_COUNTERS)
  cells = []
  for key, prefix, length in _RETURNS:
    if key in row:
      text = _with_spread(row, key, prefix, used)
      if length in row:
        text += f"  length {_short(row[length])}"
      cells.append((key, text))
      used.update([key, length])
  for key, value in row.items():
    if key not in used and (key == "loss" or key in keep or not _zero_or_nan(value)):
      cells.append((key, _with_spread(row, key, key, used)))
  width = max([len(k) for k, _ in cells] or [0])
  return "\n".join([header] + [f"  {k:>{width}}  {v}" for k, v in cells])


def format_summary(rows: Sequence[Dict[str, str]], root_dir: str, wall_s: float) -> str:
  """The run's last console line, from its progress rows (progress.csv's,
  as strings): the final and the best avg_return, the counters, the wall
  time and the run directory."""
  if not rows:
    return f"done: no progress rows; the run is in {root_dir}"
  last = rows[-1]
  returns = [(float(r["avg_return"]), r["iteration"]) for r in rows
             if r.get("avg_return") not in (None, "") and math.isfinite(float(r["avg_return"]))]
  if returns:
    best, best_iteration = max(returns, key=lambda r: r[0])  # the first to reach the best
    result = (f"avg_return {_short(float(last['avg_return']))} "
              f"(best {_short(best)} at iteration {best_iteration})")
  else:
    result = "no avg_return"
  return (f"done at iteration {last['iteration']}: {result}, env_steps {last['env_steps']}, "
          f"train_steps {last['train_steps']}, {_short(wall_s)} s; the run is in {root_dir}")


def _with_spread(row, key: str, prefix: str, used: set) -> str:
  """`row[key]`, followed by ` ± std [min, max]` when the row has them
  (`<prefix>_std`, `_min`, `_max`), which are then marked `used`."""
  spread = [prefix + s for s in _SPREAD]
  if not all(s in row for s in spread):
    return _short(row[key])
  used.update(spread)
  return "{} ± {} [{}, {}]".format(*(_short(row[k]) for k in [key] + spread))


def _zero_or_nan(value) -> bool:
  try:
    value = float(value)
  except (TypeError, ValueError):
    return False
  return value == 0 or math.isnan(value)


def _short(value) -> str:
  if isinstance(value, float) and math.isfinite(value) and abs(value) >= 1e4:
    return f"{value:.0f}"  # 12345 rather than 1.234e+04 (env steps, seconds)
  return f"{value:.4g}" if isinstance(value, float) else str(value)
