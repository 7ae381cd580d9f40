"""The compiled fast path: TF-native envs vs gymnasium, the in-graph replay,
DQN's pure functions, the compiled loop vs tf-agents' DQN, the run directory."""

import csv
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

import tfrl
from tfrl.agents.dqn import InGraphDqn, epsilon_greedy, exponentially_decaying_epsilon, \
    next_state_values, q_learning_td_loss
from tfrl.envs import tf_envs
from tfrl.errors import ConfigError
from tfrl.replay.in_graph import InGraphReplay
from tfrl.train import compiled, config


def _to_tf_state(physics, steps):
  return {"physics": tf.constant(np.asarray(physics, np.float32)),
          "steps": tf.constant(np.asarray(steps, np.int32))}


@pytest.mark.parametrize("env_id,limit", [("CartPole-v1", None), ("CartPole-v1", 7),
                                          ("Pendulum-v1", None), ("Pendulum-v1", 9)])
def test_tf_env_matches_gymnasium_step_by_step(env_id, limit):
  """Random actions on 3 gymnasium envs; before every step the TF env is
  given the gymnasium states (float64 -> float32), then both step and must
  agree on observation, reward, terminated and truncated."""
  kwargs = {} if limit is None else {"max_episode_steps": limit}
  gym_envs = [gym.make(env_id, **kwargs) for _ in range(3)]
  tf_env = tf_envs.CartPole(**kwargs) if env_id.startswith("CartPole") else tf_envs.Pendulum(**kwargs)
  assert tf_env.max_episode_steps == gym_envs[0].spec.max_episode_steps
  rng = np.random.default_rng(0)
  for i, env in enumerate(gym_envs):
    env.reset(seed=i)
    env.action_space.seed(i)
  ended = {"terminated": 0, "truncated": 0}
  for _ in range(120):
    physics = [env.unwrapped.state for env in gym_envs]
    steps = [env._elapsed_steps for env in gym_envs]  # TimeLimit's count
    actions = [env.action_space.sample() for env in gym_envs]
    step = tf_env.step(_to_tf_state(physics, steps), tf.constant(np.stack(actions)))
    for b, env in enumerate(gym_envs):
      obs, reward, terminated, truncated, _ = env.step(actions[b])
      np.testing.assert_allclose(step.observation[b].numpy(), obs, rtol=1e-5, atol=1e-5)
      np.testing.assert_allclose(step.reward[b].numpy(), reward, rtol=1e-5, atol=1e-5)
      assert bool(step.terminated[b]) == terminated
      assert bool(step.truncated[b]) == truncated
      np.testing.assert_allclose(step.state["physics"][b].numpy(), env.unwrapped.state,
                                 rtol=1e-5, atol=1e-5)
      ended["terminated"] += terminated
      ended["truncated"] += truncated and not terminated
      if terminated or truncated:
        env.reset(seed=int(rng.integers(1 << 30)))
  if env_id.startswith("CartPole") and limit is None:
    assert ended["terminated"] > 5
  if limit is not None:
    assert ended["truncated"] > 1


def test_cartpole_free_running_trajectory_matches_gymnasium():
  """The same initial state copied over, then the TF env on its own: the
  whole episode stays within float32 error of gymnasium's."""
  env = gym.make("CartPole-v1")
  obs, _ = env.reset(seed=3)
  tf_env = tf_envs.CartPole()
  state = _to_tf_state([env.unwrapped.state], [0])
  rng = np.random.default_rng(3)
  for t in range(500):
    action = int(rng.integers(2))
    step = tf_env.step(state, tf.constant([action]))
    obs, reward, terminated, truncated, _ = env.step(action)
    np.testing.assert_allclose(step.observation[0].numpy(), obs, rtol=1e-4, atol=1e-5)
    assert bool(step.terminated[0]) == terminated and float(step.reward[0]) == reward
    state = step.state
    if terminated:
      break
  assert t > 5


def test_resets_are_seeded_and_in_gymnasium_bounds():
  seed = tf.constant([1, 2], tf.int64)
  cart = tf_envs.CartPole().reset(seed, 1000)["physics"].numpy()
  assert np.all(np.abs(cart) <= 0.05) and cart.std() > 0.02
  np.testing.assert_array_equal(cart, tf_envs.CartPole().reset(seed, 1000)["physics"].numpy())
  assert not np.array_equal(cart, tf_envs.CartPole().reset(seed + 1, 1000)["physics"].numpy())
  pend = tf_envs.Pendulum().reset(seed, 1000)["physics"].numpy()
  assert np.all(np.abs(pend[:, 0]) <= np.pi) and np.all(np.abs(pend[:, 1]) <= 1.0)
  assert pend[:, 0].std() > 1.0


