"""gSDE (tfrl.networks.gsde): the std and noise math against numpy, the
collect policy's exploration matrices (held for sample_freq steps, per env,
with the Gaussian's law at a state), and PPO training with it."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

import tfrl
from tfrl.networks import gsde

OBSERVATION = tensor_spec.TensorSpec([3], tf.float32)
ACTION = tensor_spec.BoundedTensorSpec([2], tf.float32, -2.0, 2.0)


def test_std_and_noise_match_numpy():
  rng = np.random.default_rng(0)
  latent = rng.normal(size=(5, 4)).astype(np.float32)
  log_std = rng.normal(size=(4, 2)).astype(np.float32) * 0.3
  exploration = rng.normal(size=(5, 4, 2)).astype(np.float32)
  np.testing.assert_allclose(gsde.gsde_std(latent, log_std),
                             np.sqrt(latent ** 2 @ np.exp(2 * log_std) + gsde.EPSILON), rtol=1e-5)
  np.testing.assert_allclose(gsde.gsde_noise(latent, exploration),
                             np.stack([latent[b] @ exploration[b] for b in range(5)]), rtol=1e-5)
  # The std trains sigma, not the features (SB3's learn_features=False).
  latent_var, log_std_var = tf.Variable(latent), tf.Variable(log_std)
  with tf.GradientTape() as tape:
    total = tf.reduce_sum(gsde.gsde_std(latent_var, log_std_var))
  latent_grad, log_std_grad = tape.gradient(total, [latent_var, log_std_var])
  assert latent_grad is None and np.all(np.isfinite(log_std_grad))


def _policy(sample_freq, init_std=0.5):
  time_step_spec = ts.time_step_spec(OBSERVATION)
  actor = gsde.GsdeActorNetwork(OBSERVATION, ACTION, (8,), init_std=init_std)
  return actor, gsde.GsdeCollectPolicy(time_step_spec, ACTION, actor, sample_freq)


def _act(policy, observation, state):
  batch = observation.shape[0]
  step = ts.TimeStep(tf.fill([batch], ts.StepType.MID), tf.zeros([batch]), tf.ones([batch]),
                     tf.constant(observation))
  return policy.action(step, state)


def test_exploration_is_held_for_sample_freq_steps_and_drawn_per_env():
  tf.random.set_seed(1)
  actor, policy = _policy(sample_freq=3)
  observation = np.tile(np.float32([[0.3, -0.2, 0.5]]), (4, 1))
  state = policy.get_initial_state(4)
  actions = []
  for _ in range(7):
    step = _act(policy, observation, state)
    state = step.state
    actions.append(step.action.numpy())
  # Same state, same matrix: the same action for 3 steps, then a new draw.
  for start in (0, 3):
    np.testing.assert_allclose(actions[start], actions[start + 1], rtol=1e-6)
    np.testing.assert_allclose(actions[start], actions[start + 2], rtol=1e-6)
  assert not np.allclose(actions[2], actions[3]) and not np.allclose(actions[5], actions[6])
  assert len({tuple(a.round(6)) for a in actions[0]}) == 4, "envs share a matrix"
  assert int(state["steps"][0]) == 7


def test_actions_at_a_state_have_the_networks_gaussian_law():
  tf.random.set_seed(2)
  actor, policy = _policy(sample_freq=1)
  observation = np.tile(np.float32([[0.7, 0.1, -0.4]]), (20000, 1))
  actions = _act(policy, observation, policy.get_initial_state(20000)).action.numpy()
  distribution, _ = actor(tf.constant(observation[:1]))
  mean, std = distribution.mean().numpy()[0], distribution.stddev().numpy()[0]
  np.testing.assert_allclose(actions.mean(axis=0), mean, atol=4 * std.max() / np.sqrt(20000))
  np.testing.assert_allclose(actions.std(axis=0), std, rtol=0.03)


def test_ppo_with_gsde_collects_and_trains_on_pendulum():
  env = tfrl.envs.load("Pendulum-v1", seed=0)
  spec = tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec())
  agent = tfrl.agents.ppo(*spec, sde_sample_freq=4, num_epochs=2, value_epochs=2)
  assert isinstance(agent.collect_policy, gsde.GsdeCollectPolicy)
  steps = []
  tfrl.drivers.Driver(env, agent.collect_policy, observers=[steps.append]).run_episodes(2)
  experience = tf.nest.map_structure(lambda *xs: tf.constant(np.concatenate(xs)[None]), *steps)
  before = [v.numpy() for v in agent._actor_net.trainable_variables]  # pylint: disable=protected-access
  info = agent.train(experience)
  assert np.isfinite(float(info.loss))
  after = agent._actor_net.trainable_variables  # pylint: disable=protected-access
  assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, after))


def test_gsde_on_discrete_actions_is_refused():
  env = tfrl.envs.load("CartPole-v1", seed=0)
  spec = tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec())
  with pytest.raises(tfrl.ConfigError, match="sde_sample_freq .* needs continuous actions"):
    tfrl.agents.ppo(*spec, sde_sample_freq=4)
