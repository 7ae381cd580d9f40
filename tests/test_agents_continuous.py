"""DDPG, TD3 and SAC: each ready pair trained through the real loop on a tiny
budget, then the train step taken by hand to check exactly which networks move
and how the targets follow (soft updates, periods, TD3's policy delay)."""

import csv
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

import tfrl
from tfrl.agents.ddpg import GaussianNoisePolicy
from tfrl.train import config

AGENTS = ["ddpg", "td3", "sac"]


def pendulum_specs():
  env = tfrl.envs.load("Pendulum-v1", seed=0)
  try:
    return (tensor_spec.from_spec(env.time_step_spec()),
            tensor_spec.from_spec(env.action_spec()))
  finally:
    env.close()


def networks(agent):
  """The agent's networks by role (tf-agents keeps them in private attributes)."""
  # pylint: disable=protected-access
  if hasattr(agent, "_critic_network_1"):  # TD3, SAC: twin critics
    nets = dict(actor=agent._actor_network, critic=agent._critic_network_1,
                critic_2=agent._critic_network_2, target_critic=agent._target_critic_network_1,
                target_critic_2=agent._target_critic_network_2)
  else:  # DDPG
    nets = dict(actor=agent._actor_network, critic=agent._critic_network,
                target_critic=agent._target_critic_network)
  if hasattr(agent, "_target_actor_network"):  # DDPG, TD3 (SAC has no target actor)
    nets["target_actor"] = agent._target_actor_network
  return nets


def snapshot(agent):
  return {role: [v.numpy() for v in net.variables] for role, net in networks(agent).items()}


def changed(before, after):
  return any(not np.array_equal(b, a) for b, a in zip(before, after))


def assert_soft_update(target_before, online, target_after, tau):
  for t0, s, t1 in zip(target_before, online, target_after):
    np.testing.assert_allclose(t1, (1 - tau) * t0 + tau * s, rtol=1e-5, atol=1e-6)


# --- the real loop ----------------------------------------------------------

TINY = ["tfrl.train.train.num_iterations = 3",
        "tfrl.train.train.eval_interval = 3",
        "tfrl.train.train.checkpoint_interval = 3",
        "tfrl.train.train.num_envs = 2",
        "tfrl.train.train.initial_collect_steps = 64",
        "tfrl.train.train.collect_steps_per_iteration = 8",
        "tfrl.train.train.train_steps_per_iteration = 4",
        "tfrl.train.train.batch_size = 16",
        "tfrl.train.train.num_eval_episodes = 1",
        "tfrl.train.train.eval_num_envs = 1",
        "tfrl.replay.TransitionReplay.min_size = 32"]


