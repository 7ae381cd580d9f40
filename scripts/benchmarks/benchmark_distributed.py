#!/usr/bin/env python
r"""Distributed collection speed: env steps/s written to one Reverb server by
1, 2 and 4 actor processes, and the learner's train steps/s.

  python scripts/benchmarks/benchmark_distributed.py --gin_file=dqn_cartpole.gin --seconds=10 --repeats=3

Collection: a server and N actors (scripts/collect.py) with the rate
limiter opened wide (collection only, nobody samples); this process pushes
the initial policy once, waits until every actor has written, then counts
the table's inserts over --seconds. Learner: server + --learner_actors
actors + train.py --replay_server with the gin file's own rate limiter;
train steps/s between its first and last progress.csv rows; then the
learner alone on a table one actor pre-filled (--prefill_steps, limiter open).
Medians over
--repeats, every configuration in the same run, one after another.
"""

import csv
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, SCRIPTS)
import _cli  # noqa: E402

EVAL_INTERVAL = 10  # the learner's progress.csv rows, between which it is timed

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", ["dqn_cartpole.gin"], "Gin file(s).")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")
_cli.define_int_list("num_actors", [1, 2, 4], "Actor process counts to measure.", lower_bound=1)
flags.DEFINE_float("seconds", 10.0, "Measuring window per configuration.")
flags.DEFINE_integer("repeats", 3, "Runs per configuration (medians reported).", lower_bound=1)
flags.DEFINE_integer("learner_actors", 2, "Actors feeding the learner measurement.",
                     lower_bound=1)
flags.DEFINE_integer("learner_iterations", 40, "Learner iterations to time.")
flags.DEFINE_integer("prefill_steps", 3000, "Env steps one actor writes before the learner "
                     "runs alone.", lower_bound=1)
_cli.require_positive("seconds")
flags.register_validator(
    "learner_iterations", lambda n: n >= 2 * EVAL_INTERVAL,
    message=f"must be >= {2 * EVAL_INTERVAL}: the learner is timed from its evaluation at "
    f"iteration {EVAL_INTERVAL} to its last")


def spawn(script, args, log_dir, name):
  log = open(os.path.join(log_dir, f"{name}.log"), "w")
  return subprocess.Popen([sys.executable, os.path.join(SCRIPTS, script)] + args,
                          stdout=log, stderr=subprocess.STDOUT)


def stop(processes):
  for p in processes:
    if p.poll() is None:
      p.send_signal(signal.SIGTERM)
  for p in processes:
    try:
      p.wait(30)
    except subprocess.TimeoutExpired:
      p.kill()


def gin_args(extra=()):
  return ([f"--gin_file={f}" for f in FLAGS.gin_file] +
          [f"--gin_bindings={b}" for b in list(FLAGS.gin_bindings) + list(extra)])


def measure_collection(num_actors, settings, agent, work_dir):
  import portpicker
  import reverb
  from tfrl.distributed import wiring
  port = portpicker.pick_unused_port()
  address = f"localhost:{port}"
  # Nobody samples here: open the limiter so actors never wait for a learner.
  wide_open = ["tfrl.distributed.samples_per_insert.value=1e-6",
               "tfrl.distributed.samples_per_insert.error_buffer=1e12"]
  args = gin_args(wide_open)
  processes = [spawn("reverb_server.py", args + [f"--port={port}",
                                                 f"--checkpoint_dir={work_dir}/reverb{port}"],
                     work_dir, f"server{port}")]
  try:
    link = wiring.ServerLink(address, log=lambda _: None)
    link.connect(120)
    wiring.PolicyVariables(link, agent).push()
    processes += [spawn("collect.py", args + [f"--server={address}", f"--actor_id={i}"],
                        work_dir, f"actor{port}_{i}") for i in range(num_actors)]
    client = reverb.Client(address)
    table = settings.replay.table_name
    # Start counting once every actor has started writing (TF start-up excluded).
    deadline = time.time() + 300
    while time.time() < deadline:
      logs = [open(os.path.join(work_dir, f"actor{port}_{i}.log")).read()
              for i in range(num_actors)]
      if all("items_written=" in text for text in logs):
        break
      time.sleep(0.5)
    inserts = lambda: client.server_info()[table].rate_limiter_info.insert_stats.completed
    before, t0 = inserts(), time.time()
    time.sleep(FLAGS.seconds)
    items, seconds = inserts() - before, time.time() - t0
  finally:
    stop(processes[1:] + processes[:1])
  envs_per_item = 1 if getattr(settings.replay, "prioritized", False) else settings.num_envs
  if settings.replay.on_policy:
    return None  # episodes, not steps: use an off-policy gin file here
  return items * envs_per_item / seconds, items / seconds


