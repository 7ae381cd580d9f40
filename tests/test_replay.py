"""tfrl.replay and tfrl.drivers: what the envs produce is what Reverb holds."""

import os
import threading

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import random_tf_policy
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

import tfrl
from tfrl import agents, drivers, envs, replay


def make(env_id, num_envs, replay_component, **load_kwargs):
  env = envs.load(env_id, seed=0, num_envs=num_envs,
                  vectorization="sync" if num_envs > 1 else "auto", **load_kwargs)
  time_step_spec = tensor_spec.from_spec(env.time_step_spec())
  action_spec = tensor_spec.from_spec(env.action_spec())
  policy = random_tf_policy.RandomTFPolicy(time_step_spec, action_spec)
  server = replay.ReplayServer(replay_component.tables(policy.trajectory_spec, num_envs))
  return env, policy, server


def expected_episode(env_id, episode, truncate_at=None):
  """What CountingEnv's episode `episode` of env `env_id` must look like."""
  length = 2 + (env_id + episode) % 3
  steps = min(length, truncate_at or length)
  return length, steps


@pytest.mark.parametrize("num_envs", [1, 3])
def test_episodes_come_out_whole_per_env_and_in_order(counting_env_id, num_envs):
  episodes = replay.EpisodeReplay(capacity=100)
  env, policy, server = make(counting_env_id, num_envs, episodes)
  adder = episodes.adder(server.client, num_envs)
  adder._capacity = 4  # force the buffer to compact/grow while episodes are open
  driver = drivers.Driver(env, policy, observers=[adder])
  driver.run_episodes(3 * num_envs)
  assert adder.episodes_written == 3 * num_envs
  got = episodes.read_episodes(server.client, 3 * num_envs, data_spec=policy.trajectory_spec)
  per_env = {}
  for episode in got:
    obs = episode.observation
    env_id, number = int(obs[0, 0]), int(obs[0, 1])
    per_env.setdefault(env_id, []).append(number)
    length, _ = expected_episode(env_id, number)
    # FIRST, MID..., then the closing LAST step holding the final observation.
    assert len(obs) == length + 1
    np.testing.assert_array_equal(obs[:, 2], np.arange(length + 1))
    assert (obs[:, 0] == env_id).all() and (obs[:, 1] == number).all()
    assert episode.step_type[0] == ts.StepType.FIRST and episode.step_type[-1] == ts.StepType.LAST
    assert (episode.step_type[1:-1] == ts.StepType.MID).all()
    np.testing.assert_array_equal(episode.reward[:-1], np.arange(1, length + 1))
    np.testing.assert_array_equal(episode.discount[:-1], [1.0] * (length - 1) + [0.0])
    assert episode.next_step_type[-2] == ts.StepType.LAST
  # every env contributed exactly its quota: its first 3 episodes, in order
  assert per_env == {e: [0, 1, 2] for e in range(num_envs)}
  server.close()


def test_experience_concatenates_episodes_for_agent_train(counting_env_id):
  episodes = replay.EpisodeReplay(capacity=10)
  env, policy, server = make(counting_env_id, 2, episodes)
  adder = episodes.adder(server.client, 2)
  drivers.Driver(env, policy, observers=[adder]).run_episodes(4)
  experience = episodes.experience(server.client, adder.episodes_written,
                                   data_spec=policy.trajectory_spec)
  assert experience.observation.shape[0] == 1
  assert int(np.sum(experience.step_type == ts.StepType.LAST)) == 4
  assert server.client.server_info()[episodes.table_name].current_size == 0  # consumed
  server.close()


