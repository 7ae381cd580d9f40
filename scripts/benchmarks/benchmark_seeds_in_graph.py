#!/usr/bin/env python
r"""K seeds in one compiled graph against K single-seed runs, one after another.

  python scripts/benchmarks/benchmark_seeds_in_graph.py     # PPO CartPole, SAC Pendulum
  python scripts/benchmarks/benchmark_seeds_in_graph.py --num_seeds=5 \
      --gin_file=ppo_cartpole_compiled.gin --threshold=475

Per config: `--num_seeds` processes of `scripts/train.py --seed=s` (s = 0 ..
K-1, one at a time), then one `train.py --seed=0` with
`tfrl.train.train.num_seeds = K` (its run directories `seed_<s>`). Both ways
train every seed the config's whole budget. Per seed: seconds to the
threshold (progress.csv's `wall_s` at the first evaluation at or above it:
compilation, evaluations and exports included; in the K-seed process one
clock for all seeds, so a seed's figure includes the other seeds' work up
to then). Per way: the seeds that reached it, their median and slowest
seconds to it, and the processes' total wall-clock seconds (start-up, agent
building, every evaluation and export included). The ratio of the totals is
the figure the K-seed mode is for; their CPU seconds (user + sys, from
getrusage) are the steadier figure on a machine others load.
"""

import csv
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Compiled configs (default: ppo_cartpole_compiled.gin "
                          "and sac_pendulum_compiled.gin).")
flags.DEFINE_multi_float("threshold", [], "Return counted as solved, one per --gin_file.")
flags.DEFINE_multi_string("gin_bindings", [], "Bindings applied to every run.")
flags.DEFINE_integer("num_seeds", 5, "Seeds (0 .. K-1).", lower_bound=2)
flags.DEFINE_string("out_dir", None, "Where runs go (default: a temp dir).")

DEFAULTS = [("ppo_cartpole_compiled.gin", 475.0), ("sac_pendulum_compiled.gin", -200.0)]
TRAIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train.py")


def cpu_s():
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def train(gin_file, root, seed, *bindings):
  """One train.py process; its (wall-clock, CPU) seconds."""
  command = [sys.executable, TRAIN, f"--gin_file={gin_file}", f"--root_dir={root}",
             f"--seed={seed}"]
  command += [f"--gin_bindings={b}" for b in list(bindings) + FLAGS.gin_bindings]
  start, start_cpu = time.time(), cpu_s()
  result = subprocess.run(command, capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  if result.returncode != 0:
    raise RuntimeError(f"{gin_file} seed {seed}: "
                       f"{(result.stderr.strip().splitlines() or ['?'])[-1]}")
  return time.time() - start, cpu_s() - start_cpu


def seconds_to(root, threshold):
  """(wall_s, env_steps) at the first evaluation >= threshold, else (None, None); final return."""
  with open(os.path.join(root, "progress.csv")) as f:
    rows = list(csv.DictReader(f))
  hit = next((r for r in rows if float(r["avg_return"]) >= threshold), None)
  final = float(rows[-1]["avg_return"])
  return (float(hit["wall_s"]), int(hit["env_steps"])) if hit else (None, None), final


def fmt(value, spec):
  return "-" if value is None else format(value, spec)


def main(argv):
  del argv
  if FLAGS.gin_file and len(FLAGS.threshold) != len(FLAGS.gin_file):
    _cli.fail("give one --threshold per --gin_file")
  configs = list(zip(FLAGS.gin_file, FLAGS.threshold)) if FLAGS.gin_file else DEFAULTS
  if FLAGS.out_dir:
    _cli.check_creatable_dir(FLAGS.out_dir, "--out_dir")
  out_dir = FLAGS.out_dir or tempfile.mkdtemp(prefix="tfrl-seeds-")
  seeds = list(range(FLAGS.num_seeds))
  table = []
  for gin_file, threshold in configs:
    name = os.path.splitext(os.path.basename(gin_file))[0]
    ways = {}
    # One after another: K processes.
    process_s, process_cpu_s, per_seed = 0.0, 0.0, []
    for seed in seeds:
      root = os.path.join(out_dir, f"{name}-single-s{seed}")
      wall, cpu = train(gin_file, root, seed)
      process_s, process_cpu_s = process_s + wall, process_cpu_s + cpu
      per_seed.append(seconds_to(root, threshold))
      print(f"{name} single seed {seed}: s_to_thr {fmt(per_seed[-1][0][0], '.1f')}, final "
            f"{per_seed[-1][1]:.1f}, processes so far {process_s:.1f} s", flush=True)
    ways["sequential"] = (process_s, process_cpu_s, per_seed)
    # One process, the K seeds in one graph.
    root = os.path.join(out_dir, f"{name}-in-graph")
    process_s, process_cpu_s = train(gin_file, root, 0,
                                     f"tfrl.train.train.num_seeds = {FLAGS.num_seeds}")
    per_seed = [seconds_to(os.path.join(root, f"seed_{seed}"), threshold) for seed in seeds]
    for seed, ((secs, _), final) in zip(seeds, per_seed):
      print(f"{name} in graph seed {seed}: s_to_thr {fmt(secs, '.1f')}, final {final:.1f}",
            flush=True)
    print(f"{name} in graph: process {process_s:.1f} s, CPU {process_cpu_s:.1f} s", flush=True)
    ways["in one graph"] = (process_s, process_cpu_s, per_seed)
    table.append((gin_file, threshold, ways))
  print(f"\n{FLAGS.num_seeds} seeds per config, whole budgets; load average at end "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
  print("| config | seeds | reached | s to thr per seed | median s to thr | slowest s to thr "
        "| total process s | ratio | total CPU s | ratio |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for gin_file, threshold, ways in table:
    sequential_s, sequential_cpu_s, _ = ways["sequential"]
    for way, (process_s, process_cpu_s, per_seed) in ways.items():
      secs = [s for (s, _), _ in per_seed]
      reached = [s for s in secs if s is not None]
      print(f"| {gin_file} (≥ {threshold:g}) | {way} | {len(reached)}/{len(secs)} | "
            f"{', '.join(fmt(s, '.1f') for s in secs)} | "
            f"{fmt(statistics.median(reached) if reached else None, '.1f')} | "
            f"{fmt(max(reached) if reached else None, '.1f')} | {process_s:.1f} | "
            f"{process_s / sequential_s:.2f} | {process_cpu_s:.1f} | "
            f"{process_cpu_s / sequential_cpu_s:.2f} |")
  print("s to thr: progress.csv's wall_s at the first evaluation at the threshold (in one "
        "graph: one clock for all seeds); totals: the processes' wall-clock and CPU (user + sys) "
        "seconds, start-up included.")


if __name__ == "__main__":
  _cli.run(main)
