"""The one train loop: a step source advanced iteration by iteration, hooks around it.

Every mode runs through `run_loop`: it opens the run directory (restoring
the latest checkpoint before anything is written), keeps the iteration
counter and the wall clock, and after each advance of the *step source*
calls the hooks that are due. What differs between modes is the source:

  * `tfrl.train.sources.EpisodeSource` — on-policy: whole episodes (or fixed-length
    segments, `EpisodeReplay.segment_steps`) per iteration,
  * `tfrl.train.sources.SampleSource` — off-policy: collect steps, train on samples,
  * `tfrl.train.compiled.CompiledSource` — the off-policy loop in one XLA graph,
  * `tfrl.distributed.learner.LearnerSource` — samples from actors via a server.

Each is a `StepSource` (its docstring lists what a source provides).

Hooks (`Hook`: `interval`, `begin`, `after`, `end`) do the rest:
`FiniteLoss`, `Evaluate` (a progress row), `ExportPolicy`, `Checkpoint`
are the defaults; pass more to `train(hooks=...)`, e.g. `StopAtReturn`.
"""

import math
import os
import signal
import threading
import time
from typing import Callable, Dict, NamedTuple, Optional, Sequence

import gin
import numpy as np
import tensorflow as tf
import tqdm

from tfrl.train import faults
from tfrl.train.checkpoints import PolicyExport, RunCheckpoint
from tfrl.train.logger import EpochLogger, ScalarEvents, format_summary
from tfrl.train.run_dir import (CONFIG_FILE, PROGRESS_FILE, ProgressCsv, atomic_write,
                                check_run_dir, with_run_format)

# The first columns of progress.csv; the evaluation's and training
# episodes' spread and the agent's diagnostics (policy_loss, approx_kl,
# entropy, ...: whatever its LossInfo.extra holds) follow.
TENSORBOARD_DIR = "tensorboard"
PROGRESS_COLUMNS = ["iteration", "env_steps", "train_steps", "episodes", "avg_return",
                    "train_return", "loss", "wall_s"]


class Advance(NamedTuple):
  """What one `source.run(n)` did: the loss to check and log (None: no
  update happened) and diagnostics averaged into the next row."""
  loss: Optional[float]
  diagnostics: Dict[str, float] = {}


class Interrupted(KeyboardInterrupt):
  """SIGINT or SIGTERM stopped the run at an iteration boundary, after a checkpoint."""

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.signum = signum


class StepSource:
  """What differs between modes: `run(n)` advances n iterations and says
  what it did, `counts()` gives the progress row's env_steps and episodes.
  The rest has defaults: `checkpointed()` (trackables the run's checkpoint
  holds, created at construction), `start(run)` (servers, replay restore:
  before progress.csv is touched), `prefill()` (e.g. the initial
  collection), `row_extras()` (columns of its own), `before_checkpoint()`
  (the embedded replay server whose tables go into the checkpoint, or None),
  `close()`; `max_iterations_per_call` (None: any number)."""
  max_iterations_per_call: Optional[int] = 1

  def checkpointed(self) -> dict:
    return {}

  def start(self, run: "Run"):
    pass

  def prefill(self):
    pass

  def run(self, num_iterations: int) -> Advance:
    raise NotImplementedError

  def counts(self) -> dict:
    raise NotImplementedError

  def row_extras(self) -> dict:
    return {}

  def before_checkpoint(self):
    return None

  def close(self):
    pass


