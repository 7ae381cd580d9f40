"""tf-agents' agents as tfrl builds them: what they do not report, added to
their LossInfo.extra, and what they were built from, in public attributes.

The logger averages every field of `LossInfo.extra` into progress.csv, so an
agent that should report Q values, its policy's entropy or SAC's alpha only
has to return them there. Each class below is tf-agents' own agent with
`_train` (or DQN's `_loss`; tf-agents' extension points) returning the
original LossInfo plus a few gradient-free quantities of the batch it
trained on, measured *before* the update (as Spinning Up logs them).

tf-agents keeps what an agent was built from (networks, optimizer,
hyperparameters) in private attributes, which change between its versions.
So each class records what its constructor was given as public attributes
(`parts`: `DqnParts`, `ActorCriticParts` for DDPG/TD3, `SacParts`), and tfrl
reads only those: the diagnostics here, the compiled loop's learners
(`tfrl.agents.dqn.InGraphDqn`, `ddpg.InGraphDdpg`, `sac.InGraphSac`). Networks
tf-agents would copy itself (second critic, targets) are copied here and
passed in, so `parts` holds the ones in use.
"""

import collections
import contextlib
import dataclasses
import functools
from typing import Any, Callable, Optional, Union

import numpy as np
import tensorflow as tf
from tf_agents.agents import data_converter
from tf_agents.agents import tf_agent
from tf_agents.agents.ddpg import ddpg_agent
from tf_agents.agents.dqn import dqn_agent
from tf_agents.agents.reinforce import reinforce_agent
from tf_agents.agents.sac import sac_agent
from tf_agents.agents.td3 import td3_agent
from tf_agents.utils import common


@functools.lru_cache(maxsize=None)
def _extended_info_type(name, fields):
  return collections.namedtuple(name, fields)


def with_diagnostics(loss_info: tf_agent.LossInfo, **values) -> tf_agent.LossInfo:
  """`loss_info` whose extra (a namedtuple) gains the fields `values`."""
  extra = loss_info.extra
  info_type = _extended_info_type(type(extra).__name__, tuple(extra._fields) + tuple(values))
  values = {name: tf.stop_gradient(value) for name, value in values.items()}
  return tf_agent.LossInfo(loss_info.loss, info_type(*extra, **values))


_suspended = False


@contextlib.contextmanager
def suspended():
  """Train steps traced inside compute no diagnostics: their LossInfo is
  tf-agents' own. For the steps of a multi-step train call whose
  LossInfo nobody reads (only the last step's is logged)."""
  global _suspended
  before, _suspended = _suspended, True
  try:
    yield
  finally:
    _suspended = before


def _q_values(critic, time_steps, actions):
  q_values, _ = critic((time_steps.observation, actions), step_type=time_steps.step_type,
                       training=False)
  return q_values


def _transition(agent: tf_agent.TFAgent, experience):
  """(time_steps, policy_steps, next_time_steps) of a [B, 2] batch, as the
  actor-critic agents convert it (a time dimension stays only for
  recurrent networks, whose train_sequence_length is None)."""
  return data_converter.AsTransition(
      agent.data_context, squeeze_time_dim=agent.train_sequence_length == 2)(experience)


@dataclasses.dataclass(frozen=True)
class DqnParts:
  """What a DqnAgent was built from, as its constructor was given them.

  The agent trains and acts with exactly these objects (the networks'
  variables, the optimizer's slots and the counter are shared, not copied),
  so anything built from them, such as the compiled loop's learner, works
  on the agent's own state.
  """
  time_step_spec: Any
  action_spec: Any
  q_network: Any
  target_q_network: Any  # synced from q_network every target_update_period train steps
  optimizer: tf.keras.optimizers.Optimizer
  # Exploration of the collect policy: a float or a callable returning it.
  epsilon_greedy: Optional[Union[float, Callable[[], Any]]]
  gamma: float
  td_errors_loss_fn: Callable  # element-wise: (targets, predictions) -> [B] losses
  gradient_clipping: Optional[float]
  target_update_period: int
  target_update_tau: float
  n_step_update: int
  reward_scale_factor: float
  train_step_counter: tf.Variable
  double_q: bool = False  # Double DQN: the online network picks a', the target values it


