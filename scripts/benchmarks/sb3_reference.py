r"""Stable-Baselines3 reference run for benchmark_learning.py: one SB3 run with
rl-zoo3's tuned hyperparameters, evaluated like tfrl's runs.

Runs in its own venv (torch and TF do not share one) and imports nothing of tfrl:
  python3.11 -m venv /tmp/sb3venv && /tmp/sb3venv/bin/pip install stable-baselines3 \
      rl_zoo3 sb3-contrib "gymnasium[mujoco]<1.4"
  /tmp/sb3venv/bin/python scripts/benchmarks/sb3_reference.py --algo=ppo --env=CartPole-v1 \
      --seed=0 --eval_every=2000 --threshold=475

Hyperparameters: the installed rl_zoo3 package's `hyperparams/<algo>.yml`, the
entry for `--env` (or `--hyperparams_env`), with rl-zoo's conventions
(`SUPPORTED_ZOO_KEYS`): `n_envs` training envs, `n_timesteps` the default
budget, `policy` a policy name, `normalize` (true, or a dict or its string:
VecNormalize's arguments, with the algorithm's gamma), `policy_kwargs` a dict
or its Python string, `learning_rate`/`clip_range`/`clip_range_vf` a number or
`lin_<x>` (linear from x to 0 over the budget), `noise_type` (normal,
ornstein-uhlenbeck) with `noise_std`, `train_freq` as a list. Any other key must
be an argument of the algorithm's constructor and is passed as it is; rl-zoo
keys that need its machinery (`UNSUPPORTED_ZOO_KEYS`: wrappers, callbacks,
frame stacking, ...) are refused in one line.

Evaluation, as tfrl's: deterministic, `--eval_episodes` episodes on separate
envs (one episode each), at env step 0, every `--eval_every` env steps (all
training envs counted) and at the end. The clock starts when `learn` is called
and runs through evaluations. Prints one JSON line per evaluation and then a
JSON summary: the final evaluation, env steps and seconds at the first
evaluation >= `--threshold`.
"""

import ast
import dataclasses
import json
import os
import sys
import time
from typing import Any, Collection, Mapping, Optional, Union

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _cli  # noqa: E402  (stdlib only)

# rl-zoo's own keys, which this script turns into SB3 objects or run settings.
SUPPORTED_ZOO_KEYS = ("n_envs", "n_timesteps", "policy", "normalize", "policy_kwargs",
                      "learning_rate", "clip_range", "clip_range_vf", "noise_type", "noise_std",
                      "train_freq")
UNSUPPORTED_ZOO_KEYS = ("env_wrapper", "vec_env_wrapper", "frame_stack", "callback",
                        "env_kwargs", "monitor_kwargs", "replay_buffer_class",
                        "replay_buffer_kwargs", "her_kwargs", "delta_std")
SCHEDULE_KEYS = ("learning_rate", "clip_range", "clip_range_vf")
NOISE_TYPES = ("normal", "ornstein-uhlenbeck")
ALGOS = ("ppo", "a2c", "dqn", "ddpg", "td3", "sac", "trpo")
# Constructor arguments this script sets itself.
OWN_ARGUMENTS = ("policy", "env", "seed", "verbose", "device", "action_noise")


class SettingsError(ValueError):
  """Settings this script cannot run: one line, exit 2."""


@dataclasses.dataclass(frozen=True)
class Linear:
  """rl-zoo's `lin_<x>`: x at the start, decaying linearly to 0 at the end."""
  initial: float


@dataclasses.dataclass(frozen=True)
class ZooSettings:
  """An rl-zoo entry split into what this script does with it."""
  n_envs: int
  n_timesteps: int
  policy: str
  normalize: Optional[dict]  # VecNormalize's arguments; None: no normalization
  noise: Optional[tuple]  # (noise_type, std)
  model_kwargs: dict  # the algorithm's constructor arguments; schedules as `Linear`


def parse_schedule(key: str, value: Union[str, float, int]) -> Union[float, Linear]:
  """A number, or rl-zoo's `lin_<x>`."""
  if isinstance(value, bool) or not isinstance(value, (str, int, float)):
    raise SettingsError(f"{key}={value!r} is neither a number nor lin_<number>")
  if isinstance(value, str):
    kind, _, initial = value.partition("_")
    try:
      if kind != "lin":
        raise ValueError(kind)
      return Linear(float(initial))
    except ValueError:
      raise SettingsError(f"{key}={value!r}: only linear schedules, lin_<number>, are "
                       "supported") from None
  return float(value)