class Run:
  """The loop's state, as hooks see it."""

  def __init__(self, root_dir, config, agent, source, checkpoint: RunCheckpoint,
               iteration_var: tf.Variable, wall_var: tf.Variable, log):
    self.root_dir, self.config, self.agent, self.source = root_dir, config, agent, source
    self.checkpoint = checkpoint
    self.log = log
    self.logger: Optional[EpochLogger] = None
    self.iteration = int(iteration_var.numpy())
    self.resumed = checkpoint.latest is not None
    self.last_row: Optional[dict] = None
    self.start_wall = time.time() - float(wall_var.numpy())
    self._iteration_var, self._wall_var = iteration_var, wall_var
    self._stop_requested = False
    self.interrupted_by: Optional[int] = None  # the signal that asked to stop
    self.saved_iteration = self.iteration if self.resumed else None
    self.saved_at = time.time()

  @property
  def num_iterations(self) -> int:
    return self.config.num_iterations

  @property
  def is_last(self) -> bool:
    """The loop ends after this iteration (budget reached or a stop requested)."""
    return self.iteration >= self.num_iterations or self._stop_requested

  def request_stop(self, reason: str):
    """Ends the run after this iteration's hooks (checkpoint included)."""
    if not self._stop_requested:
      self.log(f"stopping at iteration {self.iteration}: {reason}")
    self._stop_requested = True

  def wall_s(self) -> float:
    return time.time() - self.start_wall

  def counts(self) -> dict:
    """The progress row's counters."""
    source_counts = self.source.counts()
    return dict(iteration=self.iteration, env_steps=source_counts["env_steps"],
                train_steps=int(self.agent.train_step_counter.numpy()),
                episodes=source_counts["episodes"])

  def diverged(self) -> str:
    return f"at iteration {self.iteration}; last good checkpoint: {self.checkpoint.latest}"

  def save_checkpoint(self):
    """Checks the parameters, then saves agent, counters, the source's state
    and (if it has one to persist) the replay tables."""
    check_finite_parameters(self.agent, self.diverged())
    replay_server = self.source.before_checkpoint()
    self._iteration_var.assign(self.iteration)
    self._wall_var.assign(self.wall_s())
    self.checkpoint.save(self.iteration, replay_server)
    self.saved_iteration, self.saved_at = self.iteration, time.time()


class Hook:
  """Something the loop does between iterations. `after` runs when the
  iteration is a multiple of `interval` (None: after every advance of the
  source) and at the last iteration; `begin` once before the first
  iteration of this process (after a resume too), `end` once after the last."""
  interval: Optional[int] = None

  def begin(self, run: Run):
    pass

  def after(self, run: Run, advance: Advance):
    pass

  def end(self, run: Run):
    pass

  def due(self, run: Run) -> bool:
    return self.interval is None or run.iteration % self.interval == 0 or run.is_last


class FiniteLoss(Hook):
  """Stops the run with a one-line FloatingPointError on a non-finite loss."""

  def after(self, run, advance):
    if advance.loss is not None and not math.isfinite(advance.loss):
      raise FloatingPointError(f"non-finite loss {advance.loss} {run.diverged()}")


class Evaluate(Hook):
  """A progress row per `interval` iterations (and one at iteration 0):
  the counters, `evaluator()`'s returns and what was stored since."""

  def __init__(self, evaluator, interval: int):
    self.evaluator, self.interval = evaluator, interval

  def begin(self, run):
    if run.iteration == 0 and not run.resumed:  # (a checkpoint at 0 has its row)
      self.after(run, None)

  def after(self, run, advance):
    row = evaluation_row(self.evaluator, run.logger, ("eval_return", "train_return"),
                         run.start_wall, **run.counts())
    row.update(run.source.row_extras())
    run.logger.write(row, step=row["env_steps"])
    run.last_row = row


class ExportPolicy(Hook):
  """The greedy policy as a SavedModel and its variables at every `interval`."""

  def __init__(self, root_dir: str, policy, train_step: tf.Variable, interval: int):
    self.exporter = PolicyExport(root_dir, policy, train_step)
    self.interval = interval

  def begin(self, run):
    if run.iteration == 0 and not run.resumed:  # (a checkpoint at 0 has its row)
      self.after(run, None)

  def after(self, run, advance):
    self.exporter.save(run.iteration)


class Checkpoint(Hook):
  """Saves every `interval` iterations, at the last, and once `interval_s`
  seconds have passed since the last save (None: no time limit)."""

  def __init__(self, interval: int, interval_s: Optional[float] = None):
    self.interval, self.interval_s = interval, interval_s

  def due(self, run) -> bool:
    overdue = self.interval_s is not None and time.time() - run.saved_at >= self.interval_s
    return super().due(run) or overdue

  def after(self, run, advance):
    faults.point("progress")
    run.save_checkpoint()


