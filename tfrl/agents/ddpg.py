"""DDPG (Lillicrap et al., 2015): tf-agents' DdpgAgent, with Spinning Up's defaults.

Also holds what DDPG and TD3 share: `actor_and_critic` and `GaussianNoisePolicy`:
exploration noise drawn independently for every env of a batch (tf-agents'
GaussianPolicy and OUNoisePolicy draw one sample per step and add it to every
env's action).
"""

from typing import Optional

import gin
import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.policies import actor_policy
from tf_agents.policies import tf_policy

from tfrl.agents.factory import agent_factory, CONTINUOUS
from tfrl.checks import Count, Fraction, Layers, NonNegativeFloat, PositiveFloat
from tfrl.agents.diagnostics import DdpgAgent
from tfrl.networks import adam, critic_network, deterministic_actor_network


class GaussianNoisePolicy(tf_policy.TFPolicy):
  """`wrapped_policy`'s action plus N(0, scale^2) noise, independent per env and
  action dimension, in action units (not relative to the bounds), then clipped
  to the action spec."""

  def __init__(self, wrapped_policy: tf_policy.TFPolicy, scale: float, clip: bool = True,
               name: Optional[str] = None):
    super().__init__(wrapped_policy.time_step_spec, wrapped_policy.action_spec,
                     wrapped_policy.policy_state_spec, wrapped_policy.info_spec,
                     clip=clip, name=name)
    self._wrapped_policy = wrapped_policy
    self._scale = scale

  def _variables(self):
    return self._wrapped_policy.variables()

  def _action(self, time_step, policy_state, seed):
    seed_stream = tfp.util.SeedStream(seed=seed, salt="gaussian_noise")
    step = self._wrapped_policy.action(time_step, policy_state, seed_stream())
    noisy = tf.nest.map_structure(
        lambda a: a + tf.random.normal(tf.shape(a), stddev=self._scale, dtype=a.dtype,
                                       seed=seed_stream()),
        step.action)
    return step._replace(action=noisy)

  def _distribution(self, time_step, policy_state):
    raise NotImplementedError("a noisy deterministic policy has no distribution")


def explore_with_gaussian_noise(agent, actor_net, scale: float):
  """Replaces a DDPG/TD3 agent's collect policy (tfrl's DdpgAgent and
  Td3Agent collect with `exploration_policy` once set) by actor + per-env
  Gaussian noise."""
  if not hasattr(type(agent), "exploration_policy"):
    raise TypeError(f"{type(agent).__name__} does not collect with an exploration_policy; "
                    f"use tfrl.agents.diagnostics.DdpgAgent or Td3Agent")
  agent.exploration_policy = GaussianNoisePolicy(
      actor_policy.ActorPolicy(agent.time_step_spec, agent.action_spec, actor_net, clip=False),
      scale=scale, clip=True)
  return agent


def actor_and_critic(time_step_spec, action_spec, actor_fc_layer_params,
                     critic_fc_layer_params):
  """mu(s) (tanh-bounded MLP) and Q(s, a) (MLP on [s, a]), as Spinning Up's."""
  return (deterministic_actor_network(time_step_spec.observation, action_spec,
                                      actor_fc_layer_params),
          critic_network(time_step_spec.observation, action_spec, critic_fc_layer_params))


@gin.configurable(module="tfrl.agents")
@agent_factory("ddpg", CONTINUOUS)
def ddpg(time_step_spec,
         action_spec,
         actor_fc_layer_params: Layers = (256, 256),
         critic_fc_layer_params: Layers = (256, 256),
         actor_learning_rate: PositiveFloat = 1e-3,
         critic_learning_rate: PositiveFloat = 1e-3,
         gamma: Fraction = 0.99,
         target_update_tau: Fraction = 0.005,
         target_update_period: Count = 1,
         exploration_noise_std: NonNegativeFloat = 0.1,
         td_errors_loss_fn=tf.math.squared_difference,
         reward_scale_factor: PositiveFloat = 1.0,
         dqda_clipping: Optional[PositiveFloat] = None,
         gradient_clipping: Optional[PositiveFloat] = None):
  """Deep deterministic policy gradient: Q-learning for continuous actions.

  The critic Q(s, a) regresses on r + gamma * Q_targ(s', mu_targ(s')); the
  deterministic actor mu(s) ascends Q(s, mu(s)). Target networks track the
  online ones by polyak averaging: every `target_update_period` train steps,
  targ <- (1 - tau) * targ + tau * online (Spinning Up's polyak = 1 - tau).
  Exploration adds N(0, exploration_noise_std^2) to mu(s), in action units,
  independently per env, then clips to the action bounds (Spinning Up's
  act_noise; tf-agents' own default, OU noise with stddev 1.0 and damping
  1.0, is white noise of std 1.0 shared by all envs of a batch).

  Defaults are Spinning Up's (pi_lr = q_lr = 1e-3, gamma 0.99, polyak 0.995,
  act_noise 0.1, MSE critic loss instead of tf-agents' Huber loss); its
  batch size, start_steps and update_every belong to the loop (agents/ddpg.gin).
  The knobs that matter most: the learning rates, exploration_noise_std
  relative to the action range, and tau. tf-agents' actor loss (as logged)
  is mean((dQ/da)^2), not -Q: a surrogate whose gradient is twice -Q's, the
  same update under Adam, which (but for its epsilon) ignores gradient scale.
  """
  actor_net, critic_net = actor_and_critic(time_step_spec, action_spec, actor_fc_layer_params,
                                           critic_fc_layer_params)
  agent = DdpgAgent(
      time_step_spec,
      action_spec,
      actor_network=actor_net,
      critic_network=critic_net,
      actor_optimizer=adam(actor_learning_rate),
      critic_optimizer=adam(critic_learning_rate),
      target_update_tau=target_update_tau,
      target_update_period=target_update_period,
      dqda_clipping=dqda_clipping,
      td_errors_loss_fn=td_errors_loss_fn,
      gamma=gamma,
      reward_scale_factor=reward_scale_factor,
      gradient_clipping=gradient_clipping,
      train_step_counter=tf.Variable(0, dtype=tf.int64, name="train_step"))
  explore_with_gaussian_noise(agent, actor_net, exploration_noise_std)
  agent.initialize()
  return agent
