r"""Stable-Baselines3 reference run for benchmark_learning.py: one SB3 run with
rl-zoo3's tuned hyperparameters, evaluated like tfrl's runs.

Runs in its own venv (torch and TF do not share one) and imports nothing of tfrl:
  python3.11 -m venv /tmp/sb3venv && /tmp/sb3venv/bin/pip install stable-baselines3 \
      rl_zoo3 sb3-contrib "gymnasium[mujoco]<1.4" ale-py==0.12.1 \
      opencv-python-headless==4.11.0.86 minatar==1.0.15
  /tmp/sb3venv/bin/python scripts/benchmarks/sb3_reference.py --algo=ppo --env=CartPole-v1 \
      --seed=0 --eval_every=2000 --threshold=475
  /tmp/sb3venv/bin/python scripts/benchmarks/sb3_reference.py --algo=dqn --env=ALE/Pong-v5 \
      --hyperparams_env=atari --env_kwargs="dict(frameskip=1)" --seed=0 --eval_every=50000

Hyperparameters: the installed rl_zoo3 package's `hyperparams/<algo>.yml`, the
entry for `--env` (or `--hyperparams_env`), with rl-zoo's conventions
(`SUPPORTED_ZOO_KEYS`): `n_envs` training envs, `n_timesteps` the default
budget, `policy` a policy name, `normalize` (true, or a dict or its string:
VecNormalize's arguments, with the algorithm's gamma), `policy_kwargs` a dict
or its Python string, `learning_rate`/`clip_range`/`clip_range_vf` a number or
`lin_<x>` (linear from x to 0 over the budget), `noise_type` (normal,
ornstein-uhlenbeck) with `noise_std`, `train_freq` as a list, `env_kwargs`
(gym.make's arguments; `--env_kwargs` adds to them), `env_wrapper` (a class
name, or a list of names or {name: kwargs}; the wrappers of
`ENV_WRAPPERS` only) and `frame_stack` (VecFrameStack). Any other key must be
an argument of the algorithm's constructor and is passed as it is; rl-zoo
keys that need its machinery (`UNSUPPORTED_ZOO_KEYS`: vec-env wrappers,
callbacks, replay classes, ...) are refused in one line. `--hyperparams
key=value` (repeatable) replaces or adds an entry's key before it is read
(rl-zoo's `train.py --hyperparams key:value`).

Atari (`--hyperparams_env=atari`, rl-zoo's entry for every game): SB3's
AtariWrapper over the env (the `ALE/...-v5` ids need `--env_kwargs="dict(frameskip=1)"`,
as AtariWrapper skips frames itself; anything else is refused), VecFrameStack,
CnnPolicy. MinAtar has no rl-zoo entry: `OWN_ENTRIES` holds the one this
script uses instead (Young & Tian 2019's DQN, as tfrl's dqn_minatar_breakout.gin).

`--full_schedules`: the budget (`--max_steps`/`--total_steps`) is the first
part of a run of the entry's n_timesteps: `lin_*` schedules and DQN's
exploration keep the full run's pace instead of being compressed into the
budget (`full_run_schedules`).

Evaluation, as tfrl's: deterministic, `--eval_episodes` episodes on separate
envs (one episode each), at env step 0, every `--eval_every` env steps (all
training envs counted) and at the end. The evaluation envs are the training
envs' with each wrapper's `evaluation` arguments (AtariWrapper: no episodic
life, no reward clipping: whole games, the raw game score, as tfrl.envs.Atari's
evaluation envs). The clock starts when `learn` is called
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
                      "train_freq", "env_kwargs", "env_wrapper", "frame_stack")
UNSUPPORTED_ZOO_KEYS = ("vec_env_wrapper", "callback", "monitor_kwargs", "replay_buffer_class",
                        "replay_buffer_kwargs", "her_kwargs", "delta_std")
ATARI_WRAPPER = "stable_baselines3.common.atari_wrappers.AtariWrapper"
# The env wrappers `env_wrapper` may name, each with the arguments its
# evaluation envs get instead: AtariWrapper's training envs end an episode at
# a lost life and clip rewards; tfrl.envs.Atari's evaluation envs do neither.
ENV_WRAPPERS = {ATARI_WRAPPER: dict(terminal_on_life_loss=False, clip_reward=False)}
# Entries rl-zoo does not have, in its format, by algorithm and env id.
# MinAtar Breakout: Young & Tian (2019)'s DQN as tfrl's dqn_minatar_breakout.gin
# takes it (not rl-zoo's): one 16-filter 3x3 conv + 128 (`MinAtarCNN`), batch
# 32, 100k replay, 5000 random steps, an update per step, target synced every
# 1000 steps, eps 1 -> 0.1 over the first 100k steps (tfrl: over the 100k
# updates after the random steps), 5M steps; Adam at their RMSprop's 2.5e-4 (as
# tfrl), no gradient clipping (as tfrl; SB3's default clips at norm 10).
OWN_ENTRIES = {"dqn": {"MinAtar/Breakout-v0": dict(
    policy="MlpPolicy", policy_kwargs="dict(features_extractor_class=MinAtarCNN, net_arch=[128])",
    n_timesteps=5_000_000, buffer_size=100_000, learning_rate=2.5e-4, batch_size=32,
    learning_starts=5000, target_update_interval=1000, train_freq=1, gradient_steps=1,
    exploration_initial_eps=1.0, exploration_final_eps=0.1, exploration_fraction=0.02,
    gamma=0.99, max_grad_norm=float("inf"))}}
SCHEDULE_KEYS = ("learning_rate", "clip_range", "clip_range_vf")
NOISE_TYPES = ("normal", "ornstein-uhlenbeck")
ALGOS = ("ppo", "a2c", "dqn", "ddpg", "td3", "sac", "trpo")
# Constructor arguments this script sets itself.
OWN_ARGUMENTS = ("policy", "env", "seed", "verbose", "device", "action_noise")


class SettingsError(ValueError):
  """Settings this script cannot run: one line, exit 2."""


@dataclasses.dataclass(frozen=True)
class Linear:
  """rl-zoo's `lin_<x>`: x at the start, decaying linearly to 0 at the end
  (or, `zero_at` > 1, at that multiple of the run: the start of a longer one)."""
  initial: float
  zero_at: float = 1.0

  def __call__(self, progress_remaining: float) -> float:
    """SB3's schedule interface: progress_remaining goes 1 -> 0 over the run."""
    return self.initial * max(0.0, 1.0 - (1.0 - progress_remaining) / self.zero_at)


