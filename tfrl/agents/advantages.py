"""Return and advantage estimators as small pure functions (rlax style).

All take time-major tensors, [T] or [T, B], laid out as tfrl's on-policy
replay delivers episodes: each episode's steps followed by its boundary step
(step type LAST), which carries the final observation and is not a
transition itself. `valid` is 0 on boundary steps, 1 elsewhere; `discounts`
is the discount of the step each transition leads to — 0 when the episode
terminated there, 1 when it was truncated (time limit), so a truncated
episode is bootstrapped from the value of its final observation.
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
  deltas = (rewards + gamma * discounts * next_values - values) * valid
  decays = gamma * lambda_ * discounts * valid

  def backward(next_advantage, inputs):
    delta, decay = inputs
    return delta + decay * next_advantage

  return tf.scan(backward, (deltas, decays), initializer=tf.zeros_like(deltas[0]), reverse=True)


def td_lambda_returns(rewards, values, next_values, discounts, valid,
                      gamma: float, lambda_: float):
  """TD(lambda) returns, GAE plus the baseline; lambda=1 is the discounted
  reward-to-go, bootstrapped from V(final observation) on truncation only."""
  advantages = generalized_advantage_estimation(rewards, values, next_values, discounts,
                                                valid, gamma, lambda_)
  return (advantages + values) * tf.cast(valid, rewards.dtype)


def normalize(x, epsilon: float = 1e-8):
  """x shifted to mean 0 and scaled to standard deviation 1 (advantage normalization)."""
  mean, variance = tf.nn.moments(x, axes=list(range(x.shape.rank)))
  return (x - mean) / (tf.sqrt(variance) + epsilon)
