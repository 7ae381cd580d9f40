"""The run directory: config.gin, progress.csv, TensorBoard events, checkpoints.

Every file is written so a crash cannot leave it half-written: small files
via write-to-temp-then-rename, checkpoints by tf.train.CheckpointManager
(which only points at a checkpoint once all its files exist).
"""

import csv
import io
import os
from typing import Dict, List

from tfrl.errors import ConfigError

CONFIG_FILE = "config.gin"
PROGRESS_FILE = "progress.csv"
# What a run directory's checkpoints hold, as config.gin's first line says;
# a directory without the line is format 1. Format 2: uniform replay tables
# hold packed windows (tfrl.replay.packing).
RUN_FORMAT = 2
FORMAT_PREFIX = "# tfrl run format: "


def atomic_write(path: str, text: str):
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def check_run_dir(root_dir: str, config: str) -> bool:
  """Validates `root_dir` for a run with `config`; True if it holds a run to resume.

  Writes nothing. Refuses a path that is a file, an unwritable folder, a run
  of another run format (an older tfrl's checkpoints), or a run made with a
  different config.
  """
  if os.path.exists(root_dir) and not os.path.isdir(root_dir):
    raise ConfigError(f"run directory {root_dir!r} exists and is not a directory")
  config_path = os.path.join(root_dir, CONFIG_FILE)
  if not os.path.exists(config_path):
    if os.path.isdir(root_dir) and os.listdir(root_dir):
      raise ConfigError(f"run directory {root_dir!r} is not empty and holds no {CONFIG_FILE}; "
                        "choose a new --root_dir")
    parent = os.path.dirname(os.path.abspath(root_dir))
    while not os.path.exists(parent):
      parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK):
      raise ConfigError(f"cannot create run directory {root_dir!r}: {parent!r} is not writable")
    return False
  with open(config_path) as f:
    saved = f.read()
  found = run_format(saved)
  if found != RUN_FORMAT:
    raise ConfigError(f"run directory {root_dir!r} was written by another tfrl version (run "
                      f"format {found}; this one reads format {RUN_FORMAT}), so its checkpoints "
                      "cannot be resumed here; choose a new --root_dir")
  if _normalized(saved) != _normalized(config):
    raise ConfigError(f"run directory {root_dir!r} holds a run with a different config; "
                      "resume it with the same gin files/bindings or choose a new --root_dir")
  return True


def seed_run_dirs(root_dir: str, seeds) -> List[str]:
  """The run directories of a K-seed run (`tfrl.train.train.num_seeds`):
  `<root_dir>/seed_<s>` per seed. Writes nothing. Refuses a root that is a
  file, that holds a single-seed run (config.gin), or that holds anything
  but these seeds' directories (another K-seed run's, say)."""
  names = [f"seed_{s}" for s in seeds]
  if os.path.exists(root_dir) and not os.path.isdir(root_dir):
    raise ConfigError(f"run directory {root_dir!r} exists and is not a directory")
  if os.path.exists(os.path.join(root_dir, CONFIG_FILE)):
    raise ConfigError(f"run directory {root_dir!r} holds a single-seed run ({CONFIG_FILE}); a "
                      f"{len(names)}-seed run writes {names[0]}..{names[-1]} under a new "
                      "--root_dir")
  present = sorted(os.listdir(root_dir)) if os.path.isdir(root_dir) else []
  strays = [name for name in present if name not in names]
  if strays:
    raise ConfigError(f"run directory {root_dir!r} holds {', '.join(strays[:3])}"
                      f"{', ...' if len(strays) > 3 else ''}, not one of this run's seed "
                      f"directories {names[0]}..{names[-1]}; choose a new --root_dir")
  return [os.path.join(root_dir, name) for name in names]


def with_run_format(config: str) -> str:
  """config.gin's text: the run format line, then the operative config."""
  return f"{FORMAT_PREFIX}{RUN_FORMAT}\n{config}"


def run_format(saved_config: str) -> int:
  """The run format a config.gin declares (1 when it declares none)."""
  first = saved_config.split("\n", 1)[0]
  if first.startswith(FORMAT_PREFIX) and first[len(FORMAT_PREFIX):].strip().isdigit():
    return int(first[len(FORMAT_PREFIX):])
  return 1


def _normalized(config: str) -> List[str]:
  return [line.strip() for line in config.splitlines()
          if line.strip() and not line.lstrip().startswith("#")]


class ProgressCsv:
  """progress.csv: one row per evaluation; resuming drops rows past the checkpoint.

  Every write replaces the whole file atomically, so a kill never leaves a
  half-written row. A row bringing new columns (an agent's diagnostics
  appear after its first train step) widens the header; older rows leave
  them empty.
  """

  def __init__(self, path: str, columns: List[str]):
    self._path = path
    self._columns = list(columns)
    if os.path.exists(path):
      with open(path, newline="") as f:
        header = next(csv.reader(f), [])
      self._columns += [c for c in header if c not in self._columns]

  def truncate_after(self, iteration: int):
    """Keeps rows up to `iteration` (those the restored checkpoint had seen)."""
    rows = self.rows()
    kept = [r for r in rows if int(r["iteration"]) <= iteration]
    if len(kept) != len(rows):
      self._rewrite(kept)

  def rows(self) -> List[Dict[str, str]]:
    if not os.path.exists(self._path):
      return []
    with open(self._path, newline="") as f:
      return list(csv.DictReader(f))

  def append(self, row: Dict[str, object]):
    self._columns += [k for k in row if k not in self._columns]
    self._rewrite(self.rows() + [row])

  def _rewrite(self, rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=self._columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
      writer.writerow({k: format_value(row.get(k, "")) for k in self._columns})
    atomic_write(self._path, out.getvalue())


def format_value(value) -> str:
  """A cell of progress.csv (floats to 6 significant digits)."""
  if isinstance(value, float):
    return f"{value:.6g}"
  return "" if value is None else str(value)
