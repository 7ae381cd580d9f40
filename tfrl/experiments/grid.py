"""Grids of gin bindings × seeds, each run a scripts/train.py process (Spinning Up's ExperimentGrid).

  grid = ExperimentGrid("lr")
  grid.add("tfrl.agents.reinforce.learning_rate", [1e-3, 3e-3], shorthand="lr")
  grid.add("tfrl.train.train.num_iterations", 50)       # one value: fixed, not in the name
  results = grid.run(["reinforce_cartpole.gin"], seeds=[0, 1], data_dir="runs", num_procs=2)

writes runs/lr_lr0-001/lr_lr0-001_s0, ..._s1 and runs/lr_lr0-003/...: Spinning
Up's layout `data_dir/<variant>/<variant>_s<seed>`, where a variant's name is
the grid name plus shorthand+value of every binding that varies (or is
`in_name`). `scripts/plot.py runs/lr_` then averages each variant over its seeds.

Each run is its own process, as in Spinning Up: TF, gin and Reverb keep
global state, so runs in one process would leak into each other.
"""

import concurrent.futures
import csv
import dataclasses
import itertools
import os
import re
import string
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from tfrl.errors import ConfigError

# The repository's scripts/train.py (tfrl is installed in editable/development mode).
TRAIN_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "scripts", "train.py")

_NAME_CHARS = set("-_" + string.ascii_letters + string.digits)
_SEED_SUFFIX = re.compile(r"^(.*)_s(\d+)$")
# Lines that are logging, not the error: Reverb's C++ server and absl/glog.
_LOG_LINE = re.compile(r"^(\[reverb/|[IWEF]\d{4} \d\d:\d\d:\d\d)")


def run_dir_name(exp_name: str, seed: int) -> str:
  return f"{exp_name}_s{seed}"


def split_seed(run_dir_name: str):
  """(experiment, seed) from a run directory's name; seed None without `_s<N>`."""
  match = _SEED_SUFFIX.match(run_dir_name)
  return (match.group(1), int(match.group(2))) if match else (run_dir_name, None)


def gin_text(value) -> str:
  """A Python value as gin binding text; a str starting with @ or % is gin already.

  `"@tfrl.networks.relu"` (a reference) and `"%MACRO"` pass as written;
  any other str becomes a quoted gin string.
  """
  if isinstance(value, str) and value[:1] in ("@", "%"):
    return value
  if isinstance(value, np.generic):
    value = value.item()  # numpy 2 reprs scalars as np.float64(...), which gin cannot read
  return repr(value)


def name_text(value) -> str:
  """A value as it appears in a run directory name: 0.001 -> 0-001, (64, 64) -> 64-64."""
  if isinstance(value, (tuple, list)):
    return "-".join(name_text(v) for v in value)
  text = str(value)
  if isinstance(value, str) and value[:1] in ("@", "%"):
    # A reference is named by what it points at: @tf.nn.relu -> relu.
    text = re.split(r"[./]", value[1:].rstrip("()"))[-1]
  return "".join(c if c in _NAME_CHARS else "-" for c in text.lower())


def default_shorthand(binding_name: str) -> str:
  """First three letters of each word of the parameter: ...train.num_envs -> numenv.

  Spinning Up shortens `clip_ratio` to `cli`; a gin parameter's words are
  kept apart so num_envs and num_iterations do not both become `num`.
  """
  parameter = re.split(r"[./]", binding_name)[-1]
  return "".join(word[:3] for word in parameter.split("_") if word)


@dataclasses.dataclass
class _Param:
  binding_name: str
  values: list
  shorthand: str
  in_name: bool


@dataclasses.dataclass
class RunResult:
  """One finished run of a grid."""
  variant: str
  seed: int
  run_dir: str
  log_path: str
  returncode: int
  wall_s: float
  error: Optional[str] = None  # the line of stderr that says why it failed
  final_avg_return: Optional[float] = None

  @property
  def ok(self) -> bool:
    return self.returncode == 0

  @property
  def status(self) -> str:
    if self.ok:
      return "ok"
    if self.returncode < 0:
      return f"failed (signal {-self.returncode})"
    return f"failed (exit {self.returncode})"


