"""PPO-clip (Schulman et al., 2017) with early stopping on a target KL, as
Spinning Up describes it:

    ratio   = pi(a|s) / pi_old(a|s)
    loss_pi = -mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A))

Gradient steps on the batch run for up to `num_epochs` passes of
`num_minibatches` minibatches each (1 minibatch = Spinning Up's full-batch
steps), stopping as soon as the approximate KL(old || new) exceeds
1.5 * `target_kl`. The value function is fitted separately afterwards.

Not tf-agents' PPOClipAgent: it has no KL early stopping, and its GAE reads
the discount of the step after an episode's boundary, so a truncated
episode's last advantage took in the next episode's values.
"""

from typing import Optional

import gin
import tensorflow as tf

from tfrl.agents.factory import agent_factory
from tfrl.checks import ConvLayers, Count, Fraction, Layers, NonNegativeFloat, PositiveFloat
from tfrl.agents.policy_gradient import PolicyGradientAgent, actor_and_value_networks
from tfrl.networks import adam


class PpoAgent(PolicyGradientAgent):

  def __init__(self, time_step_spec, action_spec, actor_net, value_net, policy_optimizer,
               value_optimizer, clip_ratio: float = 0.2, target_kl: Optional[float] = 0.01,
               num_epochs: int = 80, num_minibatches: int = 1, entropy_coef: float = 0.0,
               **kwargs):
    super().__init__(time_step_spec, action_spec, actor_net, value_net, value_optimizer,
                     name="PpoAgent", **kwargs)
    self._policy_optimizer = policy_optimizer
    policy_optimizer.build(actor_net.trainable_variables)
    self._clip_ratio = clip_ratio
    self._max_kl = 1.5 * target_kl if target_kl else float("inf")
    self._num_epochs = num_epochs
    self._num_minibatches = num_minibatches
    self._entropy_coef = entropy_coef

  def _losses(self, part):
    distribution = self._distribution(part["observation"])
    log_prob = distribution.log_prob(part["action"])
    ratio = tf.exp(log_prob - part["log_prob"])
    clipped = tf.clip_by_value(ratio, 1.0 - self._clip_ratio, 1.0 + self._clip_ratio)
    entropy = tf.reduce_mean(distribution.entropy())
    loss = (-tf.reduce_mean(tf.minimum(ratio * part["advantage"], clipped * part["advantage"]))
            - self._entropy_coef * entropy)
    approx_kl = tf.reduce_mean(part["log_prob"] - log_prob)
    clip_fraction = tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > self._clip_ratio, tf.float32))
    return loss, dict(policy_loss=loss, approx_kl=approx_kl, entropy=entropy,
                      clip_fraction=clip_fraction)

  def _update_policy(self, batch):
    variables = self._actor_net.trainable_variables
    _, info = self._losses(batch)   # before any step: the reported figures' baseline

    def step(part, carry):
      steps, _ = carry
      with tf.GradientTape() as tape:
        loss, info = self._losses(part)
      # Spinning Up's early stopping: the policy moved far enough from the
      # one that collected the data (this minibatch's step is not taken).
      stop = info["approx_kl"] > self._max_kl
      gradients = tape.gradient(loss, variables)

      def apply():
        self._policy_optimizer.apply_gradients(zip(gradients, variables))
        return steps + 1

      return (tf.cond(stop, lambda: steps, apply), info), stop

    steps, info = self._minibatch_steps(batch, self._num_epochs, self._num_minibatches, step,
                                        (tf.constant(0), info))
    return dict(info, policy_steps=steps)


@gin.configurable(module="tfrl.agents")
@agent_factory("ppo")
def ppo(time_step_spec,
        action_spec,
        actor_fc_layer_params: Layers = (64, 64),
        value_fc_layer_params: Layers = (64, 64),
        conv_layer_params: Optional[ConvLayers] = None,
        activation: str = "tanh",
        policy_learning_rate: PositiveFloat = 3e-4,
        value_learning_rate: PositiveFloat = 1e-3,
        learning_rate_decay_steps: Optional[Count] = None,
        clip_ratio: PositiveFloat = 0.2,
        target_kl: Optional[PositiveFloat] = 0.01,
        num_epochs: Count = 80,
        num_minibatches: Count = 1,
        value_epochs: Count = 80,
        value_minibatches: Count = 1,
        gamma: Fraction = 0.99,
        gae_lambda: Fraction = 0.97,
        entropy_coef: NonNegativeFloat = 0.0,
        init_action_stddev: Optional[PositiveFloat] = None,
        normalize_observations: bool = False,
        sde_sample_freq: Optional[Count] = None):
  """Spinning Up's defaults: clip 0.2, target_kl 0.01, 80 full-batch policy
  steps at 3e-4 and 80 value steps at 1e-3, gamma 0.99, lambda 0.97, 64-64
  tanh networks. `target_kl=None` turns early stopping off;
  `learning_rate_decay_steps=N` decays both rates linearly to zero over N
  train steps (agent.train calls). `normalize_observations`: a running
  mean/std of the observations in front of both networks (rl-zoo's
  `normalize: true` for MuJoCo; Spinning Up does without). Pixels:
  `conv_layer_params` (e.g. `%tfrl.networks.NATURE_DQN_CONV`) puts conv
  layers in front of both networks' fully connected ones; uint8 frames are
  scaled into [0, 1] inside them; `activation` applies to the conv layers too.
  `sde_sample_freq=N` (continuous actions): gSDE exploration, a noise matrix
  per env redrawn every N steps (SB3's `use_sde`, `sde_sample_freq`; see
  `tfrl.networks.gsde`)."""
  decay = learning_rate_decay_steps
  train_step = tf.Variable(0, dtype=tf.int64, name="train_step")
  return PpoAgent(
      time_step_spec, action_spec,
      **actor_and_value_networks(time_step_spec, action_spec, actor_fc_layer_params,
                                 value_fc_layer_params, activation, init_action_stddev,
                                 normalize_observations, conv_layer_params,
                                 sde_sample_freq),
      policy_optimizer=adam(policy_learning_rate, decay, train_step),
      value_optimizer=adam(value_learning_rate, decay, train_step),
      clip_ratio=clip_ratio, target_kl=target_kl, num_epochs=num_epochs,
      num_minibatches=num_minibatches, entropy_coef=entropy_coef, gamma=gamma,
      gae_lambda=gae_lambda, value_epochs=value_epochs, value_minibatches=value_minibatches,
      train_step=train_step)
