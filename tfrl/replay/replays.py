"""Replay components: the table, the adder that fills it, and how it is read.

An agent's gin file picks one:
  * `EpisodeReplay` (on-policy): whole episodes (or, with `segment_steps`,
    fixed-length segments per env), each read exactly once, then gone.
  * `TransitionReplay` (off-policy): fixed-length sequences sampled uniformly
    or by priority, as a tf.data pipeline.
Both are settings only: tables, adder and dataset are functions of (the
agent's `collect_data_spec`, the number of envs, these settings), callable in
any order, in any process, with the same result. They know nothing of the
agent itself.
"""

import time
from typing import Annotated, Callable, List, Optional

import gin
import numpy as np
import reverb
import tensorflow as tf
import tree
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory as trajectory_lib

from tfrl.checks import Count, Fraction, NonNegativeFloat, Range, checked_arguments
from tfrl.errors import ConfigError
from tfrl.replay.adders import (BatchSequenceAdder, EpisodeAdder, FrameStackAdder, SegmentAdder,
                                SequenceAdder)
from tfrl.replay.packing import FrameStackLayout, PackedLayout

# Bounds on asking the server for its tables' sizes (Reverb's own default is no bound).
SERVER_INFO_TIMEOUT_S = 5
# How often a waiting read asks again; short, and a Python sleep, so Ctrl-C stops it.
POLL_INTERVAL_S = 0.05


def current_size(client: reverb.Client, table_name: str) -> int:
  """The number of items in `table_name`; Reverb's DeadlineExceededError if
  the server does not answer within SERVER_INFO_TIMEOUT_S."""
  info = client.server_info(timeout=SERVER_INFO_TIMEOUT_S)
  if table_name not in info:
    raise ConfigError(f"the Reverb server has no table {table_name!r} (it has {sorted(info)})")
  return info[table_name].current_size


