#!/usr/bin/env python
r"""Compiled PPO's speed beside PureJaxRL's: env steps/s on the same settings.

  python scripts/benchmarks/benchmark_compiled_ppo.py --jax_python=/tmp/jaxvenv/bin/python
  python scripts/benchmarks/benchmark_compiled_ppo.py --repeats=5 --steps=131072 --threads=pinned

Both sides train PPO on CartPole-v1 with PureJaxRL's CartPole settings (4
envs x 128 steps, 4 epochs of 4 minibatches, gamma 0.99, lambda 0.95,
entropy 0.01, learning rate 2.5e-4 decayed linearly, no KL stop):
tfrl's compiled on-policy loop from `ppo_cartpole_compiled.gin` with
`PUREJAXRL_BINDINGS` (its two optimizers, policy and value, are tfrl's PPO),
and `jax_ppo_reference.py` (PureJaxRL's loop, one optimizer over the summed
loss) from `--jax_python`'s venv. Each repeat runs every side in its own
process, interleaved, so a busy machine hurts them alike. A process times
its first call of `--steps` env steps (compilation included) and then
`--calls` more (compiled; their median); the table gives medians over the
repeats. `--threads=pinned` binds every process to one core.
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

FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", 131072, "Env steps per timed call (a multiple of 512).",
                     lower_bound=512)
flags.DEFINE_integer("repeats", 3, "Processes per side (medians over them).", lower_bound=1)
flags.DEFINE_integer("calls", 2, "Timed calls per process after the compiling one.",
                     lower_bound=1)
flags.DEFINE_enum("threads", "all", ["all", "pinned"], "pinned: each process on one core.")
flags.DEFINE_string("jax_python", None, "A Python with jax and optax: adds PureJaxRL's loop "
                    "(scripts/benchmarks/jax_ppo_reference.py).")
flags.DEFINE_string("gin_file", "ppo_cartpole_compiled.gin", "tfrl's config (then the bindings).")
flags.DEFINE_string("child", None, "Internal: one tfrl measurement (JSON args), prints JSON.")

ROLLOUT = 4 * 128  # env steps per iteration
PUREJAXRL_BINDINGS = [
    "tfrl.train.train.num_envs = 4", "tfrl.replay.EpisodeReplay.segment_steps = 512",
    "tfrl.agents.ppo.num_epochs = 4", "tfrl.agents.ppo.num_minibatches = 4",
    "tfrl.agents.ppo.value_epochs = 4", "tfrl.agents.ppo.value_minibatches = 4",
    "tfrl.agents.ppo.target_kl = None", "tfrl.agents.ppo.entropy_coef = 0.01",
    "tfrl.agents.ppo.gamma = 0.99", "tfrl.agents.ppo.gae_lambda = 0.95",
    "tfrl.agents.ppo.policy_learning_rate = 2.5e-4",
    "tfrl.agents.ppo.value_learning_rate = 2.5e-4"]
BENCHMARKS = os.path.dirname(os.path.abspath(__file__))


def child(args):
  """tfrl's side: the loop train_compiled builds, timed call by call."""
  if args["pinned"]:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
  import gin  # pylint: disable=import-outside-toplevel
  from tfrl.train import compiled  # pylint: disable=import-outside-toplevel
  iterations = args["steps"] // ROLLOUT
  bindings = PUREJAXRL_BINDINGS + [f"tfrl.agents.ppo.learning_rate_decay_steps = {iterations}"]
  from tfrl.train import config  # pylint: disable=import-outside-toplevel
  config.parse_config([args["gin_file"]], bindings)
  if gin.query_parameter("tfrl.train.train_compiled.xla_cpu_runtime"):
    compiled.use_xla_cpu_runtime()
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tfrl  # pylint: disable=import-outside-toplevel
  from tfrl.envs import tf_envs  # pylint: disable=import-outside-toplevel
  from tfrl.train import compiled_on_policy, sources  # pylint: disable=import-outside-toplevel
  if args["pinned"]:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
  run_config = tfrl.train.RunConfig(seed=args["seed"])
  parts = sources.build_parts(run_config, num_envs=1)
  env = tf_envs.make(run_config.env_id)
  loop = compiled_on_policy.CompiledOnPolicyLoop(
      env, compiled_on_policy.in_graph_learner(parts.agent), run_config.num_envs,
      compiled_on_policy.rollout_steps(run_config, env), run_config.seed)
  times = []
  for _ in range(1 + args["calls"]):
    start = time.perf_counter()
    loop.run(tf.constant(iterations, tf.int64)).numpy()
    times.append(time.perf_counter() - start)
  returns, _ = loop.take_finished_episodes()
  return dict(first_s=times[0], second_s=statistics.median(times[1:]),
              last_train_return=float(returns[-20:].mean()) if len(returns) else None)


