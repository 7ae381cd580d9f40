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
import tqdm
from tf_agents.policies import greedy_policy, random_tf_policy
from tf_agents.specs import tensor_spec
from tf_agents.utils import common

from tfrl import envs
from tfrl.drivers import Driver
from tfrl.errors import ConfigError
from tfrl.replay import ReplayServer
from tfrl.train import faults
from tfrl.train.checkpoints import PolicyExport, RunCheckpoint
from tfrl.train.evaluation import Evaluator
from tfrl.train.logger import EpochLogger, flatten_diagnostics
from tfrl.train.run_dir import PROGRESS_FILE, CONFIG_FILE, ProgressCsv, atomic_write, check_run_dir

# The first columns of progress.csv; the evaluation's and training
# episodes' spread and the agent's diagnostics (policy_loss, approx_kl,
# entropy, ...: whatever its LossInfo.extra holds) follow.
PROGRESS_COLUMNS = ["iteration", "env_steps", "train_steps", "episodes", "avg_return",
                    "train_return", "loss", "wall_s"]


EVAL_SEED_OFFSET = 1_000_003


def resume_seed(seed: int, iteration: int) -> int:
  """The seed of a run resumed at `iteration` (fits numpy's 32 bits)."""
  return int(np.random.SeedSequence([seed, iteration]).generate_state(1)[0])