@gin.configurable(module="tfrl.replay")
class EpisodeReplay:
  """On-policy replay: a FIFO table of whole episodes, each sampled once.

  `segment_steps` (default None: whole episodes) switches to Spinning Up's
  fixed-size batches: each iteration collects that many transitions over all
  envs (`Driver.run_transitions`), continuing episodes across iterations, and
  every env's steps become one item (a segment, `SegmentAdder`) cut with a
  row that bootstraps V of the observation at the cut. It lives here, not in
  the RunConfig, because it changes what an item is and which adder writes
  it; every process that builds the adder gets it from this component.
  """

  on_policy = True

  @checked_arguments("tfrl.replay.EpisodeReplay")
  def __init__(self, capacity: Count = 1000, table_name: str = "episodes",
               segment_steps: Optional[Count] = None):
    self.capacity = capacity
    self.table_name = table_name
    self.segment_steps = segment_steps

  def collect(self, driver, episodes_per_iteration: int):
    """One iteration's collection: `segment_steps` transitions, or whole episodes."""
    if self.segment_steps is not None:
      driver.run_transitions(self.segment_steps)
    else:
      driver.run_episodes(episodes_per_iteration)

  def tables(self, data_spec, num_envs: int = 1) -> List[reverb.Table]:
    del num_envs  # one item per episode, whichever env it came from
    # Each item holds one episode; its tensors gain a leading time axis of any length.
    signature = tensor_spec.add_outer_dim(data_spec, None)
    return [reverb.Table(
        name=self.table_name,
        sampler=reverb.selectors.Fifo(),
        remover=reverb.selectors.Fifo(),
        max_size=self.capacity,
        max_times_sampled=1,
        rate_limiter=reverb.rate_limiters.MinSize(1),
        signature=signature)]

  def check(self, data_spec) -> None:
    """Any data spec's episodes can be stored."""
    del data_spec

  def adder(self, client: reverb.Client, num_envs: int):
    if self.segment_steps is not None:
      return SegmentAdder(client, self.table_name, num_envs)
    return EpisodeAdder(client, self.table_name, num_envs)

  def num_items(self, client: reverb.Client) -> int:
    """Episodes in the table now (a bounded ask)."""
    return current_size(client, self.table_name)

  def read_episodes(self, client: reverb.Client, num_episodes: int, *, data_spec,
                    wait_s: Optional[float] = 0.0,
                    table_size: Optional[Callable[[], int]] = None
                    ) -> List[trajectory_lib.Trajectory]:
    """Takes the oldest `num_episodes` episodes out of the table, as numpy
    nests shaped like `data_spec` (the spec the tables were built from).

    Reverb's sampler would block, deaf to Ctrl-C, until enough episodes
    arrive, so the table's size is asked first. `wait_s=0` (default): fewer
    episodes than asked is a ConfigError saying how many there are; `wait_s`
    seconds (None: without bound) are spent polling in short sleeps for
    episodes that others (actors, threads) are still writing, then the same
    error. `table_size` replaces how the size is asked (default:
    `self.num_items(client)`), e.g. by one that survives a server restart.
    """
    count = table_size or (lambda: self.num_items(client))
    deadline = None if wait_s is None else time.monotonic() + wait_s
    while (held := count()) < num_episodes:
      if deadline is not None and time.monotonic() >= deadline:
        waited = f" after waiting {wait_s:g} s" if wait_s else ""
        raise ConfigError(f"replay table {self.table_name!r} holds {held} episode(s){waited}; "
                          f"{num_episodes} asked for: collect more first or ask for fewer")
      time.sleep(POLL_INTERVAL_S)
    episodes = []
    for sample in client.sample(self.table_name, num_samples=num_episodes):
      episodes.append(tree.unflatten_as(data_spec, sample[0].data))
    return episodes

  def experience(self, client: reverb.Client, num_episodes: int, *, data_spec,
                 transform: Optional[Callable] = None,
                 wait_s: Optional[float] = 0.0) -> trajectory_lib.Trajectory:
    """Reads episodes (or segments) and lays them end to end as one batch row: [1, sum(T), ...].

    tf-agents' on-policy agents reset their return computation at episode
    boundaries (the LAST -> FIRST steps), so concatenation needs no padding.
    `transform` (list of episodes -> list of episodes, e.g. RUDDER's reward
    redistribution) rewrites them first. `wait_s`: as `read_episodes`.
    """
    episodes = self.read_episodes(client, num_episodes, data_spec=data_spec, wait_s=wait_s)
    if transform is not None:
      episodes = transform(episodes)
    return self.concatenate(episodes)

  @staticmethod
  def concatenate(episodes: List[trajectory_lib.Trajectory]) -> trajectory_lib.Trajectory:
    """Episodes laid end to end as one batch row: [1, sum(T), ...]."""
    return tree.map_structure(lambda *xs: tf.convert_to_tensor(np.concatenate(xs)[None]),
                              *episodes)


def valid_sequences(traj: trajectory_lib.Trajectory) -> tf.Tensor:
  """True where a [..., L] sequence stays inside one episode.

  A sequence may end on an episode's closing boundary step (it carries the
  final observation) but must not step from a boundary into the next episode.
  """
  return tf.reduce_all(tf.not_equal(traj.step_type[..., :-1], ts.StepType.LAST), axis=-1)