@gin.configurable(module="tfrl.train")
class StopAtReturn(Hook):
  """Ends the run at the first progress row whose avg_return reaches `target`."""

  def __init__(self, target: float):
    self.target = target

  def after(self, run, advance):
    row = run.last_row
    if row is not None and row["iteration"] == run.iteration and row["avg_return"] >= self.target:
      run.request_stop(f"avg_return {row['avg_return']:.4g} >= {self.target:g}")


def default_hooks(config, evaluator, agent, root_dir: str):
  hooks = [FiniteLoss(), Evaluate(evaluator, config.eval_interval)]
  if config.export_policy:
    hooks.append(ExportPolicy(root_dir, evaluator.policy, agent.train_step_counter,
                              config.eval_interval))
  return hooks


class RunSpec(NamedTuple):
  """One run directory's part of `run_loops`: where, what trains, what
  advances it (`source`), extra hooks and how it logs. `config_note`: a
  comment line config.gin gets below its format line (the K-seed runs')."""
  root_dir: str
  config: object
  agent: object
  evaluator: object
  source: StepSource
  hooks: Sequence[Hook] = ()
  log: Callable[[str], None] = print
  mode: str = ""
  config_note: Optional[str] = None


def run_loop(root_dir: str, config, agent, evaluator, source, hooks: Sequence[Hook] = (),
             log: Callable[[str], None] = print, mode: str = "") -> dict:
  """Trains `agent` with `source` until `config.num_iterations`; returns
  the last progress row. `hooks` run after the default ones (finite loss,
  evaluation, export) and before the checkpoint."""
  spec = RunSpec(root_dir, config, agent, evaluator, source, hooks, log, mode)
  return run_loops([spec], lambda counts: {0: source.run(counts[0])})[0]


def run_loops(specs: Sequence[RunSpec], advance: Callable[[Dict[int, int]], Dict[int, Advance]],
              log: Optional[Callable[[str], None]] = None) -> list:
  """The loop of several run directories advanced together (the K-seed
  compiled runs: one graph call advances every seed): `advance({index:
  iterations})` advances those runs and says what each did. Every run
  directory is checked and its checkpoint restored before any is written.
  A run resumed behind the others (a kill came between their checkpoints)
  is advanced alone until it catches up, so no run is rolled back; a run
  that stops (its budget, a hook's request) is left out of later calls;
  a run that diverges (FloatingPointError) is stopped with its last good
  checkpoint while the others go on, and its error is raised once they
  have finished. `log`: the signal messages' (default: the first run's).
  Returns the runs' last progress rows, in order."""
  sessions = [_Session(spec) for spec in specs]  # nothing written yet
  for session in sessions:
    session.start()
  runs = [s.run for s in sessions]
  with _stop_on_signals(runs, _above_progress_bars(log or specs[0].log)):
    for session in sessions:
      session.begin()
    _iterate(sessions, advance)
    interrupted = [r.interrupted_by for r in runs if r.interrupted_by is not None]
    if interrupted:
      for session in sessions:
        if session.failed is None and session.run.saved_iteration != session.run.iteration:
          session.run.save_checkpoint()
      where = runs[0].iteration if len(runs) == 1 else ", ".join(str(r.iteration) for r in runs)
      raise Interrupted(f"interrupted at iteration {where}; checkpointed there: the same "
                        "command resumes the run", interrupted[0])
  last_rows = [s.finish() for s in sessions if s.failed is None]
  failed = [s for s in sessions if s.failed is not None]
  if failed:
    raise failed[0].failed
  return last_rows


