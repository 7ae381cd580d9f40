"""REINFORCE (Williams, 1992): tf-agents' ReinforceAgent, configured by gin."""

from typing import Optional

import gin
import tensorflow as tf

from tfrl.agents.factory import agent_factory
from tfrl.checks import Count, Fraction, Layers, NonNegativeFloat, PositiveFloat
from tfrl.agents.diagnostics import ReinforceAgent
from tfrl.networks import actor_network, adam, value_network


@gin.configurable(module="tfrl.agents")
@agent_factory("reinforce")
def reinforce(time_step_spec,
              action_spec,
              fc_layer_params: Layers = (100,),
              learning_rate: PositiveFloat = 1e-3,
              learning_rate_decay_steps: Optional[Count] = None,
              gamma: Fraction = 1.0,
              normalize_returns: bool = True,
              value_baseline: bool = False,
              entropy_regularization: Optional[NonNegativeFloat] = None,
              gradient_clipping: Optional[PositiveFloat] = None):
  """Monte-Carlo policy gradient on whole episodes.

  `value_baseline=True` subtracts a learned state value (same layer sizes)
  from the returns, which lowers the gradient's variance.
  `learning_rate_decay_steps=N` decays the learning rate linearly to zero
  over N train steps, which keeps a converged policy from drifting away.
  """
  agent = ReinforceAgent(
      time_step_spec,
      action_spec,
      actor_network=actor_network(time_step_spec.observation, action_spec, fc_layer_params),
      value_network=(value_network(time_step_spec.observation, fc_layer_params)
                     if value_baseline else None),
      optimizer=adam(learning_rate, learning_rate_decay_steps),
      gamma=gamma,
      normalize_returns=normalize_returns,
      entropy_regularization=entropy_regularization,
      gradient_clipping=gradient_clipping,
      train_step_counter=tf.Variable(0, dtype=tf.int64, name="train_step"))
  agent.initialize()
  return agent