@dataclasses.dataclass(frozen=True)
class ZooSettings:
  """An rl-zoo entry split into what this script does with it."""
  n_envs: int
  n_timesteps: int
  policy: str
  normalize: Optional[dict]  # VecNormalize's arguments; None: no normalization
  noise: Optional[tuple]  # (noise_type, std)
  model_kwargs: dict  # the algorithm's constructor arguments; schedules as `Linear`
  env_kwargs: dict = dataclasses.field(default_factory=dict)  # gym.make's
  env_wrappers: tuple = ()  # ((class name, kwargs), ...), innermost first
  frame_stack: Optional[int] = None  # VecFrameStack's n_stack


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


def parse_env_wrappers(value) -> tuple:
  """rl-zoo's `env_wrapper`: a class name, or a list of names and {name:
  kwargs} dicts, innermost first; the names of `ENV_WRAPPERS` only."""
  items = [value] if isinstance(value, (str, dict)) else value
  if not isinstance(items, list) or not items:
    raise SettingsError(f"env_wrapper={value!r} is neither a class name nor a list of them")
  wrappers = []
  for item in items:
    if isinstance(item, dict):
      if len(item) != 1:
        raise SettingsError(f"env_wrapper item {item!r} is not one {{name: kwargs}}")
      (name, kwargs), = item.items()
      kwargs = parse_kwargs(f"env_wrapper {name}", kwargs if kwargs is not None else {}, {})
    else:
      name, kwargs = item, {}
    if name not in ENV_WRAPPERS:
      raise SettingsError(f"env_wrapper {name!r} is not supported by sb3_reference.py "
                          f"(supported: {', '.join(ENV_WRAPPERS)})")
    wrappers.append((name, kwargs))
  return tuple(wrappers)


def override_entry(entry: Mapping[str, Any], overrides) -> dict:
  """The entry with `key=value` overrides (a Python literal, else the text)."""
  entry = dict(entry)
  for override in overrides:
    key, equals, text = override.partition("=")
    if not equals or not key.strip():
      raise SettingsError(f"--hyperparams {override!r} is not key=value")
    try:
      value = ast.literal_eval(text.strip())
    except (SyntaxError, ValueError):
      value = text.strip()
    entry[key.strip()] = value
  return entry