class DqnAgent(dqn_agent.DqnAgent):
  """+ q_value: Q(s, a) of the batch's actions (the first thing to look at
  when DQN diverges or overestimates).

  `parts`: what it was built from (`DqnParts`). The arguments are tf-agents'
  (the ones after `optimizer` by keyword); a missing `target_q_network` is
  made here, as tf-agents would make it, so `parts` holds the one in use.
  """

  double_q = False

  def __init__(self, time_step_spec, action_spec, q_network, optimizer, *,
               target_q_network=None, epsilon_greedy=0.1, n_step_update: int = 1,
               target_update_tau: float = 1.0, target_update_period: int = 1,
               td_errors_loss_fn=None, gamma: float = 1.0, reward_scale_factor: float = 1.0,
               gradient_clipping: Optional[float] = None, train_step_counter=None, **kwargs):
    if target_q_network is None:
      target_q_network = q_network.copy(name="TargetQNetwork")
    td_errors_loss_fn = td_errors_loss_fn or common.element_wise_huber_loss  # tf-agents' default
    super().__init__(
        time_step_spec, action_spec, q_network, optimizer, target_q_network=target_q_network,
        epsilon_greedy=epsilon_greedy, n_step_update=n_step_update,
        target_update_tau=target_update_tau, target_update_period=target_update_period,
        td_errors_loss_fn=td_errors_loss_fn, gamma=gamma,
        reward_scale_factor=reward_scale_factor, gradient_clipping=gradient_clipping,
        train_step_counter=train_step_counter, **kwargs)
    self.parts = DqnParts(
        time_step_spec=time_step_spec, action_spec=action_spec, q_network=q_network,
        target_q_network=target_q_network, optimizer=optimizer, epsilon_greedy=epsilon_greedy,
        gamma=gamma, td_errors_loss_fn=td_errors_loss_fn, gradient_clipping=gradient_clipping,
        target_update_period=target_update_period, target_update_tau=target_update_tau,
        n_step_update=n_step_update, reward_scale_factor=reward_scale_factor,
        train_step_counter=self.train_step_counter, double_q=self.double_q)

  def _td_loss(self, q_values, next_q_values, rewards, discounts):
    # Q(s, a) as tf-agents' _loss computed it, kept for the diagnostic
    # (a second forward pass would cost ~15% of a small network's update).
    self._batch_q_value = q_values
    return super()._td_loss(q_values, next_q_values, rewards, discounts)

  def _loss(self, experience, *args, **kwargs):
    loss_info = super()._loss(experience, *args, **kwargs)
    return loss_info if _suspended else with_diagnostics(loss_info, q_value=self._batch_q_value)


class DoubleDqnAgent(DqnAgent):
  """DqnAgent with tf-agents' Double DQN target (van Hasselt et al., 2015):
  Q_target(s', argmax_a' Q(s', a'))."""

  double_q = True
  _compute_next_q_values = dqn_agent.DdqnAgent._compute_next_q_values


class _ReplaceableCollectPolicy:
  """`collect_policy` is `exploration_policy` once that is set
  (`tfrl.agents.ddpg.explore_with_gaussian_noise` sets it), else the agent's own."""

  exploration_policy = None

  @property
  def collect_policy(self):
    if self.exploration_policy is not None:
      return self.exploration_policy
    return super().collect_policy


