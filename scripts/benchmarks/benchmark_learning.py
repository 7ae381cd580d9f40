#!/usr/bin/env python
r"""Learning benchmark: runs gin configs over seeds, prints a table.

  python scripts/benchmarks/benchmark_learning.py --gin_file=reinforce_cartpole.gin \
      --seeds=0,1,2,3,4 --threshold=475
  python scripts/benchmarks/benchmark_learning.py --suite=agents    # the agent family
  python scripts/benchmarks/benchmark_learning.py --suite=rudder    # PPO with/without RUDDER, delayed rewards

--threshold is one value for every config, or one per --gin_file in order.

Each run is `scripts/train.py` in its own process (one at a time, so runs do
not compete for cores), in a fresh directory under --out_dir. Per run: final
evaluation return, env steps and wall-clock seconds (training, from
progress.csv) when the evaluation first reached --threshold, total wall-clock
of the process. Then per config: on how many seeds the threshold was
reached, and medians of steps and seconds to it over those seeds.
"""

import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Config(s) to benchmark; repeat for several.")
flags.DEFINE_multi_string("gin_bindings", [], "Bindings applied to every config.")
_cli.define_int_list("seeds", [0, 1, 2, 3, 4], "Seeds.")
flags.DEFINE_multi_float("threshold", [], "Return counted as solved (one, or one per config).")
flags.DEFINE_enum("suite", None, ["agents", "rudder", "compiled"], "A preset list of configs with their thresholds.")

# Each config with the return counted as solved: a deterministic 10-episode
# evaluation of >= 475 on CartPole-v1 (max 500), >= -200 on Pendulum-v1.
SUITES = {"agents": [("vpg_cartpole.gin", 475), ("ppo_cartpole.gin", 475),
                     ("trpo_cartpole.gin", 475), ("dqn_cartpole.gin", 475),
                     ("ppo_pendulum.gin", -200), ("ddpg_pendulum.gin", -200),
                     ("td3_pendulum.gin", -200), ("sac_pendulum.gin", -200)],
          # PPO with and without RUDDER on delayed-reward tasks: the coin walk's
          # best return (24), CartPole-v0's "solved" level (195) on delayed CartPole.
          "rudder": [("ppo_coin.gin", 24), ("rudder_ppo_coin.gin", 24),
                     ("ppo_delayed_cartpole.gin", 195), ("rudder_ppo_delayed_cartpole.gin", 195)],
          # DQN's regular loop and the compiled one, same hyperparameters.
          "compiled": [("dqn_cartpole.gin", 475), ("dqn_cartpole_compiled.gin", 475)]}
flags.DEFINE_string("out_dir", None, "Where runs go (default: a temp dir).")

TRAIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train.py")


def run_one(gin_file, threshold, seed, out_dir):
  root = os.path.join(out_dir, f"{os.path.splitext(os.path.basename(gin_file))[0]}-s{seed}")
  cmd = [sys.executable, TRAIN, f"--gin_file={gin_file}", f"--seed={seed}", f"--root_dir={root}"]
  cmd += [f"--gin_bindings={b}" for b in FLAGS.gin_bindings]
  start = time.time()
  result = subprocess.run(cmd, capture_output=True, text=True)
  seconds = time.time() - start
  if result.returncode != 0:
    tail = (result.stderr.strip().splitlines() or ["?"])[-1]
    return dict(config=gin_file, seed=seed, error=tail)
  with open(os.path.join(root, "progress.csv")) as f:
    rows = list(csv.DictReader(f))
  hit = next((r for r in rows if threshold is not None
              and float(r["avg_return"]) >= threshold), None)
  return dict(config=gin_file, threshold=threshold, seed=seed, final=float(rows[-1]["avg_return"]),
              steps_to=int(hit["env_steps"]) if hit else None,
              secs_to=float(hit["wall_s"]) if hit else None,
              train_s=float(rows[-1]["wall_s"]), process_s=seconds,
              env_steps=int(rows[-1]["env_steps"]))


def fmt(v, spec):
  """`v` formatted by `spec`; a missing value is a "-" of the same width."""
  if v is None:
    return format("-", spec.split(".")[0].rstrip("dfg"))
  return format(v, spec)