def test_auto_reset_restarts_only_finished_envs():
  env = tf_envs.CartPole(max_episode_steps=3)
  state = env.reset(tf.constant([0, 0], tf.int64), 2)
  state = {"physics": tf.constant([[0.0, 0.0, 0.0, 0.0], [2.39, 5.0, 0.0, 0.0]]),
           "steps": tf.constant([0, 0])}
  step = env.step(state, tf.constant([1, 1]))
  assert step.terminated.numpy().tolist() == [False, True]
  after = tf_envs.auto_reset(env, step, tf.constant([5, 5], tf.int64))
  np.testing.assert_array_equal(after["physics"][0].numpy(), step.state["physics"][0].numpy())
  assert np.all(np.abs(after["physics"][1].numpy()) <= 0.05)
  assert after["steps"].numpy().tolist() == [1, 0]


def test_unknown_tf_env_is_a_config_error():
  with pytest.raises(ConfigError, match="no TF-native environment"):
    tf_envs.make("LunarLander-v3")


def test_angle_normalize_matches_gymnasium():
  from gymnasium.envs.classic_control.pendulum import angle_normalize as gym_angle_normalize
  x = np.linspace(-20, 20, 101)
  np.testing.assert_allclose(tf_envs.angle_normalize(tf.constant(x, tf.float32)).numpy(),
                             gym_angle_normalize(x), atol=1e-5)


def _free_running(env_id, tf_env, num_steps, choose_actions, atol, rtol=1e-5):
  """3 gymnasium envs and the TF twin stepped with the same actions
  (`choose_actions(rng, physics)`, from the TF states), the TF state copied
  from gymnasium's only at each reset, so each episode runs free. Every
  step's observation, reward, terminated and truncated must agree; returns
  the terminated and truncated counts and gymnasium's states after each
  step."""
  gym_envs = [gym.make(env_id) for _ in range(3)]
  assert tf_env.max_episode_steps == gym_envs[0].spec.max_episode_steps
  rng = np.random.default_rng(0)

  def reset(b, seed):
    gym_envs[b].reset(seed=seed)
    return gym_envs[b].unwrapped.state

  dtype = tf_env.reset(tf.constant([0, 0], tf.int64), 1)["physics"].dtype.as_numpy_dtype
  physics = np.stack([np.asarray(reset(b, b), dtype) for b in range(3)])
  steps = np.zeros([3], np.int32)
  step_fn = tf.function(tf_env.step, jit_compile=True)
  ended = {"terminated": 0, "truncated": 0}
  states = []
  for _ in range(num_steps):
    actions = choose_actions(rng, physics)
    step = step_fn({"physics": tf.constant(physics), "steps": tf.constant(steps)},
                   tf.constant(actions))
    physics, steps = step.state["physics"].numpy(), step.state["steps"].numpy()
    for b, env in enumerate(gym_envs):
      obs, reward, terminated, truncated, _ = env.step(actions[b])
      states.append(np.asarray(env.unwrapped.state, np.float64))
      np.testing.assert_allclose(step.observation[b].numpy(), obs, rtol=rtol, atol=atol)
      np.testing.assert_allclose(step.reward[b].numpy(), reward, rtol=1e-5, atol=1e-5)
      assert bool(step.terminated[b]) == terminated
      assert bool(step.truncated[b]) == truncated
      ended["terminated"] += terminated
      ended["truncated"] += truncated and not terminated
      if terminated or truncated:
        physics[b], steps[b] = reset(b, int(rng.integers(1 << 30))), 0
  return ended, np.stack(states)


def test_acrobot_free_running_matches_gymnasium():
  """Acrobot from gymnasium's resets (hanging down, random torques): whole
  500-step episodes run free, through the truncation and into the next
  episode, agree to float32 rounding (a float32 twin drifted 5e-4 here)."""
  ended, _ = _free_running("Acrobot-v1", tf_envs.Acrobot(), 520,
                           lambda rng, physics: rng.integers(3, size=3), atol=1e-6)
  assert ended["truncated"] == 3


