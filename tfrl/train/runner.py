"""The train loop: environment -> driver -> Reverb -> agent.train, with evaluation.

On-policy (the replay is an `EpisodeReplay`): each iteration collects whole
episodes with the current collect policy, reads exactly those episodes back
from the table (which consumes them) and trains once on them.
Off-policy (a `TransitionReplay`): each iteration collects a few steps, then
trains on batches sampled from the table.
"""

import math
import os
import time
from typing import Callable, Optional

import gin
import numpy as np
import tensorflow as tf
from tf_agents.policies import greedy_policy, random_tf_policy
from tf_agents.specs import tensor_spec
from tf_agents.utils import common

from tfrl import envs
from tfrl.drivers import Driver
from tfrl.errors import ConfigError
from tfrl.replay import ReplayServer
from tfrl.train.evaluation import Evaluator
from tfrl.train.run_dir import PROGRESS_FILE, CONFIG_FILE, ProgressCsv, atomic_write, check_run_dir

PROGRESS_COLUMNS = ["iteration", "env_steps", "train_steps", "episodes", "avg_return",
                    "train_return", "loss", "wall_s"]


class Experiment:
  """Everything a run needs. Construction writes nothing and starts no
  server, so a bad config is reported before anything else happens;
  `start()` then brings up the replay server and the collection driver."""

  def __init__(self, env_id, agent_fn, replay, seed, num_envs, num_eval_episodes,
               eval_num_envs, replay_server_address):
    envs.check_env_id(env_id)
    tf.random.set_seed(seed)
    np.random.seed(seed)
    self.env = envs.load(env_id, seed=seed, num_envs=num_envs)
    # A separate seed stream so evaluation never perturbs collection.
    self.eval_env = envs.load(env_id, seed=seed + 1_000_003, num_envs=eval_num_envs)
    self.agent = agent_fn(tensor_spec.from_spec(self.env.time_step_spec()),
                          tensor_spec.from_spec(self.env.action_spec()))
    self.replay = replay
    self.num_envs = num_envs
    self.replay_server_address = replay_server_address
    self.evaluator = Evaluator(self.eval_env, greedy_policy.GreedyPolicy(self.agent.policy),
                               num_eval_episodes)
    self.recent_returns = []
    self.server = self.adder = self.driver = None

  def start(self):
    tables = self.replay.tables(self.agent.collect_data_spec, self.num_envs)
    self.server = ReplayServer(tables, address=self.replay_server_address)
    self.adder = self.replay.adder(self.server.client, self.num_envs)
    self.driver = Driver(self.env, self.agent.collect_policy, observers=[self.adder],
                         on_episode=lambda env, ret, length: self.recent_returns.append(ret))

  def close(self):
    if self.adder is not None:
      self.adder.close()
    if self.server is not None:
      self.server.close()
    self.env.close()
    self.eval_env.close()


@gin.configurable(module="tfrl.train")
def train(root_dir: str,
          env_id: str = gin.REQUIRED,
          agent_fn: Callable = gin.REQUIRED,
          replay=gin.REQUIRED,
          seed: int = 0,
          num_envs: int = 1,
          num_iterations: int = 250,
          collect_episodes_per_iteration: int = 2,
          collect_steps_per_iteration: int = 1,
          initial_collect_steps: int = 1000,
          random_initial_collect: bool = True,
          train_steps_per_iteration: int = 1,
          batch_size: int = 64,
          eval_interval: int = 50,
          num_eval_episodes: int = 10,
          eval_num_envs: int = 1,
          checkpoint_interval: int = 50,
          replay_server_address: Optional[str] = None,
          log: Callable[[str], None] = print) -> dict:
  """Trains an agent; resumes if `root_dir` holds a checkpoint of the same config.

  On-policy agents use `collect_episodes_per_iteration`; off-policy agents
  use `initial_collect_steps` (uniform random actions unless
  `random_initial_collect=False`), `collect_steps_per_iteration`,
  `train_steps_per_iteration` and `batch_size`. Returns the last evaluation's
  figures (the final row of progress.csv).
  """
  if replay.on_policy and collect_episodes_per_iteration > replay.capacity:
    raise ConfigError(f"replay capacity {replay.capacity} < collect_episodes_per_iteration "
                      f"{collect_episodes_per_iteration}: episodes would be dropped")
  exp = Experiment(env_id, agent_fn, replay, seed, num_envs, num_eval_episodes,
                   eval_num_envs, replay_server_address)
  try:
    return _run(exp, root_dir, num_iterations, collect_episodes_per_iteration,
                collect_steps_per_iteration, initial_collect_steps, random_initial_collect,
                train_steps_per_iteration, batch_size, eval_interval, checkpoint_interval, log)
  finally:
    exp.close()


