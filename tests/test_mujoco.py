"""MuJoCo environments through tfrl.envs: specs, time limits, a quiet console, headless frames."""

import ctypes.util
import os
import sys
import warnings

import gin
import mujoco
import numpy as np
import pytest
from tf_agents.trajectories import time_step as ts

from tfrl import envs
from tfrl.envs import mujoco_setup
from tfrl.train import config

# gin file, id, observation size, action size (as each file's comment says).
MUJOCO_ENV_FILES = [
    ("envs/halfcheetah.gin", "HalfCheetah-v5", 17, 6),
    ("envs/hopper.gin", "Hopper-v5", 11, 3),
    ("envs/walker2d.gin", "Walker2d-v5", 17, 6),
    ("envs/swimmer.gin", "Swimmer-v5", 8, 2),
    ("envs/ant.gin", "Ant-v5", 105, 8),
    ("envs/inverted_pendulum.gin", "InvertedPendulum-v5", 4, 1),
]


def test_hopper_specs():
  env = envs.load("Hopper-v5", seed=0)
  observation, action = env.observation_spec(), env.action_spec()
  assert observation.shape == (11,) and observation.dtype == np.float32
  assert action.shape == (3,) and action.dtype == np.float32
  np.testing.assert_array_equal(action.minimum, -np.ones(3))
  np.testing.assert_array_equal(action.maximum, np.ones(3))
  step = env.step(np.zeros(3, np.float32))
  assert step.observation.shape == (11,) and step.observation.dtype == np.float32
  assert not env.batched


def test_hopper_batched():
  env = envs.load("Hopper-v5", seed=0, num_envs=2)
  assert env.batched and env.batch_size == 2
  assert env.observation_spec().shape == (11,) and env.action_spec().shape == (3,)
  first = env.reset()
  assert first.observation.shape == (2, 11) and first.observation.dtype == np.float32
  np.testing.assert_array_equal(first.step_type, [ts.StepType.FIRST] * 2)
  step = env.step(np.zeros((2, 3), np.float32))
  np.testing.assert_array_equal(step.step_type, [ts.StepType.MID] * 2)


def run_until_last(env, action_fn):
  step, n = env.reset(), 0
  while not step.is_last():
    step = env.step(action_fn())
    n += 1
  return step, n


def test_hopper_falling_terminates_with_discount_zero():
  env = envs.load("Hopper-v5", seed=0)
  rng = np.random.default_rng(0)
  step, n = run_until_last(env, lambda: rng.uniform(-1, 1, 3).astype(np.float32))
  assert n < 1000  # random torques topple it long before the time limit
  assert step.step_type == ts.StepType.LAST and step.discount == 0.0


def test_time_limit_1000_truncates_with_discount_one():
  env = envs.load("HalfCheetah-v5", seed=0)  # never terminates
  step, n = run_until_last(env, lambda: np.zeros(6, np.float32))
  assert n == 1000
  assert step.step_type == ts.StepType.LAST and step.discount == 1.0


@pytest.mark.parametrize("gin_file,env_id,observation_size,action_size", MUJOCO_ENV_FILES)
def test_env_files_load(gin_file, env_id, observation_size, action_size):
  try:
    config.parse_config([gin_file])
    assert gin.query_parameter("tfrl.train.train.env_id") == env_id
  finally:
    gin.clear_config()
  envs.check_env_id(env_id)
  single = envs.load(env_id, seed=0)
  batched = envs.load(env_id, seed=0, num_envs=2)
  assert single.observation_spec().shape == (observation_size,)
  assert single.action_spec().shape == (action_size,)
  assert batched.reset().observation.shape == (2, observation_size)
  assert single.reset().observation.shape == (observation_size,)


def test_loading_halfcheetah_is_quiet(capfd, tmp_path, monkeypatch):
  # MuJoCo 4 warns that HalfCheetah's model uses the deprecated settotalmass,
  # through its C handler: stderr and a MUJOCO_LOG.TXT in the working directory.
  monkeypatch.chdir(tmp_path)
  capfd.readouterr()
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    envs.load("HalfCheetah-v5", seed=0).reset()
    envs.load("HalfCheetah-v5", seed=0, num_envs=2).reset()
  assert [str(w.message) for w in caught] == []
  assert capfd.readouterr().err == ""
  assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
  assert mujoco.get_mju_user_warning() is None  # MuJoCo's own handler is back