@pytest.mark.parametrize("name", AGENTS)
def test_ready_pair_trains_actor_critics_and_targets_through_the_loop(tmp_path, name):
  recorded = {}
  factory = getattr(tfrl.agents, name)

  def recording_agent_fn(time_step_spec, action_spec):
    agent = factory(time_step_spec, action_spec)  # hyperparameters from the gin files
    recorded.update(agent=agent, before=snapshot(agent))
    return agent

  root = str(tmp_path / "run")
  config.parse_config([f"{name}_pendulum.gin"],
                      TINY + [f"tfrl.agents.{name}.actor_fc_layer_params = (16, 16)",
                              f"tfrl.agents.{name}.critic_fc_layer_params = (16, 16)"])
  tfrl.train.train(root, agent_fn=recording_agent_fn, log=lambda _: None)

  with open(os.path.join(root, "progress.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [int(r["iteration"]) for r in rows] == [0, 3]
  assert int(rows[-1]["train_steps"]) == 3 * 4
  assert math.isfinite(float(rows[-1]["loss"]))
  assert math.isfinite(float(rows[-1]["avg_return"]))
  agent, before = recorded["agent"], recorded["before"]
  after = snapshot(agent)
  for role in before:
    assert changed(before[role], after[role]), f"{name}: {role} did not change"
  # Soft targets (tau < 1) move towards the online networks without reaching them.
  for role in before:
    if role.startswith("target_"):
      online = after[role[len("target_"):]]
      assert changed(online, after[role]), f"{name}: {role} equals its online network"
  if "critic_2" in after:  # twin critics learn separately
    assert changed(after["critic"], after["critic_2"])
  # Diagnostics beyond tf-agents' losses reach progress.csv.
  assert math.isfinite(float(rows[-1]["q_value"]))
  if name == "sac":
    assert float(rows[-1]["alpha"]) == pytest.approx(0.2)  # fixed unless alpha is tuned
    assert math.isfinite(float(rows[-1]["entropy"]))


# --- one train step at a time ------------------------------------------------

def transitions(agent, batch_size=8, seed=0):
  """A batch of [B, 2] mid-episode transitions shaped as the replay delivers them."""
  tf.random.set_seed(seed)
  traj = tensor_spec.sample_spec_nest(agent.collect_data_spec, outer_dims=(batch_size, 2))
  mid = tf.fill([batch_size, 2], ts.StepType.MID)
  return traj._replace(step_type=mid, next_step_type=mid,
                       reward=tf.random.normal([batch_size, 2]),
                       discount=tf.ones([batch_size, 2]))


@pytest.mark.parametrize("name", AGENTS)
def test_q_value_diagnostic_is_the_critic_before_the_update(name):
  agent = getattr(tfrl.agents, name)(*pendulum_specs(), actor_fc_layer_params=(8,),
                                     critic_fc_layer_params=(8,))
  batch = transitions(agent)
  critic = getattr(agent, "_critic_network", None) or agent._critic_network_1  # pylint: disable=protected-access
  expected, _ = critic((batch.observation[:, 0], batch.action[:, 0]),
                       step_type=batch.step_type[:, 0])
  extra = agent.train(batch).extra
  np.testing.assert_allclose(extra.q_value.numpy(), expected.numpy(), rtol=1e-5)
  # The public record of the networks is tf-agents' own, not copies.
  assert agent.critic_network is critic and agent.actor_network is agent._actor_network  # pylint: disable=protected-access


def test_ddpg_targets_soft_update_every_period():
  agent = tfrl.agents.ddpg(*pendulum_specs(), actor_fc_layer_params=(8,),
                           critic_fc_layer_params=(8,), target_update_tau=0.5,
                           target_update_period=2)
  start = snapshot(agent)
  assert not changed(start["actor"], start["target_actor"])  # initialize() copies
  batch = transitions(agent)
  loss = agent.train(batch)
  assert all(np.isfinite(x) for x in (loss.loss, loss.extra.actor_loss, loss.extra.critic_loss))
  one = snapshot(agent)
  assert changed(start["actor"], one["actor"]) and changed(start["critic"], one["critic"])
  assert not changed(start["target_actor"], one["target_actor"])  # step 1 of 2: no update
  assert not changed(start["target_critic"], one["target_critic"])
  agent.train(batch)
  two = snapshot(agent)
  for role in ("actor", "critic"):
    assert_soft_update(one[f"target_{role}"], two[role], two[f"target_{role}"], tau=0.5)


def test_td3_delays_actor_and_target_updates():
  agent = tfrl.agents.td3(*pendulum_specs(), actor_fc_layer_params=(8,),
                          critic_fc_layer_params=(8,), target_update_tau=0.5, policy_delay=2)
  start = snapshot(agent)
  batch = transitions(agent)
  loss = agent.train(batch)  # train step 0: critics and actor
  assert all(np.isfinite(x) for x in (loss.loss, loss.extra.actor_loss, loss.extra.critic_loss))
  one = snapshot(agent)
  for role in ("actor", "critic", "critic_2"):
    assert changed(start[role], one[role]), role
  for role in ("target_actor", "target_critic", "target_critic_2"):
    assert not changed(start[role], one[role]), role
  agent.train(batch)  # train step 1: critics only, then the targets follow
  two = snapshot(agent)
  assert not changed(one["actor"], two["actor"])
  assert changed(one["critic"], two["critic"]) and changed(one["critic_2"], two["critic_2"])
  for role in ("actor", "critic", "critic_2"):
    assert_soft_update(one[f"target_{role}"], two[role], two[f"target_{role}"], tau=0.5)
  agent.train(batch)  # train step 2: the actor again
  assert changed(two["actor"], snapshot(agent)["actor"])


@pytest.mark.parametrize("alpha_learning_rate", [0.0, 0.01])
def test_sac_soft_updates_twin_critic_targets_and_alpha_as_configured(alpha_learning_rate):
  agent = tfrl.agents.sac(*pendulum_specs(), actor_fc_layer_params=(8,),
                          critic_fc_layer_params=(8,), target_update_tau=0.5, alpha=0.2,
                          alpha_learning_rate=alpha_learning_rate)
  log_alpha = agent._log_alpha  # pylint: disable=protected-access
  assert agent.log_alpha is log_alpha  # what the alpha diagnostic reads
  np.testing.assert_allclose(log_alpha.numpy(), math.log(0.2), rtol=1e-6)
  start = snapshot(agent)
  loss = agent.train(transitions(agent))
  assert all(np.isfinite(x) for x in (loss.loss, loss.extra.actor_loss,
                                      loss.extra.critic_loss, loss.extra.alpha_loss))
  one = snapshot(agent)
  for role in ("actor", "critic", "critic_2"):
    assert changed(start[role], one[role]), role
  for role in ("critic", "critic_2"):
    assert_soft_update(start[f"target_{role}"], one[role], one[f"target_{role}"], tau=0.5)
  alpha_moved = not np.isclose(log_alpha.numpy(), math.log(0.2), rtol=0, atol=1e-7)
  assert alpha_moved == (alpha_learning_rate > 0)


# --- acting ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ddpg", "td3"])
def test_exploration_noise_is_independent_per_env_and_clipped(name):
  time_step_spec, action_spec = pendulum_specs()
  agent = getattr(tfrl.agents, name)(time_step_spec, action_spec, actor_fc_layer_params=(8,),
                                     critic_fc_layer_params=(8,), exploration_noise_std=1.0)
  assert isinstance(agent.collect_policy, GaussianNoisePolicy)
  batch = 64
  step = ts.restart(tf.tile([[1.0, 0.0, 0.5]], [batch, 1]), batch_size=batch)
  greedy = agent.policy.action(step).action.numpy()
  noisy = agent.collect_policy.action(step).action.numpy()
  assert np.all(greedy == greedy[0])  # same observation, same deterministic action
  assert len(np.unique(noisy)) > batch // 2  # tf-agents' GaussianPolicy gives 1 value here
  assert np.all(noisy >= action_spec.minimum) and np.all(noisy <= action_spec.maximum)
  assert np.std(noisy) > 0.5  # std 1.0 before clipping to [-2, 2]


def test_sac_actor_log_std_is_bounded_as_spinning_up():
  """Spinning Up clamps the Gaussian's log-std to [-20, 2]: an extreme
  observation gives a std inside exp([-20, 2]), not 0 or inf."""
  time_step_spec, action_spec = pendulum_specs()
  tf.random.set_seed(0)
  actor = tfrl.networks.squashed_gaussian_actor_network(time_step_spec.observation,
                                                        action_spec, (8,))
  for scale in (1e4, -1e4):
    observation = tf.constant([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]]) * scale
    distribution, _ = actor(observation, step_type=(), network_state=())
    std = distribution.input_distribution.stddev().numpy()
    assert np.all(std >= math.exp(-20) * (1 - 1e-5)) and np.all(std <= math.exp(2) * (1 + 1e-5))
    assert np.any(np.isclose(std, math.exp(2), rtol=1e-5)) or \
        np.any(np.isclose(std, math.exp(-20), rtol=1e-5))  # the bound was reached