class _Session:
  """One run directory inside `run_loops`: opened (checked, restored:
  nothing written), then `start` (config.gin, the source, progress.csv),
  `begin`, `after` each advance, `finish`."""

  def __init__(self, spec: RunSpec):
    self.spec = spec
    self.log = _above_progress_bars(spec.log)
    iteration_var = tf.Variable(0, dtype=tf.int64, name="iteration")
    wall_var = tf.Variable(0.0, dtype=tf.float64, name="wall_s")
    self.checkpoint, self._new_config = restore_run_dir(
        spec.root_dir, spec.agent,
        dict(iteration=iteration_var, wall_s=wall_var, **spec.source.checkpointed()))
    self.run = Run(spec.root_dir, spec.config, spec.agent, spec.source, self.checkpoint,
                   iteration_var, wall_var, self.log)
    self.hooks = default_hooks(spec.config, spec.evaluator, spec.agent, spec.root_dir) + list(
        spec.hooks) + [Checkpoint(spec.config.checkpoint_interval,
                                  spec.config.checkpoint_interval_s)]
    self.failed: Optional[BaseException] = None

  def start(self):
    spec, run = self.spec, self.run
    if self._new_config is not None:
      write_run_config(spec.root_dir, self._new_config, spec.config_note)
    rows = ProgressCsv(os.path.join(spec.root_dir, PROGRESS_FILE), PROGRESS_COLUMNS).rows()
    kept = run.iteration if run.resumed else -1
    dropped = sum(int(r["iteration"]) > kept for r in rows)  # what run_logger will drop
    where = f"{spec.root_dir}{f' ({spec.mode})' if spec.mode else ''}"
    if run.resumed:
      self.log(f"resuming {where} at iteration {run.iteration}, from {self.checkpoint.latest}"
               + (f" ({dropped} progress rows after it dropped)" if dropped else ""))
    elif rows:
      self.log(f"no checkpoint yet in {where}: starting over ({dropped} progress rows dropped)")
    else:
      self.log(f"starting a new run in {where}")
    spec.source.start(run)
    run.logger = run_logger(spec.root_dir, PROGRESS_COLUMNS, self.checkpoint, run.iteration,
                            self.log)

  def begin(self):
    self.spec.source.prefill()
    for hook in self.hooks:
      hook.begin(self.run)

  @property
  def active(self) -> bool:
    return self.failed is None and not self.run.is_last and self.run.interrupted_by is None

  def next_stop(self) -> int:
    """The iteration the next advance may run to: the next hook due, the
    budget, the source's limit per call."""
    run = self.run
    intervals = [h.interval for h in self.hooks if h.interval is not None]
    stop = min([run.num_iterations] + [(run.iteration // i + 1) * i for i in intervals])
    limit = self.spec.source.max_iterations_per_call
    return stop if limit is None else min(stop, run.iteration + limit)

  def after(self, count: int, advance: Advance, several: bool):
    """The iteration counter, the loss, then the hooks due. Several runs
    together: a divergence stops this one only."""
    run = self.run
    run.iteration += count
    try:
      if advance.loss is not None:
        run.logger.store(loss=advance.loss, **advance.diagnostics)
      for hook in self.hooks:
        if hook.due(run):
          hook.after(run, advance)
    except FloatingPointError as error:
      if not several:
        raise
      self.failed = FloatingPointError(f"{self.spec.root_dir}: {error}")
      self.log(f"stopped: {error}")

  def finish(self) -> dict:
    for hook in self.hooks:
      hook.end(self.run)
    last_row = self.run.logger.finish(self.run.last_row)
    self.log(format_summary(self.run.logger.progress.rows(), self.spec.root_dir,
                            self.run.wall_s()))
    return last_row


def _iterate(sessions, advance):
  several = len(sessions) > 1
  bar = tqdm.tqdm(initial=min(s.run.iteration for s in sessions),
                  total=max(s.run.num_iterations for s in sessions), desc="train", disable=None,
                  leave=False)
  with bar:
    while True:
      active = [i for i, s in enumerate(sessions) if s.active]
      if not active or any(s.run.interrupted_by is not None for s in sessions):
        return
      # As many iterations as the sources take at once, up to the next hook
      # due; runs behind (resumed from an earlier checkpoint) catch up first.
      stop = min(sessions[i].next_stop() for i in active)
      counts = {i: stop - sessions[i].run.iteration for i in active
                if sessions[i].run.iteration < stop}
      try:
        advances = advance(counts)
      except tf.errors.InvalidArgumentError as e:
        if "nan" not in str(e).lower():
          raise
        # Agents with check_numerics (tf-agents') stop inside the graph.
        session = sessions[min(counts)]
        session.run.iteration += counts[min(counts)]
        raise FloatingPointError(f"non-finite values in training {session.run.diverged()}"
                                 + (" (one of the seeds' graphs)" if several else "")) from None
      for i, count in counts.items():
        sessions[i].after(count, advances[i], several)
      bar.update(min(sessions[i].run.iteration for i in active) - bar.n)


class _stop_on_signals:  # pylint: disable=invalid-name
  """While the loop runs, SIGINT and SIGTERM ask it to stop at the next
  iteration boundary (the loop checkpoints, then raises Interrupted); a
  second signal acts as it would without the loop. Only the main thread
  can take signals: elsewhere the handlers stay as they are."""

  def __init__(self, runs: Sequence[Run], log):
    self._runs, self._log = list(runs), log
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    self._restore()
    for run in self._runs:
      run.interrupted_by = signum
    self._log(f"{signal.Signals(signum).name}: stopping after iteration "
              f"{self._runs[0].iteration + 1} to checkpoint (again to stop at once)")

  def _restore(self):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGINT, signal.SIGTERM):
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc):
    self._restore()


def _above_progress_bars(log: Callable[[str], None]) -> Callable[[str], None]:
  """`log`, clearing tqdm's bars around each message (in a terminal a table
  printed while the bar is drawn would otherwise be glued onto it)."""
  def log_above_bars(message: str):
    with tqdm.tqdm.external_write_mode():
      log(message)
  return log_above_bars


def check_finite_parameters(agent, diverged: str):
  if not all(np.all(np.isfinite(v.numpy())) for v in agent.variables):
    raise FloatingPointError(f"non-finite parameters {diverged}")


def resume_seed(seed: int, iteration: int) -> int:
  """The seed of a run resumed at `iteration` (fits numpy's 32 bits)."""
  return int(np.random.SeedSequence([seed, iteration]).generate_state(1)[0])


def restore_run_dir(root_dir: str, agent, tracked: dict):
  """Opens a run directory for training, writing nothing: refuses one
  written with another config, restores the latest checkpoint of `agent`
  and `tracked` (counters, loop state) — a damaged checkpoint stops the
  run with the directory as it was. Returns (the RunCheckpoint, the config
  text `write_run_config` must write for a new run, else None)."""
  config = gin.operative_config_str()
  resuming = check_run_dir(root_dir, config)
  run_checkpoint = RunCheckpoint(root_dir, agent, tracked)
  if run_checkpoint.latest:
    run_checkpoint.restore()
  return run_checkpoint, None if resuming else config


def write_run_config(root_dir: str, config: str, note: Optional[str] = None):
  """A new run's config.gin: the format line, `note` as a comment, the config."""
  os.makedirs(root_dir, exist_ok=True)
  text = with_run_format(config)
  if note:
    first, rest = text.split("\n", 1)
    text = f"{first}\n# {note}\n{rest}"
  atomic_write(os.path.join(root_dir, CONFIG_FILE), text)


def run_logger(root_dir: str, columns, run_checkpoint: RunCheckpoint, iteration: int,
               log) -> EpochLogger:
  """The run's EpochLogger: progress.csv (rows newer than the restored
  checkpoint's `iteration` are dropped, to be redone; with no checkpoint,
  all are), TensorBoard and the console."""
  progress = ProgressCsv(os.path.join(root_dir, PROGRESS_FILE), columns)
  progress.truncate_after(iteration if run_checkpoint.latest else -1)
  events = ScalarEvents(os.path.join(root_dir, TENSORBOARD_DIR))
  events.rebuild(progress.rows())
  return EpochLogger(progress, events, console=log)


def evaluation_row(evaluator, logger: EpochLogger, stats, start_wall: float, **counts) -> dict:
  """Evaluates, then the iteration's progress row: `counts`, the logger's
  averages (`stats` with their spread), `avg_return` (the evaluation's mean)
  and `wall_s`."""
  result = evaluator()
  logger.store(eval_return=result.returns, eval_length=result.lengths)
  row = logger.row(stats=stats, **counts)
  row["avg_return"] = row.pop("eval_return")
  row["wall_s"] = time.time() - start_wall
  return row
