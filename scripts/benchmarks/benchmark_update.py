#!/usr/bin/env python
r"""The cost of one off-policy update inside tfrl against its math alone.

  python scripts/benchmarks/benchmark_update.py                 # DQN and SAC, the table
  python scripts/benchmarks/benchmark_update.py --agents=dqn --steps=500 --repeats=5
  python scripts/benchmarks/benchmark_update.py --agents=sac_halfcheetah,td3_halfcheetah --batch_size=100

For each agent, on a Reverb table filled by random-policy collection with
its ready pair's number of envs (DQN 4, as dqn_cartpole.gin; SAC 1, as the
MuJoCo pairs, the costliest layout: one Reverb sample per window):
  tfrl:    tfrl.train.off_policy_train_function on the replay dataset — what
           the regular loop runs per iteration (sampling, unpacking, agent.train);
  train:   agent.train on one fixed batch in a tf.function loop (tf-agents'
           update without sampling);
  math:    the networks' forward, backward and Adam steps alone in a
           tf.function loop (DQN: the Q network's forward, backward and Adam
           step on the TD target of the target network's forward pass; SAC,
           TD3: not separable from tf-agents' update, so `train` stands for it).
Milliseconds per update (medians over --repeats timed calls of --steps
updates each, after a warm-up call); `pipeline` is what tfrl adds to
tf-agents' update (sampling, unpacking, Python round trips: tfrl - train),
`total` all of tfrl's cost beyond the math (tfrl - math), both as fractions
of the math.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _cli  # noqa: E402  (one-line flag errors, before TF is imported)
from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
# Each agent: env, factory bindings (the sizes: DQN (256, 256) at batch 64).
# Each setup: agent, env, envs, factory bindings (issue 18's sizes: DQN (256, 256)
# at batch 64); the MuJoCo ones are sac_halfcheetah.gin's and td3_halfcheetah.gin's
# networks (Spinning Up's (400, 300); their batch is 100: --batch_size=100).
SETUPS = {"dqn": ("dqn", "CartPole-v1", 4, dict(fc_layer_params=(256, 256))),
          "sac": ("sac", "Pendulum-v1", 1, dict(actor_fc_layer_params=(256, 256),
                                                critic_fc_layer_params=(256, 256))),
          "sac_halfcheetah": ("sac", "HalfCheetah-v5", 1, dict(actor_fc_layer_params=(400, 300),
                                                               critic_fc_layer_params=(400, 300))),
          "td3_halfcheetah": ("td3", "HalfCheetah-v5", 1, dict(actor_fc_layer_params=(400, 300),
                                                               critic_fc_layer_params=(400, 300)))}

_cli.define_choice_list("agents", ["dqn", "sac"], list(SETUPS), "Setups to measure.")
flags.DEFINE_integer("steps", 500, "Updates per timed call.", lower_bound=1)
flags.DEFINE_integer("repeats", 5, "Timed calls per measurement.", lower_bound=1)
flags.DEFINE_integer("batch_size", 64, "Batch size.", lower_bound=1)
flags.DEFINE_integer("num_envs", None, "Envs collecting into the table (default: per agent, "
                     "as above).", lower_bound=1)


def milliseconds_per_update(call, steps, repeats):
  call()  # warm-up: tracing, optimizer slots, the dataset's first batches
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    call()
    times.append((time.perf_counter() - start) / steps * 1000)
  return statistics.median(times)


def measure(name):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tfrl  # pylint: disable=import-outside-toplevel
  from tf_agents.policies import random_tf_policy  # pylint: disable=import-outside-toplevel

  agent_name, env_id, num_envs, hyperparameters = SETUPS[name]
  num_envs = FLAGS.num_envs or num_envs
  env = tfrl.envs.load(env_id, seed=0, num_envs=num_envs)
  agent = getattr(tfrl.agents, agent_name)(env.time_step_spec(), env.action_spec(),
                                           **hyperparameters)
  replay = tfrl.replay.TransitionReplay(capacity=100_000, min_size=1000)
  steps, repeats, batch_size = FLAGS.steps, FLAGS.repeats, FLAGS.batch_size
  with tfrl.replay.ReplayServer(replay.tables(agent.collect_data_spec, num_envs)) as server, \
       replay.adder(server.client, num_envs) as adder:
    policy = random_tf_policy.RandomTFPolicy(agent.time_step_spec, agent.action_spec,
                                             info_spec=agent.collect_policy.info_spec)
    tfrl.drivers.Driver(env, policy, observers=[adder]).run_steps(5000)
    adder.flush()
    iterator = iter(replay.dataset(server.address, batch_size, num_envs=num_envs,
                                   data_spec=agent.collect_data_spec, num_batches=steps))
    tfrl_update = tfrl.train.off_policy_train_function(agent, replay, server.client,
                                                       lambda: next(iterator), steps)
    results = {"envs": num_envs, "tfrl": milliseconds_per_update(tfrl_update, steps, repeats)}
    experience, weights = next(iterator)
    batch, weights = tf.nest.map_structure(lambda x: x[0], (experience, weights))

  train_step = tf.autograph.experimental.do_not_convert(agent.train)

  @tf.function
  def train_fixed():
    loss = train_step(batch, weights=weights).loss
    for _ in tf.range(steps - 1):
      loss = train_step(batch, weights=weights).loss
    return loss
  results["train"] = milliseconds_per_update(train_fixed, steps, repeats)

  if agent_name == "dqn":
    parts = agent.parts
    optimizer = tf.keras.optimizers.Adam(1e-3)
    observations, next_observations = batch.observation[:, 0], batch.observation[:, 1]
    actions = tf.one_hot(tf.cast(batch.action[:, 0], tf.int32), agent.action_spec.maximum + 1)
    rewards, discounts = batch.reward[:, 0], batch.discount[:, 0]
    variables = parts.q_network.trainable_variables
    optimizer.build(variables)

    @tf.function
    def math_only():
      for _ in tf.range(steps):
        next_q, _ = parts.target_q_network(next_observations)
        targets = rewards + parts.gamma * discounts * tf.reduce_max(next_q, -1)
        with tf.GradientTape() as tape:
          q_values, _ = parts.q_network(observations, training=True)
          loss = tf.reduce_mean(tf.square(tf.reduce_sum(q_values * actions, -1) - targets))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    results["math"] = milliseconds_per_update(math_only, steps, repeats)
  else:
    results["math"] = results["train"]
  env.close()
  return results


def main(argv):
  del argv
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  rows = [(name, measure(name)) for name in FLAGS.agents]
  print(f"\nms per update (median of {FLAGS.repeats} calls of {FLAGS.steps} updates, "
        f"batch {FLAGS.batch_size}); load average {os.getloadavg()[0]:.1f}")
  print(f"{'setup':15} {'envs':>4} {'tfrl':>8} {'train':>8} {'math':>8} {'pipeline':>9} "
        f"{'total':>6}")
  for name, r in rows:
    pipeline = (r["tfrl"] - r["train"]) / r["math"]
    total = (r["tfrl"] - r["math"]) / r["math"]
    print(f"{name:15} {r['envs']:4d} {r['tfrl']:8.3f} {r['train']:8.3f} {r['math']:8.3f} "
          f"{pipeline:9.0%} {total:6.0%}")


if __name__ == "__main__":
  _cli.run(main)
