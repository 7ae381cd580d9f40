"""The agent family: return/advantage math, TRPO's pieces, DQN's schedule and
target network, and every on-policy agent taking real train steps."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tree
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

import tfrl
from tfrl.agents.advantages import (advantages_and_returns, by_episode, discounted_returns_to_date,
                                    generalized_advantage_estimation, td_lambda_returns)
from tfrl.agents.dqn import linearly_decaying_epsilon
from tfrl.agents.trpo import conjugate_gradient

# Two episodes laid end to end as on-policy replay delivers them: three steps
# ending in termination, boundary, two steps ending in truncation, boundary.
REWARDS = [1.0, 1.0, 1.0, 0.0, 1.0, 2.0, 0.0]
VALUES = [0.5, 0.4, 0.3, 9.0, 0.2, 0.1, 2.0]   # 9.0: a terminal state's value, never used
DISCOUNTS = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]
VALID = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0]


def _episode_arrays():
  next_values = VALUES[1:] + [0.0]
  return [tf.constant(x) for x in (REWARDS, VALUES, next_values, DISCOUNTS, VALID)]


def test_gae_matches_hand_computation():
  gamma, lam = 0.9, 0.5
  # By hand, delta_t = r + gamma * d * V(next) - V:
  #  episode 1: delta2 = 1 - 0.3 = 0.7 (terminated: no bootstrap)
  #             delta1 = 1 + 0.27 - 0.4 = 0.87, delta0 = 1 + 0.36 - 0.5 = 0.86
  #  episode 2: delta5 = 2 + 0.9 * 2.0 - 0.1 = 3.7 (truncated: bootstrapped)
  #             delta4 = 1 + 0.09 - 0.2 = 0.89
  # A_t = delta_t + 0.45 * A_{t+1} inside an episode; 0 on boundaries.
  expected = [0.86 + 0.45 * (0.87 + 0.45 * 0.7), 0.87 + 0.45 * 0.7, 0.7, 0.0,
              0.89 + 0.45 * 3.7, 3.7, 0.0]
  advantages = generalized_advantage_estimation(*_episode_arrays(), gamma=gamma, lambda_=lam)
  np.testing.assert_allclose(advantages.numpy(), expected, rtol=1e-6)
  # Batched [T, B]: each column is computed on its own.
  batched = [tf.stack([x, x * 0 + x], axis=1) for x in _episode_arrays()]
  both = generalized_advantage_estimation(*batched, gamma=gamma, lambda_=lam)
  np.testing.assert_allclose(both.numpy(), np.stack([expected, expected], 1), rtol=1e-6)


def test_lambda_one_returns_are_discounted_rewards_to_go():
  returns = td_lambda_returns(*_episode_arrays(), gamma=0.9, lambda_=1.0)
  # Episode 1 terminated: 1 + 0.9 (1 + 0.9 * 1); episode 2 truncated: 2 + 0.9 V(final)=3.8.
  np.testing.assert_allclose(returns.numpy(), [2.71, 1.9, 1.0, 0.0, 1 + 0.9 * 3.8, 3.8, 0.0],
                             rtol=1e-6)


def _random_episodes(rng, rows, open_end: bool):
  """[B, T] rewards, values, next values, discounts and valid of episodes
  laid end to end in each row (`rows`: each row's transitions per episode,
  each episode followed by its boundary step); `open_end`: the last row
  ends with two steps of an unfinished episode."""
  boundary = []
  for i, lengths in enumerate(rows):
    row = []
    for length in lengths:
      row += [False] * length + [True]
    if open_end and i == len(rows) - 1:
      row += [False, False]
    boundary.append(row)
  boundary = np.array(boundary)
  shape = boundary.shape
  values = rng.normal(size=shape).astype(np.float32)
  next_values = np.concatenate([values[:, 1:], np.zeros_like(values[:, :1])], axis=1)
  discounts = (rng.random(shape) > 0.3).astype(np.float32)  # some terminations, some truncations
  arrays = (rng.normal(size=shape).astype(np.float32), values, next_values, discounts, ~boundary)
  return [tf.constant(x) for x in arrays]


def test_one_backward_pass_per_episode_is_gae_and_td_lambda_end_to_end():
  """The agents' advantage step (`by_episode` of `advantages_and_returns`)
  gives exactly what GAE and TD(lambda) give on the experience's [T, B]
  columns, episodes end to end, while its recursion runs over one column
  per episode, as long as the longest."""
  rng = np.random.default_rng(0)
  # Row 0: episodes of 6 and 3 transitions; row 1: of 2, 3 and 1, then an
  # unfinished one: sequences (boundaries included) of 7, 4 | 3, 4, 2, 2 steps.
  tensors = _random_episodes(rng, [[6, 3], [2, 3, 1]], open_end=True)
  time_major = [tf.transpose(x) for x in tensors]
  gamma, gae_lambda, value_lambda = 0.99, 0.95, 1.0
  expected_advantages = tf.transpose(generalized_advantage_estimation(
      *time_major, gamma=gamma, lambda_=gae_lambda))
  expected_returns = tf.transpose(td_lambda_returns(*time_major, gamma=gamma,
                                                    lambda_=value_lambda))
  shapes = []

  def one_pass(*columns):
    shapes.append(columns[0].shape)
    return advantages_and_returns(*columns, gamma=gamma, gae_lambda=gae_lambda,
                                  value_lambda=value_lambda)

  advantages, returns = by_episode(one_pass, tf.logical_not(tensors[-1]), *tensors)
  assert shapes == [(7, 6)]
  np.testing.assert_array_equal(advantages.numpy(), expected_advantages.numpy())
  np.testing.assert_array_equal(returns.numpy(), expected_returns.numpy())


def test_on_policy_batch_preparation_runs_one_recursion():
  """GAE and the value targets share one backward pass (one while loop in
  the traced preparation), not one each."""
  env = tfrl.envs.load("CartPole-v1", seed=0)
  agent = tfrl.agents.ppo(*_specs(env))
  spec = tensor_spec.add_outer_dim(tensor_spec.add_outer_dim(agent.collect_data_spec, None), 1)
  graph = tf.function(agent._prepare_batch).get_concrete_function(spec).graph  # pylint: disable=protected-access
  loops = [op for op in graph.get_operations() if op.type in ("While", "StatelessWhile")]
  assert len(loops) == 1


def test_returns_to_date_restart_after_each_boundary():
  rewards, _, _, _, valid = _episode_arrays()
  returns = discounted_returns_to_date(rewards, valid, gamma=0.9)
  # Episode 1: 1, 1 + 0.9, 1 + 0.9 * 1.9; boundary 0; episode 2: 1, 2 + 0.9.
  np.testing.assert_allclose(returns.numpy(), [1.0, 1.9, 2.71, 0.0, 1.0, 2.9, 0.0], rtol=1e-6)


def test_reward_scaling_divides_by_the_std_of_returns_so_far():
  """normalize_rewards: the batch's per-episode discounted returns so far
  join the scaler's statistics (numpy's variance of them), then the rewards
  the advantages are computed from are r / sqrt(var + 1e-8), clipped to 10."""
  env = tfrl.envs.load("Pendulum-v1", seed=0)
  agent = tfrl.agents.ppo(*_specs(env), normalize_rewards=True, num_epochs=1, value_epochs=1)
  experience = _collect(env, agent.collect_policy, 2)  # [1, 2 x 201]
  valid = ~experience.is_boundary().numpy()[0]
  rewards, gamma = experience.reward.numpy()[0], 0.99
  returns, running = [], 0.0
  for reward, keep in zip(rewards, valid):
    running = (reward + gamma * running) if keep else 0.0
    if keep:
      returns.append(running)
  scaled = agent._scale_rewards(experience)  # pylint: disable=protected-access
  scaler = agent.reward_scaler
  assert float(scaler.count) == pytest.approx(len(returns) + 1e-4)
  np.testing.assert_allclose(float(scaler.variance), np.var(returns), rtol=1e-3)
  expected = np.clip(rewards / np.sqrt(np.var(returns) + 1e-8), -10, 10)
  np.testing.assert_allclose(scaled.reward.numpy()[0], expected, rtol=1e-3)
  assert np.isfinite(float(agent.train(experience).loss))
  assert float(scaler.count) == pytest.approx(2 * len(returns) + 1e-4)  # train scales again


def test_conjugate_gradient_matches_direct_solve():
  rng = np.random.default_rng(0)
  m = rng.normal(size=(6, 6)).astype(np.float32)
  a = m @ m.T + 6 * np.eye(6, dtype=np.float32)
  b = rng.normal(size=6).astype(np.float32)
  x = conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(a), v), tf.constant(b),
                         iterations=10)
  np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-4, atol=1e-5)
  few = conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(a), v), tf.constant(b),
                           iterations=2)
  assert np.linalg.norm(a @ few.numpy() - b) > 1e-3   # fewer iterations, inexact


def test_epsilon_decays_linearly_then_stays():
  values = [float(linearly_decaying_epsilon(s, 100, 1.0, 0.1)) for s in (0, 50, 100, 1000)]
  np.testing.assert_allclose(values, [1.0, 0.55, 0.1, 0.1], rtol=1e-6)


def _specs(env):
  return tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec())


def _collect(env, policy, num_episodes):
  """Whole episodes from a single env, end to end: a [1, T] Trajectory."""
  steps = []
  driver = tfrl.drivers.Driver(env, policy, observers=[steps.append])
  driver.run_episodes(num_episodes)
  return tree.map_structure(lambda *xs: tf.constant(np.concatenate(xs)[None]), *steps)


def _changed(before, variables):
  return any(not np.allclose(a, v.numpy()) for a, v in zip(before, variables))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
@pytest.mark.parametrize("name", ["vpg", "ppo", "trpo", "reinforce"])
def test_on_policy_agent_trains(name, env_id):
  env = tfrl.envs.load(env_id, seed=0, max_episode_steps=40)
  agent = getattr(tfrl.agents, name)(*_specs(env))
  experience = _collect(env, agent.collect_policy, 3)
  before = [v.numpy().copy() for v in agent.trainable_variables]
  for _ in range(2):
    loss_info = agent.train(experience)
    assert np.isfinite(loss_info.loss.numpy())
  assert int(agent.train_step_counter.numpy()) == 2
  assert _changed(before, agent.trainable_variables)


def test_trpo_step_respects_the_kl_limit():
  env = tfrl.envs.load("CartPole-v1", seed=0)
  max_kl = 0.005
  agent = tfrl.agents.trpo(*_specs(env), max_kl=max_kl)
  experience = _collect(env, agent.collect_policy, 4)
  observation = tf.boolean_mask(experience.observation, ~experience.is_boundary())
  actor = agent._actor_net  # pylint: disable=protected-access
  old_logits = actor(observation, step_type=(), network_state=())[0].logits_parameter()
  info = agent.train(experience).extra
  new_logits = actor(observation, step_type=(), network_state=())[0].logits_parameter()
  kl = tf.reduce_mean(tfp.distributions.kl_divergence(
      tfp.distributions.Categorical(logits=old_logits),
      tfp.distributions.Categorical(logits=new_logits))).numpy()
  assert int(info["backtrack_steps"]) >= 0, "the line search accepted no step"
  assert 0 < kl <= max_kl * 1.001
  np.testing.assert_allclose(kl, info["kl"].numpy(), rtol=1e-3)
  assert info["surrogate_improvement"].numpy() >= 0


def test_ppo_stops_early_at_the_target_kl():
  # Seeded: on some batches Spinning Up's approx_kl (mean old - new
  # log-prob) stays below a small target for all epochs (seen in CI).
  tf.random.set_seed(0)
  env = tfrl.envs.load("CartPole-v1", seed=0)
  spec = _specs(env)
  experience = _collect(env, tfrl.agents.ppo(*spec).collect_policy, 4)
  free = tfrl.agents.ppo(*spec, target_kl=None, num_epochs=30, policy_learning_rate=1e-2)
  stopped = tfrl.agents.ppo(*spec, target_kl=0.001, num_epochs=30, policy_learning_rate=1e-2)
  stopped._actor_net.set_weights(free._actor_net.get_weights())  # pylint: disable=protected-access
  assert int(free.train(experience).extra["policy_steps"]) == 30
  assert 0 < int(stopped.train(experience).extra["policy_steps"]) < 30


def test_max_grad_norm_clips_each_steps_gradients_to_that_global_norm():
  """tfrl.networks.adam(max_grad_norm=c) takes Adam's steps on the gradients
  scaled by min(1, c / global norm); ppo's binding reaches both optimizers."""
  clipped, reference, unclipped = [tf.Variable([1.0, -2.0, 0.5]) for _ in range(3)]
  ours, plain = tfrl.networks.adam(0.1, max_grad_norm=1.0), tf.keras.optimizers.Adam(0.1)
  free = tf.keras.optimizers.Adam(0.1)
  # Norms 13, 0.5 (left as is), 130: Adam's steps see their ratios change.
  for gradient in ([3.0, 4.0, 12.0], [0.3, 0.0, -0.4], [-30.0, 40.0, 120.0]):
    gradient = tf.constant(gradient)
    ours.apply_gradients([(gradient, clipped)])
    plain.apply_gradients([(tf.clip_by_global_norm([gradient], 1.0)[0][0], reference)])
    free.apply_gradients([(gradient, unclipped)])
    np.testing.assert_allclose(clipped.numpy(), reference.numpy(), rtol=1e-6)
  assert not np.allclose(unclipped.numpy(), clipped.numpy(), rtol=1e-3)
  agent = tfrl.agents.ppo(*_specs(tfrl.envs.load("Pendulum-v1")), max_grad_norm=0.5)
  assert agent.parts.policy_optimizer.global_clipnorm == 0.5
  assert agent.parts.value_optimizer.global_clipnorm == 0.5


