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
    terminated = self.t >= self._length()
    return self._obs(), float(self.t), terminated, False, {}

  def _length(self):
    return 2 + (self.env_id + self.episode) % 3

  def _obs(self):
    return np.array([self.env_id, self.episode, self.t], dtype=np.float32)


if "tfrl-test/Counting-v0" not in gym.registry:
  gym.register("tfrl-test/Counting-v0", entry_point=CountingEnv)


@pytest.fixture
def counting_env_id():
  return "tfrl-test/Counting-v0"


class CountingFramesEnv(CountingEnv):
  """CountingEnv's story as 6x6 uint8 frames: pixel (0, 0) = env id, (0, 1) =
  episode, (0, 2) = step, the rest noise from the env's seed. Episode k of
  env e lasts shortest + (e + k) % 5 steps (by default shorter and longer
  than a 4-stack)."""

  def __init__(self, size: int = 6, shortest: int = 1):
    super().__init__()
    self.shortest = shortest
    self.observation_space = gym.spaces.Box(0, 255, (size, size), np.uint8)

  def _length(self):
    return self.shortest + (self.env_id + self.episode) % 5

  def _obs(self):
    frame = self.np_random.integers(0, 256, self.observation_space.shape, dtype=np.uint8)
    frame[0, :3] = (self.env_id, self.episode, self.t)
    return frame


def stacked_counting_frames(frame_stack: int = 4, padding_type: str = "zero", size: int = 6,
                            shortest: int = 1):
  """CountingFramesEnv stacked as tfrl's Atari frames are: channels last, zero-padded."""
  env = gym.wrappers.FrameStackObservation(CountingFramesEnv(size, shortest), frame_stack,
                                           padding_type=padding_type)
  return gym.wrappers.TransformObservation(
      env, lambda obs: np.ascontiguousarray(np.moveaxis(obs, 0, -1)),
      gym.spaces.Box(0, 255, (size, size, frame_stack), np.uint8))


if "tfrl-test/CountingFrames-v0" not in gym.registry:
  gym.register("tfrl-test/CountingFrames-v0", entry_point=stacked_counting_frames)


@pytest.fixture
def counting_frames_env_id():
  return "tfrl-test/CountingFrames-v0"


@pytest.fixture
def as_trajectory():
  """Transitions (observation, action, reward, discount, next_observation;
  each [B, ...]) as the [B, 2] Trajectory tf-agents' DQN and actor-critic
  agents train on."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tf_agents.trajectories import time_step as ts  # pylint: disable=import-outside-toplevel
  from tf_agents.trajectories import trajectory  # pylint: disable=import-outside-toplevel

  def convert(batch):
    mid = tf.fill(tf.shape(batch["reward"])[:1], tf.constant(ts.StepType.MID, tf.int32))
    pair = lambda first, second: tf.stack([first, second], axis=1)
    return trajectory.Trajectory(
        pair(mid, mid), pair(batch["observation"], batch["next_observation"]),
        pair(batch["action"], batch["action"]), (), pair(mid, mid),
        pair(batch["reward"], tf.zeros_like(batch["reward"])),
        pair(batch["discount"], tf.ones_like(batch["discount"])))
  return convert