def full_run_schedules(model_kwargs: Mapping[str, Any], n_timesteps: int,
                       budget: int) -> dict:
  """The constructor arguments of a `budget`-step run that is the start of an
  `n_timesteps` one: SB3 paces schedules by the learn() call's steps, so
  `Linear` schedules reach 0 at n_timesteps / budget of the run and DQN's
  exploration_fraction grows by the same factor."""
  stretch = n_timesteps / budget
  kwargs = {key: dataclasses.replace(v, zero_at=v.zero_at * stretch) if isinstance(v, Linear)
            else v for key, v in model_kwargs.items()}
  if "exploration_fraction" in kwargs:
    kwargs["exploration_fraction"] = float(kwargs["exploration_fraction"]) * stretch
  return kwargs


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
  env_kwargs = parse_kwargs("env_kwargs", entry.pop("env_kwargs", {}), {})
  env_wrappers = parse_env_wrappers(entry.pop("env_wrapper")) if "env_wrapper" in entry else ()
  frame_stack = entry.pop("frame_stack", None)
  if frame_stack is not None and (isinstance(frame_stack, bool) or
                                  not isinstance(frame_stack, int) or frame_stack < 1):
    raise SettingsError(f"frame_stack={frame_stack!r} is not a positive integer")
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
  return ZooSettings(int(n_envs), int(n_timesteps), policy, normalize, noise, entry, env_kwargs,
                     env_wrappers, frame_stack)


def algorithm_class(algo: str):
  import sb3_contrib  # pylint: disable=import-outside-toplevel
  import stable_baselines3 as sb3  # pylint: disable=import-outside-toplevel
  return dict(ppo=sb3.PPO, a2c=sb3.A2C, dqn=sb3.DQN, ddpg=sb3.DDPG, td3=sb3.TD3, sac=sb3.SAC,
              trpo=sb3_contrib.TRPO)[algo]


def zoo_entry(algo: str, env_id: str) -> dict:
  """rl-zoo's entry for `env_id`, else this script's own (`OWN_ENTRIES`)."""
  import rl_zoo3  # pylint: disable=import-outside-toplevel
  import yaml  # pylint: disable=import-outside-toplevel
  path = os.path.join(os.path.dirname(rl_zoo3.__file__), "hyperparams", f"{algo}.yml")
  with open(path) as f:
    entries = yaml.safe_load(f)
  if env_id not in entries and env_id in OWN_ENTRIES.get(algo, {}):
    return dict(OWN_ENTRIES[algo][env_id])
  if env_id not in entries:
    raise SettingsError(f"rl-zoo has no {algo} hyperparameters for {env_id} ({path})")
  return entries[env_id]


def register_envs(env_id: str) -> None:
  """ALE's and MinAtar's ids are registered by their packages on request."""
  # pylint: disable=import-outside-toplevel
  import gymnasium as gym
  namespace, package = env_id.partition("/")[0], None
  try:
    if namespace == "ALE":
      package = "ale-py opencv-python-headless"
      import ale_py
      import cv2  # noqa: F401  (AtariWrapper's resize)
      ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
      gym.register_envs(ale_py)
    elif namespace == "MinAtar":
      package = "minatar"
      from minatar import gym as minatar_gym
      if "MinAtar/Breakout-v1" not in gym.registry:
        minatar_gym.register_envs()
  except ImportError as e:
    raise SettingsError(f"--env={env_id} needs {package} ({e}): pip install {package}") from None


def minatar_cnn():
  """MinAtar's network body (Young & Tian 2019; tfrl's MINATAR_CONV): one
  16-filter 3x3 conv, stride 1, no padding, relu, flattened. MinAtar's
  observations are [10, 10, k] bool channels last (not an image to SB3, so
  neither scaled nor transposed)."""
  # pylint: disable=import-outside-toplevel
  import torch
  from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

  class MinAtarCNN(BaseFeaturesExtractor):
    """Conv(16, 3x3) + relu + flatten over channels-last [H, W, k]."""

    def __init__(self, observation_space):
      height, width, channels = observation_space.shape
      super().__init__(observation_space, features_dim=16 * (height - 2) * (width - 2))
      self.conv = torch.nn.Sequential(torch.nn.Conv2d(channels, 16, 3, 1), torch.nn.ReLU(),
                                      torch.nn.Flatten())

    def forward(self, observations):
      return self.conv(observations.float().permute(0, 3, 1, 2))

  return MinAtarCNN


def wrapper_class(wrappers, evaluation: bool):
  """make_vec_env's wrapper_class: `wrappers` innermost first, with their
  evaluation arguments (`ENV_WRAPPERS`) for evaluation envs; None if none."""
  import importlib  # pylint: disable=import-outside-toplevel
  import inspect  # pylint: disable=import-outside-toplevel
  if not wrappers:
    return None
  classes = []
  for name, kwargs in wrappers:
    module, _, attribute = name.rpartition(".")
    cls = getattr(importlib.import_module(module), attribute)
    unknown = set(kwargs) - set(inspect.signature(cls).parameters)
    if unknown:
      raise SettingsError(f"env_wrapper {name} has no argument {', '.join(sorted(unknown))}")
    kwargs = dict(kwargs, **ENV_WRAPPERS[name]) if evaluation else dict(kwargs)
    classes.append((cls, kwargs))

  def wrap(env):
    for cls, kwargs in classes:
      env = cls(env, **kwargs)
    return env

  return wrap