@dataclasses.dataclass(frozen=True)
class ActorCriticParts:
  """What a DdpgAgent or Td3Agent was built from (shared objects, as
  `DqnParts`). DDPG is the case of one critic (`critic_network_2` None),
  no target policy smoothing (`target_policy_noise` 0) and the actor
  updated every step; its actor loss is tf-agents' dQ/da surrogate
  (`dqda_clipping`), TD3's -Q1."""
  time_step_spec: Any
  action_spec: Any
  actor_network: Any
  target_actor_network: Any
  critic_network: Any
  target_critic_network: Any
  critic_network_2: Any  # None for DDPG
  target_critic_network_2: Any
  actor_optimizer: Any
  critic_optimizer: Any
  td_errors_loss_fn: Callable  # element-wise: (targets, predictions) -> [B] losses
  gamma: float
  reward_scale_factor: float
  target_update_tau: float
  target_update_period: int
  actor_update_period: int
  target_policy_noise: float
  target_policy_noise_clip: float
  dqda_clipping: Optional[float]
  gradient_clipping: Optional[float]
  train_step_counter: tf.Variable

  @property
  def twin_critics(self) -> bool:
    return self.critic_network_2 is not None


def _targets_as_tf_agents_makes_them(*networks):
  """Fresh copies of `networks` under tf-agents' target names; passed to
  its agents, which then build them in the order they would have built
  their own copies (so initial weights draw in the same order)."""
  return [None if n is None else n.copy(name=name) for n, name in networks]


class DdpgAgent(_ReplaceableCollectPolicy, ddpg_agent.DdpgAgent):
  """+ q_value: the critic's Q(s, a) of the batch's actions.
  `actor_network`, `critic_network`: as given; `parts` (`ActorCriticParts`).
  The arguments are tf-agents' (the ones after the critic by keyword)."""

  def __init__(self, time_step_spec, action_spec, actor_network, critic_network, *,
               actor_optimizer=None, critic_optimizer=None, target_update_tau: float = 1.0,
               target_update_period: int = 1, dqda_clipping: Optional[float] = None,
               td_errors_loss_fn=None, gamma: float = 1.0, reward_scale_factor: float = 1.0,
               gradient_clipping: Optional[float] = None, train_step_counter=None, **kwargs):
    target_actor, target_critic = _targets_as_tf_agents_makes_them(
        (actor_network, "TargetActorNetwork"), (critic_network, "TargetCriticNetwork"))
    td_errors_loss_fn = td_errors_loss_fn or common.element_wise_huber_loss  # tf-agents' default
    super().__init__(
        time_step_spec, action_spec, actor_network, critic_network,
        actor_optimizer=actor_optimizer, critic_optimizer=critic_optimizer,
        target_actor_network=target_actor, target_critic_network=target_critic,
        target_update_tau=target_update_tau, target_update_period=target_update_period,
        dqda_clipping=dqda_clipping, td_errors_loss_fn=td_errors_loss_fn, gamma=gamma,
        reward_scale_factor=reward_scale_factor, gradient_clipping=gradient_clipping,
        train_step_counter=train_step_counter, **kwargs)
    self.actor_network, self.critic_network = actor_network, critic_network
    self.parts = ActorCriticParts(
        time_step_spec=time_step_spec, action_spec=action_spec, actor_network=actor_network,
        target_actor_network=target_actor, critic_network=critic_network,
        target_critic_network=target_critic, critic_network_2=None,
        target_critic_network_2=None, actor_optimizer=actor_optimizer,
        critic_optimizer=critic_optimizer, td_errors_loss_fn=td_errors_loss_fn, gamma=gamma,
        reward_scale_factor=reward_scale_factor, target_update_tau=target_update_tau,
        target_update_period=target_update_period, actor_update_period=1,
        target_policy_noise=0.0, target_policy_noise_clip=0.0, dqda_clipping=dqda_clipping,
        gradient_clipping=gradient_clipping, train_step_counter=self.train_step_counter)

  def _train(self, experience, weights=None):
    if _suspended:
      return super()._train(experience, weights)
    time_steps, policy_steps, _ = _transition(self, experience)
    q_value = _q_values(self.critic_network, time_steps, policy_steps.action)
    return with_diagnostics(super()._train(experience, weights), q_value=q_value)


