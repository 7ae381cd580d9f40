"""Adders: observers that turn a driver's batched trajectories into Reverb items.

All take the batched `Trajectory` of numpy arrays the driver emits each step
(leading dimension = number of envs) and keep each env's stream separate, so
episodes and sequences never mix envs or cross an episode boundary.

The TrajectoryWriter adders (`SequenceAdder`, `BatchSequenceAdder`) make every
call that can block (flush, end_episode) through their `wait` attribute, so a
distributed actor can bound those waits; `EpisodeAdder`'s and
`SegmentAdder`'s legacy Reverb `Writer` has no timeout to give.
"""

import collections
from typing import Callable, List, Optional

import numpy as np
import reverb
import tree
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory as trajectory_lib

from tfrl.errors import ConfigError
from tfrl.replay.packing import FrameStackLayout, PackedLayout

BlockingCall = Callable[[Optional[int]], None]  # a writer call taking `timeout_ms`


class _ClosedOnExit:
  """`with adder:` closes the adder's writer(s) on exit, so Reverb does not
  complain about writers deleted unclosed when the process ends."""

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()


class _WholeItemWriter(_ClosedOnExit):
  """An adder writing whole items (episodes, segments) through one
  long-lived legacy Reverb `Writer` (max_sequence_length=1: an item of any
  length fits one chunk; the TrajectoryWriter refuses steps whose shapes change)."""

  def __init__(self, client: reverb.Client, table_name: str):
    self._writer = client.writer(max_sequence_length=1)
    self._closed = False
    self._table = table_name

  def _write(self, item):
    self._writer.append(item)
    self._writer.create_item(self._table, 1, 1.0)

  def flush(self):
    """Blocks until every item written so far is in the table."""
    self._writer.flush()

  def close(self):
    """Closes the writer (once: Reverb's legacy Writer refuses a second close)."""
    if not self._closed:
      self._closed = True
      self._writer.close()


class EpisodeAdder(_WholeItemWriter):
  """Writes each env's complete episodes as one Reverb item each.

  An episode runs from a FIRST step to the boundary step that follows LAST
  (tf-agents' convention: the episode's final trajectory has step_type LAST
  and carries the final observation). Steps go into a time-major buffer shared
  by all envs (one copy per field per step, whatever the number of envs); a
  finished episode is sliced out and written as one item whose tensors have a
  leading time dimension, through one long-lived Reverb `Writer` (several
  times cheaper than a `client.insert` per episode). Call `flush()` before
  reading the table. Steps seen before an env's first FIRST are ignored,
  and so are episodes that start where the driver's env mask is off.
  """

  accepts_env_mask = True

  def __init__(self, client: reverb.Client, table_name: str, num_envs: int,
               initial_capacity: int = 1024):
    super().__init__(client, table_name)
    self._capacity = initial_capacity
    self._buffers: Optional[List[np.ndarray]] = None
    self._treedef = None
    self._t = 0
    self._start = np.full(num_envs, -1, dtype=np.int64)
    self.episodes_written = 0

  @property
  def items_written(self) -> int:
    return self.episodes_written

  def reset(self):
    """Forgets partial episodes (e.g. when the driver resets the envs)."""
    self._t = 0
    self._start[:] = -1

  def __call__(self, traj: trajectory_lib.Trajectory, env_mask: Optional[np.ndarray] = None):
    fields = tree.flatten(traj)
    if self._buffers is None:
      self._treedef = traj
      self._buffers = [np.empty((self._capacity,) + f.shape, f.dtype) for f in fields]
    if self._t == self._capacity:
      self._make_room()
    t = self._t
    for buf, f in zip(self._buffers, fields):
      buf[t] = f
    self._t += 1

    step_type = traj.step_type
    starts = step_type == ts.StepType.FIRST
    if env_mask is not None:
      starts &= env_mask
    self._start[starts] = t
    for env in np.flatnonzero((step_type == ts.StepType.LAST) & (self._start >= 0)):
      start = self._start[env]
      episode = [buf[start:t + 1, env] for buf in self._buffers]
      self._write(tree.unflatten_as(self._treedef, episode))
      self._start[env] = -1
      self.episodes_written += 1

  def _make_room(self):
    """Drops steps no open episode needs; grows the buffer if all are needed."""
    open_starts = self._start[self._start >= 0]
    keep_from = int(open_starts.min()) if open_starts.size else self._t
    kept = self._t - keep_from
    if kept * 2 > self._capacity:
      self._capacity *= 2
    self._buffers = [_moved(buf, keep_from, self._t, self._capacity) for buf in self._buffers]
    self._start[self._start >= 0] -= keep_from
    self._t = kept


