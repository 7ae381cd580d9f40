"""Diagnostics in the spirit of Spinning Up's EpochLogger.

Values are stored as they happen (`store(key=value)`, any number of times
per iteration); `row(...)` reduces everything stored since the last row to
its mean (and, for keys asked with `stats=True`, std/min/max), clears the
store, and `write` sends the row to progress.csv, TensorBoard and an aligned
console table.
"""

import collections
import math
from typing import Callable, Dict, Iterable, Optional

import numpy as np
import tensorflow as tf
import tree

from tfrl.train.run_dir import ProgressCsv


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

  def __init__(self, progress: ProgressCsv, summary_writer=None,
               console: Callable[[str], None] = print):
    self.progress = progress
    self._summary_writer = summary_writer
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
    if self._summary_writer is not None:
      self._summary_writer.flush()
    return last_row if last_row is not None else dict((self.progress.rows() or [{}])[-1])

  def write(self, row: Dict[str, float], step: Optional[int] = None):
    self.progress.append(row)
    if self._summary_writer is not None:
      with self._summary_writer.as_default(step=step):
        for key, value in row.items():
          if isinstance(value, (int, float)) and key not in ("iteration",):
            tf.summary.scalar(key, value)
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