def _transitions(experience):
  """[1, T] episodes -> [N, 2] transitions that stay inside an episode."""
  pairs = tree.map_structure(lambda x: tf.stack([x[0, :-1], x[0, 1:]], axis=1), experience)
  keep = ~pairs.is_boundary()[:, 0]
  return tree.map_structure(lambda x: tf.boolean_mask(x, keep), pairs)


def test_dqn_syncs_its_target_network_every_period():
  env = tfrl.envs.load("CartPole-v1", seed=0)
  agent = tfrl.agents.dqn(*_specs(env), target_update_period=3)
  batch = _transitions(_collect(env, agent.collect_policy, 3))
  online = agent._q_network.trainable_variables  # pylint: disable=protected-access
  target = agent._target_q_network.trainable_variables  # pylint: disable=protected-access
  same = lambda: all(np.allclose(a.numpy(), b.numpy()) for a, b in zip(online, target))
  history = []
  for _ in range(6):
    assert np.isfinite(agent.train(batch).loss.numpy())
    history.append(same())
  # Synced (copied, tau = 1) after every third train step, and only then.
  assert history == [False, False, True, False, False, True]


def test_dqn_parts_are_what_the_agent_trains_with():
  """`agent.parts` (what the compiled learner is built from) are the very
  objects tf-agents' DqnAgent keeps privately, not copies."""
  # pylint: disable=protected-access
  env = tfrl.envs.load("CartPole-v1", seed=0)
  agent = tfrl.agents.dqn(*_specs(env), gamma=0.9, target_update_period=7,
                          target_update_tau=0.5, gradient_clipping=2.0)
  parts = agent.parts
  assert parts.q_network is agent._q_network
  assert parts.target_q_network is agent._target_q_network
  assert parts.optimizer is agent._optimizer
  assert parts.train_step_counter is agent.train_step_counter
  assert parts.epsilon_greedy is agent.collect_policy._epsilon
  assert parts.td_errors_loss_fn is agent._td_errors_loss_fn
  assert (parts.gamma, parts.gradient_clipping, parts.n_step_update) == \
      (agent._gamma, agent._gradient_clipping, agent._n_step_update) == (0.9, 2.0, 1)
  assert (parts.target_update_period, parts.target_update_tau) == (7, 0.5)
  with pytest.raises(AttributeError):
    parts.gamma = 0.5  # frozen: the record cannot drift from the agent