def parse_kwargs(key: str, text: Union[str, dict], names: Mapping[str, Any]) -> dict:
  """rl-zoo's `dict(...)` strings (e.g. "dict(net_arch=[256, 256], activation_fn=nn.ReLU)"):
  literals, dict(...) calls and attributes of `names` (such as torch's `nn`) only."""
  if isinstance(text, dict):
    return dict(text)
  if not isinstance(text, str):
    raise SettingsError(f"{key}={text!r} is neither a dict nor its string")

  def value(node):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" \
        and not node.args and all(k.arg for k in node.keywords):
      return {k.arg: value(k.value) for k in node.keywords}
    if isinstance(node, ast.Dict):
      return {value(k): value(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
      items = [value(item) for item in node.elts]
      return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Name) and node.id in names:
      return names[node.id]
    if isinstance(node, ast.Attribute):
      return getattr(value(node.value), node.attr)
    return ast.literal_eval(node)

  try:
    parsed = value(ast.parse(text.strip(), mode="eval").body)
  except (SyntaxError, ValueError, AttributeError, TypeError) as e:
    raise SettingsError(f"{key}={text!r} cannot be read ({type(e).__name__}: {e})") from None
  if not isinstance(parsed, dict):
    raise SettingsError(f"{key}={text!r} is not a dict")
  return parsed


def zoo_settings(entry: Mapping[str, Any], accepted: Collection[str],
                 names: Mapping[str, Any] = None) -> ZooSettings:
  """Splits an rl-zoo entry. `accepted`: the algorithm constructor's argument
  names; `names`: what `policy_kwargs` strings may refer to (e.g. `nn`)."""
  names = names or {}
  entry = dict(entry)
  for key in entry:
    if key in UNSUPPORTED_ZOO_KEYS:
      raise SettingsError(f"rl-zoo key {key!r} is not supported by sb3_reference.py")
    if key not in SUPPORTED_ZOO_KEYS and (key not in accepted or key in OWN_ARGUMENTS):
      raise SettingsError(f"rl-zoo key {key!r} is neither an rl-zoo convention sb3_reference.py "
                       "supports nor an argument of the algorithm")
  if "n_timesteps" not in entry:
    raise SettingsError("the rl-zoo entry has no n_timesteps")
  n_envs, n_timesteps = entry.pop("n_envs", 1), entry.pop("n_timesteps")
  if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
    raise SettingsError(f"n_envs={n_envs!r} is not a positive integer")
  policy = entry.pop("policy", "MlpPolicy")
  if not isinstance(policy, str) or "." in policy:
    raise SettingsError(f"policy={policy!r}: only SB3's policy names are supported, not classes")
  for key in SCHEDULE_KEYS:
    if key in entry:
      entry[key] = parse_schedule(key, entry[key])
  if "policy_kwargs" in entry:
    entry["policy_kwargs"] = parse_kwargs("policy_kwargs", entry["policy_kwargs"], names)
  if isinstance(entry.get("train_freq"), list):
    entry["train_freq"] = tuple(entry["train_freq"])
  normalize = entry.pop("normalize", False)
  if isinstance(normalize, (str, dict)):
    normalize = parse_kwargs("normalize", normalize, {})
  elif normalize is True:
    normalize = {}
  elif normalize is False:
    normalize = None
  else:
    raise SettingsError(f"normalize={normalize!r} is neither a bool nor a dict")
  if normalize is not None and "gamma" in entry:
    normalize["gamma"] = entry["gamma"]  # as rl-zoo: the reward normalizer's discount
  noise = None
  if "noise_type" in entry or "noise_std" in entry:
    noise_type, std = entry.pop("noise_type", None), entry.pop("noise_std", None)
    if noise_type is None or std is None:
      raise SettingsError("noise_type and noise_std go together")
    if str(noise_type).strip() not in NOISE_TYPES:
      raise SettingsError(f"noise_type={noise_type!r} is not one of {', '.join(NOISE_TYPES)}")
    noise = (str(noise_type).strip(), float(std))
  return ZooSettings(int(n_envs), int(n_timesteps), policy, normalize, noise, entry)


def algorithm_class(algo: str):
  import sb3_contrib  # pylint: disable=import-outside-toplevel
  import stable_baselines3 as sb3  # pylint: disable=import-outside-toplevel
  return dict(ppo=sb3.PPO, a2c=sb3.A2C, dqn=sb3.DQN, ddpg=sb3.DDPG, td3=sb3.TD3, sac=sb3.SAC,
              trpo=sb3_contrib.TRPO)[algo]


def zoo_entry(algo: str, env_id: str) -> dict:
  import rl_zoo3  # pylint: disable=import-outside-toplevel
  import yaml  # pylint: disable=import-outside-toplevel
  path = os.path.join(os.path.dirname(rl_zoo3.__file__), "hyperparams", f"{algo}.yml")
  with open(path) as f:
    entries = yaml.safe_load(f)
  if env_id not in entries:
    raise SettingsError(f"rl-zoo has no {algo} hyperparameters for {env_id} ({path})")
  return entries[env_id]


def run(args) -> dict:
  """One training run; prints the evaluation lines, returns the summary."""
  # pylint: disable=import-outside-toplevel
  import gymnasium as gym
  import inspect
  import numpy as np
  import torch
  from rl_zoo3.utils import linear_schedule
  from stable_baselines3.common.callbacks import BaseCallback
  from stable_baselines3.common.env_util import make_vec_env
  from stable_baselines3.common.evaluation import evaluate_policy
  from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
  from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
  from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

  try:
    gym.spec(args.env)
  except gym.error.Error as e:
    raise SettingsError(f"--env={args.env}: {e}") from None
  if args.torch_threads:
    torch.set_num_threads(args.torch_threads)  # as rl-zoo's train.py --num-threads
  cls = algorithm_class(args.algo)
  entry = zoo_entry(args.algo, args.hyperparams_env or args.env)
  settings = zoo_settings(entry, inspect.signature(cls).parameters,
                          dict(nn=torch.nn, th=torch, RMSpropTFLike=RMSpropTFLike))
  total_steps = args.total_steps or settings.n_timesteps
  if args.max_steps:
    total_steps = min(total_steps, args.max_steps)

  env = make_vec_env(args.env, n_envs=settings.n_envs, seed=args.seed)
  eval_env = make_vec_env(args.env, n_envs=args.eval_episodes, seed=args.seed + 10_000)
  if settings.normalize is not None:
    env = VecNormalize(env, **settings.normalize)
    eval_env = VecNormalize(eval_env, **dict(settings.normalize, training=False,
                                             norm_reward=False))
  kwargs = {key: linear_schedule(v.initial) if isinstance(v, Linear) else v
            for key, v in settings.model_kwargs.items()}
  if settings.noise is not None:
    noise_type, std = settings.noise
    n_actions = env.action_space.shape[0]
    noise_class = NormalActionNoise if noise_type == "normal" else OrnsteinUhlenbeckActionNoise
    kwargs["action_noise"] = noise_class(mean=np.zeros(n_actions), sigma=std * np.ones(n_actions))
  model = cls(settings.policy, env, seed=args.seed, verbose=0, device="cpu", **kwargs)

  evaluations = []

  class Evaluate(BaseCallback):
    """Evaluates at step 0, every `eval_every` env steps and at the end."""

    def __init__(self, start):
      super().__init__()
      self.start, self.next_at = start, 0

    def evaluate(self):
      if settings.normalize is not None:
        sync_envs_normalization(self.training_env, eval_env)
      mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=args.eval_episodes,
                                deterministic=True)
      row = dict(env_steps=int(self.num_timesteps), avg_return=float(mean),
                 wall_s=time.perf_counter() - self.start)
      evaluations.append(row)
      print(json.dumps(row), flush=True)
      while self.next_at <= self.num_timesteps:
        self.next_at += args.eval_every
      return row

    def _on_training_start(self):
      self.evaluate()

    def _on_step(self):
      if self.num_timesteps < self.next_at:
        return True
      row = self.evaluate()
      return not (args.stop_at_threshold and args.threshold is not None
                  and row["avg_return"] >= args.threshold)

    def _on_training_end(self):
      if evaluations[-1]["env_steps"] != self.num_timesteps:
        self.evaluate()

  start = time.perf_counter()
  model.learn(total_timesteps=total_steps, callback=Evaluate(start))
  train_s = time.perf_counter() - start
  hit = next((row for row in evaluations if args.threshold is not None
              and row["avg_return"] >= args.threshold), None)
  return dict(summary=True, algo=args.algo, env=args.env, seed=args.seed,
              final=evaluations[-1]["avg_return"], threshold=args.threshold,
              steps_to=hit["env_steps"] if hit else None, secs_to=hit["wall_s"] if hit else None,
              train_s=train_s, env_steps=int(model.num_timesteps), total_steps=total_steps,
              evaluations=len(evaluations), n_envs=settings.n_envs,
              hyperparams={key: repr(v) for key, v in entry.items()})


