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
(DQN: `parts`, a `DqnParts`), and tfrl reads only those: the diagnostics
here, the compiled loop's learner (`tfrl.agents.dqn.InGraphDqn`).
"""

import collections
import dataclasses
import functools
from typing import Any, Callable, Optional, Union

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
    return with_diagnostics(loss_info, q_value=self._batch_q_value)


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


class DdpgAgent(_ReplaceableCollectPolicy, ddpg_agent.DdpgAgent):
  """+ q_value: the critic's Q(s, a) of the batch's actions.
  `actor_network`, `critic_network`: as given."""

  def __init__(self, time_step_spec, action_spec, actor_network, critic_network, *args,
               **kwargs):
    super().__init__(time_step_spec, action_spec, actor_network, critic_network, *args, **kwargs)
    self.actor_network, self.critic_network = actor_network, critic_network

  def _train(self, experience, weights=None):
    time_steps, policy_steps, _ = _transition(self, experience)
    q_value = _q_values(self.critic_network, time_steps, policy_steps.action)
    return with_diagnostics(super()._train(experience, weights), q_value=q_value)


class Td3Agent(_ReplaceableCollectPolicy, td3_agent.Td3Agent):
  """+ q_value: the first critic's Q(s, a) of the batch's actions.
  `actor_network`, `critic_network` (the first critic): as given."""

  def __init__(self, time_step_spec, action_spec, actor_network, critic_network, *args,
               **kwargs):
    super().__init__(time_step_spec, action_spec, actor_network, critic_network, *args, **kwargs)
    self.actor_network, self.critic_network = actor_network, critic_network

  def _train(self, experience, weights=None):
    time_steps, policy_steps, _ = _transition(self, experience)
    q_value = _q_values(self.critic_network, time_steps, policy_steps.action)
    return with_diagnostics(super()._train(experience, weights), q_value=q_value)


class SacAgent(sac_agent.SacAgent):
  """+ q_value (first critic, batch actions), entropy (-log pi of fresh
  policy samples: the quantity alpha trades against return) and alpha.
  `critic_network` (the first critic), `actor_network`: as given;
  `log_alpha`: the variable alpha is learned in."""

  def __init__(self, time_step_spec, action_spec, critic_network, actor_network, *args,
               **kwargs):
    super().__init__(time_step_spec, action_spec, critic_network, actor_network, *args, **kwargs)
    self.critic_network, self.actor_network = critic_network, actor_network
    self.log_alpha = _only_scalar_float_trainable_variable(self)

  def _train(self, experience, weights=None):
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