class ExperimentGrid:
  """Every combination of the added bindings' values, each over seeds."""

  def __init__(self, name: str):
    if not name or not set(name) <= _NAME_CHARS:
      raise ValueError(f"grid name {name!r}: use letters, digits, '-' and '_' (it names folders)")
    self.name = name
    self._params: List[_Param] = []

  def add(self, binding_name: str, values, shorthand: Optional[str] = None,
          in_name: bool = False) -> "ExperimentGrid":
    """Adds a gin binding with its values (a list; anything else is one value).

    A value is a Python value (a tuple is one value); a str starting with `@`
    or `%` is a gin reference or macro. Bindings with several values, or
    `in_name`, appear in run directory names as shorthand+value;
    `shorthand=""` puts the value alone.
    """
    if not binding_name or any(c.isspace() or c == "=" for c in binding_name):
      raise ValueError(f"binding name {binding_name!r}: give the gin parameter, "
                       "e.g. 'tfrl.train.train.num_envs'")
    if any(p.binding_name == binding_name for p in self._params):
      raise ValueError(f"binding {binding_name!r} is already in the grid")
    values = values if isinstance(values, list) else [values]
    if not values:
      raise ValueError(f"binding {binding_name!r} has no values")
    shorthand = default_shorthand(binding_name) if shorthand is None else shorthand
    if not set(shorthand) <= _NAME_CHARS:
      raise ValueError(f"shorthand {shorthand!r}: use letters, digits, '-' and '_'")
    self._params.append(_Param(binding_name, values, shorthand, in_name))
    return self

  def variants(self) -> List[Dict[str, object]]:
    """Every combination, {binding name: value}; the first added varies slowest."""
    names = [p.binding_name for p in self._params]
    return [dict(zip(names, combo)) for combo in itertools.product(*(p.values for p in self._params))]

  def variant_name(self, variant: Dict[str, object]) -> str:
    """The grid name, then `_<shorthand><value>` per binding that varies or is in_name.

    Bindings whose values are all bools appear as `_<shorthand>` when True
    and not at all when False, as in Spinning Up.
    """
    name = self.name
    for p in self._params:
      if len(p.values) > 1 or p.in_name:
        value = variant[p.binding_name]
        if all(isinstance(v, bool) for v in p.values):
          name += f"_{p.shorthand}" if value else ""
        else:
          name += f"_{p.shorthand}{name_text(value)}"
    return name

  def bindings(self, variant: Dict[str, object]) -> List[str]:
    return [f"{name}={gin_text(value)}" for name, value in variant.items()]

  def runs(self, seeds: Sequence[int], data_dir: str):
    """(variant name, variant, seed, run dir) for every run, in grid order."""
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
      raise ValueError(f"seeds {seeds}: give at least one, each once")
    named = [p for p in self._params if len(p.values) > 1 or p.in_name]
    shorthands = [p.shorthand for p in named if p.shorthand]
    clash = sorted({s for s in shorthands if shorthands.count(s) > 1})
    if clash:
      raise ValueError(f"shorthand {clash[0]!r} names more than one binding; give each its own")
    variants = self.variants()
    names = [self.variant_name(v) for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
      raise ValueError(f"several variants would share the folder {duplicates[0]!r}: "
                       "their values look the same in a name")
    return [(name, variant, seed, os.path.join(data_dir, name, run_dir_name(name, seed)))
            for name, variant in zip(names, variants) for seed in seeds]

  def check(self, gin_files: Sequence[str]):
    """Parses every variant's gin config here, before any process starts.

    A misspelt binding would otherwise fail every run, each after seconds
    of imports. Raises ConfigError naming the variant. Clears gin's global
    config: for scripts, not for a session that holds a config of its own.
    """
    import gin
    from tfrl.train import config
    try:
      for variant in self.variants():
        try:
          config.parse_config(list(gin_files), self.bindings(variant))
        except ConfigError as e:
          raise ConfigError(f"variant {self.variant_name(variant)}: {e}") from None
    finally:
      gin.clear_config()

  def run(self, gin_files: Sequence[str], seeds: Sequence[int] = (0,), data_dir: str = "runs",
          num_procs: int = 1, quiet: bool = False) -> List[RunResult]:
    """Runs every variant × seed, `num_procs` at a time; returns results in grid order.

    A failed run is reported (its error line and log file) and the others go
    on. Each run's console output goes to `<run dir>.log` beside its run
    directory (train.py wants the run directory itself empty or its own).
    Running a grid again resumes each run, as train.py does.
    """
    if isinstance(gin_files, str):
      gin_files = [gin_files]
    seeds = list(seeds)
    if num_procs < 1:
      raise ValueError(f"num_procs must be >= 1, got {num_procs}")
    runs = self.runs(seeds, data_dir)
    say = (lambda *a, **k: None) if quiet else print
    say(f"ExperimentGrid {self.name!r}: {len(runs) // len(seeds)} variant(s) x "
        f"{len(seeds)} seed(s) = {len(runs)} run(s), {min(num_procs, len(runs))} at a "
        f"time, into {data_dir}/")
    for p in self._params:
      shown = f" [{p.shorthand}]" if (len(p.values) > 1 or p.in_name) else ""
      say(f"  {p.binding_name}{shown}: {', '.join(gin_text(v) for v in p.values)}")

    from tqdm import tqdm  # progress over runs; train.py prints its own table to the log
    results: Dict[int, RunResult] = {}
    with tqdm(total=len(runs), unit="run", desc=self.name, disable=quiet, file=sys.stderr) as bar, \
        concurrent.futures.ThreadPoolExecutor(max_workers=num_procs) as pool:
      # Threads only wait on their subprocess; the work happens in the processes.
      futures = {pool.submit(_train, gin_files, self.bindings(variant), seed, run_dir, name): i
                 for i, (name, variant, seed, run_dir) in enumerate(runs)}
      for future in concurrent.futures.as_completed(futures):
        result = results[futures[future]] = future.result()
        if not result.ok and not quiet:
          tqdm.write(f"FAILED {os.path.basename(result.run_dir)}: {result.error} "
                     f"(log: {result.log_path})", file=sys.stdout)
        bar.update(1)
        bar.set_postfix(failed=sum(not r.ok for r in results.values()))
    ordered = [results[i] for i in range(len(runs))]
    say(summary_table(ordered))
    return ordered


def _train(gin_files, bindings, seed, run_dir, variant) -> RunResult:
  """One scripts/train.py process; its stdout streams to the log, stderr is kept for the error."""
  cmd = ([sys.executable, TRAIN_SCRIPT] + [f"--gin_file={f}" for f in gin_files]
         + [f"--gin_bindings={b}" for b in bindings] + [f"--seed={seed}", f"--root_dir={run_dir}"])
  log_path = run_dir + ".log"
  start = time.monotonic()
  try:
    os.makedirs(os.path.dirname(run_dir) or ".", exist_ok=True)
    with open(log_path, "w") as log:
      log.write(" ".join(cmd) + "\n")
      log.flush()
      proc = subprocess.run(cmd, stdout=log, stderr=subprocess.PIPE, text=True)
      log.write(proc.stderr)
  except OSError as e:  # e.g. an unwritable data_dir: this run fails, the grid goes on
    return RunResult(variant, seed, run_dir, log_path, 1, time.monotonic() - start,
                     error=f"cannot start: {e}")
  result = RunResult(variant, seed, run_dir, log_path, proc.returncode, time.monotonic() - start)
  if not result.ok:
    result.error = error_line(proc.stderr)
  result.final_avg_return = final_value(run_dir, "avg_return")
  return result


def error_line(stderr: str) -> str:
  """The line that says why a run failed: the last one that is neither log nor traceback body.

  train.py's own errors are one `train.py: error: ...` line; a crash ends in
  a traceback whose exception line gin may follow with indented context.
  """
  for line in reversed(stderr.splitlines()):
    if line.strip() and not line[0].isspace() and not _LOG_LINE.match(line):
      return line.strip()
  return "(nothing on stderr)"


def final_value(run_dir: str, column: str) -> Optional[float]:
  """The last non-empty `column` in the run's progress.csv, if any."""
  path = os.path.join(run_dir, "progress.csv")
  if not os.path.exists(path):
    return None
  with open(path, newline="") as f:
    cells = [row.get(column) for row in csv.DictReader(f)]
  cells = [c for c in cells if c not in (None, "")]
  try:
    return float(cells[-1]) if cells else None
  except ValueError:
    return None


def summary_table(results: Sequence[RunResult]) -> str:
  """variant | seed | status | final avg_return | wall seconds, then each failure's reason."""
  header = ("variant", "seed", "status", "avg_return", "wall_s")
  rows = [(r.variant, str(r.seed), r.status,
           "-" if r.final_avg_return is None else f"{r.final_avg_return:.4g}", f"{r.wall_s:.1f}")
          for r in results]
  widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
  left = (True, False, True, False, False)  # text left, numbers right

  def line(row):
    return "  ".join(c.ljust(w) if l else c.rjust(w) for c, w, l in zip(row, widths, left))

  lines = [line(header), "  ".join("-" * w for w in widths)] + [line(row) for row in rows]
  failed = [r for r in results if not r.ok]
  lines.append(f"{len(results) - len(failed)} of {len(results)} runs succeeded")
  lines += [f"  {os.path.basename(r.run_dir)}: {r.error} (log: {r.log_path})" for r in failed]
  return "\n".join(lines)
