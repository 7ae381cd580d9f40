"""Networks shared by the agents (tf-agents' own, with tfrl's defaults)."""

import functools
import math
from typing import Optional, Sequence

import tensorflow as tf

from tf_agents.agents.ddpg import actor_network as ddpg_actor_network
from tf_agents.agents.ddpg import critic_network as ddpg_critic_network
from tf_agents.agents.sac import sac_agent, tanh_normal_projection_network
from tf_agents.networks import actor_distribution_network
from tf_agents.networks import normal_projection_network
from tf_agents.networks import value_network as value_network_lib


def actor_network(observation_spec, action_spec, fc_layer_params: Sequence[int],
                  activation: str = "relu", init_action_stddev: Optional[float] = None):
  """A policy network emitting a categorical (discrete) or normal (continuous) distribution.

  Continuous actions get a state-independent standard deviation (a learned
  vector, as in Spinning Up), starting at `init_action_stddev` (default
  softplus(0) = 0.69), and a mean squashed into the action bounds.
  """
  std_bias = 0.0 if init_action_stddev is None else math.log(math.expm1(init_action_stddev))
  return actor_distribution_network.ActorDistributionNetwork(
      observation_spec, action_spec, fc_layer_params=tuple(fc_layer_params),
      activation_fn=tf.keras.activations.get(activation),
      continuous_projection_net=functools.partial(
          normal_projection_network.NormalProjectionNetwork,
          std_bias_initializer_value=std_bias))


def value_network(observation_spec, fc_layer_params: Sequence[int], activation: str = "relu"):
  """A state-value network V(s)."""
  return value_network_lib.ValueNetwork(observation_spec, fc_layer_params=tuple(fc_layer_params),
                                        activation_fn=tf.keras.activations.get(activation))


def deterministic_actor_network(observation_spec, action_spec, fc_layer_params: Sequence[int]):
  """mu(s) for DDPG and TD3: an MLP ending in tanh, scaled to the action bounds.

  tf-agents' initialisation: hidden layers U(+-1/sqrt(fan_in)) (PyTorch's
  default, which Spinning Up uses), output layer U(+-0.003) (the DDPG paper's).
  """
  return ddpg_actor_network.ActorNetwork(observation_spec, action_spec,
                                         fc_layer_params=tuple(fc_layer_params))


def critic_network(observation_spec, action_spec, fc_layer_params: Sequence[int]):
  """Q(s, a) for DDPG, TD3 and SAC: one MLP on [observation, action]
  concatenated, as Spinning Up's (no separate observation/action towers)."""
  return ddpg_critic_network.CriticNetwork((observation_spec, action_spec),
                                           joint_fc_layer_params=tuple(fc_layer_params))


def squashed_gaussian_actor_network(observation_spec, action_spec,
                                    fc_layer_params: Sequence[int]):
  """pi(a|s) for SAC: a diagonal Gaussian squashed by tanh into the action
  bounds; its mode (tanh of the mean, scaled) is the evaluation action.
  The log-std is clipped to [-20, 2] as Spinning Up's (tf-agents'
  `std_clip_transform`): unbounded, exp() of it reaches 0 or inf."""
  return actor_distribution_network.ActorDistributionNetwork(
      observation_spec, action_spec, fc_layer_params=tuple(fc_layer_params),
      continuous_projection_net=functools.partial(
          tanh_normal_projection_network.TanhNormalProjectionNetwork,
          std_transform=sac_agent.std_clip_transform))


class LinearDecay(tf.keras.optimizers.schedules.LearningRateSchedule):
  """`initial` falling linearly to 0 as `step` (a counter variable, or the
  optimizer's own update count when None) goes from 0 to `decay_steps`."""

  def __init__(self, initial: float, decay_steps: int, step: Optional[tf.Variable] = None):
    self.initial, self.decay_steps, self.step = initial, decay_steps, step

  def __call__(self, optimizer_iterations):
    step = optimizer_iterations if self.step is None else self.step
    fraction = tf.cast(step, tf.float32) / float(self.decay_steps)
    return self.initial * tf.maximum(0.0, 1.0 - fraction)

  def get_config(self):
    return dict(initial=self.initial, decay_steps=self.decay_steps)


def adam(learning_rate: float, decay_steps: Optional[int] = None,
         step: Optional[tf.Variable] = None) -> tf.keras.optimizers.Optimizer:
  """Adam, optionally with the learning rate decaying linearly to 0 over
  `decay_steps` counts of `step` (default: of the optimizer's own updates).
  Agents whose train step makes many updates pass their train-step counter."""
  if decay_steps:
    learning_rate = LinearDecay(learning_rate, decay_steps, step)
  return tf.keras.optimizers.Adam(learning_rate=learning_rate)
