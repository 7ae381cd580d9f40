"""RUDDER: delayed-reward envs, the simplified LSTM, loss and redistribution
by hand, the lessons buffer's sampling, the component in the train loop, its
checkpoint and a resumed run, and the redistribution on the tutorial's 1-D
task (held-out episodes)."""

import csv
import os
import shutil

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec

import tfrl
from tfrl.envs.delayed import DelayedReward
from tfrl.errors import ConfigError
from tfrl.rudder import (LessonsBuffer, ReturnPredictor, RewardRedistribution, RudderLSTMCell,
                         pad, redistribute, redistribution_loss)
from tfrl.rudder.episodes import coin_credit, random_episodes
from tfrl.train import config


# --- environments -----------------------------------------------------------

def test_delayed_reward_pays_the_sum_at_the_last_step():
  # Counting-v0 pays step + 1 each step and ends after 2-4 steps (terminated);
  # a 2-step time limit makes episodes end truncated.
  for max_steps in (None, 2):
    env = DelayedReward(gym.make("tfrl-test/Counting-v0", max_episode_steps=max_steps))
    env.reset(seed=1)
    for _ in range(3):
      rewards, done = [], False
      while not done:
        _, reward, terminated, truncated, _ = env.step(0)
        rewards.append(reward)
        done = terminated or truncated
      n = len(rewards)
      assert rewards[:-1] == [0.0] * (n - 1)
      assert rewards[-1] == sum(range(1, n + 1))
      env.reset()


def test_coin_walk_is_the_tutorials_task():
  env = gym.make("tfrl/CoinWalk-v0")
  obs, _ = env.reset()
  assert obs.shape == (13,) and obs.argmax() == 6  # starts at the centre, one-hot
  # right, right, then step off +2 and back: 24 steps spent at +2 out of 50
  rewards = []
  for t in range(50):
    obs, reward, terminated, truncated, _ = env.step(1 if t < 2 else t % 2)
    rewards.append(reward)
  assert terminated and not truncated and sum(rewards) == 24
  env.reset()
  for _ in range(10):  # moves past the end are ignored
    obs, *_ = env.step(1)
  assert obs.argmax() - 6 == 6
  delayed = tfrl.envs.load("tfrl/DelayedCoinWalk-v0", seed=0)
  step = delayed.reset()
  total, t = 0.0, 0
  while not step.is_last():
    step = delayed.step(np.int64(1 if t < 2 else t % 2))
    total += float(step.reward)
    t += 1
  assert t == 50 and total == 24.0 and float(step.reward) == 24.0 and float(step.discount) == 0.0
  assert "tfrl/DelayedCartPole-v1" in gym.registry


# --- the model --------------------------------------------------------------

def cell_weights(**variant):
  cell = RudderLSTMCell(4, **variant)
  cell.build((None, 3))
  return {w.name.split("/")[-1].split(":")[0]: tuple(w.shape) for w in cell.trainable_weights}


def test_simplified_cell_has_exactly_the_tutorials_connections():
  assert cell_weights() == {"cell_input_kernel": (3, 4), "cell_input_bias": (4,),
                            "input_gate_recurrent_kernel": (4, 4), "input_gate_bias": (4,)}
  assert set(cell_weights(output_gate=True)) - set(cell_weights()) == {
      "output_gate_recurrent_kernel", "output_gate_bias"}
  assert set(cell_weights(forget_gate=True)) - set(cell_weights()) == {
      "forget_gate_recurrent_kernel", "forget_gate_bias"}
  full = cell_weights(output_gate=True, forget_gate=True, fully_connected_gates=True)
  assert full["cell_input_recurrent_kernel"] == (4, 4)
  assert full["input_gate_kernel"] == full["forget_gate_kernel"] == (3, 4)
  assert len(full) == 12  # 4 blocks x (forward, recurrent, bias)


