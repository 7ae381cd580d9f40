"""Diagnostics in the spirit of Spinning Up's EpochLogger.

Values are stored as they happen (`store(key=value)`, any number of times
per iteration); `row(...)` reduces everything stored since the last row to
its mean (and, for keys asked with `stats=True`, std/min/max), clears the
store, and `write` sends the row to progress.csv, TensorBoard and an aligned
console table.

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
from typing import Callable, Dict, Iterable, Optional

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
    self._console(format_table(row))


def format_table(row: Dict[str, object]) -> str:
  """The row as Spinning Up's boxed two-column table."""
  width = max(len(k) for k in row)
  cells = [(k, _short(v)) for k, v in row.items()]
  value_width = max(len(v) for _, v in cells)
  rule = "-" * (width + value_width + 7)
  lines = [rule] + [f"| {k:>{width}} | {v:>{value_width}} |" for k, v in cells] + [rule]
  return "\n".join(lines)


def _short(value) -> str:
  return f"{value:.4g}" if isinstance(value, float) else str(value)
