"""The on-policy policy-gradient family's shared part (VPG, PPO, TRPO).

As in Spinning Up, each algorithm is one policy update; everything else is
shared and lives here: a stochastic actor and a value function V(s), GAE-lambda
advantages and reward-to-go value targets computed from whole episodes, and
the value function fitted by regression with its own optimizer.

Experience is what tfrl's on-policy replay delivers: whole episodes laid end
to end, [B, T, ...], each followed by its boundary step (see
`tfrl.agents.advantages`). The collecting policy is the current actor (the
loop trains right after collecting), so the old policy's log-probabilities
are recomputed here rather than stored with the data.
"""

import functools
from typing import Dict, Optional

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.policies import actor_policy
from tf_agents.specs import tensor_spec

from tfrl.agents.advantages import (advantages_and_returns, by_episode,
                                    discounted_returns_to_date, normalize)
from tfrl.errors import ConfigError
from tfrl.networks import actor_network, gsde, observation_preprocessing, value_network
from tfrl.networks.normalization import ObservationNormalizer, RewardScaler


def actor_and_value_networks(time_step_spec, action_spec, actor_fc_layer_params,
                             value_fc_layer_params, activation: str,
                             init_action_stddev: Optional[float] = None,
                             normalize_observations: bool = False,
                             conv_layer_params=None, sde_sample_freq: Optional[int] = None,
                             normalize_rewards: bool = False):
  """The family's two networks: a stochastic actor pi(a|s) and V(s); with
  `normalize_observations`, the running normalizer both see their inputs through;
  with `normalize_rewards`, the agent's `RewardScaler`;
  with `conv_layer_params`, each its own conv layers of that shape first
  (no shared torso: the two are trained by separate optimizers). With
  `sde_sample_freq` (continuous actions), the actor is gSDE's
  (`tfrl.networks.gsde`; `init_action_stddev`, default 1, is then each
  exploration-matrix entry's starting standard deviation) and the agent
  collects with `GsdeCollectPolicy`."""
  normalizer = (ObservationNormalizer(time_step_spec.observation) if normalize_observations
                else None)
  if sde_sample_freq is None:
    actor = actor_network(time_step_spec.observation, action_spec, actor_fc_layer_params,
                          activation, init_action_stddev, conv_layer_params)
  elif not tensor_spec.is_continuous(action_spec):
    raise ConfigError("sde_sample_freq (gSDE) needs continuous actions; "
                      f"this environment's are {action_spec.dtype.name}")
  else:
    actor = gsde.GsdeActorNetwork(
        time_step_spec.observation, action_spec, actor_fc_layer_params,
        tf.keras.activations.get(activation), init_action_stddev or 1.0,
        observation_preprocessing(time_step_spec.observation),
        tuple(tuple(layer) for layer in conv_layer_params) if conv_layer_params else None)
  return dict(actor_net=actor,
              value_net=value_network(time_step_spec.observation, value_fc_layer_params,
                                      activation, conv_layer_params),
              observation_normalizer=normalizer, sde_sample_freq=sde_sample_freq,
              reward_scaler=RewardScaler() if normalize_rewards else None)


class NormalizingActorPolicy(actor_policy.ActorPolicy):
  """tf-agents' ActorPolicy, whose variables include its observation
  normalizer's (so policy savers and variable pushes carry the statistics)."""

  def _variables(self):
    normalizer = self.observation_normalizer
    return super()._variables() + (list(normalizer.variables) if normalizer else [])


