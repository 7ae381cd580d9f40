"""The compiled on-policy loop (PPO): its advantages, batch and update
against the regular PpoAgent's on the same data, run(n) against n run(1)s,
resume mid-run, train.py with compiled = True (discrete and continuous)."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

import tfrl
from tfrl.agents.advantages import advantages_and_returns, by_episode, \
    rollout_advantages_and_returns
from tfrl.agents.ppo import InGraphPpo
from tfrl.envs import tf_envs
from tfrl.errors import ConfigError
from tfrl.train import compiled_on_policy, config
from tfrl.train.loop import Hook

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _episode_layout(rollout):
  """A [T, N] rollout as the regular loop's experience [1, L]: each env's
  steps in order, every episode end followed by its boundary row (the final
  observation) and the rollout's end by a cut row (s_T, discount 1), as
  `SegmentAdder` writes them."""
  rows = []
  num_steps, num_envs = rollout["reward"].shape
  for env in range(num_envs):
    for t in range(num_steps):
      terminated, truncated = bool(rollout["terminated"][t, env]), bool(rollout["truncated"][t, env])
      done = terminated or truncated
      action = rollout["action"][t, env]
      rows.append((ts.StepType.MID, rollout["observation"][t, env], action,
                   rollout["reward"][t, env], 0.0 if terminated else 1.0,
                   ts.StepType.LAST if done else ts.StepType.MID))
      if done or t == num_steps - 1:  # a boundary or the cut
        rows.append((ts.StepType.LAST, rollout["next_observation"][t, env], action, 0.0, 1.0,
                     ts.StepType.FIRST))
  step_type, observation, action, reward, discount, next_step_type = (
      np.stack(column)[None] for column in zip(*rows))
  return trajectory.Trajectory(
      step_type=tf.constant(step_type, tf.int32), observation=tf.constant(observation),
      action=tf.constant(action), policy_info=(),
      next_step_type=tf.constant(next_step_type, tf.int32),
      reward=tf.constant(reward, tf.float32), discount=tf.constant(discount, tf.float32))


def _rollout(env, learner, num_envs, num_steps, seed=0):
  """A rollout of the learner's policy (the loop's, in a plain graph)."""
  loop = compiled_on_policy.CompiledOnPolicyLoop(env, learner, num_envs, num_steps, seed,
                                                 jit_compile=False)
  rollout = tf.function(lambda: loop._rollout(tf.constant([seed, 7], tf.int64)),
                        autograph=False)()
  return {name: value.numpy() for name, value in rollout.items()}


def test_rollout_advantages_equal_the_episode_layouts():
  """Terminations, truncations and the rollout's cut: the fixed-rollout
  recursion gives what the regular agent's gives on the episode layout."""
  rng = np.random.default_rng(0)
  num_steps, num_envs = 9, 3
  terminated = rng.random((num_steps, num_envs)) < 0.15
  truncated = ~terminated & (rng.random((num_steps, num_envs)) < 0.15)
  # Observations of a rollout: each step starts where the last led, unless
  # that ended an episode (a fresh start).
  next_observation = rng.normal(size=(num_steps, num_envs)).astype(np.float32)
  observation = rng.normal(size=(num_steps, num_envs)).astype(np.float32)
  observation[1:] = np.where(terminated[:-1] | truncated[:-1], observation[1:],
                             next_observation[:-1])
  rollout = dict(observation=observation, next_observation=next_observation,
                 reward=rng.normal(size=(num_steps, num_envs)).astype(np.float32),
                 action=np.zeros((num_steps, num_envs), np.int64),
                 terminated=terminated, truncated=truncated)
  assert terminated.any() and truncated.any()
  value = lambda obs: 2.0 * obs + 0.5  # V(s), a known function of the observation
  kwargs = dict(gamma=0.9, gae_lambda=0.8, value_lambda=0.95)
  ours = rollout_advantages_and_returns(
      tf.constant(rollout["reward"]), value(rollout["observation"]),
      value(rollout["next_observation"]), tf.constant(terminated), tf.constant(truncated),
      **kwargs)
  experience = _episode_layout(rollout)
  valid = tf.logical_not(experience.is_boundary())
  values = value(experience.observation)
  next_values = tf.concat([values[:, 1:], tf.zeros_like(values[:, :1])], axis=1)
  theirs = by_episode(lambda *x: advantages_and_returns(*x, **kwargs), tf.logical_not(valid),
                      experience.reward, values, next_values, experience.discount, valid)
  for a, b in zip(ours, theirs):
    # Ours are time-major [T, N]; the layout's valid rows are env after env.
    np.testing.assert_allclose(tf.boolean_mask(b, valid).numpy(),
                               np.transpose(a.numpy()).reshape(-1), rtol=1e-5, atol=1e-5)


