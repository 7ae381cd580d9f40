"""Running normalization (SB3's VecNormalize, inside the agent).

`RunningMoments` keeps the count, mean and sum of squared deviations of
everything it is shown (merged batch by batch, Chan et al.'s parallel
update, in float64). `ObservationNormalizer` maps observations to
clip((obs - mean) / sqrt(var + epsilon), -clip, clip); its variables live in
the agent (so run checkpoints restore them) and in its policies (so an
exported SavedModel takes raw observations). `RewardScaler` divides rewards
by the running standard deviation of the discounted return (not shifted),
as VecNormalize's `norm_reward`; it lives in the agent only (rewards are a
training matter).
"""

import tensorflow as tf

from tfrl.errors import ConfigError


class RunningMoments(tf.Module):
  """Count, mean and variance of every `shape`-shaped value shown to `update`."""

  def __init__(self, shape, name: str):
    super().__init__(name=name)
    # SB3's start: variance 1 at a negligible count, so early values are
    # not blown up by a near-zero variance.
    initial_count = 1e-4
    self.count = tf.Variable(initial_count, dtype=tf.float64, trainable=False, name="count")
    self.mean = tf.Variable(tf.zeros(shape, tf.float64), trainable=False, name="mean")
    self.m2 = tf.Variable(tf.fill(shape, tf.constant(initial_count, tf.float64)), trainable=False,
                          name="m2")

  @property
  def variance(self):
    return self.m2 / self.count

  def update(self, values):
    """Adds a batch [N, *shape] to the statistics."""
    x = tf.cast(tf.reshape(values, [-1] + self.mean.shape.as_list()), tf.float64)
    n = tf.cast(tf.shape(x)[0], tf.float64)
    batch_mean = tf.reduce_mean(x, axis=0)
    batch_m2 = tf.reduce_sum(tf.square(x - batch_mean), axis=0)
    total = self.count + n
    delta = batch_mean - self.mean
    self.mean.assign_add(delta * n / total)
    self.m2.assign_add(batch_m2 + tf.square(delta) * self.count * n / total)
    self.count.assign(total)


class ObservationNormalizer(RunningMoments):

  def __init__(self, observation_spec, clip: float = 10.0, epsilon: float = 1e-8,
               name: str = "observation_normalizer"):
    if not isinstance(observation_spec, tf.TensorSpec):
      raise ConfigError("observation normalization needs one observation tensor, "
                        f"not a nest: {observation_spec}")
    super().__init__(observation_spec.shape, name)
    self.clip, self.epsilon = clip, epsilon

  def normalize(self, observation):
    scaled = ((tf.cast(observation, tf.float64) - self.mean)
              / tf.sqrt(self.variance + self.epsilon))
    return tf.cast(tf.clip_by_value(scaled, -self.clip, self.clip), observation.dtype)


class RewardScaler(RunningMoments):
  """Statistics of discounted returns (the agent feeds them to `update`);
  `scale` maps rewards to clip(r / sqrt(var + epsilon), -clip, clip)."""

  def __init__(self, clip: float = 10.0, epsilon: float = 1e-8, name: str = "reward_scaler"):
    super().__init__([], name)
    self.clip, self.epsilon = clip, epsilon

  def scale(self, rewards):
    scaled = tf.cast(rewards, tf.float64) / tf.sqrt(self.variance + self.epsilon)
    return tf.cast(tf.clip_by_value(scaled, -self.clip, self.clip), rewards.dtype)
