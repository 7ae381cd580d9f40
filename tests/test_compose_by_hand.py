"""The notebook path: tfrl's parts composed by hand, no gin, a few lines each."""

import numpy as np
from tf_agents.specs import tensor_spec

import tfrl


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
