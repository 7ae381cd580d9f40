"""SAC (Haarnoja et al., 2018): tf-agents' SacAgent, with Spinning Up's defaults."""

import math
from typing import Optional

import gin
import tensorflow as tf

from tfrl.agents.factory import agent_factory, CONTINUOUS
from tfrl.checks import Count, Fraction, Layers, NonNegativeFloat, PositiveFloat
from tfrl.agents.diagnostics import SacAgent
from tfrl.networks import adam, critic_network, squashed_gaussian_actor_network


@gin.configurable(module="tfrl.agents")
@agent_factory("sac", CONTINUOUS)
def sac(time_step_spec,
        action_spec,
        actor_fc_layer_params: Layers = (256, 256),
        critic_fc_layer_params: Layers = (256, 256),
        actor_learning_rate: PositiveFloat = 1e-3,
        critic_learning_rate: PositiveFloat = 1e-3,
        alpha: NonNegativeFloat = 0.2,
        alpha_learning_rate: NonNegativeFloat = 0.0,
        target_entropy: Optional[float] = None,
        gamma: Fraction = 0.99,
        target_update_tau: Fraction = 0.005,
        target_update_period: Count = 1,
        critic_loss_weight: PositiveFloat = 1.0,
        reward_scale_factor: PositiveFloat = 1.0,
        gradient_clipping: Optional[PositiveFloat] = None):
  """Soft actor-critic: off-policy actor-critic maximising return + alpha * entropy.

  Two critics regress on r + gamma * (min(Q1_targ, Q2_targ)(s', a') -
  alpha * log pi(a'|s')), a' ~ pi(.|s'); the tanh-squashed Gaussian actor
  minimises alpha * log pi(a|s) - min(Q1, Q2)(s, a) through reparameterised
  samples. Collection samples from pi; evaluation (GreedyPolicy) takes its
  mode, tanh of the mean. Critic targets move by polyak averaging every
  `target_update_period` train steps (there is no target actor).

  `alpha` is the entropy coefficient's starting value. With
  `alpha_learning_rate` 0 it stays fixed (Spinning Up's default, alpha 0.2);
  with a positive rate it is tuned so the policy's entropy approaches
  `target_entropy` (None: tf-agents' -dim(A)/2; the SAC paper uses -dim(A)).

  Defaults are Spinning Up's (lr 1e-3, alpha 0.2, gamma 0.99, polyak 0.995
  i.e. tau 0.005, the critic loss the sum of both critics' MSE, i.e.
  critic_loss_weight 1 where tf-agents defaults to 0.5). The knobs that matter
  most: alpha (or tuning it), the learning rates and, relative to the reward
  scale, reward_scale_factor (equivalent to 1/alpha).
  """
  observation_spec = time_step_spec.observation
  alpha_optimizer = (adam(alpha_learning_rate) if alpha_learning_rate > 0
                     else tf.keras.optimizers.SGD(learning_rate=0.0))
  agent = SacAgent(
      time_step_spec,
      action_spec,
      critic_network=critic_network(observation_spec, action_spec, critic_fc_layer_params),
      actor_network=squashed_gaussian_actor_network(observation_spec, action_spec,
                                                    actor_fc_layer_params),
      actor_optimizer=adam(actor_learning_rate),
      critic_optimizer=adam(critic_learning_rate),
      alpha_optimizer=alpha_optimizer,
      critic_loss_weight=critic_loss_weight,
      target_update_tau=target_update_tau,
      target_update_period=target_update_period,
      td_errors_loss_fn=tf.math.squared_difference,
      gamma=gamma,
      reward_scale_factor=reward_scale_factor,
      initial_log_alpha=math.log(alpha),
      target_entropy=target_entropy,
      gradient_clipping=gradient_clipping,
      train_step_counter=tf.Variable(0, dtype=tf.int64, name="train_step"))
  agent.initialize()
  return agent