class SegmentAdder(_WholeItemWriter):
  """Writes each env's steps of one collection call as one Reverb item.

  For fixed-length on-policy collection (`EpisodeReplay.segment_steps`): the
  driver's `run_transitions` continues episodes across calls and ends each
  with `end_segment(time_step)`. An env's segment is its rows of that call,
  episodes finishing inside it with their real boundary rows (LAST, final
  observation). A segment whose last row is not a boundary is closed by a
  *cut row* shaped like one: step_type LAST, next FIRST, reward 0, discount 1,
  observation s_T (the time step the next call starts from). The transition
  into the cut keeps its discount, so the advantage code bootstraps V(s_T)
  there exactly as at a time-limit truncation, and terminations stay
  unbootstrapped. The next segment starts from s_T (if s_T ended an episode,
  with that episode's real boundary row, which holds nothing to learn).
  """

  def __init__(self, client: reverb.Client, table_name: str, num_envs: int):
    super().__init__(client, table_name)
    self._num_envs = num_envs
    self._rows: List[trajectory_lib.Trajectory] = []
    self.items_written = 0

  def reset(self):
    """Forgets the segment in progress (the driver reset the envs)."""
    self._rows = []

  def __call__(self, traj: trajectory_lib.Trajectory):
    self._rows.append(traj)

  def end_segment(self, time_step: ts.TimeStep):
    """Writes every env's segment, cut at `time_step` (batched, the driver's next start)."""
    if not self._rows:
      return
    rows = tree.map_structure(lambda *xs: np.stack(xs), *self._rows)  # [T, envs, ...]
    self._rows = []
    for env in range(self._num_envs):
      segment = tree.map_structure(lambda x, e=env: x[:, e], rows)
      if segment.step_type[-1] != ts.StepType.LAST:
        segment = _with_cut_row(segment, tree.map_structure(lambda x, e=env: x[e],
                                                            time_step.observation))
      self._write(segment)
      self.items_written += 1


def _with_cut_row(segment: trajectory_lib.Trajectory, observation) -> trajectory_lib.Trajectory:
  """`segment` [T, ...] and a boundary-like row holding `observation`; its
  action and policy info repeat the last row's (a boundary is no transition:
  learners mask them out)."""
  last = tree.map_structure(lambda x: x[-1], segment)
  cut = last._replace(
      step_type=np.asarray(ts.StepType.LAST, last.step_type.dtype),
      next_step_type=np.asarray(ts.StepType.FIRST, last.next_step_type.dtype),
      observation=observation,
      reward=tree.map_structure(np.zeros_like, last.reward),
      discount=np.ones_like(last.discount))
  return tree.map_structure(lambda xs, x: np.concatenate([xs, np.asarray(x, xs.dtype)[None]]),
                            segment, cut)


def _moved(buf: np.ndarray, lo: int, hi: int, capacity: int) -> np.ndarray:
  out = np.empty((capacity,) + buf.shape[1:], buf.dtype) if capacity != len(buf) else buf
  out[:hi - lo] = buf[lo:hi]
  return out


def wait_without_limit(blocking_call: BlockingCall) -> None:
  """How adders wait for their TrajectoryWriters by default: as long as it
  takes. A distributed actor replaces an adder's `wait` with one that gives
  each call a timeout and decides what a timeout means
  (`tfrl.distributed.wiring.ServerLink.wait`)."""
  blocking_call(None)


class SequenceAdder(_ClosedOnExit):
  """Writes overlapping fixed-length sequences of each env's steps.

  With `sequence_length=2, stride=1` every item is one transition (s, a, r, s')
  as tf-agents' off-policy agents (DQN, DDPG, TD3, SAC) expect. Sequences never
  span an episode boundary: the window restarts at every FIRST step.
  New items get priority `priority_fn()` (default 1): prioritized replay
  passes the largest priority seen so every new item is sampled soon.
  """

  def __init__(self, client: reverb.Client, table_name: str, num_envs: int,
               sequence_length: int = 2, stride: int = 1,
               priority_fn: Callable[[], float] = lambda: 1.0):
    self._priority_fn = priority_fn
    self._table = table_name
    self._length = sequence_length
    self._stride = stride
    self._writers = [client.trajectory_writer(num_keep_alive_refs=sequence_length)
                     for _ in range(num_envs)]
    self._steps_in_episode = np.zeros(num_envs, dtype=np.int64)
    self.items_written = 0
    self.wait = wait_without_limit

  def reset(self):
    for writer in self._writers:
      self._end_episode(writer)
    self._steps_in_episode[:] = 0

  def _end_episode(self, writer):
    self.wait(lambda timeout_ms: writer.end_episode(clear_buffers=True, timeout_ms=timeout_ms))

  def __call__(self, traj: trajectory_lib.Trajectory):
    # Flat columns, flattened once per batch step: Reverb checks items against
    # the table signature column by column, so the nest is not needed here,
    # and per-env nest rebuilding would cost more than the write itself.
    fields = tree.flatten(traj)
    first = traj.step_type == ts.StepType.FIRST
    for env, writer in enumerate(self._writers):
      if first[env] and self._steps_in_episode[env]:
        self._end_episode(writer)
        self._steps_in_episode[env] = 0
      writer.append([f[env] for f in fields])
      self._steps_in_episode[env] += 1
      n = self._steps_in_episode[env]
      if n >= self._length and (n - self._length) % self._stride == 0:
        writer.create_item(self._table, self._priority_fn(), [c[-self._length:] for c in writer.history])
        self.items_written += 1

  def flush(self):
    for writer in self._writers:
      self.wait(lambda timeout_ms, w=writer: w.flush(timeout_ms=timeout_ms))

  def close(self):
    for writer in self._writers:
      writer.close()