def _two_agents(env_id, **hyperparameters):
  """Two PPO agents with the same initial weights."""
  specs = [tensor_spec.from_spec(s) for s in (lambda e: (e.time_step_spec(), e.action_spec()))(
      tfrl.envs.load(env_id))]
  agents = []
  for _ in range(2):
    tf.random.set_seed(11)
    agents.append(tfrl.agents.ppo(*specs, **hyperparameters))
  for a, b in zip(agents[0].variables, agents[1].variables):
    b.assign(a)
  return agents


CASES = {  # a discrete and a continuous env, the latter with the observation normalizer
    "cartpole": ("CartPole-v1", tf_envs.CartPole(max_episode_steps=15), {}),
    "pendulum": ("Pendulum-v1", tf_envs.Pendulum(max_episode_steps=6),
                 dict(normalize_observations=True, init_action_stddev=1.0))}


@pytest.mark.parametrize("case", sorted(CASES))
def test_in_graph_update_equals_the_agents_train_on_the_same_rollout(case):
  """Batch (normalized observations, advantages, value targets, old
  log-probabilities) and one train step (policy steps up to the KL stop,
  value steps, normalizer, counter) against PpoAgent.train on the rollout
  laid out as episodes. Full-batch epochs: the shuffles differ."""
  env_id, env, extra = CASES[case]
  ours, theirs = _two_agents(env_id, actor_fc_layer_params=(16,), value_fc_layer_params=(16,),
                             policy_learning_rate=3e-2, value_learning_rate=1e-2,
                             target_kl=0.002, num_epochs=40, value_epochs=3, gamma=0.95,
                             gae_lambda=0.9, **extra)
  learner = InGraphPpo.from_agent(ours)
  rollout = _rollout(env, learner, num_envs=3, num_steps=20)
  assert rollout["terminated"].any() or case == "pendulum"
  assert rollout["truncated"].any()
  experience = _episode_layout(rollout)
  batch = learner.prepare_batch({k: tf.constant(v) for k, v in rollout.items()})
  expected = theirs._prepare_batch(experience)  # pylint: disable=protected-access
  env_major = lambda x: np.swapaxes(x.numpy().reshape((20, 3) + x.shape[1:]), 0, 1).reshape(
      x.shape)
  for key in ("observation", "action", "advantage", "value_target", "log_prob"):
    np.testing.assert_allclose(env_major(batch[key]), expected[key].numpy(), rtol=1e-5,
                               atol=1e-5, err_msg=key)
  # One train step each, then the same variables (networks, optimizers, normalizer, counter).
  diagnostics = dict(zip(("loss",) + InGraphPpo.DIAGNOSTICS, tf.function(
      learner.update, autograph=False)({k: tf.constant(v) for k, v in rollout.items()},
                                       tf.constant([1, 2], tf.int64)).numpy()))
  info = theirs.train(experience)
  assert 1 <= diagnostics["policy_steps"] < 40  # the KL stop ended it
  assert diagnostics["policy_steps"] == int(info.extra["policy_steps"])
  np.testing.assert_allclose(diagnostics["value_loss"], float(info.extra["value_loss"]),
                             rtol=1e-4)
  np.testing.assert_allclose(diagnostics["approx_kl"], float(info.extra["approx_kl"]),
                             rtol=1e-3, atol=1e-6)
  assert int(ours.train_step_counter) == int(theirs.train_step_counter) == 1
  for a, b in zip(ours.variables, theirs.variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.name)
  moved = [not np.allclose(a.numpy(), b.numpy()) for a, b in zip(
      ours.variables, _two_agents(env_id, actor_fc_layer_params=(16,),
                                  value_fc_layer_params=(16,), **extra)[0].variables)]
  assert sum(moved) > 4  # the update did something


