"""The learner role: sample from the external Reverb server, train, push the
policy variables, evaluate, checkpoint. `train.py --replay_server=host:port`.

Off-policy: batches sampled uniformly (or by priority) from the table the
actors fill, held to `samples_per_insert` by the table's rate limiter.
On-policy: each iteration reads whole episodes oldest first and trains on
`collect_episodes_per_iteration` of them whose policy version (the train
step the acting policy had) is at most `max_policy_lag` behind the learner;
older ones are dropped and counted (`stale_episodes`). With the default lag
of 0 every episode trained on was collected by exactly the current weights,
as in the single-process loop.

Resume: the agent and counters come from root_dir's checkpoints; the replay
is whatever the server holds (the server checkpoints its own tables).

Server lost (killed, restarting): variable pushes, the per-row table query
and (on-policy) a check before each episode read wait at most
`ServerLink.wait_s` / `probe_timeout_s` at a time; when the server is gone or
restarted the learner waits for it (`reconnect_timeout_s`), opens a new
variable writer and pushes its current weights at once (a restored server
holds the checkpoint's older ones, and on-policy actors would wait for a
newer version forever). Sampling itself cannot be bounded in Reverb 0.14 (its
samplers retry a lost server without end, and `rate_limiter_timeout_ms` is
enforced by the server, so it never fires for a dead one): a train call or
episode read that samples while the server is gone waits and goes on over the
same dataset or client once the server is back.
"""

import time
from typing import Callable

import gin
import numpy as np
import tensorflow as tf

from tfrl.distributed import wiring
from tfrl.replay import ReplayServer
from tfrl.train import faults, loop, sources
from tfrl.train.logger import flatten_diagnostics
from tfrl.train.settings import RunConfig


@gin.configurable(module="tfrl.distributed")
def learn(root_dir: str, config: RunConfig = None, hooks=(), log: Callable[[str], None] = print,
          max_policy_lag: int = 0, max_actors: int = 64,
          connect_timeout_s: float = 120.0) -> dict:
  """The learner of `config` (default: gin's `tfrl.train.train` bindings),
  whose `replay_server_address` names the server, through the one train loop.

  `max_policy_lag` (on-policy): how many train steps older than the
  learner an episode's policy may be (> 0 trains PPO & co. on slightly
  off-policy data as if it were on-policy). `max_actors`: actor ids counted
  per actor in progress.csv (`samples_from_actor_<id>` or
  `episodes_from_actor_<id>`)."""
  config = wiring.role_config(config)
  wiring.check_address(config.replay_server_address, "--replay_server")
  # The agent's specs come from a single env: this process does not collect.
  parts = sources.build_parts(config, num_envs=1)
  source = LearnerSource(config, parts.agent, log, max_policy_lag, max_actors, connect_timeout_s)
  try:
    return loop.run_loop(root_dir, config, parts.agent, parts.evaluator, source, hooks, log)
  finally:
    source.close()
    parts.close()


