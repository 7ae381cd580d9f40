"""Observation normalization: statistics against numpy, restored exactly on
resume (with the reward scaler's), and applied inside the exported policy
(which takes raw observations)."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import policy_loader
from tf_agents.trajectories import time_step as ts

import tfrl
from tfrl.networks.normalization import ObservationNormalizer
from tfrl.train import config


def test_statistics_match_numpy_over_batches():
  normalizer = ObservationNormalizer(tf.TensorSpec([3], tf.float32), clip=10.0, epsilon=1e-8)
  data = np.random.RandomState(0).normal([5.0, -2.0, 0.0], [2.0, 0.5, 10.0],
                                         size=(1000, 3)).astype(np.float32)
  for chunk in np.split(data, [1, 10, 500]):  # uneven batches
    normalizer.update(chunk)
  np.testing.assert_allclose(normalizer.mean.numpy(), data.mean(0), rtol=1e-5)
  np.testing.assert_allclose(normalizer.variance.numpy(), data.var(0), rtol=1e-4)
  x = np.array([[5.0, -2.0, 1000.0]], np.float32)
  expected = np.clip((x - data.mean(0)) / np.sqrt(data.var(0) + 1e-8), -10, 10)
  np.testing.assert_allclose(normalizer.normalize(tf.constant(x)).numpy(), expected, rtol=1e-4,
                             atol=1e-5)


def test_nested_observations_are_refused():
  with pytest.raises(tfrl.ConfigError, match="one observation tensor"):
    ObservationNormalizer({"a": tf.TensorSpec([2]), "b": tf.TensorSpec([3])})


def _statistics(agent):
  return [v.numpy().copy() for v in (list(agent.observation_normalizer.variables)
                                     + list(agent.reward_scaler.variables))]


class Capture(tfrl.train.Hook):
  """The normalizer's and the reward scaler's statistics at the start and
  at the end of a run."""

  def begin(self, run):
    self.at_start = _statistics(run.agent)

  def end(self, run):
    self.at_end = _statistics(run.agent)


def test_normalizer_trains_resumes_and_is_exported(tmp_path):
  bindings = ["tfrl.train.train.num_iterations = 2", "tfrl.train.train.eval_interval = 2",
              "tfrl.train.train.num_eval_episodes = 1", "tfrl.train.train.num_envs = 2",
              "tfrl.train.train.collect_episodes_per_iteration = 2",
              "tfrl.agents.ppo.num_epochs = 2", "tfrl.agents.ppo.value_epochs = 2",
              "tfrl.agents.ppo.normalize_observations = True",
              "tfrl.agents.ppo.normalize_rewards = True",
              "tfrl.replay.EpisodeReplay.segment_steps = 100",
              "tfrl.envs.load.max_episode_steps = 50"]
  root = str(tmp_path / "run")
  config.parse_config(["ppo_pendulum.gin"], bindings)
  first = Capture()
  tfrl.train.train(root, hooks=[first], log=lambda _: None)
  count, _, _, return_count, _, _ = first.at_end
  assert count > 199 and return_count > 199  # 2 iterations x 100 steps were added
  config.parse_config(["ppo_pendulum.gin"], bindings)
  again = Capture()
  tfrl.train.train(root, hooks=[again], log=lambda _: None)  # a finished run, restored
  for restored, saved in zip(again.at_start, first.at_end):
    np.testing.assert_array_equal(restored, saved)

  # The exported policy holds the statistics and acts on raw observations as
  # the agent's greedy policy does.
  policies = os.path.join(root, "policies")
  last = sorted(os.listdir(os.path.join(policies, "checkpoints")))[-1]
  loaded = policy_loader.load(os.path.join(policies, "saved_model"),
                              os.path.join(policies, "checkpoints", last))
  exported = {v.name: v.numpy() for v in loaded.variables()}
  assert any(np.array_equal(value, first.at_end[1]) for value in exported.values())
  env = tfrl.envs.load("Pendulum-v1", seed=3)
  observation = np.reshape(env.reset().observation, (1, 3)).astype(np.float32)
  batched = ts.restart(tf.constant(observation), batch_size=1)
  # policy_loader's py policy batches the (numpy) time step itself.
  action = loaded.action(ts.restart(observation[0])).action[None]
  # Rebuild the agent with the run's statistics: the same mean action.
  config.parse_config(["ppo_pendulum.gin"], bindings)
  agent = tfrl.agents.ppo(env.time_step_spec(), env.action_spec(), normalize_observations=True)
  tf.train.Checkpoint(agent=agent).restore(
      tf.train.latest_checkpoint(os.path.join(root, "checkpoints"))).expect_partial()
  from tf_agents.policies import greedy_policy  # pylint: disable=import-outside-toplevel
  expected = greedy_policy.GreedyPolicy(agent.policy).action(batched).action.numpy()
  np.testing.assert_allclose(action, expected, rtol=1e-5)


def test_policy_variables_carry_the_statistics():
  """What distributed actors pull is the collect policy's variables: the
  normalizer's statistics must be among them."""
  env = tfrl.envs.load("Pendulum-v1", seed=0)
  agent = tfrl.agents.ppo(env.time_step_spec(), env.action_spec(), normalize_observations=True)
  names = {v.name for v in agent.collect_policy.variables()}
  assert {v.name for v in agent.observation_normalizer.variables} <= names