class Td3Agent(_ReplaceableCollectPolicy, td3_agent.Td3Agent):
  """+ q_value: the first critic's Q(s, a) of the batch's actions.
  `actor_network`, `critic_network` (the first critic): as given; `parts`
  (`ActorCriticParts`). The arguments are tf-agents' (after the critic by
  keyword); the second critic is a copy of the first, as tf-agents makes it."""

  def __init__(self, time_step_spec, action_spec, actor_network, critic_network, *,
               actor_optimizer=None, critic_optimizer=None, target_update_tau: float = 1.0,
               target_update_period: int = 1, actor_update_period: int = 1,
               td_errors_loss_fn=None, gamma: float = 1.0, reward_scale_factor: float = 1.0,
               target_policy_noise: float = 0.2, target_policy_noise_clip: float = 0.5,
               gradient_clipping: Optional[float] = None, train_step_counter=None, **kwargs):
    critic_2 = critic_network.copy(name="CriticNetwork2")
    target_actor, target_critic, target_critic_2 = _targets_as_tf_agents_makes_them(
        (actor_network, "TargetActorNetwork"), (critic_network, "TargetCriticNetwork1"),
        (critic_2, "TargetCriticNetwork2"))
    td_errors_loss_fn = td_errors_loss_fn or common.element_wise_huber_loss  # tf-agents' default
    super().__init__(
        time_step_spec, action_spec, actor_network, critic_network,
        actor_optimizer=actor_optimizer, critic_optimizer=critic_optimizer,
        critic_network_2=critic_2, target_actor_network=target_actor,
        target_critic_network=target_critic, target_critic_network_2=target_critic_2,
        target_update_tau=target_update_tau, target_update_period=target_update_period,
        actor_update_period=actor_update_period, td_errors_loss_fn=td_errors_loss_fn,
        gamma=gamma, reward_scale_factor=reward_scale_factor,
        target_policy_noise=target_policy_noise,
        target_policy_noise_clip=target_policy_noise_clip, gradient_clipping=gradient_clipping,
        train_step_counter=train_step_counter, **kwargs)
    self.actor_network, self.critic_network = actor_network, critic_network
    self.parts = ActorCriticParts(
        time_step_spec=time_step_spec, action_spec=action_spec, actor_network=actor_network,
        target_actor_network=target_actor, critic_network=critic_network,
        target_critic_network=target_critic, critic_network_2=critic_2,
        target_critic_network_2=target_critic_2, actor_optimizer=actor_optimizer,
        critic_optimizer=critic_optimizer, td_errors_loss_fn=td_errors_loss_fn, gamma=gamma,
        reward_scale_factor=reward_scale_factor, target_update_tau=target_update_tau,
        target_update_period=target_update_period, actor_update_period=actor_update_period,
        target_policy_noise=target_policy_noise,
        target_policy_noise_clip=target_policy_noise_clip, dqda_clipping=None,
        gradient_clipping=gradient_clipping, train_step_counter=self.train_step_counter)

  def _train(self, experience, weights=None):
    if _suspended:
      return super()._train(experience, weights)
    time_steps, policy_steps, _ = _transition(self, experience)
    q_value = _q_values(self.critic_network, time_steps, policy_steps.action)
    return with_diagnostics(super()._train(experience, weights), q_value=q_value)


@dataclasses.dataclass(frozen=True)
class SacParts:
  """What a SacAgent was built from (shared objects, as `DqnParts`); the
  optimizers are the ones it trains with (tf-agents converts Keras'
  optimizers to legacy ones: here they are converted first)."""
  time_step_spec: Any
  action_spec: Any
  actor_network: Any
  critic_network: Any
  critic_network_2: Any
  target_critic_network: Any
  target_critic_network_2: Any
  actor_optimizer: Any
  critic_optimizer: Any
  alpha_optimizer: Any
  log_alpha: tf.Variable
  target_entropy: float
  use_log_alpha_in_alpha_loss: bool
  actor_loss_weight: float
  critic_loss_weight: float
  alpha_loss_weight: float
  td_errors_loss_fn: Callable
  gamma: float
  reward_scale_factor: float
  target_update_tau: float
  target_update_period: int
  gradient_clipping: Optional[float]
  train_step_counter: tf.Variable


