"""TRPO (Schulman et al., 2015) as Spinning Up describes it: maximize the
surrogate advantage subject to mean KL(old || new) <= delta.

    g = grad of L(theta) = mean(ratio * A) at theta_old
    x = H^-1 g                    conjugate gradient, H = Hessian of the KL
    theta = theta_old + alpha^j * sqrt(2 delta / x^T H x) * x

with the smallest backtracking j (<= `backtrack_iters`) whose step keeps the
KL within delta and does not worsen the surrogate; if none does, the policy
is left unchanged. The value function is fitted by its own optimizer. tf-agents
has no TRPO, hence tfrl's own.
"""

from typing import Callable, Optional

import gin
import tensorflow as tf
import tensorflow_probability as tfp

from tfrl.agents.factory import agent_factory
from tfrl.checks import ConvLayers, Count, Fraction, Layers, PositiveFloat
from tfrl.agents.policy_gradient import PolicyGradientAgent, actor_and_value_networks
from tfrl.networks import adam


def conjugate_gradient(matrix_vector_product: Callable[[tf.Tensor], tf.Tensor], b: tf.Tensor,
                       iterations: int = 10, residual_tolerance: float = 1e-10) -> tf.Tensor:
  """Approximately solves A x = b for symmetric positive-definite A, given only
  v -> A v. Exact after n iterations for an n x n matrix (in exact arithmetic)."""
  def body(i, x, residual, direction, residual_norm):
    product = matrix_vector_product(direction)
    alpha = residual_norm / (tf.reduce_sum(direction * product) + 1e-12)
    x += alpha * direction
    residual -= alpha * product
    new_norm = tf.reduce_sum(residual * residual)
    return i + 1, x, residual, residual + (new_norm / residual_norm) * direction, new_norm

  unsolved = lambda i, x, residual, direction, residual_norm: tf.logical_and(
      i < iterations, residual_norm >= residual_tolerance)
  _, x, _, _, _ = tf.while_loop(unsolved, body, (tf.constant(0), tf.zeros_like(b), b, b,
                                                 tf.reduce_sum(b * b)))
  return x


def _flat(tensors):
  return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)


