#!/usr/bin/env python
r"""Learning benchmark: runs gin configs over seeds, prints a table.

  python scripts/benchmarks/benchmark_learning.py --gin_file=reinforce_cartpole.gin \
      --seeds=0,1,2,3,4 --threshold=475
  python scripts/benchmarks/benchmark_learning.py --suite=agents    # the agent family
  python scripts/benchmarks/benchmark_learning.py --suite=rudder    # PPO with/without RUDDER, delayed rewards
  python scripts/benchmarks/benchmark_learning.py --suite=mujoco --seeds=0,1,2 \
      --sb3_python=/tmp/sb3venv/bin/python --sb3_torch_threads=1    # issue 17's budgets
  python scripts/benchmarks/benchmark_learning.py --suite=pixels --seeds=0,1,2  # Atari/MinAtar at 100k steps
  python scripts/benchmarks/benchmark_learning.py --suite=pixels_speed --seeds=0 \
      --sb3_python=/tmp/sb3venv/bin/python --sb3_torch_threads=1    # env steps/s, first 20k steps

--threshold is one value for every config, or one per --gin_file in order.

`--sb3_python=/tmp/sb3venv/bin/python` (a venv with stable-baselines3, rl_zoo3
and sb3-contrib; torch and TF do not share one) adds, after each tfrl run, the
same seed of the config's Stable-Baselines3 twin (`SB3_TWINS`; run once per
seed for configs sharing it, e.g. a regular and a compiled one) with rl-zoo3's
tuned hyperparameters (scripts/benchmarks/sb3_reference.py): the same
threshold, the same deterministic evaluation every tfrl run's median env steps
between its evaluations (or `--sb3_eval_every`), the same clock; SB3's budget
is rl-zoo's n_timesteps, capped by `--sb3_max_steps`; in the budgeted suites
(and for scripts/benchmarks/configs/ files however given) it is the config's
`Budget`, for pixels the start of rl-zoo's full run (its schedules' pace kept)
with rl-zoo's `atari` entry (AtariWrapper, frame stack 4, CnnPolicy) or, for
MinAtar, sb3_reference.py's own entry. The summary then gives
per pair the ratios tfrl/SB3 of the median seconds and env steps to threshold.

Each run is `scripts/train.py` in its own process (one at a time, so runs do
not compete for cores), in a fresh directory under --out_dir. Per run: final
evaluation return, env steps and wall-clock seconds (training, from
progress.csv) when the evaluation first reached --threshold, total wall-clock
of the process. Then per config: on how many seeds the threshold was
reached, and medians of steps and seconds to it over those seeds.
"""

import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple, Optional, Tuple

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Config(s) to benchmark; repeat for several.")
flags.DEFINE_multi_string("gin_bindings", [], "Bindings applied to every config.")
_cli.define_int_list("seeds", [0, 1, 2, 3, 4], "Seeds.")
flags.DEFINE_multi_float("threshold", [], "Return counted as solved (one, or one per config).")
flags.DEFINE_enum("suite", None, ["agents", "rudder", "compiled", "compiled_ppo",
                                          "mujoco", "pixels", "pixels_speed"],
                  "A preset list of configs with their thresholds (mujoco, pixels, "
                  "pixels_speed: with budgets and step marks).")
flags.DEFINE_list("pairs", None, "With --suite: only these of its pairs, by name "
                  "(e.g. sac_halfcheetah,td3_halfcheetah), in the suite's order.")
BENCHMARK_CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")

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
          # Each agent's regular loop and the compiled one (DQN: same
          # hyperparameters; SAC/TD3: the compiled files' headers say what differs).
          "compiled": [("dqn_cartpole.gin", 475), ("dqn_cartpole_compiled.gin", 475),
                       ("sac_pendulum.gin", -200), ("sac_pendulum_compiled.gin", -200),
                       ("td3_pendulum.gin", -200), ("td3_pendulum_compiled.gin", -200)],
          # PPO's regular loop and the compiled one (tfrl/train/compiled_on_policy.py).
          "compiled_ppo": [("ppo_cartpole.gin", 475), ("ppo_cartpole_compiled.gin", 475),
                           ("ppo_pendulum.gin", -200), ("ppo_pendulum_compiled.gin", -200)],
          # Pixels at 100k env steps (Atari 100k; run --seeds=0,1,2 on a quiet machine):
          # returns at the step marks, no threshold.
          "pixels": [(os.path.join(BENCHMARK_CONFIGS, "ppo_pong_100k.gin"), None),
                     (os.path.join(BENCHMARK_CONFIGS, "dqn_minatar_breakout_100k.gin"), None)],
          # Pixels' throughput (env steps/s with updates): the first 20k env steps.
          "pixels_speed": [(os.path.join(BENCHMARK_CONFIGS, f"{pair}_speed.gin"), None)
                           for pair in ("dqn_pong", "ppo_pong", "dqn_minatar_breakout")]}


