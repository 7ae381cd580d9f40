"""Pieces the compiled loop's in-graph learners share (`dqn.InGraphDqn`,
`ddpg.InGraphDdpg`, `sac.InGraphSac`): plain TF ops, `tf.cond` only where
the loop allows it (XLA's CPU runtime, `tfrl.train.train_compiled.
xla_cpu_runtime`, cannot link a conditional inside the compiled loop), no
state but the variables passed in (so several learners can live in one graph).

The learners' interface, which `tfrl.train.compiled.CompiledLoop` calls:
`transition_spec`; `build(conditionals)` (optimizer slots, outside the loop;
whether the loop may hold a `tf.cond`: not under XLA's CPU runtime);
`act(observation, seed)`, `random_act(observation, seed)`;
`update(batch, sync_target, seed=None)` -> loss (a `seed` when
`update_draws_noise`); `target_sync_period`, `updates_until_target_sync()`,
`advance_target_sync(updates)`.
"""

import tensorflow as tf
from tf_agents.utils import eager_utils


def td_targets(rewards, discounts, next_values, gamma: float, reward_scale_factor: float = 1.0):
  """The one-step TD target r * scale + gamma * discount * V(s'), no
  gradient. `discounts` is 0 where the episode terminated, 1 where it
  continues or was truncated."""
  return tf.stop_gradient(reward_scale_factor * rewards + gamma * discounts * next_values)


def periodic_soft_update(counter: tf.Variable, period: int, updates, pairs, tau: float):
  """tf-agents' periodic target update (`common.Periodically` around
  `soft_variables_update(..., tau, tau_non_trainable=1.0)`: targets move
  after every update whose count is a multiple of `period`) after `updates`
  more updates counted on `counter`: moves them if the count crossed a
  multiple. `pairs`: (source, target) variables. The new values are
  selected with `tf.where`, not `tf.cond`."""
  before = counter.read_value()
  after = counter.assign_add(tf.cast(updates, counter.dtype))
  if period == 1:
    due = tf.constant(True)  # a constant select: the graph optimizer drops it
  else:
    due = tf.math.floordiv(after, period) > tf.math.floordiv(before, period)
  for source, target in pairs:
    rate = tau if source.trainable else 1.0
    target.assign(tf.where(due, rate * source + (1.0 - rate) * target, target))


def updates_until(counter: tf.Variable, period: int):
  """Updates until (and including) the next one at which `counter` reaches
  a multiple of `period`: 1 to `period`."""
  return tf.cast(period, counter.dtype) - tf.math.floormod(counter, period)


def apply_gradients(optimizer, gradients, variables, gradient_clipping=None, where=None,
                    conditionals: bool = False):
  """`optimizer.apply_gradients` with tf-agents' per-variable norm clipping.
  With `where` (a bool tensor), the step is taken only where it is true:
  with `conditionals`, in a `tf.cond` as tf-agents does (the gradients are
  computed in its branch); without, the step is always computed and the
  variables and the optimizer's own (slots, iteration count) are assigned
  their old values where it is false."""
  def clipped():
    grads_and_vars = list(zip(gradients() if callable(gradients) else gradients, variables))
    if gradient_clipping is not None:
      grads_and_vars = eager_utils.clip_gradient_norms(grads_and_vars, gradient_clipping)
    return grads_and_vars
  if where is None:
    optimizer.apply_gradients(clipped())
    return
  if conditionals:
    def step():
      optimizer.apply_gradients(clipped())
      return tf.constant(True)
    tf.cond(where, step, lambda: tf.constant(False))
    return
  grads_and_vars = clipped()
  slots = optimizer.variables
  state = list(variables) + list(slots() if callable(slots) else slots)  # legacy: a method
  # Snapshots: auto control dependencies order these reads before the step.
  old = [v.read_value() for v in state]
  with tf.control_dependencies(old):
    optimizer.apply_gradients(grads_and_vars)
  for variable, value in zip(state, old):
    variable.assign(tf.where(where, variable, value))


def uniform_actions(action_spec, batch_size, seed):
  """Actions uniform in a bounded spec's box (tf-agents' RandomTFPolicy's
  draw), stateless: `seed` is a [2] int seed."""
  low = tf.broadcast_to(tf.constant(action_spec.minimum, action_spec.dtype), action_spec.shape)
  high = tf.broadcast_to(tf.constant(action_spec.maximum, action_spec.dtype), action_spec.shape)
  shape = tf.concat([[batch_size], tf.shape(low)], 0)
  return low + (high - low) * tf.random.stateless_uniform(shape, seed, dtype=action_spec.dtype)


def q_values(observation, actions, critics, training: bool):
  """Each critic's Q(s, a), in the critics' order (actor-critic learners)."""
  return [critic((observation, actions), training=training)[0] for critic in critics]


def clip_to_spec(actions, action_spec):
  return tf.clip_by_value(actions, action_spec.minimum, action_spec.maximum)


def transition_spec(time_step_spec, action_spec) -> dict:
  """One replayed transition: s, a, r, discount (0 = terminated), s'."""
  observation = time_step_spec.observation
  return dict(observation=observation, action=action_spec, reward=time_step_spec.reward,
              discount=time_step_spec.discount, next_observation=observation)


def tfp_seed(seed):
  """A stateless [2] int32 seed for tfp's samplers (which take int32) from
  the loop's [2] int64 one: a full-range draw, so no int64 value wraps."""
  return tf.random.stateless_uniform([2], seed, minval=None, maxval=None, dtype=tf.int32)
