"""On-policy segments (EpisodeReplay.segment_steps): fixed-length collection
continuing episodes, bootstrapped at the cut, never across an episode's end.

CountingEnv (conftest) observes [env, episode, step]; episode k of env e
lasts 2 + (e + k) % 3 steps and terminates, unless a time limit truncates
it. So the observation after any transition from [e, k, t] is [e, k, t + 1].
"""

import csv
import functools
import os

import gin
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import random_tf_policy
from tf_agents.specs import tensor_spec

import tfrl
from tfrl import drivers, envs, replay
from tfrl.agents.policy_gradient import PolicyGradientAgent, actor_and_value_networks
from tfrl.errors import ConfigError

GAMMA, LAMBDA = 0.9, 0.5


def episode_length(env_id, episode):
  return 2 + (env_id + episode) % 3


def collect_segments(counting_env_id, num_envs, segment_steps, num_segments,
                     max_episode_steps=None):
  """[segments of iteration 0 (one per env), of iteration 1, ...] and the
  env steps each iteration added."""
  env = envs.load(counting_env_id, seed=0, num_envs=num_envs, max_episode_steps=max_episode_steps,
                  vectorization="sync" if num_envs > 1 else "auto")
  specs = (tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec()))
  policy = random_tf_policy.RandomTFPolicy(*specs)
  component = replay.EpisodeReplay(segment_steps=segment_steps)
  server = replay.ReplayServer(component.tables(policy.trajectory_spec, num_envs))
  iterations, steps = [], []
  with component.adder(server.client, num_envs) as adder:
    driver = drivers.Driver(env, policy, observers=[adder])
    for _ in range(num_segments):
      before_steps, before_items = driver.env_steps, adder.items_written
      component.collect(driver, episodes_per_iteration=1)
      assert adder.items_written - before_items == num_envs
      steps.append(driver.env_steps - before_steps)
      iterations.append(component.read_episodes(server.client, num_envs,
                                                data_spec=policy.trajectory_spec))
  server.close()
  env.close()
  return specs, iterations, steps


class KnownValues(PolicyGradientAgent):
  """The family's advantage code with V given: V([e, k, t]) = 1 + 7e + 10k + t,
  plus `later_episode_bonus` on episodes > 0 (to see what depends on them)."""

  def __init__(self, specs, later_episode_bonus=0.0):
    super().__init__(*specs, **actor_and_value_networks(*specs, (4,), (4,), "tanh"),
                     value_optimizer=tf.keras.optimizers.Adam(), gamma=GAMMA,
                     gae_lambda=LAMBDA, normalize_advantages=False)
    self.later_episode_bonus = later_episode_bonus

  def _values(self, observation, training=False):
    return value_of(observation, self.later_episode_bonus)


def value_of(observation, later_episode_bonus=0.0):
  e, k, t = observation[..., 0], observation[..., 1], observation[..., 2]
  return 1.0 + 7.0 * e + 10.0 * k + t + later_episode_bonus * tf.cast(k > 0, tf.float32)


def agent_advantages(specs, segments, later_episode_bonus=0.0):
  """What the agent computes for `segments` read as one iteration: the valid rows'
  observations and advantages, in order."""
  agent = KnownValues(specs, later_episode_bonus)
  batch = agent._prepare_batch(replay.EpisodeReplay.concatenate(segments))
  return batch["observation"].numpy(), batch["advantage"].numpy()


def reference_advantages(segment, max_episode_steps=None):
  """GAE from the env's known dynamics: the next observation of [e, k, t] is
  [e, k, t + 1], discount 0 only where the episode terminated; the recursion
  stops at episode ends and at the segment's end."""
  transitions = [obs for obs, boundary in zip(segment.observation, segment.is_boundary())
                 if not boundary]
  advantages, next_advantage = [], 0.0
  for i in reversed(range(len(transitions))):
    e, k, t = transitions[i]
    length = episode_length(int(e), int(k))
    ends = t + 1 == min(length, max_episode_steps or length)
    terminated = t + 1 == length
    v = float(value_of(np.array(transitions[i])))
    next_v = float(value_of(np.array([e, k, t + 1], np.float32)))
    delta = (t + 1) + GAMMA * (0.0 if terminated else 1.0) * next_v - v
    continues = not ends and i + 1 < len(transitions)
    next_advantage = delta + (GAMMA * LAMBDA * next_advantage if continues else 0.0)
    advantages.append(next_advantage)
  return transitions, advantages[::-1]


@pytest.mark.parametrize("num_envs", [1, 2])
def test_segments_continue_where_the_previous_one_was_cut(counting_env_id, num_envs):
  _, iterations, steps = collect_segments(counting_env_id, num_envs, 5 * num_envs, 4)
  for env in range(num_envs):
    transitions = []
    for earlier, later in zip(iterations, iterations[1:]):
      # The cut row holds the observation the next segment starts from.
      np.testing.assert_array_equal(earlier[env].observation[-1], later[env].observation[0])
    for segment in (iteration[env] for iteration in iterations):
      assert segment.is_boundary()[-1]
      assert (segment.observation[:, 0] == env).all()
      transitions += [tuple(obs[1:]) for obs, b in zip(segment.observation, segment.is_boundary())
                      if not b]
    # Every step of every episode, in order, once: nothing lost or repeated at the cuts.
    expected = [(k, t) for k in range(20) for t in range(episode_length(env, k))]
    assert transitions == expected[:len(transitions)]
  if num_envs == 1:
    assert steps == [5] * 4  # exact with one env
  else:  # the envs step together: the batch step reaching the count may add num_envs - 1 more
    assert all(10 <= n <= 11 for n in steps)