@pytest.mark.parametrize("prioritized", [False, True])
def test_transitions_never_cross_episode_boundaries(counting_env_id, prioritized):
  transitions = replay.TransitionReplay(capacity=1000, min_size=1, prioritized=prioritized)
  env, policy, server = make(counting_env_id, 3, transitions, max_episode_steps=3)
  adder = transitions.adder(server.client, 3)
  driver = drivers.Driver(env, policy, observers=[adder])
  driver.run_steps(3 * 20)
  items = server.client.server_info()[transitions.table_name].current_size
  # uniform: one item per batch step holding all 3 envs; prioritized: one per env window
  assert items == 19 if not prioritized else 30 <= items <= 57
  batch, weights_or_info = next(iter(transitions.dataset(
      server.address, batch_size=64, num_envs=3, data_spec=policy.trajectory_spec)))
  obs = batch.observation.numpy()
  assert obs.shape == (64, 2, 3)
  if prioritized:
    assert weights_or_info.key.shape == (64,)
  else:
    # Uniform replay samples windows across boundaries too, with weight 0:
    # exactly those whose first step is an episode's closing boundary.
    weights = weights_or_info.numpy()
    boundary = batch.step_type.numpy()[:, 0] == ts.StepType.LAST
    np.testing.assert_array_equal(weights, np.where(boundary, 0.0, 1.0))
    assert 0 < weights.sum() < 64
    obs, batch = obs[weights == 1], tf.nest.map_structure(lambda x: x[weights == 1], batch)
  np.testing.assert_array_equal(obs[:, 0, 0], obs[:, 1, 0])  # same env
  np.testing.assert_array_equal(obs[:, 0, 1], obs[:, 1, 1])  # same episode
  np.testing.assert_array_equal(obs[:, 1, 2], obs[:, 0, 2] + 1)  # consecutive steps
  assert set(obs[:, 0, 0].astype(int)) == {0, 1, 2}
  # the step into a truncated LAST keeps discount 1, into a terminated one 0
  last = batch.next_step_type.numpy()[:, 0] == ts.StepType.LAST
  assert last.any()
  discounts = batch.discount.numpy()[last, 0]
  lengths = 2 + (obs[last, 0, 0] + obs[last, 0, 1]) % 3
  np.testing.assert_array_equal(discounts, np.where(lengths <= 3, 0.0, 1.0))
  adder.close()
  server.close()


def test_reset_starts_new_windows(counting_env_id):
  transitions = replay.TransitionReplay(capacity=1000, min_size=1)
  env, policy, server = make(counting_env_id, 2, transitions)
  adder = transitions.adder(server.client, 2)
  driver = drivers.Driver(env, policy, observers=[adder])
  driver.run_steps(2 * 3)
  driver.reset()
  driver.run_steps(2 * 3)
  # 3 steps give 2 windows; the reset in between adds none spanning it
  assert server.client.server_info()[transitions.table_name].current_size == 4
  adder.close()
  server.close()


def test_driver_counts_steps_and_reports_episodes():
  env = envs.load("CartPole-v1", seed=0, num_envs=4)
  spec = tensor_spec.from_spec(env.time_step_spec())
  policy = random_tf_policy.RandomTFPolicy(spec, tensor_spec.from_spec(env.action_spec()))
  seen = []
  driver = drivers.Driver(env, policy, on_episode=lambda e, r, n: seen.append((e, r, n)))
  driver.run_episodes(8)
  assert sorted(e for e, _, _ in seen) == [0, 0, 1, 1, 2, 2, 3, 3]
  assert all(r == n for _, r, n in seen)  # CartPole pays 1 per step
  assert driver.env_steps >= sum(n for _, _, n in seen)
  assert driver.episodes == 8


def test_embedded_server_by_default_and_external_address(counting_env_id):
  episodes = replay.EpisodeReplay(capacity=10)
  env, policy, server = make(counting_env_id, 1, episodes)
  assert server.embedded and server.address.startswith("localhost:")
  external = replay.ReplayServer(episodes.tables(policy.trajectory_spec), address=server.address)
  assert not external.embedded
  adder = episodes.adder(external.client, 1)
  drivers.Driver(env, policy, observers=[adder]).run_episodes(2)
  assert server.client.server_info()[episodes.table_name].current_size == 2
  server.close()


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_per_env_episode_metrics_across_resets(counting_env_id, vectorization):
  env = envs.load(counting_env_id, seed=0, num_envs=3, vectorization=vectorization)
  spec = tensor_spec.from_spec(env.time_step_spec())
  policy = random_tf_policy.RandomTFPolicy(spec, tensor_spec.from_spec(env.action_spec()))
  seen = {e: [] for e in range(3)}
  driver = drivers.Driver(env, policy, on_episode=lambda e, r, n: seen[e].append((r, n)))
  driver.run_steps(3 * 12)
  for e, episodes in seen.items():
    assert len(episodes) >= 2
    for k, (episode_return, length) in enumerate(episodes):
      expected_length, _ = expected_episode(e, k)
      assert length == expected_length
      assert episode_return == sum(range(1, length + 1))  # reward = step number
  env.close()


