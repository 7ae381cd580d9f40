"""Step sources of the single-process loop: environment -> driver -> Reverb -> agent.train.

`EpisodeSource` (on-policy, replay = `EpisodeReplay`): each iteration
collects whole episodes (or fixed-length segments) with the current collect
policy, reads exactly those items back from the table (which consumes them),
optionally rewrites them (`transform`, where RUDDER plugs in) and trains once
on them.
`SampleSource` (off-policy, `TransitionReplay`): an initial collection,
then each iteration collects a few steps and trains on batches sampled from
the table, whose contents go into the run's checkpoints.
"""

from typing import Callable, NamedTuple, Optional

import numpy as np
import tensorflow as tf
from tf_agents.policies import greedy_policy, random_tf_policy
from tf_agents.specs import tensor_spec
from tf_agents.utils import common

from tfrl import envs
from tfrl.agents import diagnostics
from tfrl.drivers import Driver
from tfrl.errors import ConfigError
from tfrl.replay import ReplayServer
from tfrl.train import faults
from tfrl.train.evaluation import Evaluator
from tfrl.train.logger import flatten_diagnostics
from tfrl.train.loop import Advance, StepSource, resume_seed

EVAL_SEED_OFFSET = 1_000_003
# How long a replay sample may wait for the table's min_size in the
# single-process loop, where nothing is inserted while it trains: any wait
# there is forever, so the dataset ends and the run stops saying why.
SAMPLE_WAIT_MS = 5000


class Parts(NamedTuple):
  """What every mode builds from a RunConfig: the (collection) environment,
  the evaluation environment, the agent and its greedy evaluator."""
  env: object
  eval_env: object
  agent: object
  evaluator: Evaluator

  def close(self):
    self.env.close()
    self.eval_env.close()


def build_parts(config, num_envs: int) -> Parts:
  """Seeds TF, numpy, Python and Keras, then builds the envs and the agent
  (specs from the env). Keras too: an initializer instance given no seed
  (tf-agents' last layers: RandomUniform, VarianceScaling) draws one from
  Python's `random` unless Keras' own seed generator is set, so with TF's
  seed alone DQN's and SAC's first weights differed from process to process."""
  tf.keras.utils.set_random_seed(config.seed)  # also tf.random, numpy, random
  env = envs.load(config.env_id, seed=config.seed, num_envs=num_envs)
  # A separate seed stream so evaluation never perturbs collection;
  # training=False: whole games and raw scores where the env family
  # preprocesses for training (Atari's episodic life and reward clipping).
  eval_env = envs.load(config.env_id, seed=config.seed + EVAL_SEED_OFFSET,
                       num_envs=config.eval_num_envs, training=False)
  agent = config.agent_fn(*tensor_specs(env))
  config.replay.check(agent.collect_data_spec)  # before any run directory or server
  evaluator = Evaluator(eval_env, greedy_policy.GreedyPolicy(agent.policy),
                        config.num_eval_episodes)
  return Parts(env, eval_env, agent, evaluator)


def tensor_specs(env):
  """(time_step_spec, action_spec) of a PyEnvironment as TF specs."""
  return (tensor_spec.from_spec(env.time_step_spec()),
          tensor_spec.from_spec(env.action_spec()))