def _run(exp: Experiment, root_dir, num_iterations, collect_episodes_per_iteration,
         collect_steps_per_iteration, initial_collect_steps, random_initial_collect,
         train_steps_per_iteration, batch_size, eval_interval, checkpoint_interval, log):
  config = gin.operative_config_str()
  resuming = check_run_dir(root_dir, config)
  os.makedirs(root_dir, exist_ok=True)
  if not resuming:
    atomic_write(os.path.join(root_dir, CONFIG_FILE), config)
  log(f"run directory: {root_dir}")
  exp.start()
  agent, driver = exp.agent, exp.driver
  counters = {name: tf.Variable(0, dtype=tf.int64, name=name)
              for name in ("iteration", "env_steps", "episodes")}
  wall = tf.Variable(0.0, dtype=tf.float64, name="wall_s")
  checkpoint = tf.train.Checkpoint(agent=agent, wall_s=wall, **counters)
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(root_dir, "checkpoints"),
                                       max_to_keep=3)
  progress = ProgressCsv(os.path.join(root_dir, PROGRESS_FILE), PROGRESS_COLUMNS)
  if manager.latest_checkpoint:
    # Optimizer slots are created by the first train step and restored then
    # (deferred); expect_partial only keeps TF from warning about them meanwhile.
    checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched().expect_partial()
    log(f"resumed from {manager.latest_checkpoint} at iteration {int(counters['iteration'])}")
  # Rows newer than the checkpoint are redone; with no checkpoint, all are.
  progress.truncate_after(int(counters["iteration"]) if manager.latest_checkpoint else -1)
  driver.env_steps = int(counters["env_steps"])
  driver.episodes = int(counters["episodes"])
  summary_writer = tf.summary.create_file_writer(os.path.join(root_dir, "tensorboard"))

  if exp.replay.on_policy:
    train_on_episodes = _compiled_on_policy_train(agent)
  else:
    train_on_samples = _off_policy_train_fn(agent, exp.replay, exp.server,
                                            batch_size, train_steps_per_iteration)
    if driver.env_steps < initial_collect_steps:
      if random_initial_collect:
        driver.use_policy(random_tf_policy.RandomTFPolicy(
            agent.time_step_spec, agent.action_spec, info_spec=agent.collect_policy.info_spec))
      driver.run_steps(initial_collect_steps - driver.env_steps)
      driver.use_policy(agent.collect_policy)

  start_wall = time.time() - float(wall.numpy())
  loss = float("nan")
  last_row = None

  def report(iteration):
    nonlocal last_row
    result = exp.evaluator()
    recent = exp.recent_returns[-collect_episodes_per_iteration * 10:] or [float("nan")]
    row = dict(iteration=iteration, env_steps=driver.env_steps,
               train_steps=int(agent.train_step_counter.numpy()), episodes=driver.episodes,
               avg_return=result.avg_return, train_return=float(np.mean(recent)), loss=loss,
               wall_s=time.time() - start_wall)
    progress.append(row)
    with summary_writer.as_default(step=driver.env_steps):
      for key in ("avg_return", "train_return", "loss"):
        tf.summary.scalar(key, row[key])
    log("  ".join(f"{k}={_short(v)}" for k, v in row.items()))
    last_row = row

  first = int(counters["iteration"]) + 1
  if first == 1:
    report(0)
  for iteration in range(first, num_iterations + 1):
    if exp.replay.on_policy:
      written_before = exp.adder.episodes_written
      driver.run_episodes(collect_episodes_per_iteration)
      experience = exp.replay.experience(exp.server.client,
                                         exp.adder.episodes_written - written_before)
      loss = float(train_on_episodes(experience).loss)
    else:
      driver.run_steps(collect_steps_per_iteration)
      loss = float(train_on_samples())
    if not math.isfinite(loss):
      raise FloatingPointError(f"non-finite loss {loss} at iteration {iteration}; "
                               f"last good checkpoint: {manager.latest_checkpoint}")
    del exp.recent_returns[:-1000]
    if iteration % eval_interval == 0 or iteration == num_iterations:
      report(iteration)
    if iteration % checkpoint_interval == 0 or iteration == num_iterations:
      counters["iteration"].assign(iteration)
      counters["env_steps"].assign(driver.env_steps)
      counters["episodes"].assign(driver.episodes)
      wall.assign(time.time() - start_wall)
      manager.save(checkpoint_number=iteration)
  summary_writer.flush()
  if last_row is None:
    last_row = {r: v for r, v in (progress.rows() or [{}])[-1].items()}
  return last_row


def _compiled_on_policy_train(agent):
  """agent.train as a tf.function traced once.

  On-policy experience is [1, sum of episode lengths, ...]: the signature
  leaves the time axis open, or every new length would trace the whole
  train graph again (seconds each for PPO).
  """
  spec = tensor_spec.add_outer_dim(tensor_spec.add_outer_dim(agent.collect_data_spec, None), 1)
  return common.function(lambda experience: agent.train(experience), input_signature=[spec])


def _off_policy_train_fn(agent, replay, server, batch_size: int, num_steps: int):
  """A function running `num_steps` train steps on sampled batches; returns the last loss.

  Uniform replay runs all steps in one tf.function, the dataset iterator
  read in-graph, so a step costs no Python round trip. Prioritized replay
  steps from Python: each step's TD errors become the sampled items' new
  priorities before the next batch is drawn.
  """
  iterator = iter(replay.dataset(server.address, batch_size))
  if replay.prioritized:
    train_weighted = common.function(lambda exp, weights: agent.train(exp, weights=weights))

    def train_prioritized():
      for _ in range(num_steps):
        experience, info = next(iterator)
        loss_info = train_weighted(experience, replay.importance_weights(info))
        td_error = getattr(loss_info.extra, "td_error", None)
        if td_error is None:
          raise ConfigError(f"prioritized replay needs TD errors; {type(agent).__name__} "
                            "does not report them (use DQN or uniform replay)")
        replay.update_priorities(server.client, info.key, td_error)
      return loss_info.loss
    return train_prioritized

  @tf.function  # autograph on: the tf.range loop becomes one while loop
  def train_uniform():
    # The first step is outside the loop: it creates the optimizer's slot
    # variables, which TF does not allow inside a while loop.
    loss = agent.train(next(iterator)[0]).loss
    for _ in tf.range(num_steps - 1):
      loss = agent.train(next(iterator)[0]).loss
    return loss
  return train_uniform


def _short(value) -> str:
  return f"{value:.4g}" if isinstance(value, float) else str(value)