def measure_learner(work_dir, alone=False):
  """Train steps/s of train.py --replay_server fed by --learner_actors actors
  under the gin file's rate limiter, or (`alone`) on a table one actor
  pre-fills with --prefill_steps and then leaves, the limiter opened wide."""
  import portpicker
  port = portpicker.pick_unused_port()
  address = f"localhost:{port}"
  extra = [f"tfrl.train.train.num_iterations={FLAGS.learner_iterations}",
           f"tfrl.train.train.eval_interval={EVAL_INTERVAL}", "tfrl.train.train.num_eval_episodes=1",
           "tfrl.train.train.export_policy=False"]
  if alone:
    extra += ["tfrl.distributed.samples_per_insert.value=1e-6",
              "tfrl.distributed.samples_per_insert.error_buffer=1e12"]
  args = gin_args(extra)
  actor_args = [f"--max_env_steps={FLAGS.prefill_steps}"] if alone else []
  num_actors = 1 if alone else FLAGS.learner_actors
  root = os.path.join(work_dir, f"learner{port}")
  processes = [spawn("reverb_server.py", args + [f"--port={port}",
                                                 f"--checkpoint_dir={work_dir}/reverb{port}"],
                     work_dir, f"lserver{port}")]
  try:
    processes += [spawn("collect.py", args + actor_args + [f"--server={address}", f"--actor_id={i}"],
                        work_dir, f"lactor{port}_{i}") for i in range(num_actors)]
    learner = spawn("train.py", args + [f"--replay_server={address}", f"--root_dir={root}"],
                    work_dir, f"learner{port}")
    if learner.wait(1800) != 0:
      raise RuntimeError(f"learner failed; see {work_dir}/learner{port}.log")
  finally:
    stop(processes[1:] + processes[:1])
  with open(os.path.join(root, "progress.csv")) as f:
    rows = list(csv.DictReader(f))
  # From the first row after iteration 0 (tracing done) to the last.
  first, last = rows[1], rows[-1]
  steps = int(last["train_steps"]) - int(first["train_steps"])
  return steps / (float(last["wall_s"]) - float(first["wall_s"]))


def main(argv):
  del argv
  from tfrl.distributed import wiring
  from tfrl.train import config
  config.parse_config(FLAGS.gin_file, FLAGS.gin_bindings)
  settings = wiring.role_config()
  if settings.replay.on_policy:
    _cli.fail(f"{' '.join(FLAGS.gin_file)}: on-policy replay (whole episodes); collection is "
              f"measured in env steps: give an off-policy config")
  agent = wiring.build_agent(settings)
  counts = FLAGS.num_actors
  print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
  steps = {n: [] for n in counts}
  items = {n: [] for n in counts}
  learner, alone = [], []
  with tempfile.TemporaryDirectory() as work_dir:
    for repeat in range(FLAGS.repeats):
      for n in counts:
        step_rate, item_rate = measure_collection(n, settings, agent, work_dir)
        steps[n].append(step_rate)
        items[n].append(item_rate)
        print(f"repeat {repeat}: {n} actor(s): {step_rate:.0f} env steps/s", flush=True)
      learner.append(measure_learner(work_dir))
      print(f"repeat {repeat}: learner {learner[-1]:.1f} train steps/s", flush=True)
      alone.append(measure_learner(work_dir, alone=True))
      print(f"repeat {repeat}: learner alone {alone[-1]:.1f} train steps/s", flush=True)
  base = statistics.median(steps[counts[0]])
  print(f"\n{' '.join(FLAGS.gin_file)}, num_envs={settings.num_envs} per actor, "
        f"{os.cpu_count()} cores, medians of {FLAGS.repeats}")
  print("| actors | env steps/s | items/s into Reverb | vs 1 actor |")
  print("|---|---|---|---|")
  for n in counts:
    rate = statistics.median(steps[n])
    print(f"| {n} | {rate:.0f} | {statistics.median(items[n]):.0f} | {rate / base:.2f}x |")
  print(f"\nlearner ({FLAGS.learner_actors} actors, batch {settings.batch_size}): "
        f"{statistics.median(learner):.1f} train steps/s (runs: "
        f"{', '.join(f'{x:.1f}' for x in learner)})")
  print(f"learner alone (table pre-filled with {FLAGS.prefill_steps} env steps, limiter open): "
        f"{statistics.median(alone):.1f} train steps/s, sampling "
        f"{statistics.median(alone) * settings.batch_size:.0f} transitions/s (runs: "
        f"{', '.join(f'{x:.1f}' for x in alone)})")
  print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
  _cli.run(main)