class LearnerSource(loop.StepSource):
  """The train loop's step source for the distributed learner: each
  iteration samples (or reads fresh episodes) from the server, trains and
  pushes the policy variables."""
  def __init__(self, config, agent, log, max_policy_lag: int, max_actors: int,
               connect_timeout_s: float):
    self.config, self.agent, self.replay, self.log = config, agent, config.replay, log
    self.max_policy_lag, self.max_actors = max_policy_lag, max_actors
    self.connect_timeout_s = connect_timeout_s
    self.counters = {name: tf.Variable(0, dtype=tf.int64, name=name)
                     for name in ("env_steps", "episodes", "stale_episodes")}
    # Items (off-policy: windows) trained on per actor id: which actors' data arrived.
    self.actor_items = tf.Variable(tf.zeros([max_actors], tf.int64), name="actor_items")
    # Seconds since the last row in the train calls (sampling, waits on the
    # rate limiter included) and in pushing the policy variables.
    self.timing = {"train_s": 0.0, "push_s": 0.0}
    self.data_lag = tf.Variable(0.0, dtype=tf.float64)   # summed since the last row
    self.data_items = tf.Variable(0, dtype=tf.int64)
    self.server = self.link = self.variables = None
    self._push_now = False

  def checkpointed(self) -> dict:
    return dict(self.counters, actor_items=self.actor_items)

  def start(self, run):
    config, agent = self.config, self.agent
    self.link = wiring.ServerLink(config.replay_server_address, self.log)
    self.link.connect(self.connect_timeout_s)
    tables = wiring.replay_tables(config, agent) + [wiring.variable_table(agent)]
    self.server = ReplayServer(tables, address=config.replay_server_address)
    self.variables = wiring.PolicyVariables(self.link, agent)
    self.with_server(self.variables.push)  # actors wait for this first version
    if self.replay.on_policy:
      self._train = sources.on_policy_train_function(agent)
    else:
      iterator = sources.off_policy_batches(self.replay, self.server.address, config,
                                            wiring.tagged_data_spec(agent.collect_data_spec))
      self._train = sources.off_policy_train_function(
          agent, self.replay, self.server.client, lambda: self._untag(next(iterator)),
          config.train_steps_per_iteration)

  def with_server(self, call):
    """call(); when the server is lost, waits for it, opens a new variable
    writer, pushes the current weights first (a restored server holds the
    checkpoint's older ones) and calls again."""
    while True:
      try:
        if self._push_now:
          self.variables.push()
          self._push_now = False
        return call()
      except wiring.ServerLost as lost:
        self.log(f"learner: {lost}; reconnecting")
        self.variables.close()
        restarted = self.link.connect()
        self.variables = wiring.PolicyVariables(self.link, self.agent)
        self._push_now = True
        self.log(f"learner reconnected to {self.link.address}"
                 f"{' (a new server instance)' if restarted else ''}")

  def _count_data(self, actor_ids, versions):
    """Per-actor item counts and the data's policy lag (train steps behind), summed."""
    self.actor_items.assign_add(tf.math.bincount(actor_ids, minlength=self.max_actors,
                                                 maxlength=self.max_actors, dtype=tf.int64))
    lag = tf.cast(self.agent.train_step_counter - versions, tf.float64)
    self.data_lag.assign_add(tf.reduce_sum(lag))
    self.data_items.assign_add(tf.size(lag, out_type=tf.int64))

  def _untag(self, batches):
    """Sampled (tagged experience, weights or info) as the agent expects it, counted."""
    experience, weights_or_info = batches
    traj, tags = wiring.split_tags(experience)
    self._count_data(tf.reshape(tags["actor_id"][..., 0], [-1]),
                     tf.reshape(tags["policy_version"][..., 0], [-1]))
    return traj, weights_or_info

  def _read_fresh_episodes(self, n):
    """The oldest n episodes at most max_policy_lag versions behind; older ones dropped."""
    version = int(self.agent.train_step_counter.numpy())
    fresh = []
    while len(fresh) < n:
      # A restarted server holds the checkpoint's older weights, and on-policy
      # actors wait for a version newer than the one they collected: only a
      # push from this learner gets them going again (with_server pushes).
      self.with_server(self.link.check)
      spec = wiring.tagged_data_spec(self.agent.collect_data_spec)
      table = self.replay.table_name
      # Waits for the actors (interruptibly); the size query goes through
      # with_server, so a server lost meanwhile is reconnected to.
      arrived = lambda: self.with_server(lambda: self.link.table_info(table)).current_size
      for episode in self.replay.read_episodes(self.server.client, 1, data_spec=spec,
                                               wait_s=None, table_size=arrived):
        traj, tags = wiring.split_tags(episode)
        if version - int(tags["policy_version"][0]) > self.max_policy_lag:
          self.counters["stale_episodes"].assign_add(1)
          continue
        self._count_data(tags["actor_id"][:1], tags["policy_version"][:1])
        fresh.append(traj)
        self.counters["env_steps"].assign_add(int(np.sum(~traj.is_boundary())))
    self.counters["episodes"].assign_add(n)
    return self.replay.concatenate(fresh)

  def run(self, num_iterations: int) -> loop.Advance:
    assert num_iterations == 1
    if self.replay.on_policy:
      experience = self._read_fresh_episodes(self.config.collect_episodes_per_iteration)
      train_step = lambda: self._train(experience)
    else:
      train_step = self._train
    faults.point("train")
    t0 = time.time()
    loss_info = train_step()
    loss = float(loss_info.loss)
    t1 = time.time()
    # A non-finite loss stops the run (the loop's FiniteLoss) before actors get its weights.
    if np.isfinite(loss):
      self.with_server(self.variables.push)
    self.timing["train_s"] += t1 - t0
    self.timing["push_s"] += time.time() - t1
    return loop.Advance(loss, flatten_diagnostics(loss_info.extra))

  def counts(self) -> dict:
    if not self.replay.on_policy:
      # Transitions collected into the table so far (an item holds every env's window).
      info = self.with_server(lambda: self.link.table_info(self.replay.table_name))
      inserts = info.rate_limiter_info.insert_stats.completed
      self.counters["env_steps"].assign(inserts * self.replay.envs_per_item(self.config.num_envs))
    # Sampled windows do not say how many episodes the actors finished.
    episodes = int(self.counters["episodes"]) if self.replay.on_policy else None
    return dict(env_steps=int(self.counters["env_steps"]), episodes=episodes)

  def row_extras(self) -> dict:
    row = {"data_policy_lag": float(self.data_lag.numpy()) / max(1, int(self.data_items.numpy()))}
    row.update(self.timing)
    self.timing.update(train_s=0.0, push_s=0.0)
    self.data_lag.assign(0.0)
    self.data_items.assign(0)
    if self.replay.on_policy:
      row["stale_episodes"] = int(self.counters["stale_episodes"])
    # What the learner trained on, by actor: whole episodes, or sampled
    # windows (each counted every time it is sampled).
    counted = "episodes" if self.replay.on_policy else "samples"
    for actor_id in np.flatnonzero(self.actor_items.numpy()):
      row[f"{counted}_from_actor_{actor_id}"] = int(self.actor_items[actor_id])
    return row

  # before_checkpoint: None, the server checkpoints its own tables.

  def close(self):
    if self.variables is not None:
      self.variables.close()
    if self.server is not None:
      self.server.close()
