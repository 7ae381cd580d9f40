#!/usr/bin/env python
r"""Distributed collection speed: env steps/s written to one Reverb server by
1, 2 and 4 actor processes, and the learner's train steps/s, with the roles
as plain processes (`local`: what launch_local.py started) and as Ray actors
(`ray`: tfrl.distributed.ray_launch, a local Ray started for each
measurement), interleaved in one run.

  python scripts/benchmarks/benchmark_distributed.py --gin_file=dqn_cartpole.gin --seconds=10 --repeats=3
  python scripts/benchmarks/benchmark_distributed.py --launcher=local,ray --learner_actors=1,2,4

Collection: a server and N actors (scripts/collect.py) with the rate
limiter opened wide (collection only, nobody samples); this process pushes
the initial policy once, waits until every actor has written, then counts
the table's inserts over --seconds. Learner: server + --learner_actors
actors + train.py --replay_server with the gin file's own rate limiter;
train steps/s between its first and last progress.csv rows; then (local
only) the learner alone on a table one actor pre-filled (--prefill_steps,
limiter open). Ray's start-up cost: ray.init of the local Ray, and for each
launcher the seconds from starting the roles to every actor having written.
Medians over --repeats, every configuration in the same run, one after another.
--learning_runs=N: N full trainings per launcher (local, ray, local, ray, ...),
to check both train to the same result: final and best evaluation, learner
wall seconds, and how often a role reported the server restarted (it never is).
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
flags.DEFINE_integer("repeats", 3, "Runs per configuration (medians reported); 0 with "
                     "--learning_runs: the learning runs only.", lower_bound=0)
_cli.define_int_list("learner_actors", [2], "Actor counts feeding the learner measurement.",
                     lower_bound=1)
_cli.define_choice_list("launcher", ["local"], ["local", "ray"],
                        "How the roles are started: plain processes, Ray actors.")
flags.DEFINE_integer("learner_iterations", 40, "Learner iterations to time.")
flags.DEFINE_integer("learning_runs", 0, "Full-budget training runs (the gin file's own "
                     "budget, --learner_actors[0] actors) per launcher, interleaved: final and "
                     "best return, wall seconds, restarts the roles reported.", lower_bound=0)
flags.DEFINE_integer("prefill_steps", 3000, "Env steps one actor writes before the learner "
                     "runs alone.", lower_bound=1)
_cli.require_positive("seconds")
flags.register_multi_flags_validator(
    ["repeats", "learning_runs"], lambda f: f["repeats"] > 0 or f["learning_runs"] > 0,
    message="0 repeats measure nothing: give --learning_runs=N for the learning runs alone")
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


WIDE_OPEN = ["tfrl.distributed.samples_per_insert.value=1e-6",
             "tfrl.distributed.samples_per_insert.error_buffer=1e12"]


class LocalRoles:
  """The roles as plain processes (what launch_local.py started)."""

  def __init__(self, work_dir, tag):
    import portpicker
    self.work_dir, self.tag = work_dir, tag
    self.port = portpicker.pick_unused_port()
    self.address = f"localhost:{self.port}"
    self.processes = []
    self.actor_logs = []

  def start(self, extra, num_actors, actor_args=(), learner_root=None):
    args = gin_args(extra)
    self.processes.append(spawn("reverb_server.py", args + [
        f"--port={self.port}", f"--checkpoint_dir={self.work_dir}/reverb{self.port}"],
        self.work_dir, f"{self.tag}server{self.port}"))
    for i in range(num_actors):
      name = f"{self.tag}actor{self.port}_{i}"
      self.processes.append(spawn("collect.py", args + list(actor_args) + [
          f"--server={self.address}", f"--actor_id={i}"], self.work_dir, name))
      self.actor_logs.append(os.path.join(self.work_dir, f"{name}.log"))
    if learner_root:
      self.learner = spawn("train.py", args + [f"--replay_server={self.address}",
                                               f"--root_dir={learner_root}"],
                           self.work_dir, f"{self.tag}learner{self.port}")

  def actors_writing(self) -> bool:
    return all("items_written=" in open(path).read() for path in self.actor_logs)

  def lines(self):
    for name in os.listdir(self.work_dir):
      if name.endswith(f"{self.port}.log") or f"{self.port}_" in name:
        with open(os.path.join(self.work_dir, name)) as f:
          yield from f

  def wait_learner(self):
    if self.learner.wait(1800) != 0:
      raise RuntimeError(f"learner failed; see {self.work_dir}/{self.tag}learner{self.port}.log")

  def stop(self):
    stop(self.processes[1:] + self.processes[:1])


class RayRoles:
  """The roles as Ray actors (tfrl.distributed.ray_launch) on a local Ray
  started here (its ray.init timed) and stopped in `stop`."""

  def __init__(self, work_dir, tag):
    self.work_dir, self.tag = work_dir, tag
    self.launch = None

  def start(self, extra, num_actors, actor_args=(), learner_root=None):
    from tfrl.distributed import ray_launch
    assert not actor_args, "the Ray launcher's actors run until stopped"
    files = ray_gin_files()
    bindings = list(FLAGS.gin_bindings) + list(extra)
    placement = ray_launch.check_config(files, bindings)
    t0 = time.time()
    ray_launch.start_local_ray(placement.total_cpus(num_actors), log_to_driver=False)
    self.init_s = time.time() - t0
    # A directory of its own each time (the server's checkpoints and port file).
    root = (os.path.dirname(learner_root) if learner_root
            else os.path.join(self.work_dir, f"rayc{time.time_ns()}"))
    self.launch = ray_launch.Launch(files, bindings, num_actors, root, placement,
                                    log=lambda _: None)
    self.launch.start(with_learner=learner_root is not None)
    self.address = self.launch.address

  def actors_writing(self) -> bool:
    lines = self.launch.state()["lines"]
    return all(any("items_written=" in l for l in lines.get(f"actor_{i}", []))
               for i in range(self.launch.num_actors))

  def lines(self):
    for role_lines in self.launch.state()["lines"].values():
      yield from role_lines

  def wait_learner(self):
    self.launch.wait()

  def stop(self):
    import ray
    try:
      if self.launch is not None:
        self.launch.stop()
    finally:
      if ray.is_initialized():
        ray.shutdown()


LAUNCHERS = {"local": LocalRoles, "ray": RayRoles}


def ray_gin_files():
  """The gin files as Ray's role processes find them (absolute paths)."""
  return [os.path.abspath(f) if os.path.exists(f) else f for f in FLAGS.gin_file]


