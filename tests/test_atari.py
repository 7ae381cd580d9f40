"""Atari and MinAtar through tfrl.envs.load, and the CNN agents on their specs.

The preprocessing is checked against the standard pipeline written out here
on the raw ALE env (Dopamine's and gymnasium's AtariPreprocessing logic; SB3's
episodic life and fire reset), frame for frame and reward for reward.
"""

import os
import re
import subprocess
import sys

import cv2
import gin
import gymnasium as gym
import imageio
import numpy as np
import pytest
import tensorflow as tf
import tree
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

import tfrl
from tfrl import envs
from tfrl.errors import ConfigError
from tfrl.train import config
from test_envs import without_module

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STEPS = 300


class ReferencePipeline:
  """The Atari preprocessing written out on the raw ALE env (frameskip=1):
  1-30 no-ops from the env's np_random after a real reset; 4 frames per step,
  the last two grayscale screens max-pooled (buffers kept across steps, as
  Dopamine's and gymnasium's are), INTER_AREA to 84x84; FIRE after each
  reset; in training a lost life ends the episode and the next reset goes on
  with one no-op step, and rewards are clipped to [-1, 1]; 4 frames stacked
  channels-last, zero-padded after each reset."""

  def __init__(self, env_id: str, training: bool, sticky: float = 0.25):
    self.env = gym.make(env_id, frameskip=1, repeat_action_probability=sticky)
    self.ale = self.env.unwrapped.ale
    self.training = training
    self.fire = "FIRE" in self.env.unwrapped.get_action_meanings()
    self.buffers = [np.zeros((210, 160), np.uint8), np.zeros((210, 160), np.uint8)]
    self.game_over = True
    self.lives = 0
    self.stack = []

  def _frame(self):
    pooled = np.maximum(self.buffers[0], self.buffers[1])
    self.buffers[0] = pooled
    return cv2.resize(pooled, (84, 84), interpolation=cv2.INTER_AREA)

  def _skip(self, action):
    total, terminated, truncated = 0.0, False, False
    for t in range(4):
      _, reward, terminated, truncated, _ = self.env.step(action)
      total += reward
      if terminated or truncated:
        break
      if t == 2:
        self.buffers[1] = self.ale.getScreenGrayscale()
      elif t == 3:
        self.buffers[0] = self.ale.getScreenGrayscale()
    return self._frame(), total, terminated, truncated

  def _real_reset(self, seed=None):
    self.env.reset(seed=seed)
    for _ in range(self.env.unwrapped.np_random.integers(1, 31)):
      _, _, terminated, truncated, _ = self.env.step(0)
      if terminated or truncated:
        self.env.reset()
    self.buffers[0] = self.ale.getScreenGrayscale()
    self.buffers[1] = np.zeros_like(self.buffers[0])
    return self._frame()

  def _life_reset(self, seed=None):
    if not self.training or self.game_over or seed is not None:
      frame = self._real_reset(seed)
    else:
      frame, _, terminated, truncated = self._skip(0)
      if terminated or truncated:
        frame = self._real_reset()
    self.game_over = False
    self.lives = self.ale.lives()
    return frame

  def reset(self, seed=None):
    frame = self._life_reset(seed)
    if self.fire:
      frame, _, terminated, truncated = self._skip(1)
      if terminated or truncated:
        frame = self._life_reset()
    self.stack = [np.zeros_like(frame)] * 3 + [frame]
    return np.stack(self.stack, -1)

  def step(self, action):
    frame, reward, terminated, truncated = self._skip(action)
    self.game_over = terminated or truncated
    if self.training:
      lives = self.ale.lives()
      terminated = terminated or 0 < lives < self.lives
      self.lives = lives
      reward = float(np.clip(reward, -1, 1))
    self.stack = self.stack[1:] + [frame]
    return np.stack(self.stack, -1), reward, terminated, truncated