def test_simplified_cell_computes_what_it_says():
  cell = RudderLSTMCell(4)
  cell.build((None, 3))
  x, h, c = tf.random.normal([2, 3]), tf.random.normal([2, 4]), tf.random.normal([2, 4])
  with tf.GradientTape(persistent=True) as tape:
    tape.watch([x, h])
    h1, c1, act = cell.step(x, h, c)
  # gate only from h, cell input only from x
  assert tape.gradient(act["input_gate"], x) is None
  assert tape.gradient(act["cell_input"], h) is None
  # no forget gate: the cell adds; no output gate, linear output: h = c
  np.testing.assert_allclose(c1, c + act["input_gate"] * act["cell_input"], rtol=1e-6)
  np.testing.assert_allclose(h1, c1)
  z = np.tanh(x.numpy() @ cell.cell_input["forward"].numpy() + cell.cell_input["bias"].numpy())
  np.testing.assert_allclose(act["cell_input"], z, rtol=1e-5, atol=1e-6)

  features = tf.random.normal([2, 5, 3])
  for model in (ReturnPredictor(lstm_units=4),
                ReturnPredictor(lstm_units=4, input_units=(6,), output_gate=True,
                                forget_gate=True, fully_connected_gates=True)):
    np.testing.assert_allclose(model(features), model.internals(features)["prediction"],
                               rtol=1e-5, atol=1e-6)
  # the ReLU layer sits before the cell: the cell's kernels see its 6 units
  assert model.cell.cell_input["forward"].shape == (6, 4)


