"""Atari 2600 (ale-py) and MinAtar games with the standard preprocessing.

`tfrl.envs.load` builds every `ALE/...` id through `Atari` and every
`MinAtar/...` id through `MinAtar`; both are gin-configurable settings
(`tfrl.envs.Atari.noop_max = 0`, `tfrl.envs.MinAtar.sticky_action_prob = 0`)
whose `make(env_id, training, ...)` returns the wrapped gymnasium env.

Atari, inner to outer (Machado et al. 2018; Dopamine; SB3's AtariWrapper):

  ALE env at frameskip=1, sticky actions `repeat_action_probability`,
    minimal or full action set
  gymnasium AtariPreprocessing: up to `noop_max` no-ops after a real reset,
    `frame_skip` frames per step with the max over the last two (grayscale)
    frames, resized to `screen_size`² with OpenCV's INTER_AREA
  TimeLimit (load's max_episode_steps, in agent steps, across lives)
  EpisodicLife (training): a lost life ends the learner's episode; the game goes on
  FireReset: FIRE after every reset, on games whose action set has FIRE
  gymnasium ClipReward to [-1, 1] (training)
  gymnasium FrameStackObservation (`frame_stack`, zero-padded after a reset),
    channels last: uint8 [84, 84, 4]

Evaluation (`training=False`) drops EpisodicLife and ClipReward: its
episodes are whole games and its returns the raw game score.
"""

import dataclasses
from typing import Any, Dict, Optional

import gin
import gymnasium as gym
import numpy as np

from tfrl.checks import Count, Fraction, NonNegativeInt, check_fields
from tfrl.errors import ConfigError

ATARI_NAMESPACE = "ALE"
MINATAR_NAMESPACE = "MinAtar"
STACK_PADDINGS = ("zero", "reset")
# What the base ALE env is given by `Atari` itself; env_kwargs may not set them.
_ATARI_OWN_KWARGS = {"frameskip": "frame_skip",
                     "repeat_action_probability": "repeat_action_probability",
                     "full_action_space": "full_action_space",
                     "max_num_frames_per_episode": "max_episode_frames"}


def register_atari() -> None:
  """Registers ale-py's ids with gymnasium (1.x no longer does it itself) and
  keeps ALE's banner ("A.L.E: Arcade Learning Environment ...") off the
  console; ALE's errors still print. ImportError if ale-py (or OpenCV, which
  the preprocessing needs) is missing."""
  import ale_py  # pylint: disable=import-outside-toplevel
  import cv2  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
  gym.register_envs(ale_py)


def register_minatar() -> None:
  """Registers MinAtar's ids (`MinAtar/Breakout-v0` full action set, `-v1`
  minimal, likewise Asterix, Freeway, Seaquest, SpaceInvaders): the package
  has `minatar.gym.register_envs` but does not call it on import."""
  from minatar import gym as minatar_gym  # pylint: disable=import-outside-toplevel
  if f"{MINATAR_NAMESPACE}/Breakout-v1" not in gym.registry:
    minatar_gym.register_envs()


def _check_fields(settings) -> None:
  check_fields(settings, f"tfrl.envs.{type(settings).__name__}")


class EpisodicLife(gym.Wrapper):
  """A lost life ends the episode (terminated: no future value) while the game
  goes on: the reset that follows continues the same game with one no-op
  step; only game over (or a truncation, or a reset with a seed) resets the
  game. SB3's EpisodicLifeEnv; Dopamine's terminal_on_life_loss with its
  runner. gymnasium's AtariPreprocessing(terminal_on_life_loss=True) resets
  the whole game instead, so it is not used."""

  def __init__(self, env: gym.Env):
    super().__init__(env)
    self.lives = 0
    self.game_over = True

  def step(self, action):
    observation, reward, terminated, truncated, info = self.env.step(action)
    self.game_over = terminated or truncated
    lives = self.env.unwrapped.ale.lives()
    if 0 < lives < self.lives:
      terminated = True
    self.lives = lives
    return observation, reward, terminated, truncated, info

  def reset(self, *, seed=None, options=None):
    if self.game_over or seed is not None:
      observation, info = self.env.reset(seed=seed, options=options)
    else:
      observation, _, terminated, truncated, info = self.env.step(0)  # NOOP
      if terminated or truncated:
        observation, info = self.env.reset(options=options)
    self.game_over = False
    self.lives = self.env.unwrapped.ale.lives()
    return observation, info


class FireReset(gym.Wrapper):
  """FIRE once after every reset, for games that wait for it (Breakout's
  ball is served by FIRE). SB3's FireResetEnv presses FIRE and then action
  2 (baselines' habit, which serves no game that FIRE alone does not); this
  presses FIRE only. The step's reward is dropped, as SB3's is."""

  def __init__(self, env: gym.Env):
    super().__init__(env)
    self.fire = env.unwrapped.get_action_meanings().index("FIRE")

  def reset(self, *, seed=None, options=None):
    self.env.reset(seed=seed, options=options)
    observation, _, terminated, truncated, info = self.env.step(self.fire)
    if terminated or truncated:
      observation, info = self.env.reset(options=options)
    return observation, info


def _channels_last(observation):
  return np.ascontiguousarray(np.moveaxis(observation, 0, -1))