def test_other_mujoco_warnings_still_show(capfd, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  capfd.readouterr()
  with mujoco_setup.quiet_model_deprecations():
    mujoco.MjModel.from_xml_string(
        '<mujoco><statistic meaninertia="1"/><worldbody/></mujoco>')
  assert "'meaninertia' is deprecated" in capfd.readouterr().err
  assert "meaninertia" in (tmp_path / "MUJOCO_LOG.TXT").read_text()


def test_headless_machines_default_to_egl(monkeypatch):
  environ = {k: v for k, v in os.environ.items()
             if k not in ("MUJOCO_GL", "DISPLAY", "WAYLAND_DISPLAY")}
  monkeypatch.setattr(os, "environ", environ)  # the process's own stays untouched
  monkeypatch.delitem(sys.modules, "mujoco")  # as before mujoco's first import
  monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so.1")
  mujoco_setup.default_headless_gl()
  assert environ["MUJOCO_GL"] == "egl"
  environ["MUJOCO_GL"] = "osmesa"
  mujoco_setup.default_headless_gl()
  assert environ["MUJOCO_GL"] == "osmesa"  # a user's choice stays
  del environ["MUJOCO_GL"]
  environ["DISPLAY"] = ":0"
  mujoco_setup.default_headless_gl()
  assert "MUJOCO_GL" not in environ  # with a display, MuJoCo's default (glfw) works
  del environ["DISPLAY"]
  monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
  mujoco_setup.default_headless_gl()
  assert "MUJOCO_GL" not in environ  # no EGL library: nothing better to choose


# EGL comes from the system, not pip (Debian: libegl1, libegl-mesa0, libgl1-mesa-dri).
@pytest.mark.skipif(not os.environ.get("DISPLAY") and not ctypes.util.find_library("EGL"),
                    reason="no display and no EGL library (apt: libegl1 libegl-mesa0 libgl1-mesa-dri)")
def test_renders_an_rgb_frame_headless():
  env = envs.load("InvertedPendulum-v5", seed=0, render_mode="rgb_array")
  env.reset()
  frame = env.render()
  env.close()
  assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8
  assert frame.std() > 0  # a picture, not a blank buffer


HOPPER_TINY = ["tfrl.train.train.num_iterations = 2", "tfrl.train.train.eval_interval = 2",
               "tfrl.train.train.num_eval_episodes = 1", "tfrl.train.train.export_policy = False",
               "tfrl.envs.load.max_episode_steps = 50"]


@pytest.mark.parametrize("agent, gin_files, bindings", [
    ("sac", ["envs/hopper.gin", "agents/sac.gin"],
     ["tfrl.train.train.initial_collect_steps = 200", "tfrl.train.train.batch_size = 32",
      "tfrl.train.train.train_steps_per_iteration = 5",
      "tfrl.replay.TransitionReplay.min_size = 100",
      "tfrl.agents.sac.actor_fc_layer_params = (32,)",
      "tfrl.agents.sac.critic_fc_layer_params = (32,)"]),
    # The ready pair (segments, normalized observations and rewards, clipped gradients).
    ("ppo", ["ppo_hopper.gin"], ["tfrl.replay.EpisodeReplay.segment_steps = 64",
                                 "tfrl.agents.ppo.num_epochs = 2", "tfrl.agents.ppo.value_epochs = 2",
                                 "tfrl.agents.ppo.actor_fc_layer_params = (32,)",
                                 "tfrl.agents.ppo.value_fc_layer_params = (32,)"])])
def test_a_few_train_steps_on_hopper(tmp_path, agent, gin_files, bindings):
  import csv  # pylint: disable=import-outside-toplevel
  import math  # pylint: disable=import-outside-toplevel
  import tfrl  # pylint: disable=import-outside-toplevel
  config.parse_config(gin_files, HOPPER_TINY + bindings)
  root = str(tmp_path / "run")
  tfrl.train.train(root, log=lambda _: None)
  with open(os.path.join(root, "progress.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [int(r["iteration"]) for r in rows] == [0, 2]
  assert math.isfinite(float(rows[-1]["loss"])) and math.isfinite(float(rows[-1]["avg_return"]))
  expected_train_steps = 2 * 5 if agent == "sac" else 2
  assert int(rows[-1]["train_steps"]) == expected_train_steps
  if agent == "ppo":
    assert int(rows[-1]["env_steps"]) == 2 * 64
