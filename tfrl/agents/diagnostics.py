"""What tf-agents' agents do not report, added to their LossInfo.extra.

The logger averages every field of `LossInfo.extra` into progress.csv, so an
agent that should report Q values, its policy's entropy or SAC's alpha only
has to return them there. Each class below is tf-agents' own agent with
`_train` (or DQN's `_loss`) returning the original LossInfo plus a few
gradient-free quantities of the batch it trained on, measured *before* the
update (as Spinning Up logs them).
"""

import collections
import functools

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.agents.ddpg import ddpg_agent
from tf_agents.agents.dqn import dqn_agent
from tf_agents.agents.reinforce import reinforce_agent
from tf_agents.agents.sac import sac_agent
from tf_agents.agents.td3 import td3_agent


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


class DqnAgent(dqn_agent.DqnAgent):
  """+ q_value: Q(s, a) of the batch's actions (the first thing to look at
  when DQN diverges or overestimates)."""

  def _loss(self, experience, *args, **kwargs):
    time_steps, policy_steps, _ = self._as_transition(experience)
    q_value = self._compute_q_values(time_steps, policy_steps.action, training=False)
    return with_diagnostics(super()._loss(experience, *args, **kwargs), q_value=q_value)

  def _get_target_updater(self, tau=1.0, period=1):
    # Kept: the compiled loop (tfrl.agents.dqn.InGraphDqn) repeats this
    # update without tf-agents' tf.cond and needs both numbers.
    self.target_update_tau, self.target_update_period = tau, period
    return super()._get_target_updater(tau, period)


class DdpgAgent(ddpg_agent.DdpgAgent):
  """+ q_value: the critic's Q(s, a) of the batch's actions."""

  def _train(self, experience, weights=None):
    time_steps, policy_steps, _ = self._as_transition(experience)
    q_value = _q_values(self._critic_network, time_steps, policy_steps.action)
    return with_diagnostics(super()._train(experience, weights), q_value=q_value)


class Td3Agent(td3_agent.Td3Agent):
  """+ q_value: the first critic's Q(s, a) of the batch's actions."""

  def _train(self, experience, weights=None):
    time_steps, policy_steps, _ = self._as_transition(experience)
    q_value = _q_values(self._critic_network_1, time_steps, policy_steps.action)
    return with_diagnostics(super()._train(experience, weights), q_value=q_value)


class SacAgent(sac_agent.SacAgent):
  """+ q_value (first critic, batch actions), entropy (-log pi of fresh
  policy samples: the quantity alpha trades against return) and alpha."""

  def _train(self, experience, weights=None):
    time_steps, policy_steps, _ = self._as_transition(experience)
    q_value = _q_values(self._critic_network_1, time_steps, policy_steps.action)
    _, log_pi = self._actions_and_log_probs(time_steps, training=False)
    return with_diagnostics(super()._train(experience, weights), q_value=q_value,
                            entropy=-log_pi, alpha=tf.exp(self._log_alpha))


class ReinforceAgent(reinforce_agent.ReinforceAgent):
  """+ entropy: the policy's mean entropy over the episodes' real steps."""

  def _train(self, experience, weights=None):
    batch_size = tf.shape(experience.step_type)[0]
    distribution, _ = self._actor_network(
        experience.observation, step_type=experience.step_type,
        network_state=self._actor_network.get_initial_state(batch_size), training=False)
    entropy = distribution.entropy()
    if entropy.shape.rank > experience.step_type.shape.rank:  # independent action dims
      entropy = tf.reduce_sum(entropy, axis=-1)
    real_steps = ~experience.is_boundary()
    entropy = tf.boolean_mask(entropy, real_steps)
    return with_diagnostics(super()._train(experience, weights), entropy=entropy)
