#!/usr/bin/env python
r"""The compiled DQN loop with the JAX tutorial's settings: speed and learning.

  python scripts/benchmarks/benchmark_compiled.py                      # speed table + learning table
  python scripts/benchmarks/benchmark_compiled.py --what=speed --repeats=3 --threads=1,2
  python scripts/benchmarks/benchmark_compiled.py --what=learning --seeds=0,1,2

Speed: each setting (XLA `jit_compile=True` with XLA's newer CPU runtime
("xla_runtime", the compiled loop's default) or its default CPU backend
("xla"), or a plain tf.function graph; stateless or Generator RNG; 1 or 2 TF
threads) runs in its own process, because TF's thread counts and XLA's
flags are fixed once they initialise. A process builds
the tutorial's DQN (gin_configs/dqn_cartpole_tutorial.gin), times its first
call of `--steps` steps (compilation included) and then `--calls` calls
of `--steps` steps each (compiled already; their median). `--repeats`
processes per setting, interleaved repeat by repeat so a busy machine hurts
the settings alike; the table gives
medians.

`--threads=pinned` pins the process to one core (and one TF thread).
`--jax_python=/path/to/python` adds the JAX tutorial's own loop
(scripts/benchmarks/jax_dqn_reference.py, run by that interpreter: a venv with jax,
optax and dm-haiku, which need numpy>=2 and so cannot share tfrl's) to the
same interleaved repeats: JAX has no thread-count knob, so its rows are
"all" cores and, if asked, "pinned".

Learning: the tutorial's 20,000 steps per seed, compiled; when an episode
first reached 500 steps (to the --chunk) and the longest episode.
"""

import json
import os
import statistics
import subprocess
import sys
import time

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _cli  # noqa: E402

MODES = ["xla_runtime", "xla", "graph"]
RNGS = ["stateless", "generator"]

FLAGS = flags.FLAGS
flags.DEFINE_enum("what", "both", ["speed", "learning", "both"], "Which table(s).")
flags.DEFINE_integer("steps", 20000, "Env steps (= updates) per timed call.", lower_bound=1)
flags.DEFINE_integer("repeats", 3, "Processes per speed setting (medians over them).",
                     lower_bound=1)
flags.DEFINE_integer("calls", 3, "Timed calls per process after the compiling one (their median).",
                     lower_bound=1)
_cli.define_int_list("threads", [1, 2], "TF intra/inter-op thread counts to try; 'pinned': "
                     "one core (sched_setaffinity) and one thread.", lower_bound=1,
                     words=["pinned"])
flags.DEFINE_string("jax_python", None, "A Python with jax, optax and dm-haiku: adds the JAX "
                    "tutorial's loop (scripts/benchmarks/jax_dqn_reference.py) to the speed table.")
_cli.define_choice_list("modes", MODES, MODES,
                        "xla_runtime: jit_compile=True on XLA's CPU runtime; xla: jit_compile=True "
                        "on XLA's default CPU backend; graph: plain tf.function.")
_cli.define_choice_list("rngs", RNGS, RNGS, "RNG variants.")
_cli.define_int_list("seeds", [0, 1, 2], "Seeds for the learning table.")
flags.DEFINE_integer("chunk", 1000, "Learning: steps per compiled call (resolution of 'first 500').",
                     lower_bound=1)
flags.DEFINE_string("gin_file", "dqn_cartpole_tutorial.gin", "The settings.")
flags.DEFINE_multi_string("gin_bindings", [], "Bindings applied after --gin_file.")
flags.DEFINE_string("child", None, "Internal: run one measurement (JSON args) and print JSON.")