class Budget(NamedTuple):
  """A suite run's length on both sides: `env_steps` (SB3's --max_steps), the
  tfrl `bindings` that make it, and the env-step `marks` whose evaluation
  returns (the evaluation nearest each) are compared. `full_schedules`: the
  run is the start of a full one (tfrl's config keeps the full run's
  schedules; SB3's --full_schedules); `sb3_hyperparams`: rl-zoo entry
  overrides matching what the tfrl config changes (sb3_reference.py
  --hyperparams)."""
  env_steps: int
  bindings: Tuple[str, ...]
  marks: Tuple[int, ...]
  full_schedules: bool = False
  sb3_hyperparams: Tuple[str, ...] = ()


# MuJoCo (issue 17), sized for 2 CPU cores: off-policy pairs 10k random steps
# + 1800 iterations of 50 steps (evaluated every 10k), PPO 586 iterations of
# 512-step segments (300,032 steps, SB3's too; evaluated every 19,968).
_OFF_POLICY_100K = Budget(100_000, ("tfrl.train.train.num_iterations = 1800",),
                          (20_000, 50_000, 100_000))
_PPO_300K = Budget(300_000, ("tfrl.train.train.num_iterations = 586",),
                   (100_000, 200_000, 300_000))
BUDGETS = {"sac_halfcheetah": _OFF_POLICY_100K, "td3_halfcheetah": _OFF_POLICY_100K,
           "sac_hopper": _OFF_POLICY_100K, "td3_hopper": _OFF_POLICY_100K,
           "ppo_halfcheetah": _PPO_300K, "ppo_hopper": _PPO_300K}
SUITES["mujoco"] = [(f"{pair}.gin", None) for pair in BUDGETS]
# Pixels: the budgets are in the configs themselves (scripts/benchmarks/configs/),
# each the start of its ready file's full run.
_PIXELS_100K = Budget(100_000, (), (20_000, 50_000, 100_000), full_schedules=True)
_PIXELS_20K = Budget(20_000, (), (20_000,), full_schedules=True)
BUDGETS.update(ppo_pong_100k=_PIXELS_100K, dqn_minatar_breakout_100k=_PIXELS_100K,
               ppo_pong_speed=Budget(20_480, (), (20_480,), full_schedules=True),
               dqn_pong_speed=_PIXELS_20K._replace(sb3_hyperparams=("learning_starts=5000",)),
               dqn_minatar_breakout_speed=_PIXELS_20K)
flags.DEFINE_string("out_dir", None, "Where runs go (default: a temp dir).")
flags.DEFINE_string("sb3_python", None, "A Python with stable-baselines3, rl_zoo3 and "
                    "sb3-contrib: runs each config's SB3 twin after its tfrl run, seed by seed.")
flags.DEFINE_integer("sb3_eval_every", None, "SB3's env steps between evaluations (default: "
                     "the tfrl run's median between its progress rows).", lower_bound=1)
flags.DEFINE_integer("sb3_max_steps", None, "Cap on SB3's budget (default: rl-zoo's "
                     "n_timesteps).", lower_bound=1)
flags.DEFINE_bool("sb3_stop_at_threshold", False, "End each SB3 run at its first evaluation "
                  "at the threshold: its seconds and steps to the threshold, not its final "
                  "return (rl-zoo's schedules still span the full budget).")
flags.DEFINE_integer("sb3_torch_threads", None, "torch's intra-op threads for SB3 (default: "
                     "torch's own, all cores).", lower_bound=1)