@pytest.mark.parametrize("env_id,training", [
    ("ALE/Breakout-v5", True),        # lives, FIRE, episodic life
    ("ALE/Breakout-v5", False),       # whole games
    ("ALE/SpaceInvaders-v5", True),   # rewards 5-30, clipped
])
def test_preprocessing_matches_the_pipeline_written_out(env_id, training):
  env = envs.load(env_id, seed=3, training=training)
  reference = ReferencePipeline(env_id, training)
  actions = np.random.default_rng(0).integers(env.action_spec().maximum + 1, size=STEPS)
  step = env.reset()
  np.testing.assert_array_equal(step.observation, reference.reset(seed=3))
  ends = rewarded = 0
  for action in actions:
    if step.is_last():
      step = env.step(np.int64(action))  # tf-agents' auto-reset: the action is ignored
      assert step.is_first()
      np.testing.assert_array_equal(step.observation, reference.reset())
      continue
    step = env.step(np.int64(action))
    observation, reward, terminated, truncated = reference.step(action)
    np.testing.assert_array_equal(step.observation, observation)
    assert step.reward == reward
    assert bool(step.is_last()) == (terminated or truncated)
    ends += int(step.is_last())
    rewarded += int(reward != 0)
  # The run went through what it is meant to check: lost lives (training)
  # or a game over (evaluation), and rewards.
  assert ends >= (2 if training else 1) and rewarded >= 2


def lives_of(env):
  return env.gym.unwrapped.ale.lives()


def test_a_lost_life_ends_a_training_episode_but_not_an_evaluation_one():
  rng = np.random.default_rng(0)
  train = envs.load("ALE/Breakout-v5", seed=0)
  step, frames = train.reset(), []
  assert lives_of(train) == 5
  while not step.is_last():
    step = train.step(np.int64(rng.integers(4)))
  assert lives_of(train) == 4 and step.discount == 0.0  # terminated for the learner
  frame_number = train.gym.unwrapped.ale.getEpisodeFrameNumber()
  assert train.step(np.int64(0)).is_first()
  # The same game goes on: no reset of the emulator's episode.
  assert lives_of(train) == 4
  assert train.gym.unwrapped.ale.getEpisodeFrameNumber() > frame_number

  evaluation = envs.load("ALE/Breakout-v5", seed=0, training=False)
  step, lives_seen = evaluation.reset(), set()
  while not step.is_last():
    step = evaluation.step(np.int64(rng.integers(4)))
    lives_seen.add(lives_of(evaluation))
  assert lives_seen == {0, 1, 2, 3, 4, 5} and step.discount == 0.0  # game over


def test_rewards_are_clipped_in_training_only():
  # Same seed and actions: the two games agree until the first lost life.
  train = envs.load("ALE/SpaceInvaders-v5", seed=1)
  evaluation = envs.load("ALE/SpaceInvaders-v5", seed=1, training=False)
  train.reset(), evaluation.reset()
  rng = np.random.default_rng(1)
  train_rewards, raw_rewards = [], []
  while True:
    action = np.int64(rng.integers(6))
    step = train.step(action)
    if step.is_last():
      break
    train_rewards.append(float(step.reward))
    raw_rewards.append(float(evaluation.step(action).reward))
  raw = np.array(raw_rewards)
  assert raw.max() > 1  # the raw game score
  np.testing.assert_array_equal(train_rewards, np.clip(raw, -1, 1))


def steps_until_a_life_is_lost(env, limit: int) -> int:
  """NOOP only: how many steps until the first LAST (limit if none)."""
  env.reset()
  for n in range(1, limit + 1):
    if env.step(np.int64(0)).is_last():
      return n
  return limit


def test_fire_on_reset_serves_breakouts_ball():
  # The paddle stands still: the served ball is missed and a life lost.
  assert steps_until_a_life_is_lost(envs.load("ALE/Breakout-v5", seed=0), 200) < 200
  gin.bind_parameter("tfrl.envs.Atari.fire_reset", False)
  unserved = envs.load("ALE/Breakout-v5", seed=0)
  assert steps_until_a_life_is_lost(unserved, 200) == 200 and lives_of(unserved) == 5