def test_acrobot_matches_gymnasium_step_by_step_when_swinging():
  """A swinging acrobot is chaotic (any rounding difference grows to O(1)
  within a few hundred steps), so here the TF state is copied from
  gymnasium's before every step, with a 40-step limit. Envs 0 and 1 start
  from wide resets (angles and velocities uniform in [-3, 3]) that reach
  the bar often and wrap the angles, env 2 anywhere in the state's box
  (velocities up to their bounds, 4 pi and 9 pi)."""
  gym_envs = [gym.make("Acrobot-v1", max_episode_steps=40) for _ in range(3)]
  tf_env = tf_envs.Acrobot(max_episode_steps=40)
  options = {"low": -3.0, "high": 3.0}
  box = np.array([np.pi, np.pi, 4 * np.pi, 9 * np.pi])
  rng = np.random.default_rng(1)

  def reset(b, seed):
    gym_envs[b].reset(seed=seed, options=options)
    if b == 2:
      gym_envs[b].unwrapped.state = rng.uniform(-box, box)

  for b in range(3):
    reset(b, b)
  step_fn = tf.function(tf_env.step, jit_compile=True)
  ended = {"terminated": 0, "truncated": 0, "wrapped": 0, "bounded": 0}
  for _ in range(300):
    before = np.stack([env.unwrapped.state for env in gym_envs])
    steps = [env._elapsed_steps for env in gym_envs]  # TimeLimit's count
    actions = rng.integers(3, size=3)
    state = {"physics": tf.constant(before, tf.float64), "steps": tf.constant(steps, tf.int32)}
    step = step_fn(state, tf.constant(actions))
    for b, env in enumerate(gym_envs):
      obs, reward, terminated, truncated, _ = env.step(int(actions[b]))
      np.testing.assert_allclose(step.observation[b].numpy(), obs, rtol=1e-6, atol=1e-6)
      # The wrapped angles too (the observation's cos and sin cannot tell).
      np.testing.assert_allclose(step.state["physics"][b].numpy(), env.unwrapped.state, atol=1e-6)
      assert float(step.reward[b]) == reward
      assert bool(step.terminated[b]) == terminated and bool(step.truncated[b]) == truncated
      ended["wrapped"] += np.any(np.abs(env.unwrapped.state[:2] - before[b, :2]) > np.pi)
      ended["bounded"] += np.any(np.abs(env.unwrapped.state[2:]) == box[2:])
      ended["terminated"] += terminated
      ended["truncated"] += truncated and not terminated
      if terminated or truncated:
        reset(b, int(rng.integers(1 << 30)))
  assert ended["terminated"] > 5 and ended["truncated"] > 3
  assert ended["wrapped"] > 10 and ended["bounded"] > 3


def _pumping(rng, velocity, random, left, right):
  """Env 0's actions random, envs 1 and 2's mostly a push along their
  velocity (which swings the car up to the goal, against the left wall on
  the way)."""
  actions = random(rng)
  pump = (rng.random(3) < 0.8) & (np.arange(3) > 0)
  return np.where(pump.reshape((3,) + (1,) * (actions.ndim - 1)),
                  np.where((velocity >= 0).reshape(pump.shape + actions.shape[1:]), right, left),
                  actions).astype(actions.dtype)


def _mountain_car_cases(states, goal_position):
  """How often gymnasium's car was stopped by the left wall, at the speed
  limit, and past the goal position moving back (not terminated). The
  limits are float64 (MountainCar-v0) or float32 (MountainCarContinuous-v0)."""
  position, velocity = states[:, 0], states[:, 1]
  return {"wall": np.sum(np.isclose(position, -1.2, rtol=0, atol=1e-7) & (velocity == 0)),
          "speed limit": np.sum(np.isclose(np.abs(velocity), 0.07, rtol=0, atol=1e-8)),
          "back from the goal": np.sum((position >= goal_position) & (velocity < 0))}


def test_mountain_car_free_running_matches_gymnasium():
  """MountainCar-v0 run free across episodes from gymnasium's resets: env 0
  on random actions (truncated at 200 steps), envs 1 and 2 pumping (the
  goal, the left wall)."""
  ended, states = _free_running(
      "MountainCar-v0", tf_envs.MountainCar(), 600,
      lambda rng, physics: _pumping(rng, physics[:, 1], lambda rng: rng.integers(3, size=3), 0, 2),
      atol=1e-5)
  assert ended["terminated"] > 5 and ended["truncated"] >= 3
  assert _mountain_car_cases(states, 0.5)["wall"] >= 1


def test_mountain_car_continuous_free_running_matches_gymnasium():
  """MountainCarContinuous-v0 run free across episodes from gymnasium's
  resets, actions beyond [-1, 1] (clipped for the force, not for the 0.1 a^2
  cost): env 0 random in [-0.3, 0.3] (truncated at 999 steps), envs 1 and 2
  pumping with +-1.2 or random in [-1.5, 1.5] (the goal, the left wall)."""
  scale = np.array([[0.3], [1.5], [1.5]], np.float32)
  random = lambda rng: (rng.uniform(-1, 1, size=(3, 1)) * scale).astype(np.float32)
  ended, states = _free_running(
      "MountainCarContinuous-v0", tf_envs.MountainCarContinuous(), 1100,
      lambda rng, physics: _pumping(rng, physics[:, 1], random, -1.2, 1.2), atol=1e-5)
  assert ended["terminated"] > 5 and ended["truncated"] >= 1
  assert _mountain_car_cases(states, 0.45)["wall"] >= 1