def run_side(side, seed):
  if side == "jax":
    command = [FLAGS.jax_python, os.path.join(BENCHMARKS, "jax_ppo_reference.py"),
               f"--steps={FLAGS.steps}", f"--calls={FLAGS.calls}", f"--seed={seed}",
               f"--threads={1 if FLAGS.threads == 'pinned' else 0}"]
  else:
    args = dict(steps=FLAGS.steps, calls=FLAGS.calls, seed=seed, gin_file=FLAGS.gin_file,
                pinned=FLAGS.threads == "pinned")
    command = [sys.executable, os.path.abspath(__file__), f"--child={json.dumps(args)}"]
  out = subprocess.run(command, capture_output=True, text=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  lines = out.stdout.strip().splitlines()
  if out.returncode != 0 or not lines:
    raise RuntimeError(f"{side} failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
  return json.loads(lines[-1])


def check_jax_python(python):
  try:
    probe = subprocess.run([python, "-c", "import jax, optax"], capture_output=True, text=True,
                           timeout=120)
    problem = None if probe.returncode == 0 else \
        f"cannot import jax and optax ({(probe.stderr.strip().splitlines() or ['?'])[-1]})"
  except OSError as error:
    problem = error.strerror
  if problem:
    _cli.fail(f"--jax_python={FLAGS.jax_python}: {problem}")


def main(argv):
  del argv
  if FLAGS.child:
    print(json.dumps(child(json.loads(FLAGS.child))))
    return
  if FLAGS.steps % ROLLOUT:
    _cli.fail(f"--steps={FLAGS.steps}: must be a multiple of {ROLLOUT} (4 envs x 128 steps)")
  if FLAGS.jax_python:
    check_jax_python(FLAGS.jax_python)
  sides = ["tfrl"] + (["jax"] if FLAGS.jax_python else [])
  results = {side: [] for side in sides}
  for repeat in range(FLAGS.repeats):
    for side in sides:
      r = run_side(side, repeat)
      results[side].append(r)
      print(f"  repeat {repeat} {side:4s}: {FLAGS.steps / r['second_s']:8.0f} env steps/s "
            f"compiled, {FLAGS.steps / r['first_s']:8.0f} incl. compilation; last train "
            f"return {r['last_train_return']}", flush=True)
  print(f"\nPPO CartPole-v1, PureJaxRL's settings, {FLAGS.steps} env steps per call, medians of "
        f"{FLAGS.repeats} processes, threads {FLAGS.threads}; load average at end "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
  print("| side | env steps/s excl. compilation | env steps/s incl. compilation | "
        "first call s |")
  print("|---|---|---|---|")
  medians = {}
  for side, rs in results.items():
    medians[side] = statistics.median(FLAGS.steps / r["second_s"] for r in rs)
    print(f"| {side} | {medians[side]:.0f} | "
          f"{statistics.median(FLAGS.steps / r['first_s'] for r in rs):.0f} | "
          f"{statistics.median(r['first_s'] for r in rs):.1f} |")
  if "jax" in medians:
    print(f"tfrl / JAX env steps/s (compiled): {medians['tfrl'] / medians['jax']:.2f}")


if __name__ == "__main__":
  _cli.run(main)
