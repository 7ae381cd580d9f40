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

import math
import time
from typing import Callable

import gin
import numpy as np
import tensorflow as tf

from tfrl.distributed import wiring
from tfrl.replay import ReplayServer
from tfrl.train import faults
from tfrl.train.checkpoints import PolicyExport
from tfrl.train.logger import flatten_diagnostics
from tfrl.train.runner import (PROGRESS_COLUMNS, Experiment, _off_policy_train_fn,
                               evaluation_row, on_policy_train_function, open_run_dir, run_logger,
                               write_row)


@gin.configurable(module="tfrl.distributed")
def learn(root_dir: str, log: Callable[[str], None] = print, max_policy_lag: int = 0,
          max_actors: int = 64, connect_timeout_s: float = 120.0) -> dict:
  """`max_policy_lag` (on-policy): how many train steps older than the
  learner an episode's policy may be (> 0 trains PPO & co. on slightly
  off-policy data as if it were on-policy). `max_actors`: actor ids counted
  per actor in progress.csv (`items_from_actor_<id>`)."""
  s = wiring.train_settings()
  address = wiring.check_address(s["replay_server_address"], "--replay_server")
  # The agent's specs come from a single env: this process does not collect.
  exp = Experiment(s["env_id"], s["agent_fn"], s["replay"], s["seed"], 1,
                   s["num_eval_episodes"], s["eval_num_envs"], address)
  try:
    return _learn(exp, s, root_dir, log, max_policy_lag, max_actors, connect_timeout_s)
  finally:
    exp.close()