_STATE_BOXES = {"Acrobot-v1": (-np.array([np.pi, np.pi, 4 * np.pi, 9 * np.pi]),
                                np.array([np.pi, np.pi, 4 * np.pi, 9 * np.pi])),
                "MountainCar-v0": (np.array([-1.2, -0.07]), np.array([0.6, 0.07])),
                "MountainCarContinuous-v0": (np.array([-1.2, -0.07]), np.array([0.6, 0.07]))}


@pytest.mark.parametrize("env_id", sorted(_STATE_BOXES))
def test_new_tf_envs_step_a_batch_in_one_xla_call_as_gymnasium(env_id):
  """`make(env_id)`: 1024 envs reset, then set to states all over the
  state's box (to its edges: the velocity bounds, the wall, the speed limit,
  past the goal moving back), stepped with actions drawn from tfrl's own
  action spec and auto-reset, in one jit-compiled function. Shapes and
  dtypes fit the gymnasium env's specs, and every row steps as gymnasium's
  env does from that row's state."""
  from tf_agents.specs import tensor_spec as ts_spec
  py_env = tfrl.envs.load(env_id)
  observation_spec, action_spec = py_env.observation_spec(), py_env.action_spec()
  tf_env = tf_envs.make(env_id)
  n = 1024

  @tf.function(jit_compile=True)
  def reset_and_step(seed, physics, action):
    state = tf_env.reset(seed, n)
    first = tf_env.observe(state)
    step = tf_env.step(dict(state, physics=tf.cast(physics, state["physics"].dtype)), action)
    return state, first, step, tf_envs.auto_reset(tf_env, step, seed + 1)

  low, high = _STATE_BOXES[env_id]
  physics = np.random.default_rng(0).uniform(low, high, size=(n, len(low)))
  action = ts_spec.sample_spec_nest(ts_spec.from_spec(action_spec), seed=0, outer_dims=[n])
  state, first, step, after = reset_and_step(tf.constant([3, 4], tf.int64), physics, action)
  assert first.shape == step.observation.shape == (n,) + observation_spec.shape
  assert first.dtype == step.observation.dtype == observation_spec.dtype
  assert step.reward.shape == step.terminated.shape == step.truncated.shape == (n,)
  assert (step.reward.dtype, step.terminated.dtype) == (tf.float32, tf.bool)
  assert not np.any(step.truncated) and np.all(step.state["steps"] == 1)
  assert after["physics"].shape == state["physics"].shape == physics.shape
  np.testing.assert_array_equal(after["steps"], np.where(step.terminated, 0, 1))
  env = gym.make(env_id).unwrapped
  env.reset(seed=0)
  states = []
  for b in range(n):
    env.state = step_from = np.asarray(physics[b], state["physics"].dtype.as_numpy_dtype)
    obs, reward, terminated, _, _ = env.step(action[b].numpy())
    states.append(np.asarray(env.state, np.float64))
    np.testing.assert_allclose(step.observation[b].numpy(), obs, rtol=1e-5, atol=1e-5,
                               err_msg=f"from {step_from}")
    np.testing.assert_allclose(step.reward[b].numpy(), reward, rtol=1e-5, atol=1e-5)
    assert bool(step.terminated[b]) == terminated
  states = np.stack(states)
  if env_id == "Acrobot-v1":
    cases = {"bounded": np.sum(np.abs(states[:, 2:]) == high[2:]),
             "wrapped": np.sum(np.abs(states[:, :2] - physics[:, :2]) > np.pi),
             "terminated": np.sum(step.terminated)}
  else:
    cases = _mountain_car_cases(states, tf_env.goal_position)
  assert min(cases.values()) >= 3, cases


def test_new_tf_env_resets_are_seeded_and_in_gymnasium_bounds():
  """The reset states: Acrobot's 4 values uniform in [-0.1, 0.1], the
  mountain cars' position uniform in [-0.6, -0.4] at rest — bounds, spread
  and mean as gymnasium's own 1000 resets; the same seed gives the same
  states, another seed others."""
  seed = tf.constant([1, 2], tf.int64)
  for env_id, low, high in [("Acrobot-v1", -0.1, 0.1), ("MountainCar-v0", -0.6, -0.4),
                            ("MountainCarContinuous-v0", -0.6, -0.4)]:
    tf_env = tf_envs.make(env_id)
    ours = tf_env.reset(seed, 1000)
    assert ours["steps"].numpy().tolist() == [0] * 1000
    ours = ours["physics"].numpy()
    env = gym.make(env_id).unwrapped
    theirs = []
    for i in range(1000):
      env.reset(seed=i)
      theirs.append(np.asarray(env.state, np.float32))
    theirs = np.stack(theirs)
    assert ours.shape == theirs.shape
    # float32 draws (Acrobot's float64 state holds them, as gymnasium's does).
    np.testing.assert_array_equal(ours.astype(np.float32), ours)
    drawn = slice(None) if env_id == "Acrobot-v1" else slice(0, 1)
    assert np.all(ours[:, drawn] >= np.float32(low)) and np.all(ours[:, drawn] <= np.float32(high))
    if env_id != "Acrobot-v1":
      np.testing.assert_array_equal(ours[:, 1], theirs[:, 1])  # at rest
    width = high - low
    np.testing.assert_allclose(ours[:, drawn].std(0), theirs[:, drawn].std(0), atol=0.05 * width)
    np.testing.assert_allclose(ours[:, drawn].mean(0), theirs[:, drawn].mean(0), atol=0.05 * width)
    np.testing.assert_array_equal(ours, tf_env.reset(seed, 1000)["physics"].numpy())
    assert not np.array_equal(ours, tf_env.reset(seed + 1, 1000)["physics"].numpy())