class Experiment:
  """Everything a run needs. Construction writes nothing and starts no
  server, so a bad config is reported before anything else happens;
  `start()` then brings up the replay server and the collection driver."""

  def __init__(self, env_id, agent_fn, replay, seed, num_envs, num_eval_episodes,
               eval_num_envs, replay_server_address, reward_redistribution=None):
    envs.check_env_id(env_id)
    self.seed = seed
    tf.random.set_seed(seed)
    np.random.seed(seed)
    self.env = envs.load(env_id, seed=seed, num_envs=num_envs)
    # A separate seed stream so evaluation never perturbs collection.
    self.eval_env = envs.load(env_id, seed=seed + EVAL_SEED_OFFSET, num_envs=eval_num_envs)
    self.agent = agent_fn(tensor_spec.from_spec(self.env.time_step_spec()),
                          tensor_spec.from_spec(self.env.action_spec()))
    self.replay = replay
    # Rewrites each iteration's episodes before agent.train (e.g. RUDDER).
    self.reward_redistribution = (
        reward_redistribution(tensor_spec.from_spec(self.env.time_step_spec()),
                              tensor_spec.from_spec(self.env.action_spec()))
        if reward_redistribution is not None else None)
    self.num_envs = num_envs
    self.replay_server_address = replay_server_address
    self.evaluator = Evaluator(self.eval_env, greedy_policy.GreedyPolicy(self.agent.policy),
                               num_eval_episodes)
    self.on_episode = lambda episode_return, length: None
    self.server = self.adder = self.driver = None

  def start(self, replay_checkpoint_dir: Optional[str] = None,
            restore_replay_from: Optional[str] = None):
    """Starts the replay server (its tables checkpointed to
    `replay_checkpoint_dir`, restored from `restore_replay_from`) and the driver."""
    tables = self.replay.tables(self.agent.collect_data_spec, self.num_envs)
    self.server = ReplayServer(tables, address=self.replay_server_address,
                               checkpoint_dir=replay_checkpoint_dir,
                               restore_from=restore_replay_from)
    self.adder = self.replay.adder(self.server.client, self.num_envs)
    self.driver = Driver(self.env, self.agent.collect_policy,
                         observers=[self.adder, faults.collect_observer],
                         on_episode=lambda env, ret, length: self.on_episode(ret, length))

  def checkpointed(self) -> dict:
    """Trackables the run's checkpoints hold besides the agent and the loop's
    counters: what the reward redistribution learned, if it exposes any."""
    learned = getattr(self.reward_redistribution, "checkpointed", None)
    return {} if learned is None else {"reward_redistribution": learned}

  def reseed_for_resume(self, iteration: int):
    """Fresh random streams for a run resumed at `iteration`.

    TF's and numpy's generator states cannot be checkpointed (tf-agents'
    policies sample with stateful ops), and the environments restart their
    episodes anyway; re-seeding from (seed, iteration) keeps a resumed run
    reproducible without replaying the random numbers of its first iterations.
    """
    seed = resume_seed(self.seed, iteration)
    tf.random.set_seed(seed)
    np.random.seed(seed)
    self.env.reseed(seed)
    self.eval_env.reseed(seed + EVAL_SEED_OFFSET)

  def close(self):
    if self.adder is not None:
      self.adder.close()
    if self.server is not None:
      self.server.close()
    if self.reward_redistribution is not None:
      self.reward_redistribution.close()
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
          export_policy: bool = True,
          replay_server_address: Optional[str] = None,
          reward_redistribution: Optional[Callable] = None,
          compiled: bool = False,
          log: Callable[[str], None] = print) -> dict:
  """Trains an agent; resumes if `root_dir` holds a checkpoint of the same config.

  On-policy agents use `collect_episodes_per_iteration`; off-policy agents
  use `initial_collect_steps` (uniform random actions unless
  `random_initial_collect=False`), `collect_steps_per_iteration`,
  `train_steps_per_iteration` and `batch_size`. Each evaluation writes a
  progress.csv row and, with `export_policy`, the greedy policy's variables
  under policies/ (a SavedModel). Returns the last evaluation's
  figures (the final row of progress.csv). `reward_redistribution`
  (on-policy only): a factory `fn(time_step_spec, action_spec)` of a callable
  that rewrites the rewards of each iteration's episodes before training,
  e.g. `@tfrl.rudder.RewardRedistribution`; its `checkpointed` trackable, if
  it has one, is saved and restored with the agent. `compiled=True` runs the
  whole off-policy loop in one compiled TF graph (`tfrl.train.compiled`).
  """
  if replay_server_address is not None:
    # An external server means the distributed learner: actors collect
    # (scripts/collect.py), this process samples, trains and pushes the policy.
    from tfrl.distributed.learner import learn  # pylint: disable=import-outside-toplevel
    return learn(root_dir, log=log)
  if compiled:
    from tfrl.train.compiled import train_compiled  # pylint: disable=import-outside-toplevel
    return train_compiled(
        root_dir, env_id, agent_fn, replay, seed, num_envs, num_iterations,
        collect_steps_per_iteration, initial_collect_steps, random_initial_collect,
        train_steps_per_iteration, batch_size, eval_interval, num_eval_episodes, eval_num_envs,
        checkpoint_interval, export_policy, log=log)
  if replay.on_policy and collect_episodes_per_iteration > replay.capacity:
    raise ConfigError(f"replay capacity {replay.capacity} < collect_episodes_per_iteration "
                      f"{collect_episodes_per_iteration}: episodes would be dropped")
  if reward_redistribution is not None and not replay.on_policy:
    raise ConfigError("reward_redistribution rewrites whole episodes: it needs on-policy "
                      "replay (EpisodeReplay)")
  exp = Experiment(env_id, agent_fn, replay, seed, num_envs, num_eval_episodes,
                   eval_num_envs, replay_server_address, reward_redistribution)
  try:
    return _run(exp, root_dir, num_iterations, collect_episodes_per_iteration,
                collect_steps_per_iteration, initial_collect_steps, random_initial_collect,
                train_steps_per_iteration, batch_size, eval_interval, checkpoint_interval,
                export_policy, log)
  finally:
    exp.close()