def test_atari_specs_and_options():
  env = envs.load("ALE/Pong-v5", seed=0)
  observation = env.observation_spec()
  assert observation.shape == (84, 84, 4) and observation.dtype == np.uint8
  assert (observation.minimum.min(), observation.maximum.max()) == (0, 255)
  action = env.action_spec()
  assert action.dtype == np.int64 and (action.minimum, action.maximum) == (0, 5)
  step = env.step(np.int64(0))
  assert step.observation.shape == (84, 84, 4) and step.observation.dtype == np.uint8
  ale = env.gym.unwrapped.ale
  assert env.gym.unwrapped._frameskip == 1  # pylint: disable=protected-access
  assert ale.getFloat("repeat_action_probability") == pytest.approx(0.25)

  gin.bind_parameter("tfrl.envs.Atari.repeat_action_probability", 0.0)
  gin.bind_parameter("tfrl.envs.Atari.full_action_space", True)
  env = envs.load("ALE/Pong-v5", seed=0)
  assert env.action_spec().maximum == 17
  assert env.gym.unwrapped.ale.getFloat("repeat_action_probability") == 0.0


def test_atari_batched():
  env = envs.load("ALE/Breakout-v5", seed=0, num_envs=2)
  assert env.batched and env.batch_size == 2
  assert env.observation_spec().shape == (84, 84, 4)
  first = env.reset()
  assert first.observation.shape == (2, 84, 84, 4) and first.observation.dtype == np.uint8
  rng = np.random.default_rng(0)
  step_types = []
  for _ in range(60):
    step = env.step(rng.integers(4, size=2))
    step_types.append(step.step_type)
  step_types = np.array(step_types)
  # Both envs lost a life (episodic life), then went on with a FIRST step.
  for column in step_types.T:
    last = np.flatnonzero(column == ts.StepType.LAST)
    assert len(last) and column[last[0] + 1] == ts.StepType.FIRST
  with pytest.raises(ConfigError, match="'sync' or 'async'"):
    envs.load("ALE/Breakout-v5", num_envs=2, vectorization="vector")


def test_bad_atari_settings_are_one_line():
  gin.bind_parameter("tfrl.envs.Atari.frame_stack", 0)
  with pytest.raises(ConfigError) as raised:
    envs.load("ALE/Pong-v5")
  # The line scripts print (gin appends where the call came from).
  assert str(raised.value).splitlines()[0] == "tfrl.envs.Atari.frame_stack = 0: must be >= 1"
  gin.clear_config()
  with pytest.raises(ConfigError, match="bind tfrl.envs.Atari.frame_skip"):
    envs.load("ALE/Pong-v5", env_kwargs=dict(frameskip=4))


@pytest.mark.parametrize("env_id,channels,actions", [
    ("MinAtar/Breakout-v1", 4, 3), ("MinAtar/SpaceInvaders-v1", 6, 4), ("MinAtar/Seaquest-v0", 10, 6)])
def test_minatar_specs(env_id, channels, actions):
  env = envs.load(env_id, seed=0)
  observation = env.observation_spec()
  assert observation.shape == (10, 10, channels) and observation.dtype == np.uint8
  assert observation.maximum.max() == 1
  assert env.action_spec().maximum == actions - 1
  step = env.step(np.int64(0))
  assert step.observation.dtype == np.uint8 and set(np.unique(step.observation)) == {0, 1}
  batched = envs.load(env_id, seed=0, num_envs=2)
  assert batched.reset().observation.shape == (2, 10, 10, channels)


@pytest.mark.parametrize("env_id,module,message", [
    ("MinAtar/Breakout-v1", "minatar",
     "environment 'MinAtar/Breakout-v1' needs MinAtar: pip install minatar"),
    ("ALE/Pong-v5", "cv2",
     "environment 'ALE/Pong-v5' needs OpenCV: pip install opencv-python-headless"),
])
def test_missing_package_names_what_to_install(monkeypatch, env_id, module, message):
  without_module(monkeypatch, module, module)
  with pytest.raises(ConfigError) as raised:
    envs.check_env_id(env_id)
  assert str(raised.value) == message