def _learn(exp, s, root_dir, log, max_policy_lag, max_actors, connect_timeout_s):
  agent, replay = exp.agent, exp.replay
  counters = {name: tf.Variable(0, dtype=tf.int64, name=name)
              for name in ("iteration", "env_steps", "episodes", "stale_episodes")}
  # Items (off-policy: windows) trained on per actor id: which actors' data arrived.
  actor_items = tf.Variable(tf.zeros([max_actors], tf.int64), name="actor_items")
  wall = tf.Variable(0.0, dtype=tf.float64, name="wall_s")
  run_checkpoint = open_run_dir(root_dir, agent, dict(counters, wall_s=wall,
                                                     actor_items=actor_items))
  log(f"run directory: {root_dir}")

  link = wiring.ServerLink(exp.replay_server_address, log)
  link.connect(connect_timeout_s)
  tables = wiring.replay_tables(s, agent) + [wiring.variable_table(agent)]
  exp.server = ReplayServer(tables, address=exp.replay_server_address)
  client = exp.server.client
  variables = wiring.PolicyVariables(link, agent)

  push_now = False

  def with_server(call):
    """call(); when the server is lost, waits for it, opens a new variable
    writer, pushes the current weights first (a restored server holds the
    checkpoint's older ones) and calls again."""
    nonlocal variables, push_now
    while True:
      try:
        if push_now:
          variables.push()
          push_now = False
        return call()
      except wiring.ServerLost as lost:
        log(f"learner: {lost}; reconnecting")
        variables.close()
        restarted = link.connect()
        variables = wiring.PolicyVariables(link, agent)
        push_now = True
        log(f"learner reconnected to {link.address}"
            f"{' (a new server instance)' if restarted else ''}")

  with_server(lambda: variables.push())  # actors wait for this first version
  if run_checkpoint.latest:
    log(f"resumed from {run_checkpoint.latest} at iteration {int(counters['iteration'])}")
  logger = run_logger(root_dir, PROGRESS_COLUMNS, run_checkpoint, int(counters["iteration"]), log)
  exporter = PolicyExport(root_dir, exp.evaluator.policy, agent.train_step_counter) \
      if s["export_policy"] else None

  def count_data(actor_ids, versions):
    """Per-actor item counts and how many train steps behind the data's policy was."""
    actor_items.assign_add(tf.math.bincount(actor_ids, minlength=max_actors,
                                            maxlength=max_actors, dtype=tf.int64))
    return tf.cast(agent.train_step_counter - versions, tf.float64)

  # Seconds since the last row in the train calls (sampling, waits on the
  # rate limiter included) and in pushing the policy variables.
  timing = {"train_s": 0.0, "push_s": 0.0}
  data_lag = tf.Variable(0.0, dtype=tf.float64)   # summed since the last row
  data_items = tf.Variable(0, dtype=tf.int64)

  if replay.on_policy:
    train_on_episodes = on_policy_train_function(agent)
  else:
    def prepare(experience):
      traj, tags = wiring.split_tags(experience)
      lag = count_data(tags["actor_id"][:, 0], tags["policy_version"][:, 0])
      data_lag.assign_add(tf.reduce_sum(lag))
      data_items.assign_add(tf.size(lag, out_type=tf.int64))
      return traj
    train_on_samples = _off_policy_train_fn(agent, replay, exp.server, s["batch_size"],
                                            s["train_steps_per_iteration"], prepare)

  def read_fresh_episodes(n):
    """The oldest n episodes at most max_policy_lag versions behind; older ones dropped."""
    version = int(agent.train_step_counter.numpy())
    fresh = []
    while len(fresh) < n:
      # A restarted server holds the checkpoint's older weights, and on-policy
      # actors wait for a version newer than the one they collected: only a
      # push from this learner gets them going again (with_server pushes).
      with_server(link.check)
      for episode in replay.read_episodes(client, 1):
        traj, tags = wiring.split_tags(episode)
        if version - int(tags["policy_version"][0]) > max_policy_lag:
          counters["stale_episodes"].assign_add(1)
          continue
        lag = count_data(tags["actor_id"][:1], tags["policy_version"][:1])
        data_lag.assign_add(tf.reduce_sum(lag))
        data_items.assign_add(1)
        fresh.append(traj)
        counters["env_steps"].assign_add(int(np.sum(~traj.is_boundary())))
    counters["episodes"].assign_add(n)
    return replay.concatenate(fresh)

  start_wall = time.time() - float(wall.numpy())
  last_row = None

  def report(iteration):
    nonlocal last_row
    if not replay.on_policy:
      # Transitions collected into the table so far (an item holds every env's window).
      info = with_server(lambda: link.table_info(replay.table_name))
      inserts = info.rate_limiter_info.insert_stats.completed
      counters["env_steps"].assign(inserts * (1 if replay.prioritized else s["num_envs"]))
    row = evaluation_row(exp.evaluator, logger, ("eval_return",), start_wall,
                         iteration=iteration, env_steps=int(counters["env_steps"]),
                         train_steps=int(agent.train_step_counter.numpy()),
                         episodes=int(counters["episodes"]))
    row["data_policy_lag"] = float(data_lag.numpy()) / max(1, int(data_items.numpy()))
    row.update(timing)
    timing.update(train_s=0.0, push_s=0.0)
    data_lag.assign(0.0)
    data_items.assign(0)
    if replay.on_policy:
      row["stale_episodes"] = int(counters["stale_episodes"])
    for actor_id in np.flatnonzero(actor_items.numpy()):
      row[f"items_from_actor_{actor_id}"] = int(actor_items[actor_id])
    write_row(logger, row, exporter, iteration)
    last_row = row

  num_iterations = s["num_iterations"]
  first = int(counters["iteration"]) + 1
  if first == 1:
    report(0)
  for iteration in range(first, num_iterations + 1):
    if replay.on_policy:
      experience = read_fresh_episodes(s["collect_episodes_per_iteration"])
      train_step = lambda: train_on_episodes(experience)  # pylint: disable=cell-var-from-loop
    else:
      train_step = train_on_samples
    faults.point("train")
    t0 = time.time()
    loss_info = train_step()
    loss = float(loss_info.loss)
    t1 = time.time()
    if not math.isfinite(loss):
      raise FloatingPointError(f"non-finite loss {loss} at iteration {iteration}; "
                               f"last good checkpoint: {run_checkpoint.latest}")
    with_server(lambda: variables.push())
    timing["train_s"] += t1 - t0
    timing["push_s"] += time.time() - t1
    logger.store(loss=loss, **flatten_diagnostics(loss_info.extra))
    if iteration % s["eval_interval"] == 0 or iteration == num_iterations:
      report(iteration)
    if iteration % s["checkpoint_interval"] == 0 or iteration == num_iterations:
      counters["iteration"].assign(iteration)
      wall.assign(time.time() - start_wall)
      run_checkpoint.save(iteration)
  return logger.finish(last_row)