def check_wrappers(wrappers, env_id: str, env_kwargs: Mapping[str, Any]) -> None:
  """AtariWrapper skips frames itself: under an env that skips too (the
  ALE/...-v5 ids' frameskip=4) it would act every 16 frames."""
  import gymnasium as gym  # pylint: disable=import-outside-toplevel
  for name, kwargs in wrappers:
    if name == ATARI_WRAPPER and kwargs.get("frame_skip", 4) > 1:
      frameskip = dict(gym.spec(env_id).kwargs, **env_kwargs).get("frameskip", 1)
      if frameskip != 1:
        raise SettingsError(f"AtariWrapper skips frames itself, but {env_id} skips {frameskip} "
                            f"per step: give --env_kwargs=\"dict(frameskip=1)\"")


def run(args) -> dict:
  """One training run; prints the evaluation lines, returns the summary."""
  # pylint: disable=import-outside-toplevel
  import gymnasium as gym
  import inspect
  import numpy as np
  import torch
  from stable_baselines3.common.callbacks import BaseCallback
  from stable_baselines3.common.env_util import make_vec_env
  from stable_baselines3.common.evaluation import evaluate_policy
  from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
  from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
  from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize, \
      sync_envs_normalization

  register_envs(args.env)
  try:
    gym.spec(args.env)
  except gym.error.Error as e:
    raise SettingsError(f"--env={args.env}: {e}") from None
  if args.torch_threads:
    torch.set_num_threads(args.torch_threads)  # as rl-zoo's train.py --num-threads
  cls = algorithm_class(args.algo)
  entry = override_entry(zoo_entry(args.algo, args.hyperparams_env or args.env), args.hyperparams)
  settings = zoo_settings(entry, inspect.signature(cls).parameters,
                          dict(nn=torch.nn, th=torch, RMSpropTFLike=RMSpropTFLike,
                               MinAtarCNN=minatar_cnn()))
  total_steps = args.total_steps or settings.n_timesteps
  if args.max_steps:
    total_steps = min(total_steps, args.max_steps)
  env_kwargs = dict(settings.env_kwargs,
                    **parse_kwargs("--env_kwargs", args.env_kwargs or "dict()", {}))
  check_wrappers(settings.env_wrappers, args.env, env_kwargs)

  def make_env(n_envs, seed, evaluation):
    vec_env = make_vec_env(args.env, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs,
                           wrapper_class=wrapper_class(settings.env_wrappers, evaluation))
    return VecFrameStack(vec_env, settings.frame_stack) if settings.frame_stack else vec_env

  env = make_env(settings.n_envs, args.seed, evaluation=False)
  eval_env = make_env(args.eval_episodes, args.seed + 10_000, evaluation=True)
  if settings.normalize is not None:
    env = VecNormalize(env, **settings.normalize)
    eval_env = VecNormalize(eval_env, **dict(settings.normalize, training=False,
                                             norm_reward=False))
  model_kwargs = settings.model_kwargs
  if args.full_schedules:
    model_kwargs = full_run_schedules(model_kwargs, settings.n_timesteps, total_steps)
  kwargs = dict(model_kwargs)
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
      began = time.perf_counter()
      mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=args.eval_episodes,
                                deterministic=True)
      row = dict(env_steps=int(self.num_timesteps), avg_return=float(mean),
                 wall_s=time.perf_counter() - self.start,
                 eval_s=time.perf_counter() - began)
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
              updates=int(getattr(model, "_n_updates", 0)),
              eval_s=sum(row["eval_s"] for row in evaluations),
              hyperparams={key: repr(v) for key, v in entry.items()})


def main():
  parser = _cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--algo", required=True, choices=ALGOS)
  parser.add_argument("--env", required=True, help="A gymnasium id.")
  parser.add_argument("--hyperparams_env", help="Read rl-zoo's entry of this id instead "
                      "(e.g. HalfCheetah-v4's for HalfCheetah-v5).")
  parser.add_argument("--env_kwargs", help="gym.make's arguments, a dict string, added to the "
                      "entry's env_kwargs (e.g. \"dict(frameskip=1)\" for ALE/...-v5 ids).")
  parser.add_argument("--hyperparams", action="append", default=[], metavar="KEY=VALUE",
                      help="Replaces (or adds) a key of the rl-zoo entry; repeatable.")
  parser.add_argument("--full_schedules", action="store_true",
                      help="Schedules paced by the entry's n_timesteps, not the budget: the "
                      "budget is the start of a full run.")
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