def configs_and_thresholds():
  if FLAGS.suite:
    if FLAGS.gin_file or FLAGS.threshold:
      _cli.fail("give --suite or --gin_file (with --threshold), not both")
    return SUITES[FLAGS.suite]
  if not FLAGS.gin_file:
    _cli.fail("give --gin_file (repeatable) or --suite")
  thresholds = FLAGS.threshold or [None]
  if len(thresholds) == 1:
    thresholds = thresholds * len(FLAGS.gin_file)
  if len(thresholds) != len(FLAGS.gin_file):
    _cli.fail(f"give one --threshold, or one per --gin_file ({len(FLAGS.gin_file)}); "
              f"got {len(thresholds)}")
  return list(zip(FLAGS.gin_file, thresholds))


def check_configs(gin_files):
  """Each config parses with the bindings, before the first run: a bad one
  would otherwise be an error row per seed."""
  import gin  # pylint: disable=import-outside-toplevel
  from tfrl.envs import check_env_id  # pylint: disable=import-outside-toplevel  (imports TF)
  from tfrl.train import config  # pylint: disable=import-outside-toplevel
  for gin_file in gin_files:
    config.parse_config([gin_file], FLAGS.gin_bindings)
    env_id = gin.get_bindings("tfrl.train.train").get("env_id")
    if env_id is None:
      _cli.fail(f"{gin_file} binds no tfrl.train.train.env_id")
    if isinstance(env_id, str):
      check_env_id(env_id)


def main(argv):
  del argv
  configs = configs_and_thresholds()
  if FLAGS.out_dir:
    _cli.check_creatable_dir(FLAGS.out_dir, "--out_dir")
  check_configs([gin_file for gin_file, _ in configs])
  out_dir = FLAGS.out_dir or tempfile.mkdtemp(prefix="tfrl-bench-")
  header = (f"{'config':<28} {'seed':>4} {'final':>8} {'steps_to_thr':>12} {'s_to_thr':>9} "
            f"{'train_s':>8} {'process_s':>9} {'env_steps':>10}")
  print(header)
  results = []
  # Seed-major: the configs of one seed run back to back, so a machine that
  # gets busier or quieter during the benchmark affects them alike.
  for seed in FLAGS.seeds:
    for gin_file, threshold in configs:
      r = run_one(gin_file, threshold, seed, out_dir)
      results.append(r)
      if "error" in r:
        print(f"{gin_file:<28} {seed:>4} error: {r['error']}", flush=True)
        continue
      print(f"{gin_file:<28} {seed:>4} {r['final']:>8.1f} {fmt(r['steps_to'], '>12d')} "
            f"{fmt(r['secs_to'], '>9.1f')} {r['train_s']:>8.1f} {r['process_s']:>9.1f} "
            f"{r['env_steps']:>10d}", flush=True)
  print()
  print(f"{'config':<28} {'thr':>6} {'reached':>7} {'final>=thr':>10} {'med_final':>9} "
        f"{'med_steps_to':>12} {'med_s_to':>8} {'med_train_s':>11}")
  for gin_file, threshold in configs:
    ok = [r for r in results if r["config"] == gin_file and "error" not in r]
    if not ok:
      continue
    reached = [r for r in ok if r["steps_to"] is not None]
    final_ok = sum(threshold is not None and r["final"] >= threshold for r in ok)
    median = lambda rows, key: statistics.median([r[key] for r in rows]) if rows else None
    print(f"{gin_file:<28} {fmt(threshold, '>6g')} {len(reached):>3}/{len(ok):<3} "
          f"{final_ok:>6}/{len(ok):<3} {median(ok, 'final'):>9.1f} "
          f"{fmt(median(reached, 'steps_to'), '>12.0f')} {fmt(median(reached, 'secs_to'), '>8.1f')} "
          f"{median(ok, 'train_s'):>11.1f}")
  print("reached: evaluations that hit the threshold at least once; medians of steps and "
        "seconds to the threshold are over those seeds.")


if __name__ == "__main__":
  _cli.run(main)