@pytest.mark.parametrize("env_id,limit", [("Acrobot-v1", 500), ("MountainCar-v0", 200)])
def test_compiled_dqn_loop_runs_on_the_new_discrete_twins(env_id, limit):
  """The compiled loop (XLA) with an untrained DQN on `make(env_id)`, specs
  from `tfrl.envs.load`: Acrobot's float64 state lives in the loop's
  variables, episodes end by the time limit, and their returns are -1 per
  step (0 for the step reaching Acrobot's bar, if any)."""
  env = tfrl.envs.load(env_id)
  specs = (tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec()))
  agent = tfrl.agents.dqn(*specs, fc_layer_params=(8,))
  loop = compiled.CompiledLoop(tf_envs.make(env_id), InGraphDqn.from_agent(agent), num_envs=4,
                               replay_capacity=64, batch_size=8, seed=0, steps_per_iteration=50,
                               train_steps_per_iteration=1)
  loop.collect(tf.constant(4, tf.int64), True)
  loss = loop.run(tf.constant(20, tf.int64))
  assert np.isfinite(float(loss)) and int(loop.env_steps) == 4 * 1004
  assert loop.env_state["physics"].dtype == (tf.float64 if env_id == "Acrobot-v1" else tf.float32)
  returns, lengths = loop.take_finished_episodes()
  assert len(lengths) >= 4 * (1004 // limit) and np.all(lengths <= limit)
  if env_id == "Acrobot-v1":
    assert np.all((returns == -lengths) | (returns == -lengths + 1))
    np.testing.assert_array_equal(returns[lengths < limit], -lengths[lengths < limit] + 1)
  else:
    np.testing.assert_array_equal(returns, -lengths)


def test_replay_ring_wraps_around_and_samples_only_written_rows():
  spec = {"x": tf.TensorSpec([2], tf.float32), "i": tf.TensorSpec([], tf.int64)}
  replay = InGraphReplay(spec, capacity=5)
  rows = lambda start, n: {"i": tf.range(start, start + n, dtype=tf.int64),
                           "x": tf.cast(tf.stack([tf.range(start, start + n)] * 2, 1), tf.float32)}
  replay.add(rows(0, 3))
  assert int(replay.size()) == 3
  sample = replay.sample(500, tf.constant([0, 1], tf.int64))
  # Only the three written rows, each of them, and x matches i row by row.
  assert set(sample["i"].numpy().tolist()) == {0, 1, 2}
  np.testing.assert_array_equal(sample["x"][:, 0].numpy(), sample["i"].numpy())
  replay.add(rows(3, 4))  # 7 rows into 5 slots: 5, 6 overwrite 0, 1
  assert int(replay.size()) == 5 and int(replay.added) == 7
  assert replay.storage["i"].numpy().tolist() == [5, 6, 2, 3, 4]
  sample = replay.sample(500, tf.constant([0, 2], tf.int64))
  assert set(sample["i"].numpy().tolist()) == {2, 3, 4, 5, 6}
  # Stateless: the same seed draws the same batch.
  again = replay.sample(500, tf.constant([0, 2], tf.int64))
  np.testing.assert_array_equal(sample["i"].numpy(), again["i"].numpy())
  # Inside XLA too.
  compiled_sample = tf.function(lambda: replay.sample(8, tf.constant([0, 2], tf.int64)),
                                jit_compile=True)
  assert set(compiled_sample()["i"].numpy().tolist()) <= {2, 3, 4, 5, 6}


def test_epsilon_greedy_and_schedules():
  q = tf.constant([[0.0, 1.0, 0.5]] * 2000)
  greedy = epsilon_greedy(q, 0.0, tf.constant([0, 0], tf.int64)).numpy()
  assert set(greedy.tolist()) == {1}
  random = epsilon_greedy(q, 1.0, tf.constant([0, 1], tf.int64)).numpy()
  assert np.all(np.abs(np.bincount(random, minlength=3) / 2000 - 1 / 3) < 0.05)
  half = epsilon_greedy(q, 0.5, tf.constant([0, 2], tf.int64)).numpy()
  assert abs(np.mean(half == 1) - (0.5 + 0.5 / 3)) < 0.05
  assert float(exponentially_decaying_epsilon(0, 1e-3, 1.0, 0.1)) == pytest.approx(1.0)
  assert float(exponentially_decaying_epsilon(1000, 1e-3, 1.0, 0.1)) == \
      pytest.approx(0.1 + 0.9 * np.exp(-1.0), rel=1e-5)


def test_q_learning_td_loss_by_hand():
  q = tf.constant([[1.0, 2.0], [3.0, 4.0]])
  next_q = tf.constant([[10.0, 0.0], [5.0, 7.0]])
  loss = q_learning_td_loss(q, tf.constant([1, 0]), tf.constant([1.0, 2.0]),
                            tf.constant([1.0, 0.0]), next_state_values(next_q), gamma=0.5,
                            loss_fn=lambda t, p: tf.square(t - p))
  # row 0: target 1 + 0.5 * 10 = 6, Q(s, 1) = 2; row 1 terminated: target 2, Q(s, 0) = 3.
  np.testing.assert_allclose(loss.numpy(), [16.0, 1.0])
  # The default, Huber, is per transition too (3.5 and 0.5); its mean is
  # the batch-averaged Huber loss.
  huber = q_learning_td_loss(q, tf.constant([1, 0]), tf.constant([1.0, 2.0]),
                             tf.constant([1.0, 0.0]), next_state_values(next_q), gamma=0.5)
  np.testing.assert_allclose(huber.numpy(), [3.5, 0.5])
  assert float(tf.reduce_mean(huber)) == pytest.approx(
      float(tf.compat.v1.losses.huber_loss([6.0, 2.0], [2.0, 3.0])))


def test_double_q_next_values_take_the_online_networks_action():
  next_target_q = tf.constant([[10.0, 0.0], [5.0, 7.0]])
  np.testing.assert_allclose(next_state_values(next_target_q).numpy(), [10.0, 7.0])
  # the online network prefers action 1 in row 0 and action 0 in row 1
  next_online_q = tf.constant([[0.0, 1.0], [3.0, -1.0]])
  np.testing.assert_allclose(next_state_values(next_target_q, next_online_q).numpy(), [0.0, 5.0])


def _dqn_agents(**hyperparameters):
  """Two tf-agents DQN agents for CartPole with identical weights."""
  env = tfrl.envs.load("CartPole-v1")
  specs = (tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec()))
  agents = [tfrl.agents.dqn(*specs, **hyperparameters) for _ in range(2)]
  for a, b in zip(agents[0]._q_network.variables + agents[0]._target_q_network.variables,
                  agents[1]._q_network.variables + agents[1]._target_q_network.variables):
    b.assign(a)
  return agents