def test_advantages_bootstrap_at_the_cut_and_stop_at_episode_ends(counting_env_id):
  specs, iterations, _ = collect_segments(counting_env_id, 2, 8, 2)
  for segments in iterations:
    observations, advantages = agent_advantages(specs, segments)
    expected_obs, expected = [], []
    for segment in segments:
      obs, adv = reference_advantages(segment)
      expected_obs += obs
      expected += adv
    np.testing.assert_array_equal(observations, expected_obs)
    np.testing.assert_allclose(advantages, expected, rtol=1e-5)
  # Env 0's first segment (4 transitions) ends mid-episode 1 at [0, 1, 2]:
  # its last advantage is r + gamma V(s_T) - V(s), s_T the next segment's first observation.
  first, second = iterations[0][0], iterations[1][0]
  s, s_next = first.observation[-2], second.observation[0]
  np.testing.assert_array_equal(s, [0, 1, 1])
  np.testing.assert_array_equal(s_next, [0, 1, 2])
  observations, advantages = agent_advantages(specs, [first])
  assert advantages[-1] == pytest.approx(
      2.0 + GAMMA * float(value_of(s_next)) - float(value_of(s)))


def test_no_advantage_depends_on_the_next_episode(counting_env_id):
  # Time limit 2: env 1's first episode is truncated (discount 1) mid-segment,
  # so only its boundary row keeps the next episode's values out.
  specs, iterations, _ = collect_segments(counting_env_id, 2, 12, 1, max_episode_steps=2)
  segments = iterations[0]
  observations, plain = agent_advantages(specs, segments)
  _, shifted = agent_advantages(specs, segments, later_episode_bonus=100.0)
  first_episode = observations[:, 1] == 0
  assert first_episode.sum() == 4 and (observations[:, 1] > 0).any()
  np.testing.assert_allclose(plain[first_episode], shifted[first_episode])
  assert not np.allclose(plain[~first_episode], shifted[~first_episode])


def test_truncation_bootstraps_and_termination_does_not(counting_env_id):
  # Time limit 2: env 0's episode 0 (2 steps) terminates, env 1's (3 steps) is truncated.
  specs, iterations, _ = collect_segments(counting_env_id, 2, 8, 1, max_episode_steps=2)
  segments = iterations[0]
  observations, advantages = agent_advantages(specs, segments)
  expected = sum((reference_advantages(s, max_episode_steps=2)[1] for s in segments), [])
  np.testing.assert_allclose(advantages, expected, rtol=1e-5)
  terminated = segments[0]
  truncated = segments[1]
  assert terminated.discount[1] == 0.0 and truncated.discount[1] == 1.0
  assert truncated.is_boundary()[2] and terminated.is_boundary()[2]
  np.testing.assert_array_equal(truncated.observation[2], [1, 0, 2])  # the true final observation
  by_obs = {tuple(o): a for o, a in zip(observations, advantages)}
  assert by_obs[(0, 0, 1)] == pytest.approx(2.0 - float(value_of(np.float32([0, 0, 1]))))
  assert by_obs[(1, 0, 1)] == pytest.approx(
      2.0 + GAMMA * float(value_of(np.float32([1, 0, 2]))) - float(value_of(np.float32([1, 0, 1]))))


def test_ppo_trains_on_segments(tmp_path, counting_env_id):
  root = str(tmp_path / "run")
  ppo = functools.partial(tfrl.agents.ppo, actor_fc_layer_params=(8,), value_fc_layer_params=(8,),
                          num_epochs=2, value_epochs=2)
  tfrl.train.train(root, log=lambda _: None, env_id=counting_env_id, agent_fn=ppo,
                   replay=replay.EpisodeReplay(segment_steps=20), num_envs=1, num_iterations=3,
                   eval_interval=3, checkpoint_interval=3, num_eval_episodes=1)
  with open(os.path.join(root, "progress.csv")) as f:
    last = list(csv.DictReader(f))[-1]
  assert int(last["train_steps"]) == 3
  assert int(last["env_steps"]) == 3 * 20
  # 60 steps of episodes lasting 2, 3, 4, 2, ...: 20 finished (returns 3, 6, 10, ...), one partial.
  assert int(last["episodes"]) == 20
  assert float(last["train_return"]) == pytest.approx((19 * 6 + 3 + 6) / 20)


def test_segments_refuse_bad_sizes_reward_redistribution_and_distributed_roles(counting_env_id):
  with pytest.raises(ConfigError, match="EpisodeReplay.segment_steps = 0"):
    replay.EpisodeReplay(segment_steps=0)
  settings = dict(env_id=counting_env_id, agent_fn=tfrl.agents.ppo,
                  replay=replay.EpisodeReplay(segment_steps=20))
  with pytest.raises(ConfigError, match="reward_redistribution needs whole episodes"):
    tfrl.train.RunConfig(reward_redistribution=lambda *specs: None, **settings).check()
  from tfrl.distributed import wiring  # pylint: disable=import-outside-toplevel
  with pytest.raises(ConfigError, match="segment_steps is not supported by the distributed"):
    wiring.role_config(tfrl.train.RunConfig(**settings))


@pytest.mark.parametrize("gin_files,segment_steps,num_envs", [
    (["envs/hopper.gin", "agents/spinup_ppo_mujoco.gin"], 4000, 4),  # Spinning Up's
    (["ppo_hopper.gin"], 512, 1), (["ppo_halfcheetah.gin"], 512, 1)])  # rl-zoo3's
def test_mujoco_ppo_files_collect_fixed_length_segments(gin_files, segment_steps, num_envs):
  from tfrl.train import config  # pylint: disable=import-outside-toplevel
  config.parse_config(gin_files, [])
  try:
    run_config = tfrl.train.RunConfig()
  finally:
    gin.clear_config()
  assert run_config.replay.segment_steps == segment_steps and run_config.num_envs == num_envs
