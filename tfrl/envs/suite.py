"""`load`: any gymnasium id as a tf-agents PyEnvironment, single or batched."""

import difflib
import functools
import os
import warnings
from typing import Any, Dict, Optional

import gin
import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from tfrl.envs import atari, mujoco_setup
from tfrl.envs.gymnasium_env import GymnasiumEnvironment, VectorGymnasiumEnvironment
from tfrl.errors import ConfigError

VECTORIZATION_MODES = ("auto", "vector", "sync", "async")


# Packages that some environment families need and gymnasium does not install,
# by the top-level module that fails to import: (what it is, what to install).
# Box2D alone, not gymnasium[box2d]: that extra's pygame-ce would overwrite the
# pygame that tf-agents pins (both install the `pygame` module).
MISSING_PACKAGES = {
    "mujoco": ("MuJoCo", "mujoco"),
    "Box2D": ("Box2D", "box2d"),
    "ale_py": ("Atari (ale-py)", "ale-py"),
    "cv2": ("OpenCV", "opencv-python-headless"),
    "minatar": ("MinAtar", "minatar"),
}


def _missing_package_error(env_id: str, error: Exception) -> ConfigError:
  import_error = error if isinstance(error, ImportError) else error.__cause__
  module = getattr(import_error, "name", None) or ""
  known = MISSING_PACKAGES.get(module.split(".")[0])
  if known is not None:
    what, package = known
    return ConfigError(f"environment {env_id!r} needs {what}: pip install {package}")
  if isinstance(error, gym.error.DependencyNotInstalled):
    return ConfigError(f"environment {env_id!r} needs a package that is not installed: {error}")
  if isinstance(error, ModuleNotFoundError):
    return ConfigError(f"environment {env_id!r} needs the Python module {module!r}, "
                       f"which is not installed")
  return ConfigError(f"environment {env_id!r} cannot be imported: {error}")


def _register_family(env_id: str) -> None:
  # Atari's and MinAtar's ids are registered by importing their packages
  # (tfrl.envs.atari), which is done on first use.
  known = atari.family(env_id)
  if known is None:
    return
  register, _ = known
  try:
    register()
  except ImportError as e:
    raise _missing_package_error(env_id, e) from None


def check_env_id(env_id: str) -> None:
  """Raises a one-line ConfigError if `env_id` cannot be made here.

  An unknown id names close matches; an id whose package is missing (MuJoCo,
  Box2D, Atari and the OpenCV its preprocessing needs, MinAtar, or anything
  gymnasium reports as DependencyNotInstalled) names what to pip install.
  Imports the env's module, not more.
  """
  _register_family(env_id)
  if env_id not in gym.registry:
    matches = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
    hint = f" Did you mean: {', '.join(matches)}?" if matches else ""
    raise ConfigError(f"unknown environment id {env_id!r}.{hint}")
  entry_point = gym.registry[env_id].entry_point
  if isinstance(entry_point, str):
    try:
      load_env_creator(entry_point)
    except (gym.error.DependencyNotInstalled, ImportError) as e:
      raise _missing_package_error(env_id, e) from None


@gin.configurable(module="tfrl.envs")
def load(env_id: str,
         seed: Optional[int] = None,
         num_envs: int = 1,
         max_episode_steps: Optional[int] = None,
         vectorization: str = "auto",
         render_mode: Optional[str] = None,
         env_kwargs: Optional[Dict[str, Any]] = None,
         training: bool = True):
  """Makes gymnasium env `env_id` as a tf-agents PyEnvironment.

  Args:
    env_id: a registered gymnasium id, e.g. "CartPole-v1".
    seed: seeds the first reset and the action space; None for fresh entropy.
    num_envs: 1 gives an unbatched environment (what tf-agents' drivers and
      tutorials expect); N > 1 gives a batched one stepping N envs at once.
    max_episode_steps: overrides the registered time limit.
    vectorization: for num_envs > 1: "vector" (gymnasium's numpy-vectorized
      implementation, e.g. CartPole's), "sync" (a loop in this process),
      "async" (one subprocess per env), or "auto" (vector where the env has
      one, else sync).
    render_mode: e.g. "rgb_array" for videos.
    env_kwargs: extra keyword arguments for the environment's constructor.
    training: an env to collect experience in (True) or to evaluate on
      (False: the train loop's evaluation env, test_policy.py). Only families
      with training-only preprocessing differ: Atari's training envs end an
      episode at each lost life and clip rewards; its evaluation envs play
      whole games and report the raw score.

  `ALE/...` ids get the Atari preprocessing (`tfrl.envs.Atari`, gin-bound),
  `MinAtar/...` ids MinAtar's (`tfrl.envs.MinAtar`); with num_envs > 1
  each env is wrapped alone ("auto" is "sync"; they have no "vector" mode).
  """
  check_env_id(env_id)
  if num_envs < 1:
    raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
  if vectorization not in VECTORIZATION_MODES:
    raise ConfigError(f"vectorization must be one of {VECTORIZATION_MODES}, got {vectorization!r}")
  known = atari.family(env_id)
  if known is not None:
    _, settings = known
    make = functools.partial(settings().make, env_id, training, max_episode_steps, render_mode,
                             env_kwargs)
    return _family_environment(env_id, make, seed, num_envs, vectorization)
  kwargs = dict(env_kwargs or {})
  if max_episode_steps is not None:
    kwargs["max_episode_steps"] = max_episode_steps
  if render_mode is not None:
    kwargs["render_mode"] = render_mode
    # pygame renders the classic-control envs and opens a sound device on
    # init; servers and containers have none (ALSA errors otherwise).
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
  with warnings.catch_warnings(), mujoco_setup.quiet_model_deprecations():
    # Old ids such as CartPole-v0 stay usable without a deprecation warning per env.
    warnings.simplefilter("ignore", DeprecationWarning)
    if num_envs == 1:
      return GymnasiumEnvironment(gym.make(env_id, **kwargs), seed=seed)
    mode = {"auto": None, "vector": "vector_entry_point"}.get(vectorization, vectorization)
    if mode == "vector_entry_point" and gym.spec(env_id).vector_entry_point is None:
      raise ConfigError(f"{env_id} has no numpy-vectorized implementation; use 'sync' or 'async'")
    vector_env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **kwargs)
  return VectorGymnasiumEnvironment(vector_env, seed=seed)


def _family_environment(env_id: str, make, seed: Optional[int], num_envs: int,
                        vectorization: str):
  """The env `make()` builds, alone or as num_envs of them."""
  if vectorization == "vector":
    raise ConfigError(f"{env_id} is preprocessed env by env in tfrl; use vectorization "
                      f"'sync' or 'async'")
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    if num_envs == 1:
      return GymnasiumEnvironment(make(), seed=seed)
    vector = gym.vector.AsyncVectorEnv if vectorization == "async" else gym.vector.SyncVectorEnv
    vector_env = vector([make] * num_envs, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
  return VectorGymnasiumEnvironment(vector_env, seed=seed)
