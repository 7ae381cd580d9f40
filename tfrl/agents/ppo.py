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

import dataclasses
from typing import Any, Optional

import gin
import tensorflow as tf

from tfrl.agents.factory import agent_factory
from tfrl.checks import ConvLayers, Count, Fraction, Layers, NonNegativeFloat, PositiveFloat
from tfrl.agents.advantages import normalize, rollout_advantages_and_returns
from tfrl.agents.policy_gradient import (PolicyGradientAgent, actor_and_value_networks,
                                         call_network, value_regression_loss)
from tfrl.errors import ConfigError
from tfrl.networks import gsde
from tfrl.networks import adam
from tfrl.networks.normalization import ObservationNormalizer


def clip_losses(distribution, part, clip_ratio: float, entropy_coef: float):
  """PPO-clip's loss of the current policy's `distribution` on `part`
  (action, advantage, log_prob of the collecting policy), and its
  diagnostics: approx KL(old || new), mean entropy, the fraction clipped."""
  log_prob = distribution.log_prob(part["action"])
  ratio = tf.exp(log_prob - part["log_prob"])
  clipped = tf.clip_by_value(ratio, 1.0 - clip_ratio, 1.0 + clip_ratio)
  entropy = tf.reduce_mean(distribution.entropy())
  loss = (-tf.reduce_mean(tf.minimum(ratio * part["advantage"], clipped * part["advantage"]))
          - entropy_coef * entropy)
  approx_kl = tf.reduce_mean(part["log_prob"] - log_prob)
  clip_fraction = tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip_ratio, tf.float32))
  return loss, dict(policy_loss=loss, approx_kl=approx_kl, entropy=entropy,
                    clip_fraction=clip_fraction)


@dataclasses.dataclass(frozen=True)
class PpoParts:
  """What a PpoAgent was built from (`agent.parts`): the objects it trains
  and acts with (shared, not copied) and its hyperparameters, so the
  compiled loop's learner (`InGraphPpo`) works on the agent's own state."""
  time_step_spec: Any
  action_spec: Any
  actor_net: Any
  value_net: Any
  policy_optimizer: tf.keras.optimizers.Optimizer
  value_optimizer: tf.keras.optimizers.Optimizer
  observation_normalizer: Optional[ObservationNormalizer]
  train_step_counter: tf.Variable
  clip_ratio: float
  max_kl: float  # 1.5 * target_kl (inf: no early stop)
  num_epochs: int
  num_minibatches: int
  entropy_coef: float
  gamma: float
  gae_lambda: float
  value_lambda: float
  value_epochs: int
  value_minibatches: int
  normalize_advantages: bool


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
    self.parts = PpoParts(
        time_step_spec=time_step_spec, action_spec=action_spec, actor_net=actor_net,
        value_net=value_net, policy_optimizer=policy_optimizer,
        value_optimizer=self._value_optimizer,
        observation_normalizer=self.observation_normalizer,
        train_step_counter=self.train_step_counter, clip_ratio=clip_ratio, max_kl=self._max_kl,
        num_epochs=num_epochs, num_minibatches=num_minibatches, entropy_coef=entropy_coef,
        gamma=self._gamma, gae_lambda=self._gae_lambda, value_lambda=self._value_lambda,
        value_epochs=self._value_epochs, value_minibatches=self._value_minibatches,
        normalize_advantages=self._normalize_advantages)

  def _losses(self, part):
    return clip_losses(self._distribution(part["observation"]), part, self._clip_ratio,
                       self._entropy_coef)

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
        normalize_rewards: bool = False,
        sde_sample_freq: Optional[Count] = None,
        max_grad_norm: Optional[PositiveFloat] = None) -> PpoAgent:
  """Spinning Up's defaults: clip 0.2, target_kl 0.01, 80 full-batch policy
  steps at 3e-4 and 80 value steps at 1e-3, gamma 0.99, lambda 0.97, 64-64
  tanh networks. `target_kl=None` turns early stopping off;
  `learning_rate_decay_steps=N` decays both rates linearly to zero over N
  train steps (agent.train calls). `normalize_observations`: a running
  mean/std of the observations in front of both networks (rl-zoo's
  `normalize: true` for MuJoCo; Spinning Up does without); `normalize_rewards`
  divides rewards by the running std of the discounted return (the
  reward half of rl-zoo's `normalize: true`). Pixels:
  `conv_layer_params` (e.g. `%tfrl.networks.NATURE_DQN_CONV`) puts conv
  layers in front of both networks' fully connected ones; uint8 frames are
  scaled into [0, 1] inside them; `activation` applies to the conv layers too.
  `sde_sample_freq=N` (continuous actions): gSDE exploration, a noise matrix
  per env redrawn every N steps (SB3's `use_sde`, `sde_sample_freq`; see
  `tfrl.networks.gsde`). `max_grad_norm`: each policy and value step's
  gradient is clipped to this global norm (SB3's `max_grad_norm` clips the
  two networks' joint gradient, as their loss is one sum)."""
  decay = learning_rate_decay_steps
  train_step = tf.Variable(0, dtype=tf.int64, name="train_step")
  return PpoAgent(
      time_step_spec, action_spec,
      **actor_and_value_networks(time_step_spec, action_spec, actor_fc_layer_params,
                                 value_fc_layer_params, activation, init_action_stddev,
                                 normalize_observations, conv_layer_params,
                                 sde_sample_freq, normalize_rewards),
      policy_optimizer=adam(policy_learning_rate, decay, train_step, max_grad_norm),
      value_optimizer=adam(value_learning_rate, decay, train_step, max_grad_norm),
      clip_ratio=clip_ratio, target_kl=target_kl, num_epochs=num_epochs,
      num_minibatches=num_minibatches, entropy_coef=entropy_coef, gamma=gamma,
      gae_lambda=gae_lambda, value_epochs=value_epochs, value_minibatches=value_minibatches,
      train_step=train_step)