def test_loss_against_hand_computed_values():
  predictions = tf.constant([[1.0, 2.0, 3.0], [0.5, 1.5, 9.0]])
  mask = tf.constant([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # the 9 is padding
  returns = tf.constant([2.0, 1.0])
  loss, per_episode = redistribution_loss(predictions, returns, mask, aux_weight=0.5)
  # episode 0: main (3-2)^2 = 1, aux (1 + 0 + 1)/3; episode 1: main (1.5-1)^2, aux (.25+.25)/2
  np.testing.assert_allclose(per_episode, [1 + 0.5 * 2 / 3, 0.25 + 0.5 * 0.25], rtol=1e-6)
  np.testing.assert_allclose(loss, (1 + 1 / 3 + 0.375) / 2, rtol=1e-6)
  # mean *squared* error: errors -1 and +1 do not cancel (the tutorial's
  # squared mean would give an auxiliary loss of 0 here)
  _, per_episode = redistribution_loss(tf.constant([[1.0, 3.0]]), tf.constant([2.0]),
                                       tf.ones([1, 2]), aux_weight=0.5)
  np.testing.assert_allclose(per_episode, [1.0 + 0.5 * 1.0])


def test_redistribution_is_prediction_differences_corrected_to_the_return():
  predictions = tf.constant([[1.0, 3.0, 2.0], [2.0, 5.0, 7.0]], tf.float64)
  mask = tf.constant([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], tf.float64)
  returns = tf.constant([4.0, 3.0], tf.float64)
  rewards = redistribute(predictions, returns, mask).numpy()
  # differences [1, 2, -1] sum to 2; the error 4 - 2 spread over 3 steps
  np.testing.assert_allclose(rewards[0], [1 + 2 / 3, 2 + 2 / 3, -1 + 2 / 3])
  # differences [2, 3] sum to 5; the error -2 over 2 steps; padding stays 0
  np.testing.assert_allclose(rewards[1], [1.0, 2.0, 0.0])
  rng = np.random.default_rng(0)
  predictions = rng.normal(size=(16, 40)) * 10
  mask = (np.arange(40)[None] < rng.integers(1, 41, size=16)[:, None]).astype(np.float64)
  returns = rng.normal(size=16) * 100
  sums = redistribute(predictions, returns, mask).numpy().sum(axis=1)
  np.testing.assert_allclose(sums, returns, rtol=0, atol=1e-9)


# --- lessons buffer ---------------------------------------------------------

def sample_ids(buffer, n):
  features, _, keys = buffer.sample(n)
  return np.array([int(f[0, 0]) for f in features]), keys


@pytest.fixture
def lessons():
  buffers = []

  def make(**kwargs):
    buffers.append(LessonsBuffer(**kwargs))
    buffers[-1].start(feature_size=2)
    return buffers[-1]
  yield make
  for b in buffers:
    b.close()


def episode(i, steps=3):
  return np.full((steps, 2), i, np.float32)  # an episode that says which it is


def test_lessons_sampled_by_softmax_of_loss(lessons):
  buffer = lessons(capacity=10, temperature=0.5)
  losses = np.array([0.0, 0.5, 1.0, 1.5])
  buffer.add([episode(i) for i in range(4)], [1.0] * 4, losses)
  ids, keys = sample_ids(buffer, 4000)
  expected = np.exp(losses / 0.5) / np.exp(losses / 0.5).sum()   # [.03, .09, .24, .64]
  np.testing.assert_allclose(np.bincount(ids, minlength=4) / 4000, expected, atol=0.03)
  # a replayed episode's loss is updated: the most likely one becomes the least
  key_of = dict(zip(ids.tolist(), keys))
  buffer.update_losses([key_of[3]], [-1.0])
  ids, _ = sample_ids(buffer, 4000)
  expected = np.exp(np.array([0.0, 0.5, 1.0, -1.0]) / 0.5)
  np.testing.assert_allclose(np.bincount(ids, minlength=4) / 4000, expected / expected.sum(),
                             atol=0.03)


def test_lessons_buffer_leaves_no_directory_behind(tmp_path, monkeypatch):
  """Its server and its checkpoint round trip use temporary directories;
  none outlives the buffer."""
  import tempfile  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
  buffer = LessonsBuffer(capacity=4)
  buffer.start(feature_size=2)
  buffer.add([episode(0), episode(1)], [0.0, 1.0], [0.1, 0.2])
  buffer.deserialize(buffer.serialize())
  assert buffer.size == 2
  buffer.close()
  assert list(tmp_path.iterdir()) == []


def test_full_lessons_replace_the_lowest_loss_only_with_a_higher_one(lessons):
  buffer = lessons(capacity=3, temperature=1.0)
  buffer.add([episode(i) for i in range(3)], [1.0] * 3, [1.0, 2.0, 3.0])
  buffer.add([episode(3)], [1.0], [0.5])   # lower than all: not kept
  assert buffer.size == 3 and set(sample_ids(buffer, 300)[0]) == {0, 1, 2}
  buffer.add([episode(4)], [1.0], [5.0])   # higher: replaces the lowest (0)
  assert buffer.size == 3 and set(sample_ids(buffer, 300)[0]) == {1, 2, 4}
  buffer.add([episode(5)], [7.0], [0.1])   # a return not stored before is kept
  assert set(sample_ids(buffer, 300)[0]) == {2, 4, 5}
  assert buffer.returns_seen == {1.0, 7.0}


# --- the component ----------------------------------------------------------

def specs(env_id):
  env = tfrl.envs.load(env_id)
  return (tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec()))


def collected_episodes(num_episodes, seed):
  """Random CoinWalk episodes in the form the train loop hands over."""
  from tf_agents.trajectories import time_step as ts
  from tf_agents.trajectories import trajectory as trajectory_lib
  observations, actions, rewards = random_episodes("tfrl/DelayedCoinWalk-v0", num_episodes, seed)
  episodes = []
  for o, a, r in zip(observations, actions, rewards):
    steps = len(a)
    step_type = np.full(steps + 1, ts.StepType.MID, np.int32)
    step_type[0], step_type[-1] = ts.StepType.FIRST, ts.StepType.LAST
    next_type = np.roll(step_type, -1)
    next_type[-2], next_type[-1] = ts.StepType.LAST, ts.StepType.FIRST
    episodes.append(trajectory_lib.Trajectory(
        step_type=step_type, observation=np.concatenate([o, o[-1:]]),
        action=np.append(a, 0).astype(np.int64), policy_info=(), next_step_type=next_type,
        reward=np.append(r, 0).astype(np.float32),
        discount=np.ones(steps + 1, np.float32)))
  return episodes


def test_component_waits_then_rewrites_rewards_keeping_the_return():
  rudder = RewardRedistribution(*specs("tfrl/DelayedCoinWalk-v0"), min_episodes=24,
                                updates_per_iteration=4)
  try:
    first = collected_episodes(16, seed=3)
    passed = rudder(first)   # 16 stored < 24: the environment's rewards pass through
    assert not rudder.active and rudder.diagnostics["lessons_size"] == 16
    for a, b in zip(first, passed):
      np.testing.assert_array_equal(a.reward, b.reward)
    second = collected_episodes(16, seed=4)
    rewritten = rudder(second)
    assert rudder.active and rudder.model_updates == 4
    for original, new in zip(second, rewritten):
      assert np.count_nonzero(new.reward[:-2]) > 0      # reward before the end now
      assert new.reward[-1] == 0.0                      # the boundary row stays 0
      np.testing.assert_allclose(new.reward.sum(), original.reward.sum(), atol=1e-4)
      np.testing.assert_array_equal(new.observation, original.observation)
  finally:
    rudder.close()


def lessons_contents(buffer, draws=3000):
  """{key: (features, return, priority)} of the stored episodes that `draws`
  samples reach (all of them, when priorities are near-uniform). Reverb's
  sample info carries the priority, which LessonsBuffer.sample leaves out."""
  contents = {}
  for sample in buffer._server.client.sample(buffer.table_name, num_samples=draws):
    item = sample[0]
    contents[int(item.info.key)] = (item.data[0].tobytes(), float(item.data[1]),
                                    item.info.priority)
  return contents


def test_redistribution_restored_from_a_checkpoint_continues_as_it_was(tmp_path):
  def make():
    # temperature 100: near-uniform replay, so lessons_contents sees every episode
    return RewardRedistribution(*specs("tfrl/DelayedCoinWalk-v0"), min_episodes=24,
                                updates_per_iteration=4, return_scale=10.0,
                                lessons_fn=lambda: LessonsBuffer(temperature=100.0))
  trained, restored = make(), make()
  try:
    trained(collected_episodes(16, seed=3))
    trained(collected_episodes(16, seed=4))   # 32 stored: 4 updates
    path = tf.train.Checkpoint(rudder=trained.checkpointed).write(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(rudder=restored.checkpointed).read(path).assert_existing_objects_matched()

    assert restored.active and restored.model_updates == 4
    x, _ = pad([trained.features(e.observation[:-1], e.action[:-1])
                for e in collected_episodes(4, seed=5)])
    np.testing.assert_array_equal(restored.predict(x), trained.predict(x))
    for saved, loaded in zip(trained.optimizer.variables, restored.optimizer.variables):
      np.testing.assert_array_equal(loaded, saved)   # Adam's step count and moments
    assert restored.lessons.size == trained.lessons.size == 32
    assert restored.lessons.returns_seen == trained.lessons.returns_seen
    assert restored.lessons.episodes_added == 32
    assert restored.lessons._max_priority == trained.lessons._max_priority
    contents = lessons_contents(trained.lessons)
    assert len(contents) == 32 and lessons_contents(restored.lessons) == contents
  finally:
    trained.close()
    restored.close()


TINY_RUDDER_PPO = ["tfrl.rudder.RewardRedistribution.min_episodes = 16",
                   "tfrl.rudder.RewardRedistribution.updates_per_iteration = 2",
                   "tfrl.train.train.num_iterations = 2", "tfrl.train.train.eval_interval = 2",
                   "tfrl.train.train.num_eval_episodes = 2", "tfrl.agents.ppo.num_epochs = 2",
                   "tfrl.agents.ppo.value_epochs = 2"]


def train_rudder_ppo(root, on_resume=lambda rudder: None) -> RewardRedistribution:
  """PPO with RUDDER on the coin walk for 2 iterations (checkpointed at the
  last); returns the run's RewardRedistribution. `on_resume(it)` runs when
  the run resumes, right after the checkpoint is restored."""
  built = []

  def redistribution(time_step_spec, action_spec):
    built.append(RewardRedistribution(time_step_spec, action_spec))
    return built[-1]

  class OnResume(tfrl.train.Hook):
    def begin(self, run):
      if run.resumed:
        on_resume(built[-1])

  config.parse_config(["ppo_coin.gin"], TINY_RUDDER_PPO)
  tfrl.train.train(root, reward_redistribution=redistribution, hooks=[OnResume()],
                   log=lambda _: None)
  return built[-1]


@pytest.fixture(scope="module")
def rudder_run(tmp_path_factory):
  """A finished run of `train_rudder_ppo` (tests that resume it take a copy):
  (run directory, its RewardRedistribution)."""
  root = tmp_path_factory.mktemp("rudder") / "run"
  return root, train_rudder_ppo(str(root))


def test_train_loop_uses_reward_redistribution(rudder_run):
  root, _ = rudder_run
  with open(os.path.join(root, "progress.csv")) as f:
    rows = list(csv.DictReader(f))
  # The row averages the 2 iterations: 8 episodes stored, the model waits;
  # 16 stored, it trains and the rewards are redistributed.
  assert float(rows[-1]["lessons_size"]) == (8 + 16) / 2
  assert float(rows[-1]["rudder_active"]) == 0.5
  assert np.isfinite(float(rows[-1]["rudder_loss"]))
  assert "RewardRedistribution.min_episodes = 16" in open(os.path.join(root, "config.gin")).read()


def test_resumed_run_redistributes_at_once_with_the_checkpointed_model(rudder_run, tmp_path):
  finished, first = rudder_run
  root = shutil.copytree(finished, tmp_path / "run")
  at_resume = {}

  def snapshot(rudder):   # restored, nothing trained yet
    at_resume.update(active=rudder.active, updates=rudder.model_updates,
                     lessons=rudder.lessons.size, returns_seen=set(rudder.lessons.returns_seen),
                     weights=[w.numpy() for w in rudder.model.weights])

  train_rudder_ppo(str(root), on_resume=snapshot)   # resumes at iteration 2: nothing left to do
  assert first.active and first.model_updates == 2
  assert at_resume["active"] and at_resume["updates"] == 2
  assert at_resume["lessons"] == 16 and at_resume["returns_seen"] == first.lessons.returns_seen
  assert len(at_resume["weights"]) == len(first.model.weights)
  for restored, saved in zip(at_resume["weights"], first.model.weights):
    np.testing.assert_array_equal(restored, saved.numpy())


def test_reward_redistribution_refuses_off_policy_replay(tmp_path):
  config.parse_config(["envs/cartpole.gin", "agents/dqn.gin"], [
      "tfrl.train.train.reward_redistribution = @tfrl.rudder.RewardRedistribution"])
  with pytest.raises(ConfigError, match="on-policy"):
    tfrl.train.train(str(tmp_path / "run"), log=lambda _: None)


# --- the tutorial's result --------------------------------------------------

def coin_walk_redistribution(seed):
  """The model of rudder_ppo_coin.gin (ReLU input layer, full LSTM, auxiliary
  weight 1, lr 3e-3, batches of 32) trained on 3000 random-policy episodes
  (1500 updates, uniform replay), applied to 200 fresh ones:
  (observations, actions, returns, predictions, redistributed)."""
  # Python's, numpy's and TF's seeds: Keras' unseeded initializers draw
  # their seeds from Python's random. (Reverb's sampling cannot be seeded.)
  tf.keras.utils.set_random_seed(seed)
  rudder = RewardRedistribution(
      *specs("tfrl/DelayedCoinWalk-v0"), min_episodes=0, return_scale=10.0,
      model_fn=lambda: ReturnPredictor(16, input_units=(32,), output_gate=True, forget_gate=True,
                                       fully_connected_gates=True),
      lessons_fn=lambda: LessonsBuffer(capacity=3000, temperature=100.0),
      aux_weight=1.0, learning_rate=3e-3, batch_size=32)
  try:
    observations, actions, rewards = random_episodes("tfrl/DelayedCoinWalk-v0", 3000, seed + 1)
    returns = np.array([r.sum() for r in rewards])
    assert returns.min() < returns.max()  # the returns vary: something to learn
    rudder.store([rudder.features(o, a) for o, a in zip(observations, actions)], returns)
    rudder.train_model(1500)
    observations, actions, rewards = random_episodes("tfrl/DelayedCoinWalk-v0", 200, seed + 2)
    features = [rudder.features(o, a) for o, a in zip(observations, actions)]
    returns = np.array([r.sum() for r in rewards], np.float64)
    predictions = rudder.predict(pad(features)[0]).numpy()
    return (np.stack(observations), np.stack(actions), returns, predictions,
            rudder.redistribute(features, returns))
  finally:
    rudder.close()


@pytest.fixture(scope="module")
def coin_walk_held_out():
  return coin_walk_redistribution(seed=0)


def test_coin_walk_held_out_redistribution_keeps_each_return(coin_walk_held_out):
  _, _, returns, predictions, redistributed = coin_walk_held_out
  # the model learned the return: its last prediction beats guessing the mean
  error = np.abs(predictions[:, -1] - returns).mean()
  assert error < 0.5 * np.abs(returns - returns.mean()).mean()
  np.testing.assert_allclose(redistributed.sum(axis=1), returns, rtol=0, atol=1e-5)
  assert np.count_nonzero(np.abs(redistributed[:, :-1]) > 1e-3) > redistributed.size // 2


def test_coin_walk_held_out_moves_toward_the_coin_earn_credit(coin_walk_held_out):
  """Issue 6: moves toward +2 (from elsewhere, not blocked at an end) earn
  positive redistributed reward. The ideal (differences of E[return |
  history] under the random policy) is positive on 92.5% of them and 0 on
  the rest (too late to reach the coin). This model measured 79.6%, 75.4%
  and 80.4% with this fixture's seeds 0, 1, 2 (away: 12.5%, 13.3%, 11.7%),
  so the bar is 70%, not the 80% first hoped for. Reverb's sampling is not
  seeded, so the figure varies run to run: 75.7-81.7% over 6 runs of seed 0
  with the initial weights seeded (unseeded weights once gave 64.6%)."""
  observations, actions, _, _, redistributed = coin_walk_held_out
  credit = coin_credit(redistributed, observations, actions)
  toward_mean, toward_positive, _ = credit["toward"]
  away_mean, _, _ = credit["away"]
  assert toward_mean > 0 and toward_positive >= 0.7, credit
  assert toward_mean > away_mean, credit
