"""VPG (vanilla policy gradient) with GAE-lambda advantages and a learned
value baseline, as in Spinning Up: one policy-gradient step per batch of
episodes, then the value function fitted on the rewards-to-go.

    loss_pi = -mean(log pi(a|s) * A)

tf-agents has no such agent (its ReinforceAgent uses Monte-Carlo returns,
and PPOAgent cannot take a single plain gradient step), hence tfrl's own.
"""

from typing import Optional

import gin
import tensorflow as tf

from tfrl.agents.factory import agent_factory
from tfrl.checks import ConvLayers, Count, Fraction, Layers, NonNegativeFloat, PositiveFloat
from tfrl.agents.policy_gradient import PolicyGradientAgent, actor_and_value_networks
from tfrl.networks import adam


class VpgAgent(PolicyGradientAgent):

  def __init__(self, time_step_spec, action_spec, actor_net, value_net, policy_optimizer,
               value_optimizer, entropy_coef: float = 0.0, **kwargs):
    super().__init__(time_step_spec, action_spec, actor_net, value_net, value_optimizer,
                     name="VpgAgent", **kwargs)
    self._policy_optimizer = policy_optimizer
    policy_optimizer.build(actor_net.trainable_variables)
    self._entropy_coef = entropy_coef

  def _update_policy(self, batch):
    variables = self._actor_net.trainable_variables
    with tf.GradientTape() as tape:
      distribution = self._distribution(batch["observation"])
      log_prob = distribution.log_prob(batch["action"])
      entropy = tf.reduce_mean(distribution.entropy())
      loss = -tf.reduce_mean(log_prob * batch["advantage"]) - self._entropy_coef * entropy
    self._policy_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return dict(policy_loss=loss, entropy=entropy,
                approx_kl=tf.reduce_mean(batch["log_prob"] - log_prob))


@gin.configurable(module="tfrl.agents")
@agent_factory("vpg")
def vpg(time_step_spec,
        action_spec,
        actor_fc_layer_params: Layers = (64, 64),
        value_fc_layer_params: Layers = (64, 64),
        conv_layer_params: Optional[ConvLayers] = None,
        activation: str = "tanh",
        policy_learning_rate: PositiveFloat = 3e-4,
        value_learning_rate: PositiveFloat = 1e-3,
        learning_rate_decay_steps: Optional[Count] = None,
        value_epochs: Count = 80,
        gamma: Fraction = 0.99,
        gae_lambda: Fraction = 0.97,
        entropy_coef: NonNegativeFloat = 0.0,
        init_action_stddev: Optional[PositiveFloat] = None,
        normalize_observations: bool = False,
        normalize_rewards: bool = False):
  """Spinning Up's defaults: pi_lr 3e-4, vf_lr 1e-3, 80 value steps, gamma
  0.99, lambda 0.97, 64-64 tanh networks. `learning_rate_decay_steps=N`
  decays both rates linearly to zero over N train steps. `conv_layer_params`:
  conv layers in front of both networks (as PPO's)."""
  train_step = tf.Variable(0, dtype=tf.int64, name="train_step")
  return VpgAgent(
      time_step_spec, action_spec,
      **actor_and_value_networks(time_step_spec, action_spec, actor_fc_layer_params,
                                 value_fc_layer_params, activation, init_action_stddev,
                                 normalize_observations, conv_layer_params,
                                 normalize_rewards=normalize_rewards),
      policy_optimizer=adam(policy_learning_rate, learning_rate_decay_steps, train_step),
      value_optimizer=adam(value_learning_rate, learning_rate_decay_steps, train_step),
      entropy_coef=entropy_coef, gamma=gamma, gae_lambda=gae_lambda, value_epochs=value_epochs,
      train_step=train_step)