# Each ready pair's Stable-Baselines3 twin: algorithm, env id, threshold (when
# no --threshold is given), and the rl-zoo entry read when it is not the env's
# own (rl-zoo tunes MuJoCo v4; tfrl runs v5). SB3 has no VPG: A2C stands in.
SB3_TWINS = {"vpg_cartpole": ("a2c", "CartPole-v1", 475, None),
             "ppo_cartpole": ("ppo", "CartPole-v1", 475, None),
             "trpo_cartpole": ("trpo", "CartPole-v1", 475, None),
             "dqn_cartpole": ("dqn", "CartPole-v1", 475, None),
             "dqn_cartpole_compiled": ("dqn", "CartPole-v1", 475, None),
             "ppo_cartpole_compiled": ("ppo", "CartPole-v1", 475, None),
             "ppo_pendulum": ("ppo", "Pendulum-v1", -200, None),
             "ppo_pendulum_compiled": ("ppo", "Pendulum-v1", -200, None),
             "ddpg_pendulum": ("ddpg", "Pendulum-v1", -200, None),
             "td3_pendulum": ("td3", "Pendulum-v1", -200, None),
             "sac_pendulum": ("sac", "Pendulum-v1", -200, None),
             "sac_pendulum_compiled": ("sac", "Pendulum-v1", -200, None),
             "td3_pendulum_compiled": ("td3", "Pendulum-v1", -200, None),
             "sac_halfcheetah": ("sac", "HalfCheetah-v5", None, "HalfCheetah-v4"),
             "sac_hopper": ("sac", "Hopper-v5", None, "Hopper-v4"),
             "td3_halfcheetah": ("td3", "HalfCheetah-v5", None, "HalfCheetah-v4"),
             "td3_hopper": ("td3", "Hopper-v5", None, "Hopper-v4"),
             "ppo_halfcheetah": ("ppo", "HalfCheetah-v5", None, "HalfCheetah-v4"),
             "ppo_hopper": ("ppo", "Hopper-v5", None, "Hopper-v4"),
             # Pixels: rl-zoo's `atari` entry (every game's); MinAtar has none,
             # sb3_reference.py's own (OWN_ENTRIES: Young & Tian's DQN, as tfrl's).
             "dqn_atari": ("dqn", "ALE/Pong-v5", None, "atari"),
             "ppo_atari": ("ppo", "ALE/Pong-v5", None, "atari"),
             "dqn_minatar_breakout": ("dqn", "MinAtar/Breakout-v0", None, None)}
SB3_TWINS.update(ppo_pong_100k=SB3_TWINS["ppo_atari"], ppo_pong_speed=SB3_TWINS["ppo_atari"],
                 dqn_pong_speed=SB3_TWINS["dqn_atari"],
                 dqn_minatar_breakout_100k=SB3_TWINS["dqn_minatar_breakout"],
                 dqn_minatar_breakout_speed=SB3_TWINS["dqn_minatar_breakout"])
# gym.make arguments of the SB3 twin's env, by id namespace: tfrl.envs.Atari
# builds the ALE env at frameskip=1 (its preprocessing skips, as AtariWrapper
# does); the v5 ids' other defaults (sticky actions 0.25, minimal action set,
# 108,000 frames) are tfrl's too.
SB3_ENV_KWARGS = {"ALE": "dict(frameskip=1)"}

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(os.path.dirname(BENCHMARKS), "train.py")
SB3_REFERENCE = os.path.join(BENCHMARKS, "sb3_reference.py")


def pair_name(gin_file):
  return os.path.splitext(os.path.basename(gin_file))[0]


def sb3_lib(gin_file):
  """The SB3 rows' `lib`: the algorithm, and what it stands in for."""
  algo = SB3_TWINS[pair_name(gin_file)][0]
  agent = pair_name(gin_file).split("_")[0]
  return f"sb3 {algo}" + (f" (for {agent})" if agent != algo else "")


def counts_updates(gin_file):
  """Whether both sides count the pair's updates alike: gradient steps for the
  off-policy agents (tfrl's on-policy agents count an iteration, SB3's PPO
  an epoch)."""
  return pair_name(gin_file).split("_")[0] in ("dqn", "ddpg", "td3", "sac")


def median_gap(rows):
  """The median env steps between consecutive progress rows (evaluations)."""
  steps = [int(r["env_steps"]) for r in rows]
  gaps = [b - a for a, b in zip(steps, steps[1:]) if b > a]
  return int(statistics.median(gaps)) if gaps else None


