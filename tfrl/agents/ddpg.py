"""DDPG (Lillicrap et al., 2015): tf-agents' DdpgAgent, with Spinning Up's defaults.

Also holds what DDPG and TD3 share: `actor_and_critic` and `GaussianNoisePolicy`:
exploration noise drawn independently for every env of a batch (tf-agents'
GaussianPolicy and OUNoisePolicy draw one sample per step and add it to every
env's action).
"""

import functools
from typing import Optional

import gin
import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.policies import actor_policy
from tf_agents.policies import tf_policy
from tf_agents.utils import common

from tfrl.agents.factory import agent_factory, CONTINUOUS
from tfrl.checks import Count, Fraction, Layers, NonNegativeFloat, PositiveFloat
from tfrl.agents import in_graph
from tfrl.agents.diagnostics import ActorCriticParts, DdpgAgent
from tfrl.errors import ConfigError
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
    self.scale = scale

  def _variables(self):
    return self._wrapped_policy.variables()

  def _action(self, time_step, policy_state, seed):
    seed_stream = tfp.util.SeedStream(seed=seed, salt="gaussian_noise")
    step = self._wrapped_policy.action(time_step, policy_state, seed_stream())
    noisy = tf.nest.map_structure(
        lambda a: a + tf.random.normal(tf.shape(a), stddev=self.scale, dtype=a.dtype,
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
         gradient_clipping: Optional[PositiveFloat] = None) -> DdpgAgent:
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


def smoothed_target_actions(target_actions, noise, noise_clip: float):
  """TD3's target policy smoothing: mu_targ(s') + clip(noise, +-noise_clip),
  not clipped to the action bounds (tf-agents' `Td3Agent.critic_loss`)."""
  return target_actions + tf.clip_by_value(noise, -noise_clip, noise_clip)


def dqda_surrogate_losses(dqda, actions, dqda_clipping: Optional[float] = None):
  """tf-agents' DDPG actor loss per state and action dimension:
  (stop(dQ/da + a) - a)^2, whose gradient through a is -2 dQ/da (so the
  actor ascends Q); dQ/da clipped to +-dqda_clipping if given."""
  if dqda_clipping is not None:
    dqda = tf.clip_by_value(dqda, -dqda_clipping, dqda_clipping)
  return tf.math.squared_difference(tf.stop_gradient(dqda + actions), actions)


class InGraphDdpg(tf.Module):
  """A DdpgAgent's or Td3Agent's collect policy and train step as plain TF
  ops for the compiled loop (`tfrl.train.compiled`), built from the agent's
  `ActorCriticParts` and sharing their state (networks, optimizers,
  train-step counter). TD3 is DDPG with switches: a second critic (the
  target takes the min of both), target policy smoothing, and the actor
  updated every `actor_update_period` steps.

  The update is tf-agents' `_train` in its order: the critics' step; then
  the actor's loss through the updated critic(s) — DDPG's dQ/da surrogate,
  TD3's -Q1 — and its step, for TD3 taken where train_step % period == 0
  (in tf-agents' `tf.cond` where the loop allows conditionals, else
  selected: `in_graph.apply_gradients(where=...)`); then the counter and the targets' (actor and
  critics) periodic polyak step, counted here (`target_sync_counter`).
  Collection: the actor's action plus the exploration policy's
  per-env Gaussian noise, clipped to the bounds (`GaussianNoisePolicy`).
  """

  update_draws_noise = True

  def __init__(self, parts: ActorCriticParts, exploration_noise_std: float):
    super().__init__(name="in_graph_ddpg")
    self.parts = parts
    self.action_spec = parts.action_spec
    self.exploration_noise_std = exploration_noise_std
    self.transition_spec = in_graph.transition_spec(parts.time_step_spec, parts.action_spec)
    self.target_sync_period = parts.target_update_period
    self.target_sync_counter = tf.Variable(0, dtype=tf.int64, trainable=False,
                                           name="target_sync_counter")
    p = parts
    self._critics = (p.critic_network,) + ((p.critic_network_2,) if p.twin_critics else ())
    self._target_critics = (p.target_critic_network,) + (
        (p.target_critic_network_2,) if p.twin_critics else ())
    self._critic_variables = [v for c in self._critics for v in c.trainable_variables]
    self._target_pairs = [pair for source, target in zip(
        self._critics + (p.actor_network,), self._target_critics + (p.target_actor_network,))
                          for pair in zip(source.variables, target.variables)]

  @classmethod
  def from_agent(cls, agent) -> "InGraphDdpg":
    parts = getattr(agent, "parts", None)
    if not isinstance(parts, ActorCriticParts):
      raise ConfigError(f"the compiled loop needs a DdpgAgent or Td3Agent built by "
                        f"tfrl.agents.ddpg or td3 (tfrl.agents.diagnostics), got "
                        f"{type(agent).__name__}")
    exploration = agent.exploration_policy
    if not isinstance(exploration, GaussianNoisePolicy):
      raise ConfigError("the compiled loop explores with per-env Gaussian noise "
                        "(tfrl.agents.ddpg.explore_with_gaussian_noise); this agent has "
                        f"{type(exploration).__name__}")
    return cls(parts, exploration.scale)

  def build(self, conditionals: bool = False):
    """Optimizer slots now (TF cannot create variables inside the compiled
    loop). `conditionals`: TD3's delayed actor step in a `tf.cond` (its
    gradient computed only when due), else selected."""
    self.conditionals = conditionals
    p = self.parts
    p.critic_optimizer.build(self._critic_variables)
    p.actor_optimizer.build(p.actor_network.trainable_variables)

  def act(self, observation, seed):
    actions, _ = self.parts.actor_network(observation, training=False)
    noise = tf.random.stateless_normal(tf.shape(actions), seed, stddev=self.exploration_noise_std,
                                       dtype=actions.dtype)
    return in_graph.clip_to_spec(actions + noise, self.action_spec)

  def random_act(self, observation, seed):
    return in_graph.uniform_actions(self.action_spec, tf.shape(observation)[0], seed)

  def update(self, batch, sync_target: bool = True, seed=None):
    p = self.parts
    observation, next_observation = batch["observation"], batch["next_observation"]
    next_actions, _ = p.target_actor_network(next_observation, training=False)
    if p.twin_critics:  # TD3's smoothing (tf-agents draws it with tfp's Normal)
      noise = tfp.distributions.Normal(tf.zeros_like(next_actions),
                                       p.target_policy_noise * tf.ones_like(next_actions))
      next_actions = smoothed_target_actions(next_actions, noise.sample(seed=in_graph.tfp_seed(seed)),
                                             p.target_policy_noise_clip)
    next_q = in_graph.q_values(next_observation, next_actions, self._target_critics, False)
    targets = in_graph.td_targets(batch["reward"], batch["discount"],
                                  functools.reduce(tf.minimum, next_q), p.gamma,
                                  p.reward_scale_factor)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch(self._critic_variables)
      q_values = in_graph.q_values(observation, batch["action"], self._critics, True)
      critic_loss = tf.reduce_mean(tf.add_n([p.td_errors_loss_fn(targets, q) for q in q_values]))
    in_graph.apply_gradients(p.critic_optimizer, tape.gradient(critic_loss, self._critic_variables),
                             self._critic_variables, p.gradient_clipping)

    actor_variables = p.actor_network.trainable_variables
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch(actor_variables)
      actions, _ = p.actor_network(observation, training=True)
      if p.twin_critics:
        q, = in_graph.q_values(observation, actions, self._critics[:1], False)
        actor_loss = common.aggregate_losses(per_example_loss=-q).total_loss
      else:
        with tf.GradientTape(watch_accessed_variables=False) as action_tape:
          action_tape.watch(actions)
          q, = in_graph.q_values(observation, actions, self._critics, False)
        dqda = action_tape.gradient(q, actions)
        actor_loss = tf.reduce_mean(dqda_surrogate_losses(dqda, actions, p.dqda_clipping))
    due = None
    if p.actor_update_period > 1:
      due = tf.equal(tf.math.floormod(p.train_step_counter, p.actor_update_period), 0)
    in_graph.apply_gradients(p.actor_optimizer, lambda: tape.gradient(actor_loss, actor_variables),
                             actor_variables, p.gradient_clipping, where=due,
                             conditionals=self.conditionals)
    p.train_step_counter.assign_add(1)
    if sync_target:
      self.advance_target_sync(1)
    return critic_loss + actor_loss

  def updates_until_target_sync(self):
    return in_graph.updates_until(self.target_sync_counter, self.target_sync_period)

  def advance_target_sync(self, updates):
    in_graph.periodic_soft_update(self.target_sync_counter, self.target_sync_period, updates,
                                  self._target_pairs, self.parts.target_update_tau)