def build(gin_file, bindings, seed, jit_compile, rng):
  """The config's agent and compiled loop, as train_compiled builds them."""
  import gin
  import tensorflow as tf
  import tfrl
  from tf_agents.specs import tensor_spec
  from tfrl.envs import tf_envs
  from tfrl.train import compiled, config
  config.parse_config([gin_file], bindings)
  setting = lambda name: gin.query_parameter(f"tfrl.train.train.{name}")
  tf.random.set_seed(seed)
  py_env = tfrl.envs.load(setting("env_id"))
  agent = tfrl.agents.dqn(tensor_spec.from_spec(py_env.time_step_spec()),
                          tensor_spec.from_spec(py_env.action_spec()))
  return compiled.CompiledLoop(
      tf_envs.make(setting("env_id")), compiled.in_graph_learner(agent), setting("num_envs"),
      gin.query_parameter("tfrl.replay.TransitionReplay.capacity"), setting("batch_size"), seed,
      steps_per_iteration=-(-setting("collect_steps_per_iteration") // setting("num_envs")),
      train_steps_per_iteration=setting("train_steps_per_iteration"),
      jit_compile=jit_compile, rng=rng)


def pin_to_one_core():
  os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def child(args):
  threads = args["threads"]
  if threads == "pinned":
    pin_to_one_core()  # before TF starts its thread pools
    threads = 1
  if args["mode"] == "xla_runtime":
    from tfrl.train.compiled import use_xla_cpu_runtime
    use_xla_cpu_runtime()
  import tensorflow as tf
  tf.config.threading.set_intra_op_parallelism_threads(threads)
  tf.config.threading.set_inter_op_parallelism_threads(threads)
  loop = build(args["gin_file"], args["gin_bindings"], args["seed"], args["mode"] != "graph",
               args["rng"])
  if args["kind"] == "speed":
    times = []
    for _ in range(1 + args["calls"]):  # the first call compiles
      start = time.perf_counter()
      float(loop.run(tf.constant(args["steps"], tf.int64)))
      times.append(time.perf_counter() - start)
    # The median compiled call: one busy second on a shared machine moves a
    # single call's figure by half.
    return dict(first_s=times[0], second_s=statistics.median(times[1:]))
  first_500, longest, elapsed = None, 0, 0
  start = time.perf_counter()
  while elapsed < args["steps"]:
    float(loop.run(tf.constant(args["chunk"], tf.int64)))
    elapsed += args["chunk"]
    _, lengths = loop.take_finished_episodes()
    episode_max = int(max(lengths)) if len(lengths) else 0
    # An episode still running also counts once it is 500 steps long.
    episode_max = max(episode_max, int(max(loop.episode_length.numpy())))
    longest = max(longest, episode_max)
    if first_500 is None and episode_max >= 500:
      first_500 = elapsed
  return dict(first_500=first_500, longest=longest, seconds=time.perf_counter() - start,
              episodes=int(loop.episodes.numpy()))


def run_child(args):
  if args["mode"] == "jax":
    command = [FLAGS.jax_python, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                               "jax_dqn_reference.py"),
               f"--steps={args['steps']}", f"--calls={args['calls']}", f"--seed={args['seed']}",
               f"--threads={1 if args['threads'] == 'pinned' else 0}"]
  else:
    command = [sys.executable, os.path.abspath(__file__), f"--child={json.dumps(args)}"]
  out = subprocess.run(command, capture_output=True, text=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  lines = out.stdout.strip().splitlines()
  if out.returncode != 0 or not lines:
    raise RuntimeError(f"child {args} failed: {last_line(out.stderr)}")
  return json.loads(lines[-1])


def last_line(text: str) -> str:
  """A failed child's last stderr line: its error."""
  return (text.strip().splitlines() or ["?"])[-1]


def check_jax_python(python):
  """--jax_python must run the JAX reference's imports: one error line and
  exit status 2 otherwise, before any measurement."""
  try:
    probe = subprocess.run([python, "-c", "import jax, optax, haiku"], capture_output=True,
                           text=True, timeout=120)
    problem = None if probe.returncode == 0 else \
        f"cannot import jax, optax and haiku ({last_line(probe.stderr)})"
  except OSError as error:
    problem = error.strerror
  if problem:
    print(f"benchmark_compiled.py: error: --jax_python={python}: {problem}", file=sys.stderr)
    sys.exit(2)


def check_config(gin_file, bindings):
  """The children's config, parsed once here first: a bad one is one line and
  exit status 2, not a failed child's traceback."""
  import gin  # pylint: disable=import-outside-toplevel
  from tfrl.envs import check_env_id  # pylint: disable=import-outside-toplevel  (imports TF)
  from tfrl.train import config  # pylint: disable=import-outside-toplevel
  config.parse_config([gin_file], bindings)
  settings = gin.get_bindings("tfrl.train.train")
  missing = [name for name in ("env_id", "num_envs", "batch_size", "collect_steps_per_iteration",
                               "train_steps_per_iteration") if name not in settings]
  missing = [f"tfrl.train.train.{name}" for name in missing]
  try:
    gin.query_parameter("tfrl.replay.TransitionReplay.capacity")
  except ValueError:
    missing.append("tfrl.replay.TransitionReplay.capacity")
  if missing:
    _cli.fail(f"{gin_file} binds no {', '.join(missing)} (the compiled loop's settings)")
  check_env_id(settings["env_id"])


def speed_table():
  threads = [t if t == "pinned" else int(t) for t in FLAGS.threads]
  settings = [(m, r, t) for m in FLAGS.modes for r in FLAGS.rngs for t in threads]
  if FLAGS.jax_python:
    settings += [("jax", "threefry", t) for t in ["all"] + ["pinned"] * ("pinned" in threads)]
  results = {s: [] for s in settings}
  for repeat in range(FLAGS.repeats):
    for mode, rng, threads in settings:
      r = run_child(dict(kind="speed", mode=mode, rng=rng, threads=threads, steps=FLAGS.steps,
                         calls=FLAGS.calls,
                         seed=repeat, gin_file=FLAGS.gin_file,
                         gin_bindings=FLAGS.gin_bindings))
      results[(mode, rng, threads)].append(r)
      print(f"  repeat {repeat} {mode:11s} {rng:9s} threads={threads}: "
            f"{FLAGS.steps / r['second_s']:8.0f} steps/s compiled, "
            f"{FLAGS.steps / r['first_s']:8.0f} incl. compilation", flush=True)
  print(f"\n{FLAGS.steps} steps (tutorial settings), medians of {FLAGS.repeats} processes; "
        f"load average at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
  print("| mode | rng | threads | steps/s excl. compilation | steps/s incl. compilation | "
        "compile+first call s |")
  print("|---|---|---|---|---|---|")
  for (mode, rng, threads), rs in results.items():
    excl = statistics.median(FLAGS.steps / r["second_s"] for r in rs)
    incl = statistics.median(FLAGS.steps / r["first_s"] for r in rs)
    first = statistics.median(r["first_s"] for r in rs)
    print(f"| {mode} | {rng} | {threads} | {excl:.0f} | {incl:.0f} | {first:.1f} |")


def learning_table():
  print(f"\nlearning, {FLAGS.steps} steps, {FLAGS.gin_file} (xla_runtime, stateless rng, "
        f"2 threads)")
  print("| seed | first episode of 500 steps by step | longest episode | episodes | seconds |")
  print("|---|---|---|---|---|")
  reached = 0
  for seed in FLAGS.seeds:
    r = run_child(dict(kind="learning", mode="xla_runtime", rng="stateless", threads=2, steps=FLAGS.steps,
                       chunk=FLAGS.chunk, seed=int(seed), gin_file=FLAGS.gin_file,
                       gin_bindings=FLAGS.gin_bindings))
    reached += r["first_500"] is not None
    print(f"| {seed} | {r['first_500'] or '-'} | {r['longest']} | {r['episodes']} | "
          f"{r['seconds']:.1f} |", flush=True)
  print(f"episodes reached 500 steps on {reached} of {len(FLAGS.seeds)} seeds")


def main(argv):
  del argv
  if FLAGS.child:
    print(json.dumps(child(json.loads(FLAGS.child))))
    return
  if FLAGS.jax_python:
    check_jax_python(FLAGS.jax_python)
  check_config(FLAGS.gin_file, FLAGS.gin_bindings)
  if FLAGS.what in ("speed", "both"):
    speed_table()
  if FLAGS.what in ("learning", "both"):
    learning_table()


if __name__ == "__main__":
  _cli.run(main)