class PolicyGradientAgent(tf_agent.TFAgent):
  """Base class: subclasses implement `_update_policy(batch) -> dict of scalars`.

  `batch` holds the valid (non-boundary) steps flattened to [N]: observation,
  action, advantage (normalized if asked), value_target, log_prob (of the
  collecting policy).
  """

  def __init__(self, time_step_spec, action_spec, actor_net, value_net,
               value_optimizer: tf.keras.optimizers.Optimizer,
               gamma: float = 0.99,
               gae_lambda: float = 0.97,
               value_lambda: float = 1.0,
               value_epochs: int = 80,
               value_minibatches: int = 1,
               normalize_advantages: bool = True,
               train_step: Optional[tf.Variable] = None,
               observation_normalizer: Optional[ObservationNormalizer] = None,
               sde_sample_freq: Optional[int] = None,
               reward_scaler: Optional[RewardScaler] = None,
               name: str = "PolicyGradientAgent"):
    actor_net.create_variables(time_step_spec.observation)
    value_net.create_variables(time_step_spec.observation)
    self._actor_net = actor_net
    self._value_net = value_net
    self._value_optimizer = value_optimizer
    # Keras creates optimizer slots on first use, which TF forbids inside the
    # while loops the updates run in; create them now.
    value_optimizer.build(value_net.trainable_variables)
    self._gamma = gamma
    self._gae_lambda = gae_lambda
    self._value_lambda = value_lambda
    self._value_epochs = value_epochs
    self._value_minibatches = value_minibatches
    self._normalize_advantages = normalize_advantages
    self.observation_normalizer = observation_normalizer
    self.reward_scaler = reward_scaler
    # Unclipped: the log-probability must be that of the action taken;
    # environments clip out-of-bound continuous actions themselves.
    policy = NormalizingActorPolicy(time_step_spec, action_spec, actor_network=actor_net,
                                    observation_normalizer=observation_normalizer,
                                    clip=False, training=False)
    collect_policy = policy if sde_sample_freq is None else gsde.GsdeCollectPolicy(
        time_step_spec, action_spec, actor_net, sde_sample_freq, observation_normalizer)
    super().__init__(time_step_spec, action_spec, policy=policy, collect_policy=collect_policy,
                     train_sequence_length=None,
                     train_step_counter=(train_step if train_step is not None else
                                         tf.Variable(0, dtype=tf.int64, name="train_step")))

  def _initialize(self):
    pass

  # -- pieces the subclasses use -------------------------------------------

  def _distribution(self, observation, training: bool = True, network=None):
    distribution, _ = call_network(network or self._actor_net, observation, training)
    return distribution

  def _values(self, observation, training: bool = False):
    values, _ = call_network(self._value_net, observation, training)
    return values

  def _minibatch_steps(self, batch, epochs: int, num_minibatches: int, step, carry):
    """`step(part, carry) -> (carry, stop)` on `epochs` shuffled passes of
    `batch` cut into `num_minibatches` equal parts (rest dropped), one part
    after another, until `stop` (a bool tensor) is True; returns the carry.
    One tf.while_loop over epochs x minibatches, with every epoch's order
    drawn up front, so the graph needs no autograph (its conversion was
    about half of tracing the train function)."""
    n = tf.shape(batch["advantage"])[0]
    size = tf.maximum(n // num_minibatches, 1)
    order = tf.argsort(tf.random.uniform([epochs, n]), axis=1)[:, :size * num_minibatches]
    order = tf.reshape(order, [epochs * num_minibatches, size])

    def body(k, _, carry):
      part = tf.nest.map_structure(lambda x: tf.gather(x, order[k]), batch)
      carry, stop = step(part, carry)
      return k + 1, stop, carry

    _, _, carry = tf.while_loop(lambda k, stop, _: tf.logical_and(
        k < epochs * num_minibatches, tf.logical_not(stop)), body,
                                (tf.constant(0), tf.constant(False), carry))
    return carry

  # -- training --------------------------------------------------------------

  # A tf.function of its own, so agent.train is a graph when called eagerly;
  # its loops are written as tf.while_loop / tf.cond: no autograph.
  @tf.function(reduce_retracing=True, autograph=False)
  def _train(self, experience, weights=None):
    del weights  # on-policy: every collected step counts once
    if self.reward_scaler is not None:
      experience = self._scale_rewards(experience)
    batch = self._prepare_batch(experience)
    policy_info = self._update_policy(batch)
    value_loss = self._update_value(batch)
    if self.observation_normalizer is not None:
      # After the updates: the batch was collected, and is trained on, with
      # the statistics as they were.
      self.observation_normalizer.update(batch["raw_observation"])
    self.train_step_counter.assign_add(1)
    extra = dict(policy_info, value_loss=value_loss)
    return tf_agent.LossInfo(loss=policy_info["policy_loss"] + value_loss, extra=extra)

  def _scale_rewards(self, experience):
    """The batch's discounted returns so far (per episode, from its first
    step in the batch) join the scaler's statistics; its rewards are then
    divided by their standard deviation. VecNormalize keeps each env's
    return running across rollouts: here an episode continued from the last
    iteration's segment starts again from 0."""
    valid = tf.logical_not(experience.is_boundary())
    returns = by_episode(functools.partial(discounted_returns_to_date, gamma=self._gamma),
                         tf.logical_not(valid), experience.reward, valid)
    self.reward_scaler.update(tf.boolean_mask(returns, valid))
    return experience._replace(reward=self.reward_scaler.scale(experience.reward))

  def _prepare_batch(self, experience) -> Dict[str, tf.Tensor]:
    valid = tf.logical_not(experience.is_boundary())                       # [B, T]
    raw_observation = experience.observation
    if self.observation_normalizer is not None:
      experience = experience._replace(
          observation=self.observation_normalizer.normalize(raw_observation))
    values = self._values(experience.observation)                          # [B, T]
    # V(s_{t+1}) is the next row's value: episodes are contiguous and each
    # ends with its boundary step, so the last row is never a transition.
    next_values = tf.concat([values[:, 1:], tf.zeros_like(values[:, :1])], axis=1)
    # One backward pass for both, each episode in a column of its own: the
    # recursion's steps are one episode's length, not the whole batch's.
    advantages, value_targets = by_episode(
        functools.partial(advantages_and_returns, gamma=self._gamma,
                          gae_lambda=self._gae_lambda, value_lambda=self._value_lambda),
        tf.logical_not(valid), experience.reward, values, next_values, experience.discount,
        valid)
    steps = lambda x: tf.boolean_mask(x, valid)  # [B, T, ...] -> [N, ...]
    batch = dict(observation=tf.nest.map_structure(steps, experience.observation),
                 action=tf.nest.map_structure(steps, experience.action),
                 advantage=steps(advantages),
                 value_target=steps(value_targets))
    if self.observation_normalizer is not None:
      batch["raw_observation"] = steps(raw_observation)
    if self._normalize_advantages:
      batch["advantage"] = normalize(batch["advantage"])
    distribution = self._distribution(batch["observation"], training=False)
    batch["log_prob"] = tf.stop_gradient(distribution.log_prob(batch["action"]))
    return batch

  def _update_value(self, batch) -> tf.Tensor:
    """`value_epochs` passes of mean-squared-error regression onto the targets."""
    variables = self._value_net.trainable_variables

    def step(part, _):
      with tf.GradientTape() as tape:
        loss = value_regression_loss(self._values(part["observation"], training=True),
                                     part["value_target"])
      self._value_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
      return loss, tf.constant(False)

    return self._minibatch_steps(batch, self._value_epochs, self._value_minibatches, step,
                                 tf.constant(0.0))

  def _update_policy(self, batch) -> Dict[str, tf.Tensor]:
    raise NotImplementedError


def value_regression_loss(values, value_targets):
  """The value function's loss: mean squared error to its targets."""
  return tf.reduce_mean(tf.square(values - value_targets))


# tf-agents' networks are written for autograph off (tf-agents traces its own
# agents that way). Converted from `_train`, their `common.safe_has_state`
# (`state is not ()`) compiles with a SyntaxWarning on every run's console.
@tf.autograph.experimental.do_not_convert
def call_network(network, observation, training: bool):
  return network(observation, step_type=(), network_state=(), training=training)
