"""The notebook path: tfrl's parts composed by hand, no gin, a few lines each."""

import os
import subprocess
import sys

import numpy as np
from tf_agents.policies import py_tf_eager_policy
from tf_agents.specs import tensor_spec

import tfrl

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_reinforce_by_hand():
  env = tfrl.envs.load("CartPole-v1", seed=0, num_envs=4)
  agent = tfrl.agents.reinforce(tensor_spec.from_spec(env.time_step_spec()),
                                tensor_spec.from_spec(env.action_spec()), learning_rate=1e-2)
  episodes = tfrl.replay.EpisodeReplay(capacity=100)
  server = tfrl.replay.ReplayServer(episodes.tables(agent.collect_data_spec))
  adder = episodes.adder(server.client, num_envs=4)
  driver = tfrl.drivers.Driver(env, agent.collect_policy, observers=[adder])

  variables_before = [v.numpy().copy() for v in agent.trainable_variables]
  for _ in range(3):
    written = adder.episodes_written
    driver.run_episodes(4)
    loss = agent.train(episodes.experience(server.client, adder.episodes_written - written,
                                           data_spec=agent.collect_data_spec)).loss
    assert np.isfinite(loss)
  assert int(agent.train_step_counter.numpy()) == 3
  assert any(not np.array_equal(a, b.numpy())
             for a, b in zip(variables_before, agent.trainable_variables))
  evaluate = tfrl.train.Evaluator(tfrl.envs.load("CartPole-v1", seed=1), agent.policy, 2)
  result = evaluate()
  assert len(result.returns) == 2 and result.avg_return > 0
  server.close()


def test_run_episodes_takes_a_tf_policy_as_well_as_a_py_policy():
  env = tfrl.envs.load("CartPole-v1", seed=0)
  agent = tfrl.agents.reinforce(env.time_step_spec(), env.action_spec())
  for policy in (agent.policy, py_tf_eager_policy.PyTFEagerPolicy(agent.policy)):
    watched = tfrl.experiments.run_episodes(env, policy, num_episodes=2)
    assert len(watched.returns) == 2
    assert watched.returns == [float(n) for n in watched.lengths]  # CartPole pays 1 per step
  env.close()


BY_HAND = """
import tfrl
env = tfrl.envs.load("CartPole-v1", seed=0, num_envs=2)
agent = tfrl.agents.reinforce(env.time_step_spec(), env.action_spec())
episodes = tfrl.replay.EpisodeReplay(capacity=10)
transitions = tfrl.replay.TransitionReplay(capacity=100, min_size=1)
tables = episodes.tables(agent.collect_data_spec) + transitions.tables(agent.collect_data_spec, 2)
with tfrl.replay.ReplayServer(tables) as server, \\
     episodes.adder(server.client, 2) as episode_adder, \\
     transitions.adder(server.client, 2) as transition_adder:
  driver = tfrl.drivers.Driver(env, agent.collect_policy,
                               observers=[episode_adder, transition_adder])
  driver.run_episodes(2)
  print("read", episodes.experience(server.client, 2, data_spec=agent.collect_data_spec)
        .step_type.shape[0], "row")
"""


def test_context_managers_close_the_server_and_adders_quietly(tmp_path):
  """Without the `with`, this script ends with Reverb's "Writer-object
  deleted without calling .close" and "Socket closed" lines."""
  done = subprocess.run([sys.executable, "-c", BY_HAND], cwd=tmp_path, capture_output=True,
                        text=True, timeout=300,
                        env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"))
  assert done.returncode == 0 and "read 1 row" in done.stdout, done.stderr[-3000:]
  for noise in ("Writer-object deleted", "Socket closed"):
    assert noise not in done.stderr, done.stderr[-3000:]


def test_video_frames_are_uint8_and_small_renders_enlarged():
  from tfrl.experiments.episodes import video_frame  # pylint: disable=import-outside-toplevel
  minatar = np.zeros((10, 10, 3))
  minatar[2, 3] = (1.0, 0.5, 0.0)
  frame = video_frame(minatar)
  assert frame.dtype == np.uint8 and frame.shape == (160, 160, 3)
  np.testing.assert_array_equal(frame[32:48, 48:64], np.broadcast_to([255, 128, 0], (16, 16, 3)))
  assert not frame[:32].any() and not frame[48:].any()
  atari = np.random.default_rng(0).integers(0, 256, (210, 160, 3), dtype=np.uint8)
  np.testing.assert_array_equal(video_frame(atari), atari)