def test_dqn_reports_q_values_of_the_taken_actions():
  env = tfrl.envs.load("CartPole-v1", seed=0)
  agent = tfrl.agents.dqn(*_specs(env))
  batch = _transitions(_collect(env, agent.collect_policy, 2))
  # Before the update: the loss reports Q(s, a) of the online network as it was.
  q_all, _ = agent._q_network(batch.observation[:, 0])  # pylint: disable=protected-access
  expected = tf.gather(q_all, tf.cast(batch.action[:, 0], tf.int32), batch_dims=1)
  extra = agent.train(batch).extra
  np.testing.assert_allclose(extra.q_value.numpy(), expected.numpy(), rtol=1e-5)
  assert extra.td_error.shape == extra.q_value.shape


def test_dqn_collect_policy_follows_the_epsilon_schedule():
  env = tfrl.envs.load("CartPole-v1", seed=0)
  agent = tfrl.agents.dqn(*_specs(env), epsilon_start=1.0, epsilon_end=0.0,
                          epsilon_decay_steps=10)
  experience = _collect(env, agent.collect_policy, 3)
  greedy = agent.policy
  observation = tf.boolean_mask(experience.observation, ~experience.is_boundary())
  step = ts.restart(observation, batch_size=tf.shape(observation)[0])
  greedy_actions = greedy.action(step).action.numpy()

  def agreement():
    return np.mean(agent.collect_policy.action(step).action.numpy() == greedy_actions)

  assert agreement() < 0.8      # epsilon 1: uniformly random, ~half agree
  agent.train_step_counter.assign(10)
  assert agreement() == 1.0     # epsilon 0: greedy