@pytest.mark.parametrize("typo,match", [("ALE/Pongg-v5", "ALE/Pong-v5"),
                                        ("MinAtar/Breakot-v1", "MinAtar/Breakout-v1")])
def test_unknown_ids_name_close_matches(typo, match):
  with pytest.raises(ConfigError, match=rf"unknown environment id '{typo}'.*{match}"):
    envs.check_env_id(typo)


# -- networks --------------------------------------------------------------

def specs(env):
  return tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec())


def collect(env, policy, steps: int):
  """`steps` real env steps: a [1, steps] Trajectory."""
  recorded = []
  tfrl.drivers.Driver(env, policy, observers=[recorded.append]).run_steps(steps)
  return tree.map_structure(lambda *xs: tf.constant(np.concatenate(xs)[None]), *recorded)


def first_conv_inputs(network, monkeypatch):
  """Records what the network's first conv layer is called with."""
  convs = [m for m in network.submodules if isinstance(m, tf.keras.layers.Conv2D)]
  first = next(c for c in convs if c.kernel.shape[2] == 4)  # the one taking the 4 frames
  seen = []
  call = first.call
  monkeypatch.setattr(first, "call", lambda inputs, *a, **k: (seen.append(inputs), call(inputs, *a, **k))[1])
  return seen


def test_dqn_with_the_nature_cnn_trains_on_atari_frames(monkeypatch):
  env = envs.load("ALE/Breakout-v5", seed=0)
  gin.parse_config("tfrl.agents.dqn.conv_layer_params = %tfrl.networks.NATURE_DQN_CONV\n"
                   "tfrl.agents.dqn.fc_layer_params = (512,)")
  agent = tfrl.agents.dqn(*specs(env))
  q_network = agent.parts.q_network
  kernels = [v.shape.as_list() for v in q_network.trainable_variables if len(v.shape) > 1]
  assert kernels == [[8, 8, 4, 32], [4, 4, 32, 64], [3, 3, 64, 64], [7 * 7 * 64, 512], [512, 4]]
  experience = collect(env, agent.collect_policy, 6)
  batch = tree.map_structure(lambda x: tf.stack([x[0, :-1], x[0, 1:]], axis=1), experience)
  assert np.isfinite(agent.train(batch).loss.numpy())
  seen = first_conv_inputs(q_network, monkeypatch)
  q_network(experience.observation[0], training=False)
  assert seen and seen[0].dtype == tf.float32
  assert 0.0 <= float(tf.reduce_min(seen[0])) and 0.2 < float(tf.reduce_max(seen[0])) <= 1.0


def test_ppo_with_the_nature_cnn_trains_on_atari_frames(monkeypatch):
  env = envs.load("ALE/Breakout-v5", seed=0)
  agent = tfrl.agents.ppo(*specs(env), conv_layer_params=tfrl.networks.NATURE_DQN_CONV,
                          actor_fc_layer_params=(512,), value_fc_layer_params=(512,),
                          activation="relu", num_epochs=2, value_epochs=2)
  experience = collect(env, agent.collect_policy, 8)
  loss_info = agent.train(experience)
  assert np.isfinite(loss_info.loss.numpy()) and np.isfinite(loss_info.extra["value_loss"].numpy())
  for network in (agent._actor_net, agent._value_net):  # pylint: disable=protected-access
    seen = first_conv_inputs(network, monkeypatch)
    network(experience.observation[0], step_type=(), network_state=())
    assert 0.0 <= float(tf.reduce_min(seen[0])) and 0.2 < float(tf.reduce_max(seen[0])) <= 1.0