def _legacy_optimizer(optimizer):
  """The optimizer SacAgent trains with: Keras' new optimizers converted to
  legacy ones, as its constructor does (a legacy one is kept)."""
  if isinstance(optimizer, tf.keras.optimizers.experimental.Optimizer):
    return tf.keras.__internal__.optimizers.convert_to_legacy_optimizer(optimizer)
  return optimizer


def trains_nothing(optimizer) -> bool:
  """SGD at a constant learning rate 0 without momentum (tfrl's fixed
  alpha): its step leaves the variable as it is."""
  if not isinstance(optimizer, (tf.keras.optimizers.SGD, tf.keras.optimizers.legacy.SGD)):
    return False
  rate = optimizer.learning_rate
  if callable(rate) and not isinstance(rate, tf.Variable):
    return False
  momentum = optimizer.momentum
  return float(tf.convert_to_tensor(rate)) == 0.0 and float(momentum) == 0.0


def sac_default_target_entropy(action_spec) -> float:
  """tf-agents' default: -dim(A) / 2."""
  return -float(sum(np.prod(s.shape.as_list()) for s in tf.nest.flatten(action_spec))) / 2.0


class SacAgent(sac_agent.SacAgent):
  """+ q_value (first critic, batch actions), entropy (-log pi of fresh
  policy samples: the quantity alpha trades against return) and alpha.
  `critic_network` (the first critic), `actor_network`: as given;
  `log_alpha`: the variable alpha is learned in; `parts` (`SacParts`).
  The arguments are tf-agents' (after the actor by keyword). With alpha
  fixed (an optimizer that `trains_nothing`), alpha's loss is 0: tf-agents
  would spend a policy sample and its gradient on a step that changes
  nothing."""

  def __init__(self, time_step_spec, action_spec, critic_network, actor_network, *,
               actor_optimizer=None, critic_optimizer=None, alpha_optimizer=None,
               actor_loss_weight: float = 1.0, critic_loss_weight: float = 0.5,
               alpha_loss_weight: float = 1.0, target_update_tau: float = 1.0,
               target_update_period: int = 1, td_errors_loss_fn=tf.math.squared_difference,
               gamma: float = 1.0, reward_scale_factor: float = 1.0,
               use_log_alpha_in_alpha_loss: bool = True, target_entropy: Optional[float] = None,
               gradient_clipping: Optional[float] = None, train_step_counter=None, **kwargs):
    critic_2 = critic_network.copy(name="CriticNetwork2")
    target_critic, target_critic_2 = _targets_as_tf_agents_makes_them(
        (critic_network, "TargetCriticNetwork1"), (critic_2, "TargetCriticNetwork2"))
    actor_optimizer, critic_optimizer, alpha_optimizer = (
        _legacy_optimizer(o) for o in (actor_optimizer, critic_optimizer, alpha_optimizer))
    if target_entropy is None:
      target_entropy = sac_default_target_entropy(action_spec)
    super().__init__(
        time_step_spec, action_spec, critic_network, actor_network,
        actor_optimizer=actor_optimizer, critic_optimizer=critic_optimizer,
        alpha_optimizer=alpha_optimizer, actor_loss_weight=actor_loss_weight,
        critic_loss_weight=critic_loss_weight, alpha_loss_weight=alpha_loss_weight,
        critic_network_2=critic_2, target_critic_network=target_critic,
        target_critic_network_2=target_critic_2, target_update_tau=target_update_tau,
        target_update_period=target_update_period, td_errors_loss_fn=td_errors_loss_fn,
        gamma=gamma, reward_scale_factor=reward_scale_factor,
        use_log_alpha_in_alpha_loss=use_log_alpha_in_alpha_loss, target_entropy=target_entropy,
        gradient_clipping=gradient_clipping, train_step_counter=train_step_counter, **kwargs)
    self.critic_network, self.actor_network = critic_network, actor_network
    self.log_alpha = _only_scalar_float_trainable_variable(self)
    self.parts = SacParts(
        time_step_spec=time_step_spec, action_spec=action_spec, actor_network=actor_network,
        critic_network=critic_network, critic_network_2=critic_2,
        target_critic_network=target_critic, target_critic_network_2=target_critic_2,
        actor_optimizer=actor_optimizer, critic_optimizer=critic_optimizer,
        alpha_optimizer=alpha_optimizer, log_alpha=self.log_alpha,
        target_entropy=target_entropy, use_log_alpha_in_alpha_loss=use_log_alpha_in_alpha_loss,
        actor_loss_weight=actor_loss_weight, critic_loss_weight=critic_loss_weight,
        alpha_loss_weight=alpha_loss_weight, td_errors_loss_fn=td_errors_loss_fn, gamma=gamma,
        reward_scale_factor=reward_scale_factor, target_update_tau=target_update_tau,
        target_update_period=target_update_period, gradient_clipping=gradient_clipping,
        train_step_counter=self.train_step_counter)
    self._alpha_fixed = trains_nothing(alpha_optimizer)

  def _train(self, experience, weights=None):
    if _suspended:
      return super()._train(experience, weights)
    time_steps, policy_steps, _ = _transition(self, experience)
    q_value = _q_values(self.critic_network, time_steps, policy_steps.action)
    # Fresh samples of the policy SacAgent evaluates its losses with when not
    # training (tf-agents' _actions_and_log_probs(training=False)).
    policy_state = self.policy.get_initial_state(tf.shape(time_steps.step_type)[0])
    distribution = self.policy.distribution(time_steps, policy_state=policy_state).action
    actions = tf.nest.map_structure(lambda d: d.sample(), distribution)
    log_pi = common.log_probability(distribution, actions, self.action_spec)
    return with_diagnostics(super()._train(experience, weights), q_value=q_value,
                            entropy=-log_pi, alpha=tf.exp(self.log_alpha))

  def alpha_loss(self, time_steps, weights=None, training=False):
    if self._alpha_fixed:
      return 0.0 * self.log_alpha  # a zero gradient, as SGD at rate 0 expects
    return super().alpha_loss(time_steps, weights=weights, training=training)