def test_one_long_run_equals_many_short_ones():
  """run(3) against 3 calls of run(1) from the same start: the same
  variables (agent and loop) after, and the mean of the diagnostics."""
  agents = _two_agents("CartPole-v1", actor_fc_layer_params=(8,), value_fc_layer_params=(8,),
                       num_epochs=3, num_minibatches=2, value_epochs=2, value_minibatches=2)
  loops = [compiled_on_policy.CompiledOnPolicyLoop(
      tf_envs.CartPole(), InGraphPpo.from_agent(agent), num_envs=2, rollout_steps=16, seed=3,
      jit_compile=False) for agent in agents]
  long = loops[0].run(tf.constant(3, tf.int64)).numpy()
  short = [loops[1].run(tf.constant(1, tf.int64)).numpy() for _ in range(3)]
  np.testing.assert_allclose(long, np.mean(short, axis=0), rtol=1e-5)
  for a, b in zip(list(agents[0].variables) + list(loops[0].variables),
                  list(agents[1].variables) + list(loops[1].variables)):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)
  assert int(loops[0].env_steps) == 3 * 2 * 16 and int(agents[0].train_step_counter) == 3


# In-process runs use a plain graph (XLA's compile would be most of each
# run; the process must not switch XLA's flags for later tests); train.py's
# runs below use its default, XLA on its CPU runtime.
TINY = ["tfrl.train.train_compiled.jit_compile = False",
        "tfrl.train.train.num_envs = 4", "tfrl.replay.EpisodeReplay.segment_steps = 64",
        "tfrl.agents.ppo.num_epochs = 2", "tfrl.agents.ppo.value_epochs = 2",
        "tfrl.agents.ppo.num_minibatches = 2", "tfrl.agents.ppo.value_minibatches = 2",
        "tfrl.train.train.num_iterations = 4", "tfrl.train.train.eval_interval = 2",
        "tfrl.train.train.checkpoint_interval = 2", "tfrl.train.train.num_eval_episodes = 1",
        "tfrl.train.train.eval_num_envs = 1", "tfrl.train.train.export_policy = False"]


class _StopAt(Hook):
  def __init__(self, iteration):
    self.iteration = iteration

  def after(self, run, advance):
    if run.iteration == self.iteration:
      run.request_stop("test")


def _checkpoint_values(root):
  reader = tf.train.load_checkpoint(os.path.join(root, "checkpoints"))
  names = [n for n in reader.get_variable_to_shape_map()
           if "wall_s" not in n and "OBJECT_GRAPH" not in n]
  return {n: reader.get_tensor(n) for n in names}