def budget(gin_file) -> Optional[Budget]:
  """The budget of a budgeted suite's config, or of a config of
  scripts/benchmarks/configs/ (whose budget is in the file) however given."""
  in_configs = os.path.dirname(os.path.abspath(gin_file)) == BENCHMARK_CONFIGS
  if FLAGS.suite in ("mujoco", "pixels", "pixels_speed") or in_configs:
    return BUDGETS.get(pair_name(gin_file))
  return None


def steps_per_s(env_steps, train_s):
  return env_steps / train_s if train_s else None


def run_one(gin_file, threshold, seed, out_dir):
  root = os.path.join(out_dir, f"{pair_name(gin_file)}-s{seed}")
  cmd = [sys.executable, TRAIN, f"--gin_file={gin_file}", f"--seed={seed}", f"--root_dir={root}"]
  bindings = list(budget(gin_file).bindings if budget(gin_file) else ()) + FLAGS.gin_bindings
  cmd += [f"--gin_bindings={b}" for b in bindings]
  start = time.time()
  result = subprocess.run(cmd, capture_output=True, text=True)
  seconds = time.time() - start
  if result.returncode != 0:
    tail = (result.stderr.strip().splitlines() or ["?"])[-1]
    return dict(config=gin_file, lib="tfrl", seed=seed, error=tail)
  with open(os.path.join(root, "progress.csv")) as f:
    rows = list(csv.DictReader(f))
  hit = next((r for r in rows if threshold is not None
              and float(r["avg_return"]) >= threshold), None)
  return dict(config=gin_file, lib="tfrl", threshold=threshold, seed=seed,
              final=float(rows[-1]["avg_return"]),
              steps_to=int(hit["env_steps"]) if hit else None,
              secs_to=float(hit["wall_s"]) if hit else None,
              train_s=float(rows[-1]["wall_s"]), process_s=seconds,
              env_steps=int(rows[-1]["env_steps"]), eval_gap=median_gap(rows),
              updates=int(rows[-1]["train_steps"]) if counts_updates(gin_file) else None,
              curve=[(int(r["env_steps"]), float(r["avg_return"])) for r in rows])


def return_at(curve, mark):
  """The return of the evaluation nearest env step `mark` (the later of two
  as near). Nearest, not the first at or after: tfrl counts real transitions,
  not the reset steps among an iteration's steps, so on tasks that terminate
  (Hopper) its evaluations fall a little short of the round figures."""
  if not curve:
    return None
  return min(reversed(curve), key=lambda point: abs(point[0] - mark))[1]


def run_sb3(gin_file, threshold, seed, eval_every, out_dir):
  """The config's SB3 twin for `seed`, evaluated every `eval_every` env steps."""
  lib = sb3_lib(gin_file)
  if eval_every is None:
    return dict(config=gin_file, lib=lib, seed=seed,
                error="no tfrl evaluations to take the interval from: give --sb3_eval_every")
  algo, env_id, _, zoo_env = SB3_TWINS[pair_name(gin_file)]
  cmd = [FLAGS.sb3_python, SB3_REFERENCE, f"--algo={algo}", f"--env={env_id}", f"--seed={seed}",
         f"--eval_every={eval_every}", f"--eval_episodes={EVAL_EPISODES[gin_file]}"]
  cmd += [f"--threshold={threshold}"] if threshold is not None else []
  cmd += [f"--hyperparams_env={zoo_env}"] if zoo_env else []
  env_kwargs = SB3_ENV_KWARGS.get(env_id.partition("/")[0]) if "/" in env_id else None
  cmd += [f"--env_kwargs={env_kwargs}"] if env_kwargs else []
  plan = budget(gin_file)
  max_steps = plan.env_steps if plan else FLAGS.sb3_max_steps
  cmd += [f"--max_steps={max_steps}"] if max_steps else []
  cmd += ["--full_schedules"] if plan and plan.full_schedules else []
  cmd += [f"--hyperparams={h}" for h in plan.sb3_hyperparams] if plan else []
  cmd += [f"--torch_threads={FLAGS.sb3_torch_threads}"] if FLAGS.sb3_torch_threads else []
  cmd += ["--stop_at_threshold"] if FLAGS.sb3_stop_at_threshold else []
  start = time.time()
  # In out_dir: MuJoCo writes its warnings to MUJOCO_LOG.TXT in the working directory.
  result = subprocess.run(cmd, capture_output=True, text=True, cwd=out_dir)
  seconds = time.time() - start
  with open(os.path.join(out_dir, f"{pair_name(gin_file)}-sb3-s{seed}.jsonl"), "w") as f:
    f.write(result.stdout)
  lines = result.stdout.strip().splitlines()
  if result.returncode != 0 or not lines:
    return dict(config=gin_file, lib=lib, seed=seed, error=last_line(result.stderr))
  summary = json.loads(lines[-1])
  curve = [(row["env_steps"], row["avg_return"]) for row in map(json.loads, lines[:-1])]
  return dict(config=gin_file, lib=lib, threshold=threshold, seed=seed, final=summary["final"],
              steps_to=summary["steps_to"], secs_to=summary["secs_to"],
              train_s=summary["train_s"], process_s=seconds, env_steps=summary["env_steps"],
              eval_gap=eval_every, curve=curve,
              updates=summary.get("updates") if counts_updates(gin_file) else None)