def _only_scalar_float_trainable_variable(agent: sac_agent.SacAgent) -> tf.Variable:
  """SacAgent creates its log-alpha variable itself and offers no accessor.
  It is the agent's one scalar float trainable variable (network weights
  have rank >= 1; the train-step counter is an integer), found through
  tf.Module's public `trainable_variables`."""
  scalars = [v for v in agent.trainable_variables
             if v.shape.rank == 0 and v.dtype.is_floating]
  if len(scalars) != 1:
    raise RuntimeError(f"expected SacAgent to hold one scalar float trainable variable "
                       f"(log alpha), found {[v.name for v in scalars]}")
  return scalars[0]


class ReinforceAgent(reinforce_agent.ReinforceAgent):
  """+ entropy: the policy's mean entropy over the episodes' real steps.
  `actor_network`: as given."""

  def __init__(self, time_step_spec, action_spec, actor_network, *args, **kwargs):
    super().__init__(time_step_spec, action_spec, actor_network, *args, **kwargs)
    self.actor_network = actor_network

  def _train(self, experience, weights=None):
    batch_size = tf.shape(experience.step_type)[0]
    distribution, _ = self.actor_network(
        experience.observation, step_type=experience.step_type,
        network_state=self.actor_network.get_initial_state(batch_size), training=False)
    entropy = distribution.entropy()
    if entropy.shape.rank > experience.step_type.shape.rank:  # independent action dims
      entropy = tf.reduce_sum(entropy, axis=-1)
    real_steps = ~experience.is_boundary()
    entropy = tf.boolean_mask(entropy, real_steps)
    return with_diagnostics(super()._train(experience, weights), entropy=entropy)