class _DriverSource(StepSource):
  """Collection through the batched driver into an embedded (or external)
  Reverb server; the counters the checkpoint keeps."""
  persists_replay = False

  def __init__(self, config, parts: Parts):
    self.config, self.parts, self.agent = config, parts, parts.agent
    self.replay = config.replay
    self.counters = {name: tf.Variable(0, dtype=tf.int64, name=name)
                     for name in ("env_steps", "episodes", "replay_items")}
    self.server = self.adder = self.driver = self._run = None

  def checkpointed(self) -> dict:
    return dict(self.counters)

  def start(self, run):
    """Starts the replay server (its tables restored with the checkpoint if
    this source persists them) and the driver; reseeds a resumed run."""
    checkpoint_dir = restore_from = None
    if self.persists_replay:
      checkpoint_dir, restore_from = run.checkpoint.prepare_replay_restore()
    tables = self.replay.tables(self.agent.collect_data_spec, self.config.num_envs)
    self.server = ReplayServer(tables, checkpoint_dir=checkpoint_dir, restore_from=restore_from)
    self.adder = self.replay.adder(self.server.client, self.config.num_envs)
    self._run = run
    self.driver = Driver(self.parts.env, self.agent.collect_policy,
                         observers=[self.adder, faults.collect_observer],
                         on_episode=self._record_episode)
    self.driver.env_steps = int(self.counters["env_steps"])
    self.driver.episodes = int(self.counters["episodes"])
    if run.resumed:
      self._reseed(run.iteration)

  def _record_episode(self, env_index, episode_return, length):
    del env_index
    self._run.logger.store(train_return=episode_return, train_length=length)

  def _reseed(self, iteration: int):
    """Fresh random streams for a run resumed at `iteration`.

    TF's and numpy's generator states cannot be checkpointed (tf-agents'
    policies sample with stateful ops), and the environments restart their
    episodes anyway; re-seeding from (seed, iteration) keeps a resumed run
    reproducible without replaying the random numbers of its first iterations.
    """
    seed = resume_seed(self.config.seed, iteration)
    tf.random.set_seed(seed)
    np.random.seed(seed)
    self.parts.env.reseed(seed)
    self.parts.eval_env.reseed(seed + EVAL_SEED_OFFSET)

  def counts(self) -> dict:
    return dict(env_steps=self.driver.env_steps, episodes=self.driver.episodes)

  def before_checkpoint(self) -> Optional[ReplayServer]:
    self.counters["env_steps"].assign(self.driver.env_steps)
    self.counters["episodes"].assign(self.driver.episodes)
    if not self.persists_replay:
      return None
    self.counters["replay_items"].assign(self.replay.num_items(self.server.client))
    return self.server

  def close(self):
    if self.adder is not None:
      self.adder.close()
    if self.server is not None:
      self.server.close()


class EpisodeSource(_DriverSource):
  """On-policy: whole episodes per iteration (or, with
  `EpisodeReplay.segment_steps`, one segment per env), each trained on once.
  `transform` (list of episodes -> list of episodes, with optional
  `checkpointed`, `diagnostics` and `close`) rewrites them before training."""

  def __init__(self, config, parts: Parts, transform=None):
    super().__init__(config, parts)
    self.transform = transform
    self._train = on_policy_train_function(self.agent)

  def checkpointed(self) -> dict:
    learned = getattr(self.transform, "checkpointed", None)
    extra = {} if learned is None else {"reward_redistribution": learned}
    return dict(super().checkpointed(), **extra)

  def run(self, num_iterations: int) -> Advance:
    assert num_iterations == 1
    written_before = self.adder.items_written
    self.replay.collect(self.driver, self.config.collect_episodes_per_iteration)
    experience = self.replay.experience(
        self.server.client, self.adder.items_written - written_before,
        data_spec=self.agent.collect_data_spec, transform=self.transform)
    diagnostics = {}
    if self.transform is not None:
      diagnostics.update(getattr(self.transform, "diagnostics", {}))
    faults.point("train")
    loss_info = self._train(experience)
    diagnostics.update(flatten_diagnostics(loss_info.extra))
    return Advance(float(loss_info.loss), diagnostics)

  def close(self):
    super().close()
    if self.transform is not None:
      self.transform.close()


class SampleSource(_DriverSource):
  """Off-policy: per iteration `collect_steps_per_iteration` steps, then
  `train_steps_per_iteration` updates on sampled batches. An embedded
  server's tables outlive an iteration, so they are checkpointed."""

  persists_replay = True

  def start(self, run):
    super().start(run)
    if run.resumed:
      items = self.replay.num_items(self.server.client)
      if items != int(self.counters["replay_items"]):
        raise RuntimeError(f"replay restored with {items} items, but the checkpoint was taken "
                           f"with {int(self.counters['replay_items'])}")
      run.log(f"replay restored: {items} items, as checkpointed")
    config = self.config
    iterator = off_policy_batches(self.replay, self.server.address, config,
                                  self.agent.collect_data_spec, SAMPLE_WAIT_MS)
    self._train = off_policy_train_function(self.agent, self.replay, self.server.client,
                                            lambda: next(iterator),
                                            config.train_steps_per_iteration)

  def prefill(self):
    """The initial collection (what a resumed run has not done yet)."""
    config = self.config
    if self.driver.env_steps < config.initial_collect_steps:
      if config.random_initial_collect:
        self.driver.use_policy(random_tf_policy.RandomTFPolicy(
            self.agent.time_step_spec, self.agent.action_spec,
            info_spec=self.agent.collect_policy.info_spec))
      self.driver.run_steps(config.initial_collect_steps - self.driver.env_steps)
      self.driver.use_policy(self.agent.collect_policy)

  def run(self, num_iterations: int) -> Advance:
    assert num_iterations == 1
    self.driver.run_steps(self.config.collect_steps_per_iteration)
    faults.point("train")
    try:
      loss_info = self._train()
    except (StopIteration, tf.errors.OutOfRangeError):
      raise self._sampling_stalled() from None
    return Advance(float(loss_info.loss), flatten_diagnostics(loss_info.extra))

  def _sampling_stalled(self) -> ConfigError:
    replay, num_envs = self.replay, self.config.num_envs
    return ConfigError(
        f"replay sampling waited {SAMPLE_WAIT_MS / 1000:g} s: table {replay.table_name!r} holds "
        f"{replay.num_items(self.server.client)} item(s), sampling needs "
        f"{replay.min_items(num_envs)} (min_size {replay.min_size}, {num_envs} env(s)), and "
        "nothing is inserted while this loop trains; raise "
        "tfrl.train.train.initial_collect_steps or lower tfrl.replay.TransitionReplay.min_size")