def test_embedded_server_leaves_no_directory_behind(tmp_path, monkeypatch):
  """Reverb gives a server without a checkpointer a fresh temporary
  directory and never removes it; ours is removed at close."""
  import tempfile  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
  import reverb  # pylint: disable=import-outside-toplevel
  server = replay.ReplayServer([reverb.Table.queue("queue", 10)])
  server.client.server_info()
  server.close()
  assert list(tmp_path.iterdir()) == []


def test_flat_call_is_the_public_call():
  """The driver calls its policy graph through TF's private
  ConcreteFunction._call_flat (drivers.driver.flat_call): same outputs as the
  public call, captured variables included, and the signature it relies on."""
  import inspect  # pylint: disable=import-outside-toplevel
  from tfrl.drivers.driver import flat_call  # pylint: disable=import-outside-toplevel
  scale = tf.Variable(2.0)
  function = tf.function(lambda x, n: {"y": x * scale + tf.cast(n, tf.float32), "n": n + 1},
                         autograph=False)
  concrete = function.get_concrete_function(tf.TensorSpec([None, 2]), tf.TensorSpec([], tf.int64))
  assert list(inspect.signature(type(concrete)._call_flat).parameters) == \
      ["self", "tensor_inputs", "captured_inputs"]
  call = flat_call(concrete)
  x, n = tf.constant([[1.0, 2.0], [3.0, 4.0]]), tf.constant(5, tf.int64)
  for _ in range(2):
    ours, public = call([x, n]), concrete(x, n)
    assert ours.keys() == public.keys() == {"y", "n"}
    for key in ours:
      np.testing.assert_array_equal(ours[key].numpy(), public[key].numpy())
    scale.assign(-1.0)  # a changed variable is read, not baked in
  np.testing.assert_array_equal(ours["y"].numpy(), [[4.0, 3.0], [2.0, 1.0]])


# --- no read that hangs -------------------------------------------------------

def finishes_within(seconds, call):
  """call()'s result or exception, from a daemon thread given `seconds`: a
  call stuck in Reverb's C++ sampler fails the test instead of hanging the suite."""
  outcome = {}

  def target():
    try:
      outcome["result"] = call()
    except Exception as e:  # pylint: disable=broad-except
      outcome["error"] = e
  thread = threading.Thread(target=target, daemon=True)
  thread.start()
  thread.join(seconds)
  assert not thread.is_alive(), f"still blocked after {seconds} s"
  return outcome


def filled_episode_table(counting_env_id, num_episodes):
  episodes = replay.EpisodeReplay(capacity=100)
  env, policy, server = make(counting_env_id, 2, episodes)
  adder = episodes.adder(server.client, 2)
  driver = drivers.Driver(env, policy, observers=[adder])
  driver.run_episodes(num_episodes)
  return episodes, policy, server, adder, driver


def test_reading_more_episodes_than_the_table_holds_is_one_error(counting_env_id):
  episodes, policy, server, adder, _ = filled_episode_table(counting_env_id, 8)
  outcome = finishes_within(5, lambda: episodes.experience(
      server.client, 16, data_spec=policy.trajectory_spec))
  error = outcome.get("error")
  assert isinstance(error, tfrl.ConfigError), outcome
  assert "holds 8 episode(s); 16 asked for" in str(error) and "\n" not in str(error)
  # nothing was taken: the 8 episodes are still there to read
  assert len(episodes.read_episodes(server.client, 8, data_spec=policy.trajectory_spec)) == 8
  outcome = finishes_within(5, lambda: episodes.read_episodes(
      server.client, 1, data_spec=policy.trajectory_spec, wait_s=0.2))
  assert "holds 0 episode(s) after waiting 0.2 s; 1 asked for" in str(outcome.get("error"))
  adder.close()
  server.close()


@pytest.mark.parametrize("wait_s", [30.0, None])
def test_a_waiting_read_returns_once_the_episodes_arrive(counting_env_id, wait_s):
  episodes, policy, server, adder, driver = filled_episode_table(counting_env_id, 2)
  writer = threading.Timer(0.3, lambda: driver.run_episodes(2))
  writer.start()
  outcome = finishes_within(30, lambda: episodes.read_episodes(
      server.client, 4, data_spec=policy.trajectory_spec, wait_s=wait_s))
  writer.join()
  assert len(outcome.get("result", ())) == 4, outcome
  adder.close()
  server.close()