class InGraphPpo(tf.Module):
  """A PpoAgent's act and train step as plain TF ops on fixed-length
  rollouts, for the compiled on-policy loop (`tfrl.train.compiled_on_policy`),
  built from the agent's `PpoParts` alone: it acts and trains with the
  agent's networks, optimizers, observation normalizer and train-step
  counter, so checkpoints, the greedy policy, evaluation and export are the
  agent's. It holds no state of its own (K copies could share one graph).

  `update` is `PpoAgent.train` on a rollout instead of episodes: values and
  the collecting policy's log-probabilities from the networks before the
  update, GAE-lambda advantages (normalized if asked) and TD(value_lambda)
  targets (`advantages.rollout_advantages_and_returns`), up to
  `num_epochs` x `num_minibatches` clip steps that stop at the first
  minibatch whose approx KL exceeds 1.5 target_kl (not taking its step),
  `value_epochs` x `value_minibatches` value steps, then the normalizer's
  update. Two differences, both for XLA: shuffles are stateless (drawn from
  the `seed` given), and the step that exceeds the KL is taken and then
  undone (its variables and optimizer slots selected back with `tf.where`)
  instead of skipped by a branch, which XLA's CPU runtime cannot link
  inside the loop (`tfrl.train.compiled.use_xla_cpu_runtime`).
  """

  DIAGNOSTICS = ("policy_loss", "approx_kl", "entropy", "clip_fraction", "policy_steps",
                 "value_loss")

  def __init__(self, parts: PpoParts):
    super().__init__(name="in_graph_ppo")
    self._parts = parts
    self.action_spec = parts.action_spec
    self.actor_net, self.value_net = parts.actor_net, parts.value_net
    self.policy_optimizer, self.value_optimizer = parts.policy_optimizer, parts.value_optimizer
    self.observation_normalizer = parts.observation_normalizer
    self.train_step_counter = parts.train_step_counter

  @classmethod
  def from_agent(cls, agent) -> "InGraphPpo":
    """The learner of a PpoAgent (`tfrl.agents.ppo`'s, which records its parts)."""
    parts = getattr(agent, "parts", None)
    if not isinstance(parts, PpoParts):
      raise ConfigError(f"the compiled on-policy loop needs a PpoAgent built by tfrl.agents.ppo, "
                        f"got {type(agent).__name__}")
    if getattr(agent, "reward_scaler", None) is not None:
      raise ConfigError("the compiled on-policy loop has no reward scaling yet: "
                        "set tfrl.agents.ppo.normalize_rewards = False")
    if isinstance(parts.actor_net, gsde.GsdeActorNetwork):
      raise ConfigError("the compiled on-policy loop has no gSDE exploration yet: "
                        "set tfrl.agents.ppo.sde_sample_freq = None")
    return cls(parts)

  def check_rollout(self, num_steps: int):
    """A rollout of `num_steps` transitions must fill every minibatch."""
    parts = self._parts
    for name, count in (("num_minibatches", parts.num_minibatches),
                        ("value_minibatches", parts.value_minibatches)):
      if count > num_steps:
        raise ConfigError(f"tfrl.agents.ppo.{name} = {count} exceeds the {num_steps} "
                          "transitions of a compiled rollout (num_envs x rollout steps)")

  def build(self):
    """Creates the optimizers' slots now: TF cannot create variables inside
    the compiled loop."""
    self.policy_optimizer.build(self.actor_net.trainable_variables)
    self.value_optimizer.build(self.value_net.trainable_variables)

  def _normalized(self, observation):
    normalizer = self.observation_normalizer
    return observation if normalizer is None else normalizer.normalize(observation)

  def _distribution(self, observation, training: bool = False):
    return call_network(self.actor_net, observation, training)[0]

  def _values(self, observation, training: bool = False):
    return call_network(self.value_net, observation, training)[0]

  def act(self, observation, seed):
    """The collect policy's actions (a sample of pi(.|s); `seed` a [2] stateless seed)."""
    # (tfp's stateless seeds are int32; the cast keeps the low bits)
    return self._distribution(self._normalized(observation)).sample(seed=tf.cast(seed, tf.int32))

  def prepare_batch(self, rollout):
    """`rollout` ([T, N] tensors: observation, action, reward, terminated,
    truncated, next_observation — the observation each step led to) as the
    update's flat [T * N] batch: observation (normalized), action,
    advantage, value_target, log_prob, raw_observation."""
    parts = self._parts
    num_steps, num_envs = rollout["reward"].shape
    flat = lambda x: tf.reshape(x, [num_steps * num_envs] + x.shape[2:].as_list())
    observation = self._normalized(flat(rollout["observation"]))
    values = tf.reshape(self._values(observation), [num_steps, num_envs])
    next_values = tf.reshape(self._values(self._normalized(flat(rollout["next_observation"]))),
                             [num_steps, num_envs])
    advantages, value_targets = rollout_advantages_and_returns(
        rollout["reward"], values, next_values, rollout["terminated"], rollout["truncated"],
        parts.gamma, parts.gae_lambda, parts.value_lambda)
    batch = dict(observation=observation, action=flat(rollout["action"]),
                 advantage=flat(advantages), value_target=flat(value_targets),
                 raw_observation=flat(rollout["observation"]))
    if parts.normalize_advantages:
      batch["advantage"] = normalize(batch["advantage"])
    batch["log_prob"] = tf.stop_gradient(
        self._distribution(observation).log_prob(batch["action"]))
    return batch

  def update(self, rollout, seed):
    """One train step on a rollout (see `prepare_batch`); returns
    [loss, *DIAGNOSTICS] as one float32 vector (the loop sums them)."""
    batch = self.prepare_batch(rollout)
    policy_seed, value_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    info = self._update_policy(batch, policy_seed)
    value_loss = self._update_value(batch, value_seed)
    if self.observation_normalizer is not None:
      self.observation_normalizer.update(batch["raw_observation"])
    self.train_step_counter.assign_add(1)
    diagnostics = dict(info, value_loss=value_loss)
    return tf.stack([info["policy_loss"] + value_loss]
                    + [tf.cast(diagnostics[name], tf.float32) for name in self.DIAGNOSTICS])

  def _minibatches(self, batch, num_epochs: int, num_minibatches: int, seed):
    """A function of step k (0 <= k < num_epochs * num_minibatches) giving
    its minibatch: each epoch a fresh shuffle of the batch cut into
    `num_minibatches` equal parts, the rest dropped
    (as `PolicyGradientAgent._minibatch_steps` orders them). One minibatch is the batch itself."""
    if num_minibatches == 1:
      return lambda k: batch
    n = batch["advantage"].shape[0]
    size = n // num_minibatches
    order = tf.argsort(tf.random.stateless_uniform([num_epochs, n], seed), axis=-1)
    indices = tf.reshape(order[:, :size * num_minibatches], [num_epochs * num_minibatches, size])
    return lambda k: tf.nest.map_structure(lambda x: tf.gather(x, indices[k]), batch)

  def _update_policy(self, batch, seed):
    parts = self._parts
    variables = self.actor_net.trainable_variables
    early_stop = parts.max_kl != float("inf")
    undoable = list(variables) + list(self.policy_optimizer.variables) if early_stop else []
    minibatch = self._minibatches(batch, parts.num_epochs, parts.num_minibatches, seed)
    names = ("policy_loss", "approx_kl", "entropy", "clip_fraction")

    def step(k, stopped, steps, info):
      del stopped, info
      part = minibatch(k)
      with tf.GradientTape() as tape:
        loss, info = clip_losses(self._distribution(part["observation"], training=True), part,
                                 parts.clip_ratio, parts.entropy_coef)
      gradients = tape.gradient(loss, variables)
      exceeded = info["approx_kl"] > parts.max_kl if early_stop else tf.constant(False)
      before = [v.read_value() for v in undoable]
      self.policy_optimizer.apply_gradients(zip(gradients, variables))
      for v, old in zip(undoable, before):
        v.assign(tf.where(exceeded, old, v))
      return k + 1, exceeded, steps + 1 - tf.cast(exceeded, tf.int32), [info[n] for n in names]

    total = parts.num_epochs * parts.num_minibatches
    _, _, steps, info = tf.while_loop(
        lambda k, stopped, *_: (k < total) & tf.logical_not(stopped), step,
        (tf.constant(0), tf.constant(False), tf.constant(0), [tf.constant(0.0)] * len(names)))
    return dict(zip(names, info), policy_steps=steps)

  def _update_value(self, batch, seed):
    parts = self._parts
    variables = self.value_net.trainable_variables
    minibatch = self._minibatches(batch, parts.value_epochs, parts.value_minibatches, seed)

    def step(k, loss):
      del loss
      part = minibatch(k)
      with tf.GradientTape() as tape:
        loss = value_regression_loss(self._values(part["observation"], training=True),
                                     part["value_target"])
      self.value_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
      return k + 1, loss

    total = parts.value_epochs * parts.value_minibatches
    _, loss = tf.while_loop(lambda k, _: k < total, step, (tf.constant(0), tf.constant(0.0)))
    return loss