def on_policy_train_function(agent):
  """agent.train as a tf.function traced once, for on-policy experience.

  On-policy experience is [1, sum of episode lengths, ...]: the signature
  leaves the time axis open, or every new length would trace the whole
  train graph again (seconds each for PPO).
  """
  spec = tensor_spec.add_outer_dim(tensor_spec.add_outer_dim(agent.collect_data_spec, None), 1)
  return common.function(lambda experience: agent.train(experience), input_signature=[spec])


def off_policy_batches(replay, address: str, config, data_spec,
                       rate_limiter_timeout_ms: Optional[int] = None):
  """The replay dataset's iterator as `off_policy_train_function` reads it:
  uniform replay, one read per iteration's `train_steps_per_iteration`
  batches; prioritized, a batch per step."""
  return iter(replay.dataset(
      address, config.batch_size, num_envs=config.num_envs,
      rate_limiter_timeout_ms=rate_limiter_timeout_ms, data_spec=data_spec,
      num_batches=None if replay.prioritized else config.train_steps_per_iteration))


def off_policy_train_function(agent, replay, client, next_batches: Callable, num_steps: int):
  """A function running `num_steps` train steps; returns the last LossInfo.

  Uniform replay: `next_batches()` gives the call's batches at once,
  (experience [num_steps, B, ...], weights [num_steps, B]) — the iterator of
  `replay.dataset(..., num_batches=num_steps)`; all steps run in one
  tf.function, so a step costs no Python round trip and no dataset read.
  Prioritized replay: `next_batches()` gives one (experience, info) batch
  per step, run from Python: each step's TD errors become the sampled
  items' new priorities (through `client`) before the next batch is drawn.
  """
  if replay.prioritized:
    train_weighted = common.function(lambda exp, weights: agent.train(exp, weights=weights))

    def train_prioritized():
      for _ in range(num_steps):
        experience, info = next_batches()
        loss_info = train_weighted(experience, replay.importance_weights(info))
        td_error = getattr(loss_info.extra, "td_error", None)
        if td_error is None:
          raise ConfigError(f"prioritized replay needs TD errors; {type(agent).__name__} "
                            "does not report them (use DQN or uniform replay)")
        replay.update_priorities(client, info.key, td_error)
      return loss_info
    return train_prioritized

  # tf-agents' train code is written for autograph off; converting it costs
  # 3-4x the tracing time.
  train_step = tf.autograph.experimental.do_not_convert(
      lambda experience, weights, i: agent.train(
          tf.nest.map_structure(lambda x: x[i], experience), weights=weights[i]))

  @tf.function  # autograph on: the tf.range loop becomes one while loop
  def train_uniform():
    experience, weights = next_batches()
    if num_steps > 1:
      # Only the last step's LossInfo is returned: the others skip the
      # diagnostics. The first step is outside the loop: it creates the
      # optimizer's slot variables, which TF does not allow inside a while loop.
      with diagnostics.suspended():
        train_step(experience, weights, 0)
        for i in tf.range(1, num_steps - 1):
          train_step(experience, weights, i)
    return train_step(experience, weights, num_steps - 1)
  return train_uniform