def test_a_dataset_with_a_rate_limiter_timeout_ends_instead_of_waiting(counting_env_id):
  transitions = replay.TransitionReplay(capacity=100, min_size=10)
  env, policy, server = make(counting_env_id, 1, transitions)
  adder = transitions.adder(server.client, 1)
  drivers.Driver(env, policy, observers=[adder]).run_steps(4)  # 3 items, 10 needed
  dataset = transitions.dataset(server.address, batch_size=2, rate_limiter_timeout_ms=200,
                                data_spec=policy.trajectory_spec)
  outcome = finishes_within(10, lambda: next(iter(dataset)))
  assert isinstance(outcome.get("error"), StopIteration), outcome
  adder.close()
  server.close()


def off_policy_config(counting_env_id, replay_component, **settings):
  defaults = dict(env_id=counting_env_id, agent_fn=agents.dqn, replay=replay_component,
                  num_iterations=2, eval_interval=2, num_eval_episodes=1, batch_size=2,
                  export_policy=False)
  return tfrl.train.RunConfig(**dict(defaults, **settings))


def test_a_stalled_sample_in_the_single_process_loop_is_one_error(counting_env_id, tmp_path,
                                                                  monkeypatch):
  """Prioritized windows restart at every episode: 6-step windows never fill
  in the counting env's episodes (2-4 steps and the closing boundary), so
  the table stays empty whatever the initial collection, and the loop says
  so instead of waiting forever."""
  from tfrl.train import sources  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(sources, "SAMPLE_WAIT_MS", 200)
  transitions = replay.TransitionReplay(capacity=100, min_size=4, sequence_length=6,
                                        prioritized=True)
  config = off_policy_config(counting_env_id, transitions, initial_collect_steps=50)
  outcome = finishes_within(20, lambda: tfrl.train.train(str(tmp_path / "run"), config=config))
  error = str(outcome.get("error"))
  assert isinstance(outcome.get("error"), tfrl.ConfigError), outcome
  assert "replay sampling waited 0.2 s: table 'transitions' holds 0 item(s), sampling needs 4" \
      in error and "initial_collect_steps" in error and "\n" not in error


@pytest.mark.parametrize("num_envs, sequence_length, prioritized",
                         [(3, 3, False), (1, 2, False), (2, 2, True)])
def test_run_config_refuses_an_initial_collection_below_min_size(
    counting_env_id, num_envs, sequence_length, prioritized):
  transitions = replay.TransitionReplay(capacity=1000, min_size=10, prioritized=prioritized,
                                        sequence_length=sequence_length)
  settings = dict(num_envs=num_envs, collect_steps_per_iteration=num_envs)
  with pytest.raises(tfrl.ConfigError, match="initial_collect_steps = 0 cannot fill replay "
                     "min_size 10") as refused:
    off_policy_config(counting_env_id, transitions, initial_collect_steps=0, **settings).check()
  least = int(str(refused.value).split("at least ")[1].split()[0])
  off_policy_config(counting_env_id, transitions, initial_collect_steps=least, **settings).check()
  with pytest.raises(tfrl.ConfigError):
    off_policy_config(counting_env_id, transitions, initial_collect_steps=least - 1,
                      **settings).check()
  # Distributed actors insert while the learner samples: no such limit there.
  off_policy_config(counting_env_id, transitions, initial_collect_steps=0,
                    replay_server_address="localhost:1", **settings).check()
  if prioritized:
    return  # its windows restart at episodes: the check is a lower bound there
  # The bound is exact: `least` initial steps and one iteration's fill the table, one less does not.
  for initial, sampleable in ((least, True), (least - 1, False)):
    env, policy, server = make(counting_env_id, num_envs, transitions)
    adder = transitions.adder(server.client, num_envs)
    driver = drivers.Driver(env, policy, observers=[adder])
    driver.run_steps(initial)
    driver.run_steps(num_envs)  # the first iteration's collection, before its first sample
    assert (transitions.num_items(server.client) >= transitions.min_items(num_envs)) == sampleable
    adder.close()
    server.close()


