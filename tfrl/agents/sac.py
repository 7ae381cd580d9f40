"""SAC (Haarnoja et al., 2018): tf-agents' SacAgent, with Spinning Up's defaults."""

import math
from typing import Optional

import gin
import tensorflow as tf
from tf_agents.utils import common

from tfrl.agents import in_graph
from tfrl.errors import ConfigError

from tfrl.agents.factory import agent_factory, CONTINUOUS
from tfrl.checks import Count, Fraction, Layers, NonNegativeFloat, PositiveFloat
from tfrl.agents.diagnostics import SacAgent, SacParts, trains_nothing
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
        gradient_clipping: Optional[PositiveFloat] = None) -> SacAgent:
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


def sac_soft_next_values(next_q_1, next_q_2, next_log_pi, alpha):
  """V(s') of SAC's critic target: min(Q1_targ, Q2_targ)(s', a') - alpha log pi(a'|s'),
  a' ~ pi(.|s') (tf-agents' `SacAgent.critic_loss`)."""
  return tf.minimum(next_q_1, next_q_2) - alpha * next_log_pi


def sac_actor_losses(log_pi, q_1, q_2, alpha):
  """Per state: alpha log pi(a|s) - min(Q1, Q2)(s, a), a reparameterised
  sample of pi (tf-agents' `SacAgent.actor_loss`)."""
  return alpha * log_pi - tf.minimum(q_1, q_2)


def sac_alpha_losses(log_alpha, log_pi, target_entropy, use_log_alpha: bool = True):
  """Per state: log_alpha (or alpha) * (-log pi - target_entropy), the
  entropy difference without gradient (tf-agents' `SacAgent.alpha_loss`):
  its gradient raises alpha when the policy's entropy is below target."""
  entropy_diff = tf.stop_gradient(-log_pi - target_entropy)
  return (log_alpha if use_log_alpha else tf.exp(log_alpha)) * entropy_diff


