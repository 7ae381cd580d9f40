"""tfrl.envs: gymnasium environments as tf-agents PyEnvironments."""

import sys

import gymnasium as gym
import numpy as np
import pytest
from tf_agents.trajectories import time_step as ts

from tfrl import envs
from tfrl.errors import ConfigError


def test_discrete_specs_match_gymnasium():
  env = envs.load("CartPole-v1", seed=0)
  assert env.observation_spec().shape == (4,)
  assert env.observation_spec().dtype == np.float32
  action = env.action_spec()
  assert action.shape == () and action.dtype == np.int64
  assert (action.minimum, action.maximum) == (0, 1)
  assert not env.batched


def test_continuous_specs_match_gymnasium():
  env = envs.load("Pendulum-v1", seed=0)
  action = env.action_spec()
  assert action.shape == (1,) and action.dtype == np.float32
  np.testing.assert_allclose([action.minimum, action.maximum], [[-2.0], [2.0]])
  step = env.reset()
  step = env.step(np.array([0.5], np.float32))
  assert step.observation.shape == (3,) and step.observation.dtype == np.float32


def run_until_last(env, action):
  step = env.reset()
  n = 0
  while not step.is_last():
    step = env.step(action)
    n += 1
  return step, n


def test_terminated_step_is_last_with_discount_zero():
  env = envs.load("CartPole-v1", seed=0)
  step, n = run_until_last(env, np.int64(1))  # always pushing right topples the pole
  assert n < 100
  assert step.step_type == ts.StepType.LAST and step.discount == 0.0


def test_truncated_step_is_last_with_discount_one():
  env = envs.load("Pendulum-v1", seed=0, max_episode_steps=7)  # Pendulum never terminates
  step, n = run_until_last(env, np.zeros(1, np.float32))
  assert n == 7
  assert step.step_type == ts.StepType.LAST and step.discount == 1.0


def test_step_after_last_resets():
  env = envs.load("CartPole-v1", seed=0)
  run_until_last(env, np.int64(0))
  assert env.step(np.int64(0)).step_type == ts.StepType.FIRST


def rollout(env, steps=60):
  env.reset()
  rng = np.random.default_rng(0)
  return np.stack([env.step(np.int64(rng.integers(2))).observation for _ in range(steps)])


def test_seeding_is_reproducible():
  a = rollout(envs.load("CartPole-v1", seed=3))
  b = rollout(envs.load("CartPole-v1", seed=3))
  c = rollout(envs.load("CartPole-v1", seed=4))
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_unknown_id_names_close_matches():
  with pytest.raises(ConfigError, match=r"unknown environment id 'CartPol-v1'.*CartPole-v1"):
    envs.load("CartPol-v1")


def without_module(monkeypatch, module: str, importers: str):
  """As if `module` were not installed and `importers` (a package, maybe
  `module` itself) not yet imported."""
  for name in [n for n in sys.modules if n == importers or n.startswith(importers + ".")]:
    monkeypatch.delitem(sys.modules, name)
  # Last: `importers` may be `module`, whose native extension must not be
  # loaded a second time (ale-py aborts the process).
  monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError


@pytest.mark.parametrize("env_id,module,importers,message", [
    ("LunarLander-v3", "Box2D", "gymnasium.envs.box2d",
     "environment 'LunarLander-v3' needs Box2D: pip install box2d"),
    ("Hopper-v5", "mujoco", "gymnasium.envs.mujoco",
     "environment 'Hopper-v5' needs MuJoCo: pip install mujoco"),
    ("ALE/Pong-v5", "ale_py", "ale_py",
     "environment 'ALE/Pong-v5' needs Atari (ale-py): pip install ale-py"),
])
def test_missing_package_names_what_to_install(monkeypatch, env_id, module, importers, message):
  without_module(monkeypatch, module, importers)
  with pytest.raises(ConfigError) as raised:
    envs.check_env_id(env_id)
  assert str(raised.value) == message
  with pytest.raises(ConfigError, match="pip install"):
    envs.load(env_id)