def test_minatar_cnn_sees_the_binary_channels_unscaled():
  env = envs.load("MinAtar/Breakout-v1", seed=0)
  agent = tfrl.agents.dqn(*specs(env), conv_layer_params=tfrl.networks.MINATAR_CONV,
                          fc_layer_params=(128,))
  layer = tfrl.networks.observation_preprocessing(env.observation_spec())
  assert layer.scale == 1.0
  experience = collect(env, agent.collect_policy, 4)
  batch = tree.map_structure(lambda x: tf.stack([x[0, :-1], x[0, 1:]], axis=1), experience)
  assert np.isfinite(agent.train(batch).loss.numpy())


def test_conv_layer_params_are_checked():
  env = envs.load("ALE/Pong-v5", seed=0)
  with pytest.raises(ConfigError, match=r"tfrl.agents.dqn.conv_layer_params = \[\(32, 8\)\]: must be"):
    tfrl.agents.dqn(*specs(env), conv_layer_params=[(32, 8)])
  with pytest.raises(ConfigError, match=r"tfrl.agents.ppo.conv_layer_params = .*: must be >= 1"):
    tfrl.agents.ppo(*specs(env), conv_layer_params=[(32, 0, 4)])


def wrappers_of(env):
  """The classes of a tfrl env's gymnasium wrapper chain, outermost first."""
  found, inner = [], env.gym
  while isinstance(inner, gym.Wrapper):
    found.append(type(inner))
    inner = inner.env
  return found


def test_the_train_loop_evaluates_on_whole_games_with_raw_scores():
  config = tfrl.train.RunConfig(env_id="ALE/Pong-v5", agent_fn=tfrl.agents.dqn,
                                replay=tfrl.replay.TransitionReplay())
  parts = tfrl.train.sources.build_parts(config, num_envs=1)
  try:
    training, evaluation = wrappers_of(parts.env), wrappers_of(parts.eval_env)
    assert {envs.atari.EpisodicLife, gym.wrappers.ClipReward} <= set(training)
    assert not {envs.atari.EpisodicLife, gym.wrappers.ClipReward} & set(evaluation)
    assert gym.wrappers.AtariPreprocessing in evaluation
  finally:
    parts.close()


# -- the ready file through the loop, and its video ------------------------

def test_dqn_atari_trains_on_frame_replay_and_its_video_is_the_raw_screen(tmp_path):
  """dqn_atari.gin at a tiny budget: the frame replay feeds the Nature-CNN
  DQN (finite losses), the run evaluates, checkpoints its replay and exports
  the policy; test_policy.py replays it with the run's Atari settings (here
  a 400-frame game, which ends evaluation episodes by ~100 steps; Pong's
  own games last longer) and records the raw 210x160 RGB screen."""
  root = str(tmp_path / "run")
  config.parse_config(["dqn_atari.gin"], [
      "tfrl.envs.Atari.max_episode_frames = 400", "tfrl.train.train.initial_collect_steps = 64",
      "tfrl.replay.TransitionReplay.min_size = 32", "tfrl.replay.TransitionReplay.capacity = 1000",
      "tfrl.train.train.num_iterations = 6", "tfrl.train.train.eval_interval = 3",
      "tfrl.train.train.checkpoint_interval = 3", "tfrl.train.train.num_eval_episodes = 1",
      "tfrl.train.train.eval_num_envs = 1"])
  row = tfrl.train.train(root, log=lambda _: None)
  assert np.isfinite(float(row["loss"])) and int(row["train_steps"]) == 6
  assert float(row["eval_length"]) <= 110
  assert os.listdir(os.path.join(root, "replay_checkpoints"))
  video = str(tmp_path / "pong.mp4")
  env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
  result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "test_policy.py"), root,
                           "-n", "1", "--video", video], capture_output=True, text=True,
                          timeout=300, env=env)
  assert result.returncode == 0, result.stderr
  length = int(re.search(r"^episode 0: return [-\d.]+, length (\d+)$", result.stdout, re.M)[1])
  assert length <= 110
  frames = [frame for frame in imageio.get_reader(video)]
  assert len(frames) == length + 1 and frames[0].shape == (210, 160, 3)