def measure_collection(launcher, num_actors, settings, agent, work_dir):
  """(env steps/s, items/s into the table, seconds from starting the roles
  to every actor writing, Ray's init seconds or None)."""
  import reverb
  from tfrl.distributed import wiring
  # Nobody samples here: open the limiter so actors never wait for a learner.
  roles = LAUNCHERS[launcher](work_dir, "c")
  t_start = time.time()
  try:
    roles.start(WIDE_OPEN, num_actors)
    link = wiring.ServerLink(roles.address, log=lambda _: None)
    link.connect(120)
    wiring.PolicyVariables(link, agent).push()
    client = reverb.Client(roles.address)
    table = settings.replay.table_name
    # Start counting once every actor has started writing (TF start-up excluded).
    deadline = time.time() + 300
    while time.time() < deadline and not roles.actors_writing():
      time.sleep(0.5)
    ready_s = time.time() - t_start
    inserts = lambda: client.server_info()[table].rate_limiter_info.insert_stats.completed
    before, t0 = inserts(), time.time()
    time.sleep(FLAGS.seconds)
    items, seconds = inserts() - before, time.time() - t0
  finally:
    roles.stop()
  envs_per_item = 1 if getattr(settings.replay, "prioritized", False) else settings.num_envs
  return (items * envs_per_item / seconds, items / seconds, ready_s,
          getattr(roles, "init_s", None))