def test_packed_windows_unpack_exactly_for_every_dtype():
  spec = {"b": tf.TensorSpec([2], tf.bool), "f": tf.TensorSpec([3], tf.float32),
          "d": tf.TensorSpec([], tf.float64), "i": tf.TensorSpec([2, 2], tf.int64),
          "u": tf.TensorSpec([4], tf.uint8), "s": tf.TensorSpec([], tf.int8),
          "none": tf.TensorSpec([0], tf.float32)}
  layout = replay.packing.PackedLayout(spec, sequence_length=3)
  rng = np.random.RandomState(0)
  num_envs = 5
  steps = [{"b": rng.rand(num_envs, 2) > 0.5, "f": rng.randn(num_envs, 3).astype(np.float32),
            "d": rng.randn(num_envs), "i": rng.randint(-2**40, 2**40, (num_envs, 2, 2)),
            "u": rng.randint(0, 256, (num_envs, 4)).astype(np.uint8),
            "s": rng.randint(-128, 128, num_envs).astype(np.int8),
            "none": np.zeros((num_envs, 0), np.float32)} for _ in range(3)]
  rows = np.concatenate([layout.pack_step(step, num_envs) for step in steps], axis=1)
  assert rows.shape == (num_envs, layout.window_bytes) and rows.dtype == np.uint8
  unpacked = layout.unpack(tf.constant(rows))
  for key, field in spec.items():
    assert unpacked[key].dtype == field.dtype
    np.testing.assert_array_equal(unpacked[key].numpy(),
                                  np.stack([step[key] for step in steps], axis=1))


def test_uniform_batches_come_stacked_and_mix_items(counting_env_id):
  """num_batches=K gives K batches from one read; with several envs a batch's
  windows are shuffled across the read's items, not 16/envs whole items (a
  batch step of every env) per batch."""
  transitions = replay.TransitionReplay(capacity=1000, min_size=1)
  env, policy, server = make(counting_env_id, 4, transitions)
  adder = transitions.adder(server.client, 4)
  drivers.Driver(env, policy, observers=[adder]).run_steps(4 * 200)
  adder.flush()
  experience, weights = next(iter(transitions.dataset(
      server.address, batch_size=16, num_envs=4, data_spec=policy.trajectory_spec,
      num_batches=6)))
  obs, weights = experience.observation.numpy(), weights.numpy()
  assert obs.shape == (6, 16, 2, 3) and weights.shape == (6, 16)
  valid = weights == 1
  np.testing.assert_array_equal(obs[valid][:, 1, 2], obs[valid][:, 0, 2] + 1)
  # Whole items would put exactly 4 windows of each env in every batch (a
  # shuffle of 6 x 16 windows keeps that by chance with probability ~1e-7).
  per_env = [np.bincount(obs[k, :, 0, 0].astype(int), minlength=4) for k in range(6)]
  assert any((counts != 4).any() for counts in per_env)
  adder.close()
  server.close()


# -- stacked frames stored once (TransitionReplay.frame_stack) ---------------

def windows_of(recorded, length: int):
  """Every env's `length`-step windows of the recorded batch steps (a list of
  batched Trajectories), as {bytes of the window's fields: window}."""
  windows = {}
  for env in range(len(recorded[0].step_type)):
    for t in range(len(recorded) - length + 1):
      window = [tf.nest.map_structure(lambda x, e=env: np.asarray(x[e]), recorded[t + i])
                for i in range(length)]
      stacked = tf.nest.map_structure(lambda *xs: np.stack(xs), *window)
      windows[b"".join(np.ascontiguousarray(x).tobytes() for x in tf.nest.flatten(stacked))] = stacked
  return windows


def test_stack_frames_zeroes_the_frames_before_each_episode():
  # Steps of one stream: frames 1..6, an episode starting at step 3.
  frames = tf.constant(np.arange(1, 7, dtype=np.uint8).reshape(1, 6, 1))
  step_type = tf.constant([[1, 1, 2, 0, 1, 1]])
  stacks = replay.packing.stack_frames(frames, step_type, 3).numpy()[0, :, 0]
  np.testing.assert_array_equal(stacks, [[1, 2, 3], [0, 0, 4], [0, 4, 5], [4, 5, 6]])