class BatchSequenceAdder(_ClosedOnExit):
  """Writes the last `sequence_length` batch steps of *all* envs as one item
  of packed windows (`packing.PackedLayout`): uint8 [1, num_envs, window_bytes].

  One Reverb append and one item per batch step, whatever the number of
  envs, and one column per item, so sampling costs one chunk per item. The
  price: per-item rather than per-transition priorities, so prioritized
  replay keeps `SequenceAdder`. Windows that cross an episode boundary in
  some env are written too; the reader gives them weight 0.
  """

  def __init__(self, client: reverb.Client, table_name: str, sequence_length: int = 2):
    self._table = table_name
    self._length = sequence_length
    self._writer = client.trajectory_writer(num_keep_alive_refs=1)
    self._steps = collections.deque(maxlen=sequence_length)
    self.items_written = 0
    self.wait = wait_without_limit

  def reset(self):
    """The envs were reset: no window may reach back across that."""
    self._steps.clear()

  def __call__(self, traj: trajectory_lib.Trajectory):
    num_envs = len(traj.step_type)
    self._steps.append(PackedLayout.pack_step(traj, num_envs))
    if len(self._steps) == self._length:
      self._writer.append(np.concatenate(self._steps, axis=1))
      self._writer.create_item(self._table, 1.0, self._writer.history[-1:])
      self.items_written += 1

  def flush(self):
    self.wait(lambda timeout_ms: self._writer.flush(timeout_ms=timeout_ms))

  def close(self):
    self._writer.close()



class FrameStackAdder(_ClosedOnExit):
  """`BatchSequenceAdder` for stacked-frame observations, each frame stored
  once: every batch step appends one row per env holding its newest frame
  and the other fields (`packing.FrameStackLayout`), and every item
  references the last `frame_stack + sequence_length - 1` appended steps,
  uint8 [item_steps, num_envs, row_bytes]. Overlapping items share those
  steps' chunks, which the server stores once; the reader rebuilds the
  stacks. A writer starts with `frame_stack - 1` all-zero steps (step type
  FIRST, zero frames) so its first items have the steps they reference.

  What makes dropping the older frames exact is checked as steps arrive:
  a FIRST step's older frames are zero and every other step's are the
  previous step's newer ones (gymnasium's zero-padded FrameStackObservation).
  """

  def __init__(self, client: reverb.Client, table_name: str, sequence_length: int,
               frame_stack: int):
    self._table = table_name
    self._length = sequence_length
    self._frame_stack = frame_stack
    self._item_steps = frame_stack + sequence_length - 1
    self._writer = client.trajectory_writer(num_keep_alive_refs=self._item_steps)
    # Chunks of at most one item's steps: a sample decompresses at most two.
    self._writer.configure((), num_keep_alive_refs=self._item_steps,
                           max_chunk_length=self._item_steps)
    self._steps_since_reset = 0
    self._previous = None  # the last step's observations, [num_envs, ..., frame_stack]
    self.items_written = 0
    self.wait = wait_without_limit

  def reset(self):
    """The envs were reset: their next steps are FIRST, so older frames are masked."""
    self._steps_since_reset = 0
    self._previous = None

  def __call__(self, traj: trajectory_lib.Trajectory):
    observation = np.asarray(traj.observation)
    num_envs = len(traj.step_type)
    self._check_stacked(observation, np.asarray(traj.step_type))
    row = FrameStackLayout.pack_step(traj, num_envs)
    if self._writer.episode_steps == 0:
      for _ in range(self._frame_stack - 1):
        self._writer.append(np.zeros_like(row))
    self._writer.append(row)
    self._previous = observation
    self._steps_since_reset += 1
    if self._steps_since_reset >= self._length:
      self._writer.create_item(self._table, 1.0, self._writer.history[-self._item_steps:])
      self.items_written += 1

  def _check_stacked(self, observation: np.ndarray, step_type: np.ndarray):
    older = observation[..., :-1]
    first = step_type == ts.StepType.FIRST
    if self._previous is None and not first.all():
      raise ConfigError("FrameStackAdder: the first step after a reset must be FIRST in every env")
    for env in range(len(step_type)):
      expected_zero = first[env]
      if expected_zero:
        fits = not older[env].any()
      else:
        fits = np.array_equal(older[env], self._previous[env][..., 1:])
      if not fits:
        what = ("a FIRST step's older frames are not zero" if expected_zero else
                "a step's older frames are not the previous step's newer ones")
        raise ConfigError(
            f"tfrl.replay.TransitionReplay.frame_stack = {self._frame_stack}: env {env}'s "
            f"observations are not zero-padded frame stacks ({what}); unbind frame_stack, "
            "or stack frames with gymnasium's FrameStackObservation(padding_type='zero')")

  def flush(self):
    self.wait(lambda timeout_ms: self._writer.flush(timeout_ms=timeout_ms))

  def close(self):
    self._writer.close()