@gin.configurable(module="tfrl.replay")
class TransitionReplay:
  """Off-policy replay: fixed-length sequences (transitions by default).

  Uniform replay stores one item per batch step holding every env's window
  (`BatchSequenceAdder`, fast); prioritized replay stores one item per env
  window (`SequenceAdder`) so each transition has its own priority.
  `capacity` and `min_size` count sequences either way.

  `frame_stack` (uniform replay; default None: observations stored whole)
  is for observations that are `frame_stack` uint8 frames stacked on the
  last axis, zero-padded after a reset (Atari's: bind it where the env's
  stack is set, `gin_configs/envs/atari_*.gin`): each step then stores its
  newest frame only and items share their steps (`FrameStackAdder`), so a
  frame is stored once instead of 2 x frame_stack times, and the stacks are
  rebuilt when sampled. It is a knob rather than read off the spec because
  a uint8 [H, W, k] spec does not say whether k is a stack (MinAtar's k
  channels are not); the spec's shape is checked (`check`), and the adder
  checks each step's frames against the previous step's.
  """

  on_policy = False

  @checked_arguments("tfrl.replay.TransitionReplay")
  def __init__(self,
               capacity: Count = 100_000,
               sequence_length: Annotated[int, Range(low=2)] = 2,
               min_size: Count = 1000,
               prioritized: bool = False,
               priority_exponent: NonNegativeFloat = 0.6,
               importance_exponent: Fraction = 0.4,
               table_name: str = "transitions",
               frame_stack: Optional[Annotated[int, Range(low=2)]] = None):
    if frame_stack is not None and prioritized:
      raise ConfigError("tfrl.replay.TransitionReplay.frame_stack is for uniform replay: "
                        "unbind it or set prioritized = False")
    self.capacity = capacity
    self.sequence_length = sequence_length
    self.min_size = min_size
    self.prioritized = prioritized
    self.priority_exponent = priority_exponent
    self.importance_exponent = importance_exponent
    self.max_priority = 1.0
    self.table_name = table_name
    self.frame_stack = frame_stack

  def layout(self, data_spec):
    """How uniform replay packs an item (`PackedLayout` or `FrameStackLayout`)."""
    if self.frame_stack is None:
      return PackedLayout(data_spec, self.sequence_length)
    return FrameStackLayout(data_spec, self.sequence_length, self.frame_stack)

  def check(self, data_spec) -> None:
    """ConfigError if items of `data_spec` cannot be stored as these settings say."""
    if not self.prioritized:
      self.layout(data_spec)

  def envs_per_item(self, num_envs: int) -> int:
    """Uniform replay writes one item per batch step holding every env's window."""
    return 1 if self.prioritized else num_envs

  def min_items(self, num_envs: int) -> int:
    """Items the table must hold before it can be sampled (`min_size` sequences)."""
    return max(1, -(-self.min_size // self.envs_per_item(num_envs)))

  def batch_steps_before_sampling(self, num_envs: int) -> int:
    """Steps of all `num_envs` envs the adder needs before the table can be
    sampled: each env's window fills after `sequence_length` steps, then every
    step adds one sequence per env. Exact for uniform replay; prioritized
    replay restarts windows at every episode, so it may need more."""
    return -(-self.min_size // num_envs) + self.sequence_length - 1

  def tables(self, data_spec, num_envs: int = 1,
             samples_per_insert: Optional[float] = None,
             error_buffer: Optional[float] = None) -> List[reverb.Table]:
    """`samples_per_insert` given: sampling and inserting are held to that
    ratio of items (Reverb's SampleToInsertRatio, within `error_buffer`
    samples) instead of sampling freely once `min_size` is reached."""
    sampler = (reverb.selectors.Prioritized(self.priority_exponent) if self.prioritized
               else reverb.selectors.Uniform())
    per_item = self.envs_per_item(num_envs)
    min_items = self.min_items(num_envs)
    rate_limiter = (reverb.rate_limiters.MinSize(min_items) if samples_per_insert is None else
                    reverb.rate_limiters.SampleToInsertRatio(samples_per_insert, min_items,
                                                             error_buffer))
    return [reverb.Table(
        name=self.table_name,
        sampler=sampler,
        remover=reverb.selectors.Fifo(),
        max_size=-(-self.capacity // per_item),
        rate_limiter=rate_limiter,
        signature=self._item_spec(data_spec, num_envs))]

  def _item_spec(self, data_spec, num_envs: int):
    """An item: prioritized, one env's window of `data_spec`; uniform, one
    batch step's windows of every env, packed into one uint8 column: one
    appended row of whole windows, or with `frame_stack` the steps the
    windows span, a frame each."""
    if self.prioritized:
      return tensor_spec.add_outer_dim(data_spec, self.sequence_length)
    layout = self.layout(data_spec)
    return tf.TensorSpec([layout.item_steps, num_envs, layout.row_bytes], tf.uint8)

  def adder(self, client: reverb.Client, num_envs: int):
    if self.prioritized:
      return SequenceAdder(client, self.table_name, num_envs, self.sequence_length,
                           priority_fn=lambda: self.max_priority)
    if self.frame_stack is not None:
      return FrameStackAdder(client, self.table_name, self.sequence_length, self.frame_stack)
    return BatchSequenceAdder(client, self.table_name, self.sequence_length)

  def dataset(self, address: str, batch_size: int, num_envs: int = 1,
              rate_limiter_timeout_ms: Optional[int] = None, *, data_spec,
              num_batches: Optional[int] = None) -> tf.data.Dataset:
    """Batches sampled from the table built for `data_spec` and `num_envs`.

    Uniform replay: elements (Trajectory [B, L, ...], weights [B]), or with
    `num_batches` K, K batches at once: ([K, B, L, ...], [K, B]) — one
    Reverb read per K updates. A sampled item holds one batch step of every
    env; its windows are shuffled across the element so a batch mixes items.
    A window that steps from an episode's boundary into the next episode has
    weight 0 (1 otherwise): give the weights to the loss.
    Prioritized replay: elements (Trajectory [B, L, ...], reverb.SampleInfo),
    one item per window; `num_batches` must be None (priorities change
    between batches).

    A sample waits while the table's rate limiter holds it back (fewer than
    `min_size` sequences; the ratio of a distributed table): without bound by
    default; with `rate_limiter_timeout_ms` the dataset ends instead (the
    iterator's StopIteration, or tf.errors.OutOfRangeError inside a
    tf.function), for a caller that knows nothing will be inserted meanwhile.
    Samples are drawn a little ahead (Reverb keeps up to 1024 in flight).
    """
    timeout_ms = -1 if rate_limiter_timeout_ms is None else rate_limiter_timeout_ms
    if self.prioritized:
      if num_batches is not None:
        raise ValueError("prioritized replay samples one batch at a time")
      signature = self._item_spec(data_spec, num_envs)
      ds = reverb.TrajectoryDataset(
          server_address=address, table=self.table_name,
          dtypes=tf.nest.map_structure(lambda s: s.dtype, signature),
          shapes=tf.nest.map_structure(lambda s: s.shape, signature),
          max_in_flight_samples_per_worker=2 * batch_size, rate_limiter_timeout_ms=timeout_ms)
      ds = ds.batch(batch_size, drop_remainder=True).map(lambda sample: (sample.data, sample.info))
      return ds.prefetch(1)
    layout = self.layout(data_spec)
    stacked = num_batches is not None
    num_batches = num_batches or 1
    items = -(-batch_size // num_envs) * num_batches
    windows = batch_size * num_batches
    packed = self._item_spec(data_spec, num_envs)
    ds = reverb.TrajectoryDataset(
        server_address=address, table=self.table_name, dtypes=packed.dtype, shapes=packed.shape,
        max_in_flight_samples_per_worker=min(items, 1024), rate_limiter_timeout_ms=timeout_ms)

    def to_batches(sample):
      data = sample.data  # [items, item_steps, num_envs, row_bytes]
      if layout.item_steps > 1:
        data = tf.transpose(data, [0, 2, 1, 3])
      rows = tf.reshape(data, [items * num_envs, layout.window_bytes])
      if num_envs > 1:
        rows = tf.random.shuffle(rows)
      experience = layout.unpack(rows[:windows])
      weights = tf.cast(valid_sequences(experience), tf.float32)
      shape = [num_batches, batch_size] if stacked else [batch_size]
      return tf.nest.map_structure(
          lambda x: tf.reshape(x, tf.concat([shape, tf.shape(x)[1:]], 0)), (experience, weights))

    # Batched before any per-element function: tf.data's per-element map
    # would cost more than Reverb's sample itself.
    return ds.batch(items, drop_remainder=True).map(to_batches).prefetch(1)

  def num_items(self, client: reverb.Client) -> int:
    """Items in the table now (a bounded ask)."""
    return current_size(client, self.table_name)

  def importance_weights(self, info: reverb.SampleInfo) -> tf.Tensor:
    """Prioritized sampling's bias correction, (N * P(i))^-beta scaled to max 1."""
    scaled = tf.cast(info.table_size, tf.float32) * tf.cast(info.probability, tf.float32)
    weights = scaled ** -self.importance_exponent
    return weights / tf.reduce_max(weights)

  def update_priorities(self, client: reverb.Client, keys, td_errors):
    """Sets sampled items' priorities to |TD error| (Reverb applies the exponent)."""
    priorities = np.abs(np.asarray(td_errors, dtype=np.float64)) + 1e-6
    self.max_priority = max(self.max_priority, float(priorities.max()))
    client.mutate_priorities(self.table_name, updates=dict(zip(np.asarray(keys).tolist(),
                                                              priorities.tolist())))