def last_line(text):
  """A failed process's last stderr line: its error."""
  return (text.strip().splitlines() or ["?"])[-1]


def check_sb3_python(python):
  """--sb3_python must import what sb3_reference.py needs: one error line and
  exit status 2 otherwise, before any run."""
  try:
    probe = subprocess.run([python, "-c", "import stable_baselines3, sb3_contrib, rl_zoo3, yaml"],
                           capture_output=True, text=True, timeout=300)
    problem = None if probe.returncode == 0 else \
        f"cannot import stable_baselines3, sb3_contrib and rl_zoo3 ({last_line(probe.stderr)})"
  except OSError as error:
    problem = error.strerror
  if problem:
    _cli.fail(f"--sb3_python={python}: {problem}")


def fmt(v, spec):
  """`v` formatted by `spec`; a missing value is a "-" of the same width."""
  if v is None:
    return format("-", spec.split(".")[0].rstrip("dfg"))
  return format(v, spec)


def configs_and_thresholds():
  if FLAGS.suite:
    if FLAGS.gin_file or FLAGS.threshold:
      _cli.fail("give --suite or --gin_file (with --threshold), not both")
    suite = SUITES[FLAGS.suite]
    if FLAGS.pairs:
      names = [pair_name(gin_file) for gin_file, _ in suite]
      unknown = [p for p in FLAGS.pairs if p not in names]
      if unknown:
        _cli.fail(f"--pairs: {', '.join(unknown)} not in suite {FLAGS.suite} "
                  f"({', '.join(names)})")
      suite = [entry for entry in suite if pair_name(entry[0]) in FLAGS.pairs]
    return suite
  if FLAGS.pairs:
    _cli.fail("--pairs selects pairs of a --suite; with --gin_file, list the files")
  if not FLAGS.gin_file:
    _cli.fail("give --gin_file (repeatable) or --suite")
  thresholds = FLAGS.threshold or [None]
  if len(thresholds) == 1:
    thresholds = thresholds * len(FLAGS.gin_file)
  if len(thresholds) != len(FLAGS.gin_file):
    _cli.fail(f"give one --threshold, or one per --gin_file ({len(FLAGS.gin_file)}); "
              f"got {len(thresholds)}")
  return list(zip(FLAGS.gin_file, thresholds))


# Per config: its evaluation's episodes (tfrl.train.train.num_eval_episodes),
# which its SB3 twin evaluates too; filled by check_configs.
EVAL_EPISODES = {}


def check_configs(gin_files):
  """Each config parses with the bindings, before the first run: a bad one
  would otherwise be an error row per seed."""
  import gin  # pylint: disable=import-outside-toplevel
  from tfrl.envs import check_env_id  # pylint: disable=import-outside-toplevel  (imports TF)
  from tfrl.train import RunConfig, config  # pylint: disable=import-outside-toplevel
  for gin_file in gin_files:
    config.parse_config([gin_file], FLAGS.gin_bindings)
    env_id = gin.get_bindings("tfrl.train.train").get("env_id")
    if env_id is None:
      _cli.fail(f"{gin_file} binds no tfrl.train.train.env_id")
    if isinstance(env_id, str):
      check_env_id(env_id)
    EVAL_EPISODES[gin_file] = gin.get_bindings("tfrl.train.train").get(
        "num_eval_episodes", RunConfig.num_eval_episodes)


