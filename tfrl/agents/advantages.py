"""Return and advantage estimators as small pure functions (rlax style).

All take time-major tensors, [T] or [T, B], laid out as tfrl's on-policy
replay delivers episodes: each episode's steps followed by its boundary step
(step type LAST), which carries the final observation and is not a
transition itself. `valid` is 0 on boundary steps, 1 elsewhere; `discounts`
is the discount of the step each transition leads to — 0 when the episode
terminated there, 1 when it was truncated (time limit), so a truncated
episode is bootstrapped from the value of its final observation.

The recursions run backwards in time, one step after the other, so their
cost is the length of the time axis: `by_episode` gives each episode a
column of its own (the episodes' recursions are independent), and
`advantages_and_returns` runs GAE and the TD(lambda) targets in one pass.
"""

import tensorflow as tf


def generalized_advantage_estimation(rewards, values, next_values, discounts, valid,
                                     gamma: float, lambda_: float):
  """GAE-lambda (Schulman et al., 2016).

    delta_t = r_t + gamma * d_t * V(s_{t+1}) - V(s_t)
    A_t     = delta_t + gamma * lambda * d_t * A_{t+1}

  with A = 0 on boundary steps, so no advantage leaks from one episode into
  the next. `next_values[t]` is V of the observation after step t (the
  boundary step's observation for an episode's last transition).
  """
  valid = tf.cast(valid, rewards.dtype)
  deltas = _td_errors(rewards, values, next_values, discounts, valid, gamma)
  return _backward(deltas, gamma * lambda_ * discounts * valid)


def td_lambda_returns(rewards, values, next_values, discounts, valid,
                      gamma: float, lambda_: float):
  """TD(lambda) returns, GAE plus the baseline; lambda=1 is the discounted
  reward-to-go, bootstrapped from V(final observation) on truncation only."""
  advantages = generalized_advantage_estimation(rewards, values, next_values, discounts,
                                                valid, gamma, lambda_)
  return (advantages + values) * tf.cast(valid, rewards.dtype)


def advantages_and_returns(rewards, values, next_values, discounts, valid,
                           gamma: float, gae_lambda: float, value_lambda: float):
  """(GAE-`gae_lambda` advantages, TD(`value_lambda`) returns) in one
  backward pass: the two recursions share their deltas and differ in the
  decay only, so they run side by side. Element for element what
  `generalized_advantage_estimation` and `td_lambda_returns` give."""
  valid = tf.cast(valid, rewards.dtype)
  deltas = _td_errors(rewards, values, next_values, discounts, valid, gamma)
  decays = tf.stack([gamma * gae_lambda * discounts * valid,
                     gamma * value_lambda * discounts * valid], axis=1)    # [T, 2, ...]
  both = _backward(tf.stack([deltas, deltas], axis=1), decays)
  return both[:, 0], (both[:, 1] + values) * valid


def rollout_advantages_and_returns(rewards, values, next_values, terminated, truncated,
                                   gamma: float, gae_lambda: float, value_lambda: float):
  """`advantages_and_returns` for fixed-length rollouts [T, B] of
  auto-resetting batched envs (the compiled on-policy loop's), where every
  row is a transition and the next episode starts in the row after one ends.
  `next_values[t]` is V of the observation step t led to (the final one
  where the episode ended). An episode's end cuts both recursions; a
  termination also the bootstrap, a truncation keeps it (as its discount of
  1 does in the episode layout); the rollout's last row bootstraps V(s_T), as
  a segment's cut row does (`SegmentAdder`). The same values as
  `advantages_and_returns` on those episodes laid out with boundary rows."""
  continues = 1.0 - tf.cast(terminated | truncated, rewards.dtype)
  deltas = _td_errors(rewards, values, next_values, 1.0 - tf.cast(terminated, rewards.dtype),
                      tf.ones_like(rewards), gamma)
  decays = tf.stack([gamma * gae_lambda * continues, gamma * value_lambda * continues], axis=1)
  both = _backward(tf.stack([deltas, deltas], axis=1), decays)
  return both[:, 0], both[:, 1] + values


def discounted_returns_to_date(rewards, valid, gamma: float):
  """R_t = r_t + gamma * R_{t-1} along the first axis, R_{-1} = 0, counting
  only valid steps: the return so far, discounted backwards (what
  VecNormalize's reward scaling takes the variance of)."""

  def forward(previous, inputs):
    reward, keep = inputs
    return (reward + gamma * previous) * keep

  valid = tf.cast(valid, rewards.dtype)
  return tf.scan(forward, (rewards, valid), initializer=tf.zeros_like(rewards[0]))


def _td_errors(rewards, values, next_values, discounts, valid, gamma: float):
  """delta_t = r_t + gamma * d_t * V(s_{t+1}) - V(s_t), 0 on boundary steps
  (`valid` already in the rewards' dtype)."""
  return (rewards + gamma * discounts * next_values - values) * valid


def _backward(deltas, decays):
  """x_t = delta_t + decay_t * x_{t+1} along the first axis, x_T = 0."""

  def backward(next_value, inputs):
    delta, decay = inputs
    return delta + decay * next_value

  return tf.scan(backward, (deltas, decays), initializer=tf.zeros_like(deltas[0]), reverse=True)


def by_episode(fn, boundary, *tensors):
  """`fn` of time-major tensors, applied with every episode in a column of its own.

  `tensors` are batch-major [B, T] (tfrl's on-policy experience: [1, sum of
  episode lengths]); `boundary` [B, T] marks each episode's boundary step,
  where a sequence ends (so does each batch row). `fn` gets the tensors as
  [L, E]: E sequences, L the longest one's length, the shorter ones padded
  with zeros (False) after their end; it returns a tensor or a tuple of
  them shaped alike, handed back [B, T]. For a recursion that restarts at
  boundaries and is 0 past a sequence's end (GAE's), the values are those
  of `fn` on the [T, B] tensors, but its time axis is one episode long, not
  all the episodes end to end.
  """
  shape = tf.shape(boundary)
  row_end = tf.one_hot(shape[1] - 1, shape[1], on_value=True, off_value=False, dtype=tf.bool)
  ends = tf.reshape(tf.logical_or(boundary, row_end), [-1])
  # Each step's sequence: the number of sequence ends before it.
  sequence = tf.cumsum(tf.cast(ends, tf.int64), exclusive=True)
  ragged = lambda x: tf.RaggedTensor.from_value_rowids(tf.reshape(x, [-1]), sequence,
                                                       validate=False)
  lengths = ragged(ends).row_lengths()
  results = fn(*(tf.transpose(ragged(x).to_tensor()) for x in tensors))
  back = lambda y: tf.reshape(
      tf.RaggedTensor.from_tensor(tf.transpose(y), lengths=lengths).flat_values, shape)
  return tuple(back(y) for y in results) if isinstance(results, tuple) else back(results)


def normalize(x, epsilon: float = 1e-8):
  """x shifted to mean 0 and scaled to standard deviation 1 (advantage normalization)."""
  mean, variance = tf.nn.moments(x, axes=list(range(x.shape.rank)))
  return (x - mean) / (tf.sqrt(variance) + epsilon)
