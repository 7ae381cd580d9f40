"""DQN (Mnih et al., 2015): tf-agents' DqnAgent with an online and a target
network and a linearly decaying epsilon-greedy collect policy."""

from typing import Optional, Sequence

import gin
import tensorflow as tf
from tf_agents.networks import q_network

from tfrl.agents.diagnostics import DqnAgent
from tfrl.networks import adam


def linearly_decaying_epsilon(step, decay_steps: int, start: float, end: float):
  """Epsilon falls linearly from `start` to `end` over `decay_steps`, then stays."""
  if decay_steps <= 0:
    return tf.constant(end, tf.float32)
  fraction = tf.minimum(tf.cast(step, tf.float32) / float(decay_steps), 1.0)
  return start + fraction * (end - start)


@gin.configurable(module="tfrl.agents")
def dqn(time_step_spec,
        action_spec,
        fc_layer_params: Sequence[int] = (64, 64),
        learning_rate: float = 1e-3,
        gamma: float = 0.99,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.05,
        epsilon_decay_steps: int = 10_000,
        target_update_period: int = 100,
        target_update_tau: float = 1.0,
        n_step_update: int = 1,
        gradient_clipping: Optional[float] = None,
        td_errors_loss_fn=tf.compat.v1.losses.huber_loss):
  """Q-learning from replayed transitions.

  Exploration: epsilon decays linearly from `epsilon_start` to `epsilon_end`
  over `epsilon_decay_steps` train steps (the agent's train_step_counter, so
  it resumes with the checkpoint). The target network is synced every
  `target_update_period` train steps (tau=1 copies, tau<1 averages).
  """
  train_step = tf.Variable(0, dtype=tf.int64, name="train_step")
  agent = DqnAgent(
      time_step_spec,
      action_spec,
      q_network=q_network.QNetwork(time_step_spec.observation, action_spec,
                                   fc_layer_params=tuple(fc_layer_params)),
      optimizer=adam(learning_rate),
      epsilon_greedy=lambda: linearly_decaying_epsilon(
          train_step, epsilon_decay_steps, epsilon_start, epsilon_end),
      gamma=gamma,
      n_step_update=n_step_update,
      target_update_period=target_update_period,
      target_update_tau=target_update_tau,
      td_errors_loss_fn=td_errors_loss_fn,
      gradient_clipping=gradient_clipping,
      train_step_counter=train_step)
  agent.initialize()
  return agent