def test_resume_mid_run_gives_the_uninterrupted_run(tmp_path):
  """Stopped at iteration 2 (checkpointed) and resumed to 4: every
  checkpointed value (networks, optimizers, env state, seed counter,
  counters) equals those of the run that went straight to 4."""
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  config.parse_config(["ppo_cartpole_compiled.gin"], TINY)
  tfrl.train.train(straight, log=lambda _: None)
  config.parse_config(["ppo_cartpole_compiled.gin"], TINY)
  tfrl.train.train(resumed, hooks=[_StopAt(2)], log=lambda _: None)
  assert _checkpoint_values(resumed)["iteration/.ATTRIBUTES/VARIABLE_VALUE"] == 2
  config.parse_config(["ppo_cartpole_compiled.gin"], TINY)
  messages = []
  last = tfrl.train.train(resumed, log=messages.append)
  assert any(m.startswith("resuming") for m in messages)
  a, b = _checkpoint_values(straight), _checkpoint_values(resumed)
  assert sorted(a) == sorted(b) and any("env_state" in n for n in a)
  for name in a:
    np.testing.assert_array_equal(a[name], b[name], err_msg=name)
  with open(os.path.join(resumed, "progress.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [int(r["iteration"]) for r in rows] == [0, 2, 4]
  assert int(last["env_steps"]) == 4 * 64 and int(last["train_steps"]) == 4
  assert rows[-1]["approx_kl"] and rows[-1]["value_loss"] and rows[-1]["policy_steps"]


def test_compiled_on_policy_refusals(tmp_path):
  config.parse_config(["vpg_cartpole.gin"], ["tfrl.train.train.compiled = True"])
  with pytest.raises(ConfigError, match="no in-graph learner for agent_fn vpg"):
    tfrl.train.train(str(tmp_path / "vpg"), log=lambda _: None)
  config.parse_config(["ppo_cartpole_compiled.gin"],
                      ["tfrl.agents.ppo.num_minibatches = 500"])
  with pytest.raises(ConfigError, match="num_minibatches = 500 exceeds the 256 transitions"):
    tfrl.train.train(str(tmp_path / "minibatches"), log=lambda _: None)
  config.parse_config(["ppo_cartpole_compiled.gin"], ["tfrl.agents.ppo.normalize_rewards = True"])
  with pytest.raises(ConfigError, match="no reward scaling yet"):
    tfrl.train.train(str(tmp_path / "rewards"), log=lambda _: None)
  assert not os.listdir(tmp_path)


def test_rollout_steps_follow_the_regular_loops_settings():
  config.parse_config(["ppo_cartpole.gin"], ["tfrl.train.train.compiled = True"])
  run_config = tfrl.train.RunConfig()
  # Whole episodes: 4 episodes over 4 envs, each up to CartPole's 500 steps.
  assert compiled_on_policy.rollout_steps(run_config, tf_envs.CartPole()) == 500
  config.parse_config(["ppo_cartpole_compiled.gin"], ["tfrl.replay.EpisodeReplay.segment_steps = 100"])
  assert compiled_on_policy.rollout_steps(tfrl.train.RunConfig(), tf_envs.CartPole()) == 13


@pytest.mark.parametrize("gin_file", ["ppo_cartpole_compiled.gin", "ppo_pendulum_compiled.gin"])
def test_train_py_runs_compiled_ppo_and_exports_the_agents_policy(tmp_path, gin_file):
  """train.py with the compiled gin file (XLA's CPU runtime, its default):
  progress.csv rows, the exported policy, and (CartPole) test_policy.py
  running it on gymnasium's env."""
  root = str(tmp_path / "run")
  bindings = [b for b in TINY if "export_policy" not in b and "jit_compile" not in b]
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, "scripts", "train.py"), f"--gin_file={gin_file}",
       f"--root_dir={root}"] + [f"--gin_bindings={b}" for b in bindings],
      capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "compiled on-policy loop" in result.stdout
  with open(os.path.join(root, "progress.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [int(r["iteration"]) for r in rows] == [0, 2, 4]
  assert [int(r["env_steps"]) for r in rows] == [0, 128, 256]
  assert rows[-1]["loss"] and rows[-1]["entropy"]
  assert sorted(os.listdir(os.path.join(root, "policies", "checkpoints"))) == [
      "000000000", "000000002", "000000004"]
  if "pendulum" in gin_file:
    return  # (test_policy.py once is enough: a subprocess costs seconds)
  played = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "test_policy.py"), root,
                           "-n", "1", "--norender"], capture_output=True, text=True, timeout=300)
  assert played.returncode == 0 and "episode 0: return" in played.stdout, played.stderr[-2000:]