def test_dependency_not_installed_is_one_line(monkeypatch, tmp_path):
  # Any env whose module raises gymnasium's DependencyNotInstalled on import.
  (tmp_path / "needs_widget.py").write_text(
      "import gymnasium\n"
      "raise gymnasium.error.DependencyNotInstalled('widget is not installed, run `pip install widget`')\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  env_id = "tfrl-test/NeedsWidget-v0"
  monkeypatch.setitem(gym.registry, env_id, gym.envs.registration.EnvSpec(
      env_id, entry_point="needs_widget:WidgetEnv"))
  with pytest.raises(ConfigError) as raised:
    envs.check_env_id(env_id)
  assert str(raised.value) == (f"environment {env_id!r} needs a package that is not installed: "
                               "widget is not installed, run `pip install widget`")


@pytest.mark.parametrize("vectorization", ["vector", "sync"])
def test_batched_cartpole_matches_single_envs_semantics(vectorization):
  env = envs.load("CartPole-v1", seed=0, num_envs=4, vectorization=vectorization)
  assert env.batched and env.batch_size == 4
  step = env.reset()
  assert step.observation.shape == (4, 4)
  assert (step.step_type == ts.StepType.FIRST).all()
  previous_last = np.zeros(4, bool)
  saw_reset = False
  for _ in range(200):
    step = env.step(np.ones(4, np.int64))
    # An env that ended last step starts again now, reward 0; the others go on.
    np.testing.assert_array_equal(step.step_type == ts.StepType.FIRST, previous_last)
    assert (step.reward[previous_last] == 0).all()
    last = step.step_type == ts.StepType.LAST
    assert (step.discount[last] == 0).all()  # CartPole falls: terminated
    saw_reset |= previous_last.any()
    previous_last = last
  assert saw_reset


def test_batched_truncation_keeps_discount_one(counting_env_id):
  env = envs.load(counting_env_id, seed=0, num_envs=3, vectorization="sync", max_episode_steps=2)
  env.reset()
  env.step(np.zeros(3, np.int64))
  step = env.step(np.zeros(3, np.int64))
  # env 0's first episode lasts 2 steps: terminated; envs 1, 2 would last 3, 4: truncated at 2.
  assert (step.step_type == ts.StepType.LAST).all()
  np.testing.assert_array_equal(step.discount, [0.0, 1.0, 1.0])


def test_bad_num_envs_and_vectorization():
  with pytest.raises(ConfigError):
    envs.load("CartPole-v1", num_envs=0)
  with pytest.raises(ConfigError, match="vectorization"):
    envs.load("CartPole-v1", num_envs=2, vectorization="threads")
  with pytest.raises(ConfigError, match="no numpy-vectorized"):
    envs.load("Pendulum-v1", num_envs=2, vectorization="vector")


class _EchoActionEnv(gym.Env):
  """Observes the action it last received."""
  observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
  action_space = gym.spaces.Box(-1.0, 2.0, (2,), np.float32)

  def reset(self, *, seed=None, options=None):
    super().reset(seed=seed)
    return np.zeros(2, np.float32), {}

  def step(self, action):
    return np.asarray(action, np.float32), 0.0, False, False, {}


@pytest.mark.parametrize("num_envs", [1, 2])
def test_continuous_actions_reach_the_env_clipped_to_bounds(num_envs):
  if "tfrl-test/EchoAction-v0" not in gym.registry:
    gym.register(id="tfrl-test/EchoAction-v0", entry_point=_EchoActionEnv, max_episode_steps=5)
  env = envs.load("tfrl-test/EchoAction-v0", seed=0, num_envs=num_envs)
  env.reset()
  action = np.array([-5.0, 1.5], np.float32)
  observation = env.step(np.tile(action, (num_envs, 1)) if num_envs > 1 else action).observation
  np.testing.assert_array_equal(np.reshape(observation, (num_envs, 2)),
                                np.tile([-1.0, 1.5], (num_envs, 1)))


@pytest.mark.parametrize("num_envs", [1, 3])
def test_reseed_restarts_the_env_as_if_loaded_with_the_new_seed(num_envs):
  from tfrl.train.loop import resume_seed  # pylint: disable=import-outside-toplevel
  env = envs.load("CartPole-v1", seed=0, num_envs=num_envs)
  first = env.reset().observation
  seed = resume_seed(0, 10)
  assert seed not in (0, resume_seed(0, 20), resume_seed(1, 10))
  env.reseed(seed)
  resumed = env.reset().observation
  fresh = envs.load("CartPole-v1", seed=seed, num_envs=num_envs).reset().observation
  np.testing.assert_array_equal(resumed, fresh)
  assert not np.array_equal(resumed, first)


def test_delayed_reward_passes_gymnasiums_env_checker():
  """check_env re-creates the env from its spec, which needs the wrapper's
  constructor arguments."""
  from gymnasium.utils.env_checker import check_env
  from tfrl.envs.delayed import DelayedReward
  env = DelayedReward(gym.make("CartPole-v1"))
  check_env(env, skip_render_check=True)
  assert env.spec.additional_wrappers[-1].name == "DelayedReward"
  check_env(gym.make("tfrl/DelayedCoinWalk-v0"), skip_render_check=True)