def needs_fire(env: gym.Env) -> bool:
  """Whether FireReset applies: the game's action set has FIRE (SB3's rule)."""
  return "FIRE" in env.unwrapped.get_action_meanings()


@gin.configurable(module="tfrl.envs")
@dataclasses.dataclass(frozen=True)
class Atari:
  """The Atari preprocessing's settings (defaults: Machado et al.'s sticky
  actions and minimal action set, the v5 ids' own; the Nature/SB3 pipeline
  on top). `terminal_on_life_loss` and `clip_rewards` apply to training
  envs only; evaluation sees whole games and raw scores."""
  noop_max: NonNegativeInt = 30
  frame_skip: Count = 4
  screen_size: Count = 84
  frame_stack: Count = 4
  terminal_on_life_loss: bool = True
  fire_reset: bool = True
  clip_rewards: bool = True
  repeat_action_probability: Fraction = 0.25
  full_action_space: bool = False
  stack_padding: str = "zero"
  # ALE's own cut, in emulator frames (the v5 ids' 108,000 = 27,000 agent
  # steps, 30 minutes of play): what ends a greedy policy's game that stalls
  # (Breakout's ball waits for FIRE after a lost life).
  max_episode_frames: Count = 108_000

  def __post_init__(self):
    _check_fields(self)
    if self.stack_padding not in STACK_PADDINGS:
      raise ConfigError(f"tfrl.envs.Atari.stack_padding = {self.stack_padding!r}: "
                        f"must be one of {STACK_PADDINGS}")

  def make(self, env_id: str, training: bool = True, max_episode_steps: Optional[int] = None,
           render_mode: Optional[str] = None,
           env_kwargs: Optional[Dict[str, Any]] = None) -> gym.Env:
    """The preprocessed gymnasium env of `env_id` (an `ALE/...` id)."""
    kwargs = dict(env_kwargs or {})
    for key, setting in _ATARI_OWN_KWARGS.items():
      if key in kwargs:
        raise ConfigError(f"env_kwargs {key!r} is set by tfrl's Atari preprocessing: "
                          f"bind tfrl.envs.Atari.{setting} instead")
    if render_mode is not None:
      kwargs["render_mode"] = render_mode
    # frameskip=1: AtariPreprocessing skips (and max-pools) itself; the v5
    # ids' own frameskip=4 would skip 16 frames per step.
    env = gym.make(env_id, frameskip=1, repeat_action_probability=self.repeat_action_probability,
                   full_action_space=self.full_action_space,
                   max_num_frames_per_episode=self.max_episode_frames, **kwargs)
    env = gym.wrappers.AtariPreprocessing(
        env, noop_max=self.noop_max, frame_skip=self.frame_skip, screen_size=self.screen_size,
        terminal_on_life_loss=False, grayscale_obs=True)
    if max_episode_steps is not None:
      env = gym.wrappers.TimeLimit(env, max_episode_steps)
    if training and self.terminal_on_life_loss:
      env = EpisodicLife(env)
    if self.fire_reset and needs_fire(env):
      env = FireReset(env)
    if training and self.clip_rewards:
      env = gym.wrappers.ClipReward(env, -1.0, 1.0)
    env = gym.wrappers.FrameStackObservation(env, self.frame_stack,
                                             padding_type=self.stack_padding)
    size = self.screen_size
    env = gym.wrappers.TransformObservation(
        env, _channels_last,
        gym.spaces.Box(0, 255, (size, size, self.frame_stack), np.uint8))
    # A render per agent step: the console's 60 frames/s, skipped (real-time videos).
    env.metadata = dict(env.metadata, render_fps=60 / self.frame_skip)
    return env


@gin.configurable(module="tfrl.envs")
@dataclasses.dataclass(frozen=True)
class MinAtar:
  """MinAtar's settings (Young & Tian 2019's defaults: sticky actions 0.1,
  difficulty ramping). Observations are the game's 10x10xk binary channels
  as uint8 (MinAtar gives bool); no frame stack, skip or clipping (the
  paper's protocol), so training and evaluation envs are the same."""
  sticky_action_prob: Fraction = 0.1
  difficulty_ramping: bool = True

  def __post_init__(self):
    _check_fields(self)

  def make(self, env_id: str, training: bool = True, max_episode_steps: Optional[int] = None,
           render_mode: Optional[str] = None,
           env_kwargs: Optional[Dict[str, Any]] = None) -> gym.Env:
    """The gymnasium env of `env_id` (a `MinAtar/...` id)."""
    del training
    kwargs = dict(dict(sticky_action_prob=self.sticky_action_prob,
                       difficulty_ramping=self.difficulty_ramping), **(env_kwargs or {}))
    if max_episode_steps is not None:
      kwargs["max_episode_steps"] = max_episode_steps
    if render_mode is not None:
      kwargs["render_mode"] = render_mode
    return gym.wrappers.DtypeObservation(gym.make(env_id, **kwargs), np.uint8)


# By id namespace: (registration, settings class).
FAMILIES = {ATARI_NAMESPACE: (register_atari, Atari),
            MINATAR_NAMESPACE: (register_minatar, MinAtar)}


def family(env_id: str):
  """(registration, settings class) of `env_id`'s family, or None."""
  namespace = env_id.split("/", 1)[0] if "/" in env_id else None
  return FAMILIES.get(namespace)