class TrpoAgent(PolicyGradientAgent):

  def __init__(self, time_step_spec, action_spec, actor_net, value_net, value_optimizer,
               max_kl: float = 0.01, damping: float = 0.1, cg_iters: int = 10,
               backtrack_iters: int = 10, backtrack_coeff: float = 0.8, **kwargs):
    super().__init__(time_step_spec, action_spec, actor_net, value_net, value_optimizer,
                     name="TrpoAgent", **kwargs)
    # A frozen copy of the actor gives the old policy's distributions for the KL.
    self._old_actor_net = actor_net.copy(name="OldActor")
    self._old_actor_net.create_variables(time_step_spec.observation)
    self._max_kl = max_kl
    self._damping = damping
    self._cg_iters = cg_iters
    self._backtrack_iters = backtrack_iters
    self._backtrack_coeff = backtrack_coeff

  def _set_flat(self, flat):
    offset = 0
    for variable in self._actor_net.trainable_variables:
      size = tf.size(variable)
      variable.assign(tf.reshape(flat[offset:offset + size], variable.shape))
      offset += size

  def _update_policy(self, batch):
    variables = self._actor_net.trainable_variables
    for old, new in zip(self._old_actor_net.trainable_variables, variables):
      old.assign(new)
    old_distribution = self._distribution(batch["observation"], training=False,
                                          network=self._old_actor_net)

    def surrogate_and_kl():
      distribution = self._distribution(batch["observation"])
      ratio = tf.exp(distribution.log_prob(batch["action"]) - batch["log_prob"])
      surrogate = tf.reduce_mean(ratio * batch["advantage"])
      kl = tf.reduce_mean(tfp.distributions.kl_divergence(old_distribution, distribution))
      return surrogate, kl

    with tf.GradientTape() as tape:
      surrogate_old, _ = surrogate_and_kl()
    gradient = _flat(tape.gradient(surrogate_old, variables))

    def fisher_vector_product(vector):
      with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
          _, kl = surrogate_and_kl()
        kl_gradient = _flat(inner.gradient(kl, variables))
        gradient_dot_vector = tf.reduce_sum(kl_gradient * tf.stop_gradient(vector))
      return _flat(outer.gradient(gradient_dot_vector, variables)) + self._damping * vector

    direction = conjugate_gradient(fisher_vector_product, gradient, self._cg_iters)
    step_size = tf.sqrt(2.0 * self._max_kl /
                        (tf.reduce_sum(direction * fisher_vector_product(direction)) + 1e-8))
    old_params = _flat(variables)

    def backtrack(j, _, surrogate, kl):
      self._set_flat(old_params + self._backtrack_coeff ** tf.cast(j, tf.float32)
                     * step_size * direction)
      surrogate, kl = surrogate_and_kl()
      accepted = tf.logical_and(kl <= self._max_kl, surrogate >= surrogate_old)
      return j + 1, tf.where(accepted, j, -1), surrogate, kl

    searching = lambda j, accepted_at, *_: tf.logical_and(j < self._backtrack_iters,
                                                          accepted_at < 0)
    _, accepted_at, surrogate, kl = tf.while_loop(
        searching, backtrack, (tf.constant(0), tf.constant(-1), surrogate_old, tf.constant(0.0)))
    # No step accepted: back to the old parameters.
    rejected = accepted_at < 0
    self._set_flat(tf.where(rejected, old_params, _flat(variables)))
    surrogate = tf.where(rejected, surrogate_old, surrogate)
    kl = tf.where(rejected, 0.0, kl)
    return dict(policy_loss=-surrogate, kl=kl, backtrack_steps=accepted_at,
                surrogate_improvement=surrogate - surrogate_old)


@gin.configurable(module="tfrl.agents")
@agent_factory("trpo")
def trpo(time_step_spec,
         action_spec,
         actor_fc_layer_params: Layers = (64, 64),
         value_fc_layer_params: Layers = (64, 64),
         conv_layer_params: Optional[ConvLayers] = None,
         activation: str = "tanh",
         max_kl: PositiveFloat = 0.01,
         damping: PositiveFloat = 0.1,
         cg_iters: Count = 10,
         backtrack_iters: Count = 10,
         backtrack_coeff: PositiveFloat = 0.8,
         value_learning_rate: PositiveFloat = 1e-3,
         value_epochs: Count = 80,
         value_minibatches: Count = 1,
         gamma: Fraction = 0.99,
         gae_lambda: Fraction = 0.97,
         init_action_stddev: Optional[PositiveFloat] = None,
         normalize_observations: bool = False,
         normalize_rewards: bool = False):
  """Spinning Up's defaults: delta 0.01, damping 0.1, 10 CG iterations, 10
  backtracking steps of factor 0.8, value fitted by 80 Adam steps at 1e-3,
  gamma 0.99, lambda 0.97, 64-64 tanh networks. `conv_layer_params`: conv
  layers in front of both networks (as PPO's)."""
  return TrpoAgent(
      time_step_spec, action_spec,
      **actor_and_value_networks(time_step_spec, action_spec, actor_fc_layer_params,
                                 value_fc_layer_params, activation, init_action_stddev,
                                 normalize_observations, conv_layer_params,
                                 normalize_rewards=normalize_rewards),
      value_optimizer=adam(value_learning_rate),
      max_kl=max_kl, damping=damping, cg_iters=cg_iters, backtrack_iters=backtrack_iters,
      backtrack_coeff=backtrack_coeff, gamma=gamma, gae_lambda=gae_lambda,
      value_epochs=value_epochs, value_minibatches=value_minibatches)
