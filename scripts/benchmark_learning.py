#!/usr/bin/env python
r"""Learning benchmark: runs gin configs over seeds, prints a table.

  python scripts/benchmark_learning.py --gin_file=reinforce_cartpole.gin \
      --seeds=0,1,2,3,4 --threshold=475

Each run is `scripts/train.py` in its own process (one at a time, so runs do
not compete for cores), in a fresh directory under --out_dir. Per run: final
evaluation return, env steps and wall-clock seconds (training, from
progress.csv) when the evaluation first reached --threshold, total wall-clock
of the process. Then medians per config.
"""

import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Config(s) to benchmark; repeat for several.")
flags.DEFINE_multi_string("gin_bindings", [], "Bindings applied to every config.")
flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Seeds.")
flags.DEFINE_float("threshold", None, "Return counted as solved.")
flags.DEFINE_string("out_dir", None, "Where runs go (default: a temp dir).")

TRAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train.py")


def run_one(gin_file, seed, out_dir):
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
  hit = next((r for r in rows if FLAGS.threshold is not None
              and float(r["avg_return"]) >= FLAGS.threshold), None)
  return dict(config=gin_file, seed=seed, final=float(rows[-1]["avg_return"]),
              steps_to=int(hit["env_steps"]) if hit else None,
              secs_to=float(hit["wall_s"]) if hit else None,
              train_s=float(rows[-1]["wall_s"]), process_s=seconds,
              env_steps=int(rows[-1]["env_steps"]))


def fmt(v, spec):
  return "-" if v is None else format(v, spec)


def main(argv):
  del argv
  out_dir = FLAGS.out_dir or tempfile.mkdtemp(prefix="tfrl-bench-")
  header = (f"{'config':<28} {'seed':>4} {'final':>8} {'steps_to_thr':>12} {'s_to_thr':>9} "
            f"{'train_s':>8} {'process_s':>9} {'env_steps':>10}")
  print(header)
  results = []
  for gin_file in FLAGS.gin_file:
    for seed in FLAGS.seeds:
      r = run_one(gin_file, seed, out_dir)
      results.append(r)
      if "error" in r:
        print(f"{gin_file:<28} {seed:>4} error: {r['error']}", flush=True)
        continue
      print(f"{gin_file:<28} {seed:>4} {r['final']:>8.1f} {fmt(r['steps_to'], '>12d')} "
            f"{fmt(r['secs_to'], '>9.1f')} {r['train_s']:>8.1f} {r['process_s']:>9.1f} "
            f"{r['env_steps']:>10d}", flush=True)
  print()
  for gin_file in FLAGS.gin_file:
    ok = [r for r in results if r["config"] == gin_file and "error" not in r]
    if not ok:
      continue
    solved = sum(r["final"] >= FLAGS.threshold for r in ok) if FLAGS.threshold is not None else 0
    med = lambda key: statistics.median([r[key] for r in ok])
    print(f"{gin_file}: final >= threshold on {solved}/{len(ok)} seeds; median final "
          f"{med('final'):.1f}, median train_s {med('train_s'):.1f}, "
          f"median process_s {med('process_s'):.1f}")


if __name__ == "__main__":
  app.run(main)