def run_learner(launcher, num_actors, work_dir, extra=(), actor_args=()):
  """The learner fed by `num_actors` actors to the end of its budget:
  (progress.csv rows, lines of the roles' logs reporting the server restarted)."""
  roles = LAUNCHERS[launcher](work_dir, "l")
  root = os.path.join(work_dir, f"learner{launcher}{time.time_ns()}", "learner")
  try:
    roles.start(extra, num_actors, actor_args, learner_root=root)
    roles.wait_learner()
    restarts = sum("was restarted" in line for line in roles.lines())
  finally:
    roles.stop()
  with open(os.path.join(root, "progress.csv")) as f:
    return list(csv.DictReader(f)), restarts


def measure_learner(launcher, num_actors, work_dir, alone=False):
  """Train steps/s of the learner fed by `num_actors` actors under the gin
  file's rate limiter, or (`alone`, local only) on a table one actor
  pre-fills with --prefill_steps and then leaves, the limiter opened wide."""
  extra = [f"tfrl.train.train.num_iterations={FLAGS.learner_iterations}",
           f"tfrl.train.train.eval_interval={EVAL_INTERVAL}", "tfrl.train.train.num_eval_episodes=1",
           "tfrl.train.train.export_policy=False"]
  if alone:
    extra += WIDE_OPEN
  rows, _ = run_learner(launcher, 1 if alone else num_actors, work_dir, extra,
                        [f"--max_env_steps={FLAGS.prefill_steps}"] if alone else [])
  # From the first row after iteration 0 (tracing done) to the last.
  first, last = rows[1], rows[-1]
  steps = int(last["train_steps"]) - int(first["train_steps"])
  return steps / (float(last["wall_s"]) - float(first["wall_s"]))


def measure_learning(launcher, num_actors, work_dir):
  """(final avg_return, best avg_return, learner wall seconds, restart lines)
  of one training on the gin file's own budget."""
  rows, restarts = run_learner(launcher, num_actors, work_dir)
  returns = [float(r["avg_return"]) for r in rows if r.get("avg_return") not in (None, "")]
  return returns[-1], max(returns), float(rows[-1]["wall_s"]), restarts