def _run(exp: Experiment, root_dir, num_iterations, collect_episodes_per_iteration,
         collect_steps_per_iteration, initial_collect_steps, random_initial_collect,
         train_steps_per_iteration, batch_size, eval_interval, checkpoint_interval,
         export_policy, log):
  agent = exp.agent
  counters = {name: tf.Variable(0, dtype=tf.int64, name=name)
              for name in ("iteration", "env_steps", "episodes", "replay_items")}
  wall = tf.Variable(0.0, dtype=tf.float64, name="wall_s")
  run_checkpoint = open_run_dir(root_dir, agent, dict(counters, wall_s=wall, **exp.checkpointed()))
  log(f"run directory: {root_dir}")
  # Off-policy replay outlives an iteration, so an embedded server's tables
  # are checkpointed with the agent (an external server keeps its own).
  persist_replay = not exp.replay.on_policy and exp.replay_server_address is None
  exp.start(*run_checkpoint.prepare_replay_restore() if persist_replay else ())
  driver = exp.driver
  if run_checkpoint.latest:
    log(f"resumed from {run_checkpoint.latest} at iteration {int(counters['iteration'])}")
    exp.reseed_for_resume(int(counters["iteration"]))
    if persist_replay:
      items = exp.replay.num_items(exp.server.client)
      if items != int(counters["replay_items"]):
        raise RuntimeError(f"replay restored with {items} items, but the checkpoint was taken "
                           f"with {int(counters['replay_items'])}")
      log(f"replay restored: {items} items, as checkpointed")
  logger = run_logger(root_dir, PROGRESS_COLUMNS, run_checkpoint, int(counters["iteration"]), log)
  driver.env_steps = int(counters["env_steps"])
  driver.episodes = int(counters["episodes"])
  exp.on_episode = lambda ret, length: logger.store(train_return=ret, train_length=length)
  exporter = PolicyExport(root_dir, exp.evaluator.policy, agent.train_step_counter) \
      if export_policy else None

  if exp.replay.on_policy:
    train_on_episodes = on_policy_train_function(agent)
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
  last_row = None

  def report(iteration):
    nonlocal last_row
    row = evaluation_row(exp.evaluator, logger, ("eval_return", "train_return"), start_wall,
                         iteration=iteration, env_steps=driver.env_steps,
                         train_steps=int(agent.train_step_counter.numpy()),
                         episodes=driver.episodes)
    write_row(logger, row, exporter, iteration)
    last_row = row

  first = int(counters["iteration"]) + 1
  if first == 1:
    report(0)
  iterations = tqdm.trange(first, num_iterations + 1, initial=first - 1, total=num_iterations,
                           desc="train", disable=None, leave=False)
  for iteration in iterations:
    if exp.replay.on_policy:
      written_before = exp.adder.episodes_written
      driver.run_episodes(collect_episodes_per_iteration)
      experience = exp.replay.experience(exp.server.client,
                                         exp.adder.episodes_written - written_before,
                                         transform=exp.reward_redistribution)
      if exp.reward_redistribution is not None:
        logger.store(**exp.reward_redistribution.diagnostics)
      train_step = lambda: train_on_episodes(experience)  # pylint: disable=cell-var-from-loop
    else:
      driver.run_steps(collect_steps_per_iteration)
      train_step = train_on_samples
    faults.point("train")
    diverged = f"at iteration {iteration}; last good checkpoint: {run_checkpoint.latest}"
    try:
      loss_info = train_step()
    except tf.errors.InvalidArgumentError as e:
      if "nan" not in str(e).lower():
        raise
      # Agents with check_numerics (tf-agents') stop inside the graph.
      raise FloatingPointError(f"non-finite values in training {diverged}") from None
    loss = float(loss_info.loss)
    if not math.isfinite(loss):
      raise FloatingPointError(f"non-finite loss {loss} {diverged}")
    logger.store(loss=loss, **flatten_diagnostics(loss_info.extra))
    if iteration % eval_interval == 0 or iteration == num_iterations:
      report(iteration)
    if iteration % checkpoint_interval == 0 or iteration == num_iterations:
      check_finite_parameters(agent, diverged)
      counters["iteration"].assign(iteration)
      counters["env_steps"].assign(driver.env_steps)
      counters["episodes"].assign(driver.episodes)
      wall.assign(time.time() - start_wall)
      if persist_replay:
        counters["replay_items"].assign(exp.replay.num_items(exp.server.client))
      run_checkpoint.save(iteration, exp.server if persist_replay else None)
  return logger.finish(last_row)


