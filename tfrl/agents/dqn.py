"""DQN (Mnih et al., 2015): tf-agents' DqnAgent with an online and a target network."""

from typing import Sequence

import gin
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.networks import q_network

from tfrl.networks import adam


@gin.configurable(module="tfrl.agents")
def dqn(time_step_spec,
        action_spec,
        fc_layer_params: Sequence[int] = (64, 64),
        learning_rate: float = 1e-3,
        gamma: float = 0.99,
        epsilon_greedy: float = 0.1,
        target_update_period: int = 100,
        target_update_tau: float = 1.0,
        n_step_update: int = 1,
        td_errors_loss_fn=tf.compat.v1.losses.huber_loss):
  """Q-learning from replayed transitions; the target network is synced every
  `target_update_period` train steps (tau=1 copies, tau<1 averages)."""
  agent = dqn_agent.DqnAgent(
      time_step_spec,
      action_spec,
      q_network=q_network.QNetwork(time_step_spec.observation, action_spec,
                                   fc_layer_params=tuple(fc_layer_params)),
      optimizer=adam(learning_rate),
      epsilon_greedy=epsilon_greedy,
      gamma=gamma,
      n_step_update=n_step_update,
      target_update_period=target_update_period,
      target_update_tau=target_update_tau,
      td_errors_loss_fn=td_errors_loss_fn,
      train_step_counter=tf.Variable(0, dtype=tf.int64, name="train_step"))
  agent.initialize()
  return agent