def main(argv):
  del argv
  from tfrl.distributed import wiring
  from tfrl.train import config
  if "ray" in FLAGS.launcher:  # its settings (tfrl.distributed.ray.*) checked before any run
    from tfrl.distributed import ray_launch
    ray_launch.check_config(ray_gin_files(), FLAGS.gin_bindings)
  config.parse_config(FLAGS.gin_file, FLAGS.gin_bindings)
  settings = wiring.role_config()
  if settings.replay.on_policy:
    _cli.fail(f"{' '.join(FLAGS.gin_file)}: on-policy replay (whole episodes); collection is "
              f"measured in env steps: give an off-policy config")
  agent = wiring.build_agent(settings)
  counts, launchers, learner_counts = FLAGS.num_actors, FLAGS.launcher, FLAGS.learner_actors
  print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
  runs = lambda: {(l, n): [] for l in launchers for n in set(counts) | set(learner_counts)}
  steps, items, ready, init, learner = runs(), runs(), runs(), [], runs()
  alone = []
  learning = {launcher: [] for launcher in launchers}
  with tempfile.TemporaryDirectory() as work_dir:
    for run in range(FLAGS.learning_runs):
      for launcher in launchers:
        learning[launcher].append(measure_learning(launcher, learner_counts[0], work_dir))
        final, best, wall_s, restarts = learning[launcher][-1]
        print(f"learning run {run}: {launcher}: final {final:.1f}, best {best:.1f}, "
              f"{wall_s:.1f} s, {restarts} restart(s) reported", flush=True)
    for repeat in range(FLAGS.repeats):
      for n in counts:
        for launcher in launchers:  # interleaved: each count under every launcher in turn
          step_rate, item_rate, ready_s, init_s = measure_collection(launcher, n, settings, agent,
                                                                     work_dir)
          steps[launcher, n].append(step_rate)
          items[launcher, n].append(item_rate)
          ready[launcher, n].append(ready_s)
          if init_s is not None:
            init.append(init_s)
          print(f"repeat {repeat}: {launcher}: {n} actor(s): {step_rate:.0f} env steps/s "
                f"(roles writing after {ready_s:.1f} s)", flush=True)
      for n in learner_counts:
        for launcher in launchers:
          learner[launcher, n].append(measure_learner(launcher, n, work_dir))
          print(f"repeat {repeat}: {launcher}: learner with {n} actor(s) "
                f"{learner[launcher, n][-1]:.1f} train steps/s", flush=True)
      if "local" in launchers and counts:
        alone.append(measure_learner("local", 1, work_dir, alone=True))
        print(f"repeat {repeat}: learner alone {alone[-1]:.1f} train steps/s", flush=True)
  median = statistics.median
  base = launchers[0]
  if FLAGS.repeats:
    print(f"\n{' '.join(FLAGS.gin_file)}, num_envs={settings.num_envs} per actor, "
          f"{os.cpu_count()} cores, medians of {FLAGS.repeats}")
    print("| launcher | actors | env steps/s | items/s into Reverb | vs 1 actor | vs "
          f"{base} | s to all writing |")
    print("|---|---|---|---|---|---|---|")
    for n in counts:
      for launcher in launchers:
        rate = median(steps[launcher, n])
        print(f"| {launcher} | {n} | {rate:.0f} | {median(items[launcher, n]):.0f} | "
              f"{rate / median(steps[launcher, counts[0]]):.2f}x | "
              f"{rate / median(steps[base, n]):.2f}x | {median(ready[launcher, n]):.1f} |")
    print(f"\nlearner train steps/s (batch {settings.batch_size}, the gin file's rate limiter)")
    print(f"| launcher | actors | train steps/s | vs {base} | runs |")
    print("|---|---|---|---|---|")
    for n in learner_counts:
      for launcher in launchers:
        rate = median(learner[launcher, n])
        print(f"| {launcher} | {n} | {rate:.1f} | {rate / median(learner[base, n]):.2f}x | "
              f"{', '.join(f'{x:.1f}' for x in learner[launcher, n])} |")
    if init:
      print(f"\nray.init of the local Ray: median {median(init):.1f} s (runs: "
            f"{', '.join(f'{x:.1f}' for x in init)})")
    if alone:
      print(f"learner alone (table pre-filled with {FLAGS.prefill_steps} env steps, limiter open): "
            f"{median(alone):.1f} train steps/s, sampling "
            f"{median(alone) * settings.batch_size:.0f} transitions/s (runs: "
            f"{', '.join(f'{x:.1f}' for x in alone)})")
  if FLAGS.learning_runs:
    num_actors = learner_counts[0]
    print(f"\nlearning: the gin file's own budget, {num_actors} actors, "
          f"{FLAGS.learning_runs} run(s) per launcher, interleaved")
    print("| launcher | final avg_return | best avg_return | learner wall_s | restarts reported |")
    print("|---|---|---|---|---|")
    for launcher in launchers:
      for final, best, wall_s, restarts in learning[launcher]:
        print(f"| {launcher} | {final:.1f} | {best:.1f} | {wall_s:.1f} | {restarts} |")
    for launcher in launchers:
      finals = [run[0] for run in learning[launcher]]
      print(f"{launcher}: median final {median(finals):.1f}, median best "
            f"{median(run[1] for run in learning[launcher]):.1f}, median wall "
            f"{median(run[2] for run in learning[launcher]):.1f} s, restarts reported "
            f"{sum(run[3] for run in learning[launcher])}")
  print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
  _cli.run(main)