def test_uniform_train_call_trains_every_step_and_reports_the_last_steps_diagnostics():
  """The loop's multi-step train call skips the diagnostics of all steps
  but the last: the same updates as agent.train step by step (same
  weights), the last step's LossInfo with its q_value."""
  env = tfrl.envs.load("CartPole-v1", seed=0)
  ours, reference = [tfrl.agents.dqn(*_specs(env), target_update_period=2) for _ in range(2)]
  for a, b in zip(ours.parts.q_network.variables + ours.parts.target_q_network.variables,
                  reference.parts.q_network.variables + reference.parts.target_q_network.variables):
    b.assign(a)
  batch = _transitions(_collect(env, ours.collect_policy, 3))
  experience = tree.map_structure(lambda x: tf.stack([x, x[::-1], tf.roll(x, 1, axis=0)]), batch)
  weights = tf.ones([3, tf.shape(batch.reward)[0]])

  class Uniform:
    prioritized = False

  train = tfrl.train.off_policy_train_function(ours, Uniform(), None,
                                               lambda: (experience, weights), num_steps=3)
  info = train()
  for i in range(3):
    last = reference.train(tree.map_structure(lambda x: x[i], experience))
  assert int(ours.train_step_counter) == int(reference.train_step_counter) == 3
  assert float(info.loss) == pytest.approx(float(last.loss), rel=1e-5)
  np.testing.assert_allclose(info.extra.q_value, last.extra.q_value, rtol=1e-5)
  for a, b in zip(ours.parts.q_network.variables, reference.parts.q_network.variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_prioritized_dqn_sets_priorities_from_td_errors():
  env = tfrl.envs.load("CartPole-v1", seed=0, num_envs=2)
  agent = tfrl.agents.dqn(*_specs(env))
  transitions = tfrl.replay.TransitionReplay(capacity=1000, min_size=50, prioritized=True)
  server = tfrl.replay.ReplayServer(transitions.tables(agent.collect_data_spec, 2))
  adder = transitions.adder(server.client, 2)
  tfrl.drivers.Driver(env, agent.collect_policy, observers=[adder]).run_steps(200)
  batches = iter(transitions.dataset(server.address, batch_size=32, num_envs=2,
                                     data_spec=agent.collect_data_spec))
  train_steps = tfrl.train.off_policy_train_function(agent, transitions, server.client,
                                                     lambda: next(batches), num_steps=5)
  try:
    assert np.isfinite(train_steps().loss.numpy())
    assert int(agent.train_step_counter.numpy()) == 5
    priorities = [sample[0].info.priority
                  for sample in server.client.sample(transitions.table_name, num_samples=200)]
    # Items start at priority 1; sampled ones now carry |TD error| + 1e-6.
    assert any(abs(p - 1.0) > 1e-3 for p in priorities)
    assert all(p > 0 for p in priorities)
  finally:
    adder.close()
    server.close()


def test_dqn_importance_weights_weigh_each_transition():
  """Prioritized replay's importance weights scale each transition's TD
  loss: a one-hot weight leaves that transition's Huber loss / N."""
  env = tfrl.envs.load("CartPole-v1", seed=0)
  agent = tfrl.agents.dqn(*_specs(env))
  batch = _transitions(_collect(env, agent.collect_policy, 2))
  td_error = agent.loss(batch).extra.td_error.numpy()
  huber = np.where(np.abs(td_error) <= 1.0, 0.5 * td_error**2, np.abs(td_error) - 0.5)
  n = len(td_error)
  assert np.ptp(huber) > 1e-3  # distinct losses, or the check below proves nothing
  for i in range(3):
    weights = tf.one_hot(i, n)
    assert float(agent.loss(batch, weights=weights).loss) == pytest.approx(huber[i] / n,
                                                                          rel=1e-5)


@pytest.mark.parametrize("factory, env_id", [
    ("reinforce", "CartPole-v1"), ("vpg", "CartPole-v1"), ("ppo", "Pendulum-v1"),
    ("trpo", "Pendulum-v1"), ("dqn", "CartPole-v1"), ("ddpg", "Pendulum-v1"),
    ("td3", "Pendulum-v1"), ("sac", "Pendulum-v1")])
def test_factories_take_the_array_specs_an_environment_gives(factory, env_id):
  env = tfrl.envs.load(env_id, seed=0)
  agent = getattr(tfrl.agents, factory)(env.time_step_spec(), env.action_spec())
  time_step = env.reset()
  batched = tf.nest.map_structure(lambda x: tf.constant(np.asarray(x)[None]), time_step)
  action = agent.policy.action(batched).action
  assert action.shape[0] == 1


def test_minibatch_steps_visit_each_epoch_in_disjoint_parts_and_stop_when_told():
  env = tfrl.envs.load("CartPole-v1", seed=0)
  agent = tfrl.agents.ppo(*_specs(env))
  batch = dict(advantage=tf.range(10, dtype=tf.float32), index=tf.range(10))

  def record(part, seen):
    seen = tf.concat([seen, part["index"][None]], axis=0)
    return seen, tf.shape(seen)[0] >= 5   # stop after the fifth part

  # pylint: disable=protected-access
  parts = agent._minibatch_steps(batch, 2, 3, lambda p, s: (record(p, s)[0], tf.constant(False)),
                                 tf.zeros([0, 3], tf.int32)).numpy()
  assert parts.shape == (6, 3)   # 2 epochs x 3 parts of 10 // 3, the rest dropped
  for epoch in (parts[:3], parts[3:]):
    assert len(set(epoch.ravel())) == 9, "an epoch's parts overlap"
  assert not np.array_equal(parts[:3], parts[3:]), "every epoch draws its own order"
  stopped = agent._minibatch_steps(batch, 2, 3, record, tf.zeros([0, 3], tf.int32))
  assert stopped.shape[0] == 5
