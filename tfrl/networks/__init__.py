"""Networks shared by the agents (tf-agents' own, with tfrl's defaults)."""

from typing import Optional, Sequence

import tensorflow as tf

from tf_agents.networks import actor_distribution_network
from tf_agents.networks import value_network as value_network_lib


def actor_network(observation_spec, action_spec, fc_layer_params: Sequence[int]):
  """A policy network emitting a categorical (discrete) or normal (continuous) distribution."""
  return actor_distribution_network.ActorDistributionNetwork(
      observation_spec, action_spec, fc_layer_params=tuple(fc_layer_params))


def value_network(observation_spec, fc_layer_params: Sequence[int]):
  """A state-value network V(s)."""
  return value_network_lib.ValueNetwork(observation_spec, fc_layer_params=tuple(fc_layer_params))


def adam(learning_rate: float, decay_steps: Optional[int] = None) -> tf.keras.optimizers.Optimizer:
  """Adam, optionally with the learning rate decaying linearly to 0 over `decay_steps` updates."""
  if decay_steps:
    learning_rate = tf.keras.optimizers.schedules.PolynomialDecay(
        learning_rate, decay_steps, end_learning_rate=0.0, power=1.0)
  return tf.keras.optimizers.Adam(learning_rate=learning_rate)