@pytest.mark.parametrize("num_envs", [1, 3])
def test_stacked_frames_sampled_are_the_frames_the_envs_produced(counting_frames_env_id,
                                                                 num_envs):
  """Each step stores its newest frame only; what is sampled must be, field
  for field, windows the envs produced: FrameStackObservation's own stacks,
  zero-padded at every episode start (episodes of 1-5 steps), none reaching
  back across the driver's reset, every one of them sampled."""
  transitions = replay.TransitionReplay(capacity=1000, min_size=1, frame_stack=4)
  env, policy, server = make(counting_frames_env_id, num_envs, transitions)
  adder = transitions.adder(server.client, num_envs)
  assert isinstance(adder, replay.adders.FrameStackAdder)
  before, after = [], []
  recording = [before]
  driver = drivers.Driver(env, policy, observers=[adder, lambda traj: recording[0].append(traj)])
  driver.run_steps(num_envs * 30)
  driver.reset()
  recording[0] = after
  driver.run_steps(num_envs * 12)
  expected = {**windows_of(before, 2), **windows_of(after, 2)}
  assert transitions.num_items(server.client) * num_envs == len(expected) == 40 * num_envs
  seen = set()
  for experience, weights in transitions.dataset(server.address, batch_size=24,
                                                 num_envs=num_envs, num_batches=10,
                                                 data_spec=policy.trajectory_spec).take(8):
    assert experience.observation.shape == (10, 24, 2, 6, 6, 4)
    flat = tf.nest.map_structure(lambda x: x.numpy().reshape((240,) + tuple(x.shape[2:])),
                                 experience)
    for i, weight in enumerate(weights.numpy().reshape(-1)):
      window = tf.nest.map_structure(lambda x, i=i: x[i], flat)
      key = b"".join(np.ascontiguousarray(x).tobytes() for x in tf.nest.flatten(window))
      assert key in expected, f"sampled window {i} is no window the envs produced"
      assert weight == float(window.step_type[0] != ts.StepType.LAST)
      seen.add(key)
  assert seen == set(expected)
  adder.close()
  server.close()


def test_frame_stack_refuses_what_is_not_a_zero_padded_stack(counting_env_id, counting_frames_env_id):
  transitions = replay.TransitionReplay(capacity=100, min_size=1, frame_stack=4)
  env, policy, _ = make(counting_env_id, 1, replay.TransitionReplay())
  with pytest.raises(tfrl.ConfigError, match=r"frame_stack = 4 needs observations of uint8 frames"
                                             r".*are float32 \[3\]"):
    transitions.check(policy.trajectory_spec)
  env, policy, server = make(counting_frames_env_id, 1, transitions,
                             env_kwargs=dict(padding_type="reset"))
  with pytest.raises(tfrl.ConfigError, match="a FIRST step's older frames are not zero"):
    drivers.Driver(env, policy, observers=[transitions.adder(server.client, 1)]).run_steps(3)
  with pytest.raises(tfrl.ConfigError, match="frame_stack is for uniform replay"):
    replay.TransitionReplay(prioritized=True, frame_stack=4)
  server.close()


def checkpoint_bytes(server) -> int:
  """The size of a Reverb checkpoint of the server's tables (its chunks as
  the server holds them, compressed, each once, and the items)."""
  path = server.checkpoint()
  return sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))


@pytest.mark.parametrize("frame_stack,most_bytes", [(None, None), (4, 1.1)])
def test_bytes_per_stored_transition(counting_frames_env_id, frame_stack, most_bytes):
  """84x84 frames of noise (incompressible; no episode ends, so no
  zero-padded stacks): with frame_stack a transition
  costs at most 1.1 frames (7056 bytes) of checkpoint; stored whole, each
  frame is in 2 observations of 4 frames."""
  transitions = replay.TransitionReplay(capacity=1000, min_size=1, frame_stack=frame_stack)
  env, policy, server = make(counting_frames_env_id, 2, transitions,
                             env_kwargs=dict(size=84, shortest=1000))
  with server, transitions.adder(server.client, 2) as adder:
    empty = checkpoint_bytes(server)
    drivers.Driver(env, policy, observers=[adder]).run_steps(2 * 101)
    stored = transitions.num_items(server.client) * 2
    assert stored == 200
    per_transition = (checkpoint_bytes(server) - empty) / stored / (84 * 84)
  if most_bytes is None:
    assert per_transition > 7.9  # obs and next_obs of 4 frames each
  else:
    assert per_transition <= most_bytes
  print(f"frame_stack {frame_stack}: {per_transition:.4f} frames per transition")
