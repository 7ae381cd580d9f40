"""Networks shared by the agents (tf-agents' own, with tfrl's defaults)."""

from typing import Sequence

from tf_agents.networks import actor_distribution_network
from tf_agents.networks import value_network as value_network_lib


def actor_network(observation_spec, action_spec, fc_layer_params: Sequence[int]):
  """A policy network emitting a categorical (discrete) or normal (continuous) distribution."""
  return actor_distribution_network.ActorDistributionNetwork(
      observation_spec, action_spec, fc_layer_params=tuple(fc_layer_params))


def value_network(observation_spec, fc_layer_params: Sequence[int]):
  """A state-value network V(s)."""
  return value_network_lib.ValueNetwork(observation_spec, fc_layer_params=tuple(fc_layer_params))
