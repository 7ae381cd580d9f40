"""Networks shared by the agents (tf-agents' own, with tfrl's defaults)."""

import functools
import math
from typing import Optional, Sequence, Tuple

import gin
import numpy as np
import tensorflow as tf

from tf_agents.agents.ddpg import actor_network as ddpg_actor_network
from tf_agents.agents.ddpg import critic_network as ddpg_critic_network
from tf_agents.agents.sac import sac_agent, tanh_normal_projection_network
from tf_agents.networks import actor_distribution_network
from tf_agents.networks import normal_projection_network
from tf_agents.networks import q_network as q_network_lib
from tf_agents.networks import value_network as value_network_lib

# Convolutional torsos, (filters, kernel size, stride) per layer, 'valid'
# padding, for the agents' `conv_layer_params` (gin:
# `tfrl.agents.dqn.conv_layer_params = %tfrl.networks.NATURE_DQN_CONV`).
# The Nature DQN CNN (Mnih et al. 2015) on 84x84x4 frames; with
# fc_layer_params (512,) it is the paper's network.
NATURE_DQN_CONV = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
# MinAtar's (Young & Tian 2019) on 10x10xk: one 16-filter 3x3 layer; with
# fc_layer_params (128,) it is the paper's network.
MINATAR_CONV = ((16, 3, 1),)
gin.constant("tfrl.networks.NATURE_DQN_CONV", NATURE_DQN_CONV)
gin.constant("tfrl.networks.MINATAR_CONV", MINATAR_CONV)
ConvParams = Optional[Sequence[Tuple[int, int, int]]]


class ScaleObservation(tf.keras.layers.Layer):
  """The network's first op on integer frames: cast to float32, times `scale`."""

  def __init__(self, scale: float, **kwargs):
    super().__init__(**kwargs)
    self.scale = float(scale)

  def call(self, inputs):
    return tf.cast(inputs, tf.float32) * self.scale

  def get_config(self):  # tf-agents copies preprocessing layers from their config
    return dict(super().get_config(), scale=self.scale)


def observation_preprocessing(observation_spec) -> Optional[tf.keras.layers.Layer]:
  """For uint8 observations (frames): a ScaleObservation into [0, 1] by the
  spec's bound (1/255 for Atari's frames, 1 for MinAtar's binary channels),
  so replay and policies carry uint8 and the network sees floats. None for
  anything else (float observations go in as they are)."""
  if not hasattr(observation_spec, "dtype") or observation_spec.dtype != tf.uint8:
    return None
  maximum = float(np.max(getattr(observation_spec, "maximum", 255)))
  return ScaleObservation(1.0 / maximum if maximum > 0 else 1.0, name="scale_observation")


def _conv(conv_layer_params: ConvParams):
  return tuple(tuple(layer) for layer in conv_layer_params) if conv_layer_params else None


def q_network(observation_spec, action_spec, fc_layer_params: Sequence[int],
              conv_layer_params: ConvParams = None):
  """Q(s, .) for DQN: optional conv layers, then the fully connected ones (ReLU)."""
  return q_network_lib.QNetwork(observation_spec, action_spec,
                                preprocessing_layers=observation_preprocessing(observation_spec),
                                conv_layer_params=_conv(conv_layer_params),
                                fc_layer_params=tuple(fc_layer_params))


def actor_network(observation_spec, action_spec, fc_layer_params: Sequence[int],
                  activation: str = "relu", init_action_stddev: Optional[float] = None,
                  conv_layer_params: ConvParams = None):
  """A policy network emitting a categorical (discrete) or normal (continuous) distribution.

  Continuous actions get a state-independent standard deviation (a learned
  vector, as in Spinning Up), starting at `init_action_stddev` (default
  softplus(0) = 0.69), and a mean squashed into the action bounds.
  `conv_layer_params`: conv layers before the fully connected ones (both use
  `activation`); uint8 observations are scaled into [0, 1] first.
  """
  std_bias = 0.0 if init_action_stddev is None else math.log(math.expm1(init_action_stddev))
  return actor_distribution_network.ActorDistributionNetwork(
      observation_spec, action_spec, fc_layer_params=tuple(fc_layer_params),
      preprocessing_layers=observation_preprocessing(observation_spec),
      conv_layer_params=_conv(conv_layer_params),
      activation_fn=tf.keras.activations.get(activation),
      continuous_projection_net=functools.partial(
          normal_projection_network.NormalProjectionNetwork,
          std_bias_initializer_value=std_bias))


def value_network(observation_spec, fc_layer_params: Sequence[int], activation: str = "relu",
                  conv_layer_params: ConvParams = None):
  """A state-value network V(s) (conv layers and uint8 scaling as actor_network's)."""
  return value_network_lib.ValueNetwork(
      observation_spec, fc_layer_params=tuple(fc_layer_params),
      preprocessing_layers=observation_preprocessing(observation_spec),
      conv_layer_params=_conv(conv_layer_params),
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
         step: Optional[tf.Variable] = None,
         max_grad_norm: Optional[float] = None) -> tf.keras.optimizers.Optimizer:
  """Adam, optionally with the learning rate decaying linearly to 0 over
  `decay_steps` counts of `step` (default: of the optimizer's own updates).
  Agents whose train step makes many updates pass their train-step counter.
  `max_grad_norm`: each step's gradients are first scaled down to at most
  this global norm."""
  if decay_steps:
    learning_rate = LinearDecay(learning_rate, decay_steps, step)
  return tf.keras.optimizers.Adam(learning_rate=learning_rate, global_clipnorm=max_grad_norm)
