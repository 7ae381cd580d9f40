#!/usr/bin/env python
r"""Collection benchmark: environment steps per second into a Reverb table.

  python scripts/benchmarks/benchmark_collect.py [--seconds=5] [--repeats=3] [--num_envs=1,8,64,256]

All configurations run in this one process, one after another, on CartPole-v1
with the same policy (an MLP (64, 64) categorical policy from tfrl's REINFORCE
factory) and all write every transition into a Reverb table:
  (a) tf-agents PyDriver + PyTFEagerPolicy(use_tf_function=True), with
      tf-agents' ReverbAddEpisodeObserver (the tutorial's setup);
  (b) tf-agents DynamicStepDriver inside tf.function over a TFPyEnvironment,
      each step's trajectory inserted in-graph with reverb.TFClient;
  (c) tfrl's Driver at each --num_envs, writing whole episodes
      (EpisodeReplay) and, separately, 2-step transitions (TransitionReplay).
Prints one row per configuration: median steps/s over --repeats and the ratio
to (a).
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_float("seconds", 5.0, "Minimum measuring time per repeat.")
flags.DEFINE_integer("repeats", 3, "Repeats per configuration (median reported).",
                     lower_bound=1)
_cli.define_int_list("num_envs", [1, 8, 64, 256], "tfrl batch sizes.", lower_bound=1)
flags.DEFINE_string("env_id", "CartPole-v1", "Environment.")
_cli.define_choice_list("replays", ["episodes", "transitions"], ["episodes", "transitions"],
                        "tfrl replay kinds to measure.")
_cli.require_positive("seconds")


def timed(run_chunk):
  """Steps/s of `run_chunk()` (returns steps done), after one warm-up call."""
  run_chunk()
  steps, start = 0, time.perf_counter()
  while time.perf_counter() - start < FLAGS.seconds:
    steps += run_chunk()
  return steps / (time.perf_counter() - start)


def main(argv):
  del argv
  import tfrl  # first: it keeps old gym's import notice (pulled in by tf-agents) quiet
  import reverb
  import tensorflow as tf
  from tf_agents.drivers import dynamic_step_driver, py_driver
  from tf_agents.environments import tf_py_environment
  from tf_agents.policies import py_tf_eager_policy
  from tf_agents.replay_buffers import reverb_utils
  from tf_agents.specs import tensor_spec

  tfrl.envs.check_env_id(FLAGS.env_id)

  def make_policy(env):
    agent = tfrl.agents.reinforce(tensor_spec.from_spec(env.time_step_spec()),
                                  tensor_spec.from_spec(env.action_spec()),
                                  fc_layer_params=(64, 64))
    return agent.collect_policy

  rows = []

  def report(name, rates):
    rate = statistics.median(rates)
    rows.append((name, rate))
    base = rows[0][1]
    print(f"{name:<52} {rate:>12,.0f} {rate / base:>8.1f}x", flush=True)

  print(f"{'configuration':<52} {'steps/s':>12} {'vs (a)':>9}")

  # (a) tf-agents PyDriver + PyTFEagerPolicy, episodes into Reverb.
  env = tfrl.envs.load(FLAGS.env_id, seed=0)
  policy = make_policy(env)
  replay = tfrl.replay.EpisodeReplay(capacity=100_000)
  server = tfrl.replay.ReplayServer(replay.tables(policy.trajectory_spec))
  observer = reverb_utils.ReverbAddEpisodeObserver(
      server.client, replay.table_name, max_sequence_length=1000)
  counter = {"steps": 0}
  driver = py_driver.PyDriver(
      env, py_tf_eager_policy.PyTFEagerPolicy(policy, use_tf_function=True),
      [observer, lambda traj: counter.__setitem__("steps", counter["steps"] + 1)], max_steps=500)
  state = {"ts": env.reset()}

  def chunk_a():
    before = counter["steps"]
    state["ts"], _ = driver.run(state["ts"])
    return counter["steps"] - before

  report("(a) tf-agents PyDriver + PyTFEagerPolicy", [timed(chunk_a) for _ in range(FLAGS.repeats)])
  server.close()

  # (b) tf-agents DynamicStepDriver in tf.function, in-graph Reverb inserts.
  tf_env = tf_py_environment.TFPyEnvironment(tfrl.envs.load(FLAGS.env_id, seed=0))
  policy = make_policy(tf_env.pyenv.envs[0])
  table = reverb.Table("steps", reverb.selectors.Uniform(), reverb.selectors.Fifo(), 100_000,
                       reverb.rate_limiters.MinSize(1))
  server = tfrl.replay.ReplayServer([table])
  tf_client = reverb.TFClient(server.address)

  def insert(traj):
    tf_client.insert(tf.nest.flatten(traj), tables=tf.constant(["steps"]),
                     priorities=tf.constant([1.0], tf.float64))

  step_driver = dynamic_step_driver.DynamicStepDriver(tf_env, policy, [insert], num_steps=500)
  run_b = tf.function(step_driver.run, autograph=True)
  time_step = tf_env.reset()

  def chunk_b():
    run_b(time_step)
    return 500

  report("(b) tf-agents DynamicStepDriver in tf.function", [timed(chunk_b) for _ in range(FLAGS.repeats)])
  server.close()

  # (c) tfrl Driver, batched envs: whole episodes (on-policy) and 2-step
  # transitions (off-policy), each into its own table.
  replays = {"episodes": lambda: tfrl.replay.EpisodeReplay(capacity=1_000_000),
             "transitions": lambda: tfrl.replay.TransitionReplay(capacity=1_000_000, min_size=1)}
  for kind in FLAGS.replays:
    for n in map(int, FLAGS.num_envs):
      env = tfrl.envs.load(FLAGS.env_id, seed=0, num_envs=n)
      policy = make_policy(env)
      replay = replays[kind]()
      server = tfrl.replay.ReplayServer(replay.tables(policy.trajectory_spec, n))
      adder = replay.adder(server.client, n)
      driver_c = tfrl.drivers.Driver(env, policy, observers=[adder])
      steps_per_chunk = max(500, 2 * n)

      def chunk_c():
        before = driver_c.env_steps
        driver_c.run_steps(steps_per_chunk)
        return driver_c.env_steps - before

      report(f"(c) tfrl Driver, {kind}, num_envs={n}",
             [timed(chunk_c) for _ in range(FLAGS.repeats)])
      adder.close()
      server.close()
      env.close()


if __name__ == "__main__":
  _cli.run(main)