class InGraphSac(tf.Module):
  """A SacAgent's collect policy and train step as plain TF ops for the
  compiled loop (`tfrl.train.compiled`), built from the agent's `SacParts`
  and sharing their state (networks, optimizers, log alpha, train-step
  counter), so checkpoints, evaluation and export are the agent's.

  The update is tf-agents' `SacAgent._train` in its order: the critics'
  step, then the actor's (through the updated critics), then alpha's
  (through the updated actor), each loss on a fresh sample of the policy,
  then the targets' polyak step; the samples are stateless, from the
  update's `seed`. With alpha fixed (SGD at rate 0, tfrl's
  `alpha_learning_rate = 0`) its loss, which trains nothing, is skipped and
  not in the returned loss. Target updates are counted here
  (`target_sync_counter`, in the compiled loop's checkpoint).
  """

  update_draws_noise = True

  def __init__(self, parts: SacParts):
    super().__init__(name="in_graph_sac")
    self.parts = parts
    self.action_spec = parts.action_spec
    self.transition_spec = in_graph.transition_spec(parts.time_step_spec, parts.action_spec)
    self.learns_alpha = not trains_nothing(parts.alpha_optimizer)
    self.target_sync_period = parts.target_update_period
    self.target_sync_counter = tf.Variable(0, dtype=tf.int64, trainable=False,
                                           name="target_sync_counter")
    p = parts
    self._critics = (p.critic_network, p.critic_network_2)
    self._critic_variables = (p.critic_network.trainable_variables
                              + p.critic_network_2.trainable_variables)
    self._target_pairs = (
        list(zip(p.critic_network.variables, p.target_critic_network.variables))
        + list(zip(p.critic_network_2.variables, p.target_critic_network_2.variables)))

  @classmethod
  def from_agent(cls, agent) -> "InGraphSac":
    parts = getattr(agent, "parts", None)
    if not isinstance(parts, SacParts):
      raise ConfigError(f"the compiled loop needs a SacAgent built by tfrl.agents.sac "
                        f"(tfrl.agents.diagnostics.SacAgent), got {type(agent).__name__}")
    return cls(parts)

  def build(self, conditionals: bool = False):
    """Optimizer slots now (TF cannot create variables inside the compiled
    loop). No conditional to choose: every step is taken every update."""
    p = self.parts
    for optimizer, variables in ((p.critic_optimizer, self._critic_variables),
                                 (p.actor_optimizer, p.actor_network.trainable_variables),
                                 (p.alpha_optimizer, [p.log_alpha])):
      _build_optimizer(optimizer, variables)

  def _sample(self, observation, seed, training: bool):
    """a ~ pi(.|s) and log pi(a|s), as tf-agents' `_actions_and_log_probs`."""
    distribution, _ = self.parts.actor_network(observation, step_type=(), network_state=(),
                                               training=training)
    actions = distribution.sample(seed=in_graph.tfp_seed(seed))
    return actions, common.log_probability(distribution, actions, self.action_spec)

  def act(self, observation, seed):
    """The collect policy: a sample of the squashed Gaussian (ActorPolicy
    clips it to the spec, as here)."""
    actions, _ = self._sample(observation, seed, training=False)
    return in_graph.clip_to_spec(actions, self.action_spec)

  def random_act(self, observation, seed):
    return in_graph.uniform_actions(self.action_spec, tf.shape(observation)[0], seed)

  def update(self, batch, sync_target: bool = True, seed=None):
    p = self.parts
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    observation, next_observation = batch["observation"], batch["next_observation"]
    alpha = tf.exp(p.log_alpha)

    next_actions, next_log_pi = self._sample(next_observation, seeds[0], training=False)
    next_q = in_graph.q_values(next_observation, next_actions,
                            (p.target_critic_network, p.target_critic_network_2), False)
    targets = in_graph.td_targets(batch["reward"], batch["discount"],
                                  sac_soft_next_values(*next_q, next_log_pi, alpha),
                                  p.gamma, p.reward_scale_factor)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch(self._critic_variables)
      q_1, q_2 = in_graph.q_values(observation, batch["action"], self._critics, True)
      critic_loss = p.critic_loss_weight * common.aggregate_losses(
          per_example_loss=p.td_errors_loss_fn(targets, q_1) + p.td_errors_loss_fn(targets, q_2),
          regularization_loss=p.critic_network.losses + p.critic_network_2.losses).total_loss
    in_graph.apply_gradients(p.critic_optimizer, tape.gradient(critic_loss, self._critic_variables),
                             self._critic_variables, p.gradient_clipping)

    actor_variables = p.actor_network.trainable_variables
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch(actor_variables)
      actions, log_pi = self._sample(observation, seeds[1], training=True)
      q_1, q_2 = in_graph.q_values(observation, actions, self._critics, False)
      actor_loss = p.actor_loss_weight * common.aggregate_losses(
          per_example_loss=sac_actor_losses(log_pi, q_1, q_2, alpha),
          regularization_loss=p.actor_network.losses).total_loss
    in_graph.apply_gradients(p.actor_optimizer, tape.gradient(actor_loss, actor_variables),
                             actor_variables, p.gradient_clipping)
    loss = critic_loss + actor_loss

    if self.learns_alpha:
      with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([p.log_alpha])
        _, log_pi = self._sample(observation, seeds[2], training=False)
        alpha_loss = p.alpha_loss_weight * common.aggregate_losses(
            per_example_loss=sac_alpha_losses(p.log_alpha, log_pi, p.target_entropy,
                                              p.use_log_alpha_in_alpha_loss)).total_loss
      in_graph.apply_gradients(p.alpha_optimizer, tape.gradient(alpha_loss, [p.log_alpha]),
                               [p.log_alpha], p.gradient_clipping)
      loss += alpha_loss
    p.train_step_counter.assign_add(1)
    if sync_target:
      self.advance_target_sync(1)
    return loss

  def updates_until_target_sync(self):
    return in_graph.updates_until(self.target_sync_counter, self.target_sync_period)

  def advance_target_sync(self, updates):
    in_graph.periodic_soft_update(self.target_sync_counter, self.target_sync_period, updates,
                                  self._target_pairs, self.parts.target_update_tau)


def _build_optimizer(optimizer, variables):
  """Creates an optimizer's slots now (TF cannot create variables inside the
  compiled loop): Keras' `build`, or a legacy optimizer's `_create_all_weights`
  (its only way; reached through Keras' legacy API, not tf-agents')."""
  if hasattr(optimizer, "build"):
    optimizer.build(variables)
  else:
    optimizer._create_all_weights(variables)  # pylint: disable=protected-access