def median(rows, key):
  return statistics.median([r[key] for r in rows]) if rows else None


def ratio(a, b):
  return a / b if a is not None and b else None


def shown(gin_file):
  """A config as the tables show it: scripts/benchmarks/configs/ files by name."""
  in_configs = os.path.dirname(os.path.abspath(gin_file)) == BENCHMARK_CONFIGS
  return os.path.basename(gin_file) if in_configs else gin_file


def print_row(r):
  if "error" in r:
    print(f"{shown(r['config']):<30} {r['lib']:<20} {r['seed']:>4} error: {r['error']}",
          flush=True)
    return
  print(f"{shown(r['config']):<30} {r['lib']:<20} {r['seed']:>4} {r['final']:>8.1f} "
        f"{fmt(r['steps_to'], '>12d')} {fmt(r['secs_to'], '>9.1f')} {r['train_s']:>8.1f} "
        f"{r['process_s']:>9.1f} {r['env_steps']:>10d} {fmt(r['eval_gap'], '>8d')} "
        f"{fmt(steps_per_s(r['env_steps'], r['train_s']), '>8.0f')}"
        + "".join(f" {fmt(return_at(r['curve'], m), '>9.1f')}"
                  for m in (budget(r["config"]).marks if budget(r["config"]) else ())),
        flush=True)


def print_marks(configs, results, libs):
  """Per budgeted config and lib: median returns at its marks and median env
  steps/s; with SB3 beside, the ratios tfrl/SB3."""
  print()
  print(f"{'config':<30} {'lib':<20} {'seeds':>5} {'med steps/s':>11} {'ratio':>6} "
        f"{'med updates/s':>13}  median return at the marks (env steps)")
  for gin_file, _ in configs:
    plan = budget(gin_file)
    if plan is None:
      continue
    speeds = {}
    for lib in libs(gin_file):
      ok = [r for r in results if r["config"] == gin_file and r["lib"] == lib and "error" not in r]
      if not ok:
        continue
      speeds[lib] = median([dict(s=steps_per_s(r["env_steps"], r["train_s"])) for r in ok], "s")
      updates = [steps_per_s(r["updates"], r["train_s"]) for r in ok if r.get("updates")]
      at = []
      for m in plan.marks:
        returns = [return_at(r["curve"], m) for r in ok]
        returns = [x for x in returns if x is not None]
        at.append(f"{m // 1000}k: {fmt(statistics.median(returns) if returns else None, '.1f')}")
      speed_ratio = ratio(speeds.get("tfrl"), speeds[lib]) if lib != "tfrl" else None
      print(f"{shown(gin_file):<30} {lib:<20} {len(ok):>5} "
            f"{fmt(speeds[lib], '>11.0f')} {fmt(speed_ratio, '>6.2f')} "
            f"{fmt(statistics.median(updates) if updates else None, '>13.1f')}  " + ", ".join(at))
  print("steps/s: env steps over training seconds (updates and evaluations included); "
        "ratio: tfrl's median over SB3's; updates/s: gradient steps over the same seconds "
        "(off-policy pairs).")


