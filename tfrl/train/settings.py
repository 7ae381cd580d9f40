"""A run's settings: one frozen, checked object built from gin once.

`RunConfig` is the gin configurable `tfrl.train.train` (so gin files bind
`tfrl.train.train.num_iterations = 50` as always); every mode — on-policy,
off-policy, compiled, the distributed roles — receives the same object and
reads nothing from gin afterwards. `check()` refuses wrong types, ranges,
environments and impossible combinations with one ConfigError line, before
anything is written or any server starts.
"""

import dataclasses
from typing import Any, Callable, Optional

import gin

from tfrl import envs
from tfrl.agents import learners
from tfrl.envs import tf_envs
from tfrl.checks import Count, NonNegativeInt, PositiveFloat, check_fields
from tfrl.errors import ConfigError


@gin.configurable("train", module="tfrl.train")
@dataclasses.dataclass(frozen=True)
class RunConfig:
  """What to train, on what, for how long.

  On-policy agents (replay = EpisodeReplay) collect
  `collect_episodes_per_iteration` whole episodes per iteration (ignored with
  `EpisodeReplay.segment_steps`: that many steps instead); off-policy
  agents (TransitionReplay) first `initial_collect_steps` (uniform random
  actions unless `random_initial_collect=False`), then per iteration
  `collect_steps_per_iteration` steps and `train_steps_per_iteration`
  updates on batches of `batch_size`. Every `eval_interval` iterations a
  progress row (greedy `num_eval_episodes`-episode evaluation) and, with
  `export_policy`, the policy's variables; a checkpoint every
  `checkpoint_interval` iterations and whenever `checkpoint_interval_s`
  seconds have passed since the last (so a SIGKILL costs minutes at most;
  SIGINT/SIGTERM checkpoint at the iteration they stop). `reward_redistribution` (on-policy): a factory
  `fn(time_step_spec, action_spec)` of a callable rewriting each iteration's
  episodes (`@tfrl.rudder.RewardRedistribution`). `compiled`: the whole
  loop as one XLA graph (`tfrl.train.compiled`; on-policy agents:
  `tfrl.train.compiled_on_policy`). `num_seeds` > 1 (compiled only): seeds
  `seed` .. `seed + num_seeds - 1` trained in one graph, each into its own
  run directory `<root_dir>/seed_<s>` (`tfrl.train.compiled.train_seeds`).
  `replay_server_address`: an external Reverb server ("host:port"): the
  process becomes the distributed learner (`tfrl.distributed.learn`).
  """
  env_id: str = gin.REQUIRED
  agent_fn: Callable = gin.REQUIRED
  replay: Any = gin.REQUIRED
  seed: NonNegativeInt = 0
  num_envs: Count = 1
  num_iterations: Count = 250
  collect_episodes_per_iteration: Count = 2
  collect_steps_per_iteration: Count = 1
  initial_collect_steps: NonNegativeInt = 1000
  random_initial_collect: bool = True
  train_steps_per_iteration: Count = 1
  batch_size: Count = 64
  eval_interval: Count = 50
  num_eval_episodes: Count = 10
  eval_num_envs: Count = 1
  checkpoint_interval: Count = 50
  checkpoint_interval_s: Optional[PositiveFloat] = 300.0
  export_policy: bool = True
  replay_server_address: Optional[str] = None
  reward_redistribution: Optional[Callable] = None
  compiled: bool = False
  num_seeds: Count = 1

  def __post_init__(self):
    check_fields(self, "tfrl.train.train")
    for name in ("agent_fn", "reward_redistribution"):
      value = getattr(self, name)
      if value is not None and not callable(value):
        raise ConfigError(f"tfrl.train.train.{name} = {value!r}: must be a factory "
                          f"(e.g. @tfrl.agents.ppo)")
    if not hasattr(self.replay, "on_policy"):
      raise ConfigError(f"tfrl.train.train.replay = {self.replay!r}: must be a replay component "
                        "(@tfrl.replay.EpisodeReplay() or @tfrl.replay.TransitionReplay())")

  @property
  def on_policy(self) -> bool:
    return self.replay.on_policy

  @property
  def distributed(self) -> bool:
    return self.replay_server_address is not None

  def check(self) -> "RunConfig":
    """Refuses what no mode can run; returns self. Writes nothing."""
    envs.check_env_id(self.env_id)
    segments = self.on_policy and getattr(self.replay, "segment_steps", None) is not None
    if self.on_policy and not segments and (
        self.collect_episodes_per_iteration > self.replay.capacity):
      raise ConfigError(f"replay capacity {self.replay.capacity} < "
                        f"collect_episodes_per_iteration {self.collect_episodes_per_iteration}: "
                        "episodes would be dropped")
    if segments and self.num_envs > self.replay.capacity:
      raise ConfigError(f"replay capacity {self.replay.capacity} < num_envs {self.num_envs}: "
                        "segments (one per env and iteration) would be dropped")
    if self.reward_redistribution is not None and not self.on_policy:
      raise ConfigError("reward_redistribution rewrites whole episodes: it needs on-policy "
                        "replay (EpisodeReplay)")
    if self.reward_redistribution is not None and segments:
      raise ConfigError("reward_redistribution needs whole episodes: unset "
                        "tfrl.replay.EpisodeReplay.segment_steps")
    if self.num_seeds > 1 and not self.compiled:
      raise ConfigError(f"tfrl.train.train.num_seeds = {self.num_seeds} trains the seeds in one "
                        "compiled graph: it needs tfrl.train.train.compiled = True")
    if self.compiled:
      if self.reward_redistribution is not None:
        raise ConfigError("reward_redistribution is not part of the compiled loop: unset it "
                          "or tfrl.train.train.compiled")
      tf_envs.make(self.env_id)  # a TF-native twin exists
      learners.check_has_learner(self.agent_fn)
    # The compiled loop's in-graph replay samples from the first transition on.
    if not (self.on_policy or self.compiled) and self.replay.min_size > self.replay.capacity:
      raise ConfigError(f"replay min_size {self.replay.min_size} > capacity "
                        f"{self.replay.capacity}: sampling would never start")
    if not self.on_policy and not self.compiled and not self.distributed:
      self._check_initial_collection_fills_min_size()
    return self

  def _check_initial_collection_fills_min_size(self):
    """The single-process off-policy loop samples first after the initial
    collection and one iteration's steps, and inserts nothing while it
    samples: the table's min_size must be reached by then."""
    needed = getattr(self.replay, "batch_steps_before_sampling", None)
    if needed is None:
      return
    num_envs = self.num_envs
    per_iteration = -(-self.collect_steps_per_iteration // num_envs)
    missing = needed(num_envs) - per_iteration  # batch steps the initial collection must give
    if -(-self.initial_collect_steps // num_envs) < missing:
      least = (missing - 1) * num_envs + 1
      raise ConfigError(
          f"tfrl.train.train.initial_collect_steps = {self.initial_collect_steps} cannot fill "
          f"replay min_size {self.replay.min_size} before the first sample ({num_envs} env(s), "
          f"sequences of {self.replay.sequence_length}; sampling would wait forever): set it to "
          f"at least {least} or lower tfrl.replay.TransitionReplay.min_size")