def check_finite_parameters(agent, diverged: str):
  if not all(np.all(np.isfinite(v.numpy())) for v in agent.variables):
    raise FloatingPointError(f"non-finite parameters {diverged}")


def open_run_dir(root_dir: str, agent, tracked: dict) -> RunCheckpoint:
  """Opens a run directory for training: refuses one written with another
  config, restores the latest checkpoint of `agent` and `tracked` (counters,
  loop state) before anything is written — a damaged checkpoint stops the
  run with the directory as it was — and writes config.gin for a new run."""
  config = gin.operative_config_str()
  resuming = check_run_dir(root_dir, config)
  run_checkpoint = RunCheckpoint(root_dir, agent, tracked)
  if run_checkpoint.latest:
    run_checkpoint.restore()
  os.makedirs(root_dir, exist_ok=True)
  if not resuming:
    atomic_write(os.path.join(root_dir, CONFIG_FILE), config)
  return run_checkpoint


def run_logger(root_dir: str, columns, run_checkpoint: RunCheckpoint, iteration: int,
               log) -> EpochLogger:
  """The run's EpochLogger: progress.csv (rows newer than the restored
  checkpoint's `iteration` are dropped, to be redone; with no checkpoint,
  all are), TensorBoard and the console."""
  progress = ProgressCsv(os.path.join(root_dir, PROGRESS_FILE), columns)
  progress.truncate_after(iteration if run_checkpoint.latest else -1)
  summary_writer = tf.summary.create_file_writer(os.path.join(root_dir, "tensorboard"))
  return EpochLogger(progress, summary_writer, console=log)


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


def write_row(logger: EpochLogger, row: dict, exporter: Optional[PolicyExport], iteration: int):
  """Writes the row (progress.csv, TensorBoard at its env_steps) and exports the policy."""
  logger.write(row, step=row["env_steps"])
  if exporter is not None:
    exporter.save(iteration)
  faults.point("progress")


def on_policy_train_function(agent):
  """agent.train as a tf.function traced once, for on-policy experience.

  On-policy experience is [1, sum of episode lengths, ...]: the signature
  leaves the time axis open, or every new length would trace the whole
  train graph again (seconds each for PPO).
  """
  spec = tensor_spec.add_outer_dim(tensor_spec.add_outer_dim(agent.collect_data_spec, None), 1)
  return common.function(lambda experience: agent.train(experience), input_signature=[spec])


def _off_policy_train_fn(agent, replay, server, batch_size: int, num_steps: int,
                         prepare: Callable = lambda experience: experience):
  """A function running `num_steps` train steps on sampled batches; returns the last LossInfo.

  `prepare(experience)` runs on each sampled batch before training (the
  distributed learner strips and counts the actors' tags there).

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
        loss_info = train_weighted(prepare(experience), replay.importance_weights(info))
        td_error = getattr(loss_info.extra, "td_error", None)
        if td_error is None:
          raise ConfigError(f"prioritized replay needs TD errors; {type(agent).__name__} "
                            "does not report them (use DQN or uniform replay)")
        replay.update_priorities(server.client, info.key, td_error)
      return loss_info
    return train_prioritized

  # tf-agents' train code is written for autograph off; converting it costs
  # 3-4x the tracing time (12 s instead of 3 s for SAC).
  train_step = tf.autograph.experimental.do_not_convert(agent.train)

  @tf.function  # autograph on: the tf.range loop becomes one while loop
  def train_uniform():
    # The first step is outside the loop: it creates the optimizer's slot
    # variables, which TF does not allow inside a while loop.
    loss_info = train_step(prepare(next(iterator)[0]))
    for _ in tf.range(num_steps - 1):
      loss_info = train_step(prepare(next(iterator)[0]))
    return loss_info
  return train_uniform