def test_compiled_loop_matches_tf_agents_dqn_on_gymnasium(as_trajectory):
  """A tiny deterministic case: greedy acting (epsilon 0), a replay of one
  row (every sample is the newest transition), Huber loss, gradient
  clipping, target sync every 2 steps. The compiled loop (TF CartPole,
  XLA) and tf-agents' DqnAgent.train driven by hand on gymnasium's CartPole
  (the same initial states copied over) must take the same actions and
  end with the same weights."""
  hyperparameters = dict(fc_layer_params=(16,), epsilon_start=0.0, epsilon_end=0.0,
                         target_update_period=2, gradient_clipping=0.5, learning_rate=1e-2)
  tf.random.set_seed(0)
  ours, reference = _dqn_agents(**hyperparameters)
  loop = compiled.CompiledLoop(tf_envs.CartPole(), InGraphDqn.from_agent(ours), num_envs=1,
                               replay_capacity=1, batch_size=4, seed=0)
  # Start near the track's edge so an episode ends (and auto-resets) early on.
  loop.env_state["physics"].assign([[2.3, 1.0, 0.0, 0.0]])
  env = gym.make("CartPole-v1")
  env.reset(seed=0)
  train = tf.function(reference.train)
  greedy_action = tf.function(lambda time_step: reference.policy.action(time_step).action)
  one = tf.constant(1, tf.int64)
  actions, episodes = [], 0
  for _ in range(30):
    env.unwrapped.state = loop.env_state["physics"].numpy()[0].astype(np.float64)
    observation = env.unwrapped.state.astype(np.float32)[None]
    time_step = ts.restart(tf.constant(observation), batch_size=1)
    action = int(greedy_action(time_step)[0])
    loop.run(one)
    next_observation, reward, terminated, _, _ = env.step(action)
    assert int(loop.replay.storage["action"][0]) == action
    np.testing.assert_allclose(loop.replay.storage["next_observation"][0].numpy(),
                               next_observation, rtol=1e-4, atol=1e-5)
    batch = {"observation": tf.constant(np.repeat(observation, 4, 0)),
             "action": tf.constant([action] * 4, tf.int64),
             "reward": tf.constant([reward] * 4, tf.float32),
             "discount": tf.constant([0.0 if terminated else 1.0] * 4),
             "next_observation": tf.constant(np.repeat(next_observation[None], 4, 0))}
    train(as_trajectory(batch))
    actions.append(action)
    episodes += terminated
  assert episodes >= 1
  assert int(ours.train_step_counter) == int(reference.train_step_counter) == 30
  assert int(loop.learner.target_sync_counter) == int(reference._update_target._counter) == 30
  for a, b in zip(ours._q_network.variables + ours._target_q_network.variables,
                  reference._q_network.variables + reference._target_q_network.variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("double_q", [False, True])
def test_in_graph_update_equals_tf_agents_train_on_the_same_batches(as_trajectory, double_q):
  """Squared loss, no clipping, several steps with target syncs: one
  InGraphDqn.update (XLA) per DqnAgent.train (DdqnAgent's target with
  double_q) on the same batch; same loss, same online and target weights."""
  from tf_agents.utils import common
  tf.random.set_seed(1)
  ours, reference = _dqn_agents(fc_layer_params=(8, 8), target_update_period=3,
                                td_errors_loss_fn=common.element_wise_squared_loss, gamma=0.9,
                                double_q=double_q)
  learner = InGraphDqn.from_agent(ours)
  learner.build()
  update = tf.function(learner.update, jit_compile=True)
  rng = np.random.default_rng(0)
  for _ in range(7):
    batch = {"observation": tf.constant(rng.normal(size=(5, 4)), tf.float32),
             "action": tf.constant(rng.integers(2, size=5), tf.int64),
             "reward": tf.constant(rng.normal(size=5), tf.float32),
             "discount": tf.constant(rng.integers(2, size=5), tf.float32),
             "next_observation": tf.constant(rng.normal(size=(5, 4)), tf.float32)}
    loss = float(update(batch))
    assert loss == pytest.approx(float(reference.train(as_trajectory(batch)).loss), rel=1e-4)
  for a, b in zip(ours._q_network.variables + ours._target_q_network.variables,
                  reference._q_network.variables + reference._target_q_network.variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


def test_target_sync_counts_updates_as_tf_agents_periodically_does():
  """advance_target_sync(n) syncs when the count crosses a multiple of the
  period (tf-agents syncs at each multiple); updates_until_target_sync
  counts down to the next one."""
  agent, _ = _dqn_agents(fc_layer_params=(4,), target_update_period=4)
  learner = InGraphDqn.from_agent(agent)
  counter = learner.target_sync_counter
  targets, sources = agent._target_q_network.variables, agent._q_network.variables

  def perturb():
    for v in sources:
      v.assign_add(tf.ones_like(v))

  def synced():
    return all(np.array_equal(t.numpy(), s.numpy()) for t, s in zip(targets, sources))

  counter.assign(3)
  assert int(learner.updates_until_target_sync()) == 1
  perturb()
  learner.advance_target_sync(2)  # 3 -> 5 crosses 4
  assert synced() and int(counter) == 5
  assert int(learner.updates_until_target_sync()) == 3
  perturb()
  learner.advance_target_sync(2)  # 5 -> 7
  assert not synced()
  learner.advance_target_sync(1)  # 7 -> 8
  assert synced() and int(learner.updates_until_target_sync()) == 4


def test_compiled_loops_checkpoint_holds_the_learners_target_sync_counter(tmp_path):
  agent, _ = _dqn_agents(fc_layer_params=(4,), target_update_period=4)
  loop = compiled.CompiledLoop(tf_envs.CartPole(), InGraphDqn.from_agent(agent), num_envs=1,
                               replay_capacity=4, batch_size=2, seed=0, jit_compile=False)
  loop.learner.target_sync_counter.assign(3)
  path = tf.train.Checkpoint(compiled_loop=loop).save(str(tmp_path / "ckpt"))
  loop.learner.target_sync_counter.assign(0)
  tf.train.Checkpoint(compiled_loop=loop).restore(path).assert_existing_objects_matched()
  assert int(loop.learner.target_sync_counter) == 3


def test_one_long_run_equals_many_short_ones():
  """run(n) runs its iterations in segments that end at target syncs (one
  sync per segment); n calls of run(1) end a segment every iteration. Same
  actions, weights, counters and replay either way."""
  hyperparameters = dict(fc_layer_params=(8,), target_update_period=4, epsilon_start=0.5,
                         epsilon_end=0.5, learning_rate=1e-2)
  tf.random.set_seed(2)
  agents = _dqn_agents(**hyperparameters)
  loops = [compiled.CompiledLoop(tf_envs.CartPole(), InGraphDqn.from_agent(agent), num_envs=2,
                                 replay_capacity=16, batch_size=4, seed=0, steps_per_iteration=1,
                                 train_steps_per_iteration=2, jit_compile=False)
           for agent in agents]
  assert all(loop._sync_per_segment for loop in loops)
  loops[0].collect(tf.constant(3, tf.int64), True)
  loops[1].collect(tf.constant(3, tf.int64), True)
  loops[0].run(tf.constant(11, tf.int64))
  for _ in range(11):
    loops[1].run(tf.constant(1, tf.int64))
  ours, theirs = agents
  assert int(ours.train_step_counter) == int(theirs.train_step_counter) == 22
  assert int(loops[0].learner.target_sync_counter) == \
      int(loops[1].learner.target_sync_counter) == 22
  np.testing.assert_array_equal(loops[0].replay.storage["action"].numpy(),
                                loops[1].replay.storage["action"].numpy())
  for a, b in zip(ours._q_network.variables + ours._target_q_network.variables,
                  theirs._q_network.variables + theirs._target_q_network.variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
  # The target last synced at update 20 and the online network moved since.
  assert not np.allclose(ours._q_network.variables[0].numpy(),
                         ours._target_q_network.variables[0].numpy())


# In-process runs stay on XLA's default CPU backend (pytest's process must
# not switch XLA's flags for later tests); the CPU runtime, train.py's
# default, is covered by test_xla_cpu_runtime_path in its own process.
TINY = ["tfrl.train.train_compiled.xla_cpu_runtime = False",
        "tfrl.train.train.num_iterations = 4", "tfrl.train.train.eval_interval = 2",
        "tfrl.train.train.checkpoint_interval = 2", "tfrl.train.train.num_eval_episodes = 2",
        "tfrl.train.train.initial_collect_steps = 100",
        "tfrl.train.train.collect_steps_per_iteration = 20",
        "tfrl.train.train.train_steps_per_iteration = 5", "tfrl.train.train.export_policy = False"]


def test_compiled_gin_writes_the_regular_run_directory_and_resumes(tmp_path):
  root = str(tmp_path / "run")
  config.parse_config(["dqn_cartpole_compiled.gin"], TINY)
  tfrl.train.train(root, log=lambda _: None)
  with open(os.path.join(root, "progress.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [int(r["iteration"]) for r in rows] == [0, 2, 4]
  # 4 envs: 100 initial steps, then 4 iterations of ceil(20 / 4) = 5 batched steps.
  assert [int(r["env_steps"]) for r in rows] == [100, 140, 180]
  assert int(rows[-1]["train_steps"]) == 20
  assert rows[-1]["loss"] and rows[-1]["train_return"]
  assert "train.compiled = True" in open(os.path.join(root, "config.gin")).read()
  assert any(f.startswith("ckpt-4") for f in os.listdir(os.path.join(root, "checkpoints")))
  # The same command again resumes from the last checkpoint (every loop
  # variable restored) and, being done, adds no row.
  config.parse_config(["dqn_cartpole_compiled.gin"], TINY)
  last = tfrl.train.train(root, log=lambda _: None)
  with open(os.path.join(root, "progress.csv")) as f:
    assert [int(r["iteration"]) for r in csv.DictReader(f)] == [0, 2, 4]
  assert int(last["env_steps"]) == 180


def test_a_plain_tf_agents_dqn_agent_is_refused_by_name():
  """The learner reads only the parts tfrl's DqnAgent records; tf-agents'
  own DqnAgent has none to read."""
  from tf_agents.agents.dqn import dqn_agent  # pylint: disable=import-outside-toplevel
  from tf_agents.networks import q_network  # pylint: disable=import-outside-toplevel
  env = tfrl.envs.load("CartPole-v1")
  time_step_spec, action_spec = (tensor_spec.from_spec(env.time_step_spec()),
                                 tensor_spec.from_spec(env.action_spec()))
  plain = dqn_agent.DqnAgent(time_step_spec, action_spec,
                             q_network.QNetwork(time_step_spec.observation, action_spec),
                             tf.keras.optimizers.Adam())
  with pytest.raises(ConfigError, match="needs a DqnAgent built by tfrl.agents.dqn"):
    compiled.in_graph_learner(plain)


def test_xla_cpu_runtime_path():
  """The update-equivalence and run-directory tests again, in a process
  whose XLA uses the CPU runtime (the compiled loop's default)."""
  env = dict(os.environ, XLA_FLAGS=compiled.XLA_CPU_RUNTIME_FLAG, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run(
      [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
       "equals_tf_agents_train or writes_the_regular_run_directory"],
      capture_output=True, text=True, env=env, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:]
  assert "3 passed" in result.stdout  # the update test runs plain and double_q
