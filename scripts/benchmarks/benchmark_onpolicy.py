#!/usr/bin/env python
r"""Where an on-policy iteration's time goes (PPO, TRPO, VPG).

  python scripts/benchmarks/benchmark_onpolicy.py              # the four ready pairs, the table
  python scripts/benchmarks/benchmark_onpolicy.py --gin_file=ppo_pendulum.gin --iterations=5

For each ready pair, the parts are built as the regular loop builds them
(gin file -> RunConfig -> build_parts, the replay component's tables and
adder on an embedded server, the Driver, on_policy_train_function), then
--warmup iterations (tracing) and --iterations timed ones run, each:
  collect:  replay.collect (driver.run_episodes, or run_transitions for
            segments), policy calls, env steps and the adder's Reverb writes
            and flush included;
  read:     replay.experience: the iteration's items sampled from Reverb and
            laid end to end as the [1, sum T] tensors agent.train takes;
  adv:      the agent's own batch preparation alone (PolicyGradientAgent.
            _prepare_batch in a tf.function on the same experience: V(s) on
            every row, GAE-lambda advantages, TD-lambda value targets, boundary
            rows masked out, advantage normalization, the old policy's
            log-probabilities); measured apart, after the update;
  update:   the train function's time minus adv (agent.train runs the
            preparation first, then the policy and value updates);
  iter:     collect + read + train, back to back (adv's extra run excluded).
Milliseconds, medians over the timed iterations (so the parts need not add
up to `iter`); the shares (%) are of the summed times over the timed
iterations. `steps`: median env steps simulated per iteration; `steps/s`:
all timed env steps over the summed `iter` times. `traces`: how often the
train function was traced over the whole run (1: never retraced).
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _cli  # noqa: E402  (one-line flag errors, before TF is imported)
from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
PAIRS = ["ppo_cartpole.gin", "trpo_cartpole.gin", "vpg_cartpole.gin", "ppo_pendulum.gin"]
PARTS = ["collect", "read", "adv", "update", "iter"]

flags.DEFINE_multi_string("gin_file", PAIRS, "Ready on-policy pair(s) to measure.")
flags.DEFINE_integer("iterations", 10, "Timed iterations per pair.", lower_bound=1)
flags.DEFINE_integer("warmup", 2, "Untimed iterations first (tracing).", lower_bound=1)


def measure(gin_file):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tfrl  # pylint: disable=import-outside-toplevel
  from tfrl.train import sources  # pylint: disable=import-outside-toplevel

  tfrl.train.config.parse_config([gin_file])
  config = tfrl.train.RunConfig().check()
  if not config.on_policy:
    raise tfrl.ConfigError(f"{gin_file} is not an on-policy pair")
  parts = sources.build_parts(config, config.num_envs)
  agent, replay = parts.agent, config.replay
  spec = agent.collect_data_spec
  train = sources.on_policy_train_function(agent)
  prepare = tf.function(agent._prepare_batch,  # pylint: disable=protected-access
                        input_signature=train.input_signature)
  times = {part: [] for part in PARTS}
  steps = []
  with tfrl.replay.ReplayServer(replay.tables(spec, config.num_envs)) as server, \
       replay.adder(server.client, config.num_envs) as adder:
    driver = tfrl.drivers.Driver(parts.env, agent.collect_policy, observers=[adder])
    for i in range(FLAGS.warmup + FLAGS.iterations):
      items, env_steps = adder.items_written, driver.env_steps
      start = time.perf_counter()
      replay.collect(driver, config.collect_episodes_per_iteration)
      collected = time.perf_counter()
      experience = replay.experience(server.client, adder.items_written - items,
                                     data_spec=spec)
      read = time.perf_counter()
      float(train(experience).loss)
      trained = time.perf_counter()
      tf.nest.map_structure(lambda x: x.numpy(), prepare(experience))
      prepared = time.perf_counter()
      if i < FLAGS.warmup:
        continue
      adv = prepared - trained
      for part, seconds in zip(PARTS, [collected - start, read - collected, adv,
                                       trained - read - adv, trained - start]):
        times[part].append(seconds * 1000)
      steps.append(driver.env_steps - env_steps)
  parts.close()
  return dict(times=times, steps=steps, traces=train.experimental_get_tracing_count())


def main(argv):
  del argv
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  rows = [(os.path.basename(name), measure(name)) for name in FLAGS.gin_file]
  print(f"\nms per on-policy iteration (median of {FLAGS.iterations} after {FLAGS.warmup} "
        f"warm-up; % = share of the summed iteration time); "
        f"load average {os.getloadavg()[0]:.1f}")
  header = "".join(f"{part:>14}" for part in PARTS)
  print(f"{'pair':18}{header}{'steps':>7}{'steps/s':>9}{'traces':>7}")
  for name, r in rows:
    total = sum(r["times"]["iter"])
    cells = "".join(f"{statistics.median(r['times'][part]):8.1f} {sum(r['times'][part]) / total:4.0%}"
                    .rjust(14) for part in PARTS)
    rate = sum(r["steps"]) / (total / 1000)
    print(f"{name:18}{cells}{statistics.median(r['steps']):7.0f}{rate:9.0f}{r['traces']:7d}")


if __name__ == "__main__":
  _cli.run(main)
