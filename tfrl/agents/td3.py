"""TD3 (Fujimoto et al., 2018): tf-agents' Td3Agent, with Spinning Up's defaults."""

from typing import Optional

import gin
import tensorflow as tf

from tfrl.agents.factory import agent_factory, CONTINUOUS
from tfrl.checks import Count, Fraction, Layers, NonNegativeFloat, PositiveFloat
from tfrl.agents.diagnostics import Td3Agent
from tfrl.agents.ddpg import actor_and_critic, explore_with_gaussian_noise
from tfrl.networks import adam


@gin.configurable(module="tfrl.agents")
@agent_factory("td3", CONTINUOUS)
def td3(time_step_spec,
        action_spec,
        actor_fc_layer_params: Layers = (256, 256),
        critic_fc_layer_params: Layers = (256, 256),
        actor_learning_rate: PositiveFloat = 1e-3,
        critic_learning_rate: PositiveFloat = 1e-3,
        gamma: Fraction = 0.99,
        target_update_tau: Fraction = 0.005,
        policy_delay: Count = 2,
        target_update_period: Optional[Count] = None,
        exploration_noise_std: NonNegativeFloat = 0.1,
        target_policy_noise: NonNegativeFloat = 0.2,
        target_policy_noise_clip: NonNegativeFloat = 0.5,
        td_errors_loss_fn=tf.math.squared_difference,
        reward_scale_factor: PositiveFloat = 1.0,
        gradient_clipping: Optional[PositiveFloat] = None) -> Td3Agent:
  """Twin delayed DDPG: DDPG with three fixes against Q overestimation.

  * Clipped double Q: two critics, both regressing on
    r + gamma * min(Q1_targ, Q2_targ)(s', a').
  * Target policy smoothing: a' = mu_targ(s') + clip(N(0, target_policy_noise^2),
    +-target_policy_noise_clip), in action units. tf-agents does not clip a'
    to the action bounds (Spinning Up does).
  * Delayed updates: the actor is updated on every `policy_delay`-th train
    step (those where the step counter is a multiple of it, starting with the
    first), and the targets (both critics and the actor) move by polyak
    averaging every `target_update_period` steps (default: `policy_delay`, as
    Spinning Up, which updates targets together with the actor; tf-agents
    counts its own calls, so they are the 2nd, 4th, ... steps for period 2).

  Defaults are Spinning Up's (lr 1e-3, gamma 0.99, polyak 0.995 i.e. tau
  0.005, act_noise 0.1, target_noise 0.2, noise_clip 0.5, policy_delay 2,
  MSE critic loss instead of tf-agents' Huber loss). Exploration noise is
  drawn per env (see tfrl.agents.ddpg.GaussianNoisePolicy). The knobs that
  matter most: learning rates, exploration_noise_std relative to the action
  range, policy_delay and tau.
  """
  actor_net, critic_net = actor_and_critic(time_step_spec, action_spec, actor_fc_layer_params,
                                           critic_fc_layer_params)
  agent = Td3Agent(
      time_step_spec,
      action_spec,
      actor_network=actor_net,
      critic_network=critic_net,  # the second critic is a fresh copy of it
      actor_optimizer=adam(actor_learning_rate),
      critic_optimizer=adam(critic_learning_rate),
      exploration_noise_std=exploration_noise_std,
      target_update_tau=target_update_tau,
      target_update_period=target_update_period or policy_delay,
      actor_update_period=policy_delay,
      td_errors_loss_fn=td_errors_loss_fn,
      gamma=gamma,
      reward_scale_factor=reward_scale_factor,
      target_policy_noise=target_policy_noise,
      target_policy_noise_clip=target_policy_noise_clip,
      gradient_clipping=gradient_clipping,
      train_step_counter=tf.Variable(0, dtype=tf.int64, name="train_step"))
  explore_with_gaussian_noise(agent, actor_net, exploration_noise_std)
  agent.initialize()
  return agent
