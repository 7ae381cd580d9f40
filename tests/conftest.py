"""Shared fixtures: a deterministic gymnasium env whose observations say where they came from."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gin  # noqa: E402
import tfrl  # noqa: E402,F401


@pytest.fixture(autouse=True)
def fresh_gin_config():
  """Every test starts without another test's gin bindings (tests that call
  tfrl.train.train with settings alone would otherwise inherit them)."""
  gin.clear_config()
  yield


class CountingEnv(gym.Env):
  """Observation = [env id, episode number, step in episode]; reward = step + 1.

  The env id is the reset seed (gymnasium's vector envs seed sub-env i with
  seed + i). Episode k of env e lasts 2 + (e + k) % 3 steps and ends
  *terminated*; a TimeLimit shorter than that makes it end *truncated*.
  """

  def __init__(self):
    self.observation_space = gym.spaces.Box(0, 1e6, (3,), np.float32)
    self.action_space = gym.spaces.Discrete(2)
    self.env_id = 0
    self.episode = -1
    self.t = 0

  def reset(self, *, seed=None, options=None):
    super().reset(seed=seed)
    if seed is not None:
      self.env_id = seed
    self.episode += 1
    self.t = 0
    return self._obs(), {}

  def step(self, action):
    self.t += 1
    terminated = self.t >= 2 + (self.env_id + self.episode) % 3
    return self._obs(), float(self.t), terminated, False, {}

  def _obs(self):
    return np.array([self.env_id, self.episode, self.t], dtype=np.float32)


if "tfrl-test/Counting-v0" not in gym.registry:
  gym.register("tfrl-test/Counting-v0", entry_point=CountingEnv)


@pytest.fixture
def counting_env_id():
  return "tfrl-test/Counting-v0"