def main():
  parser = _cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--algo", required=True, choices=ALGOS)
  parser.add_argument("--env", required=True, help="A gymnasium id.")
  parser.add_argument("--hyperparams_env", help="Read rl-zoo's entry of this id instead "
                      "(e.g. HalfCheetah-v4's for HalfCheetah-v5).")
  parser.add_argument("--seed", type=_cli.non_negative_int, default=0)
  parser.add_argument("--total_steps", type=_cli.positive_int,
                      help="Env steps to train (default: rl-zoo's n_timesteps).")
  parser.add_argument("--max_steps", type=_cli.positive_int, help="Cap on the budget.")
  parser.add_argument("--eval_every", type=_cli.positive_int, required=True,
                      help="Env steps between evaluations.")
  parser.add_argument("--eval_episodes", type=_cli.positive_int, default=10)
  parser.add_argument("--threshold", type=float, help="Return counted as solved.")
  parser.add_argument("--torch_threads", type=_cli.positive_int,
                      help="torch's intra-op threads (default: torch's own choice).")
  parser.add_argument("--stop_at_threshold", action="store_true",
                      help="End training at the first evaluation >= --threshold.")
  args = parser.parse_args()
  try:
    summary = run(args)
  except SettingsError as e:
    _cli.fail(str(e), prog=parser.prog)
  print(json.dumps(summary), flush=True)


if __name__ == "__main__":
  main()