def main(argv):
  del argv
  configs = configs_and_thresholds()
  if FLAGS.out_dir:
    _cli.check_creatable_dir(FLAGS.out_dir, "--out_dir")
  twins = []
  if FLAGS.sb3_python:
    check_sb3_python(FLAGS.sb3_python)
    twins = [gin_file for gin_file, _ in configs if pair_name(gin_file) in SB3_TWINS]
    for gin_file, _ in configs:
      if gin_file not in twins:
        print(f"{gin_file}: no SB3 twin (SB3_TWINS), tfrl only")
  check_configs([gin_file for gin_file, _ in configs])
  out_dir = FLAGS.out_dir or tempfile.mkdtemp(prefix="tfrl-bench-")
  marks = sorted({m for gin_file, _ in configs if budget(gin_file) for m in budget(gin_file).marks})
  print(f"{'config':<30} {'lib':<20} {'seed':>4} {'final':>8} {'steps_to_thr':>12} "
        f"{'s_to_thr':>9} {'train_s':>8} {'process_s':>9} {'env_steps':>10} {'eval_gap':>8} "
        f"{'steps/s':>8}" + ("  returns at the pair's marks" if marks else ""))
  results, sb3_runs = [], {}
  # Seed-major: the configs of one seed run back to back (each tfrl run
  # followed by its SB3 twin), so a machine that gets busier or quieter during
  # the benchmark affects them alike.
  for seed in FLAGS.seeds:
    for gin_file, threshold in configs:
      r = run_one(gin_file, threshold, seed, out_dir)
      results.append(r)
      print_row(r)
      if gin_file in twins:
        if threshold is None:
          threshold = SB3_TWINS[pair_name(gin_file)][2]
        # Without a tfrl evaluation gap from this seed, an earlier seed's.
        gaps = [x.get("eval_gap") for x in results if x["config"] == gin_file and
                x["lib"] == "tfrl" and x.get("eval_gap")]
        eval_every = FLAGS.sb3_eval_every or (r.get("eval_gap") or (gaps[-1] if gaps else None))
        # A regular and a compiled config share their twin: one SB3 run per seed.
        key = (SB3_TWINS[pair_name(gin_file)][:2], threshold, seed, eval_every)
        if key not in sb3_runs:
          sb3_runs[key] = run_sb3(gin_file, threshold, seed, eval_every, out_dir)
        r = dict(sb3_runs[key], config=gin_file)
        results.append(r)
        print_row(r)
  print()
  print(f"{'config':<30} {'lib':<20} {'thr':>6} {'reached':>7} {'final>=thr':>10} "
        f"{'med_final':>9} {'med_steps_to':>12} {'med_s_to':>8} {'med_train_s':>11}")
  libs = lambda gin_file: ["tfrl"] + ([sb3_lib(gin_file)] if gin_file in twins else [])
  for gin_file, threshold in configs:
    for lib in libs(gin_file):
      ok = [r for r in results if r["config"] == gin_file and r["lib"] == lib and "error" not in r]
      if not ok:
        continue
      threshold = ok[0]["threshold"]
      reached = [r for r in ok if r["steps_to"] is not None]
      final_ok = sum(threshold is not None and r["final"] >= threshold for r in ok)
      print(f"{shown(gin_file):<30} {lib:<20} {fmt(threshold, '>6g')} "
            f"{len(reached):>3}/{len(ok):<3} "
            f"{final_ok:>6}/{len(ok):<3} {median(ok, 'final'):>9.1f} "
            f"{fmt(median(reached, 'steps_to'), '>12.0f')} "
            f"{fmt(median(reached, 'secs_to'), '>8.1f')} {median(ok, 'train_s'):>11.1f}")
  print("reached: evaluations that hit the threshold at least once; medians of steps and "
        "seconds to the threshold are over those seeds.")
  if marks:
    print_marks(configs, results, libs)
  if twins:
    print()
    print(f"{'config':<30} {'sb3':<20} {'reached tfrl/sb3':>16} {'s_to tfrl':>9} {'s_to sb3':>8} "
          f"{'s ratio':>7} {'steps_to tfrl':>13} {'steps_to sb3':>12} {'steps ratio':>11}")
    for gin_file in twins:
      sides = []
      for lib in libs(gin_file):
        ok = [r for r in results if r["config"] == gin_file and r["lib"] == lib
              and "error" not in r]
        reached = [r for r in ok if r["steps_to"] is not None]
        sides.append((f"{len(reached)}/{len(ok)}", median(reached, "secs_to"),
                      median(reached, "steps_to")))
      (t_reached, t_s, t_steps), (s_reached, s_s, s_steps) = sides
      print(f"{shown(gin_file):<30} {sb3_lib(gin_file):<20} {t_reached + ' / ' + s_reached:>16} "
            f"{fmt(t_s, '>9.1f')} {fmt(s_s, '>8.1f')} {fmt(ratio(t_s, s_s), '>7.2f')} "
            f"{fmt(t_steps, '>13.0f')} {fmt(s_steps, '>12.0f')} "
            f"{fmt(ratio(t_steps, s_steps), '>11.2f')}")
    print("ratios: tfrl / SB3 of the medians over the seeds that reached the threshold; "
          "seconds are training seconds, evaluations included, on both sides.")


if __name__ == "__main__":
  _cli.run(main)
