"""Running observation normalization (SB3's VecNormalize, inside the agent).

`ObservationNormalizer` keeps the count, mean and sum of squared deviations
of every observation it is shown (merged batch by batch, Chan et al.'s
parallel update, in float64) and maps observations to
clip((obs - mean) / sqrt(var + epsilon), -clip, clip). Its variables live in
the agent (so run checkpoints restore them) and in its policies (so an
exported SavedModel takes raw observations).
"""

import tensorflow as tf

from tfrl.errors import ConfigError


class ObservationNormalizer(tf.Module):

  def __init__(self, observation_spec, clip: float = 10.0, epsilon: float = 1e-8,
               name: str = "observation_normalizer"):
    super().__init__(name=name)
    if not isinstance(observation_spec, tf.TensorSpec):
      raise ConfigError("observation normalization needs one observation tensor, "
                        f"not a nest: {observation_spec}")
    shape = observation_spec.shape
    self.clip, self.epsilon = clip, epsilon
    # SB3's start: variance 1 at a negligible count, so early observations
    # are not blown up by a near-zero variance.
    initial_count = 1e-4
    self.count = tf.Variable(initial_count, dtype=tf.float64, trainable=False, name="count")
    self.mean = tf.Variable(tf.zeros(shape, tf.float64), trainable=False, name="mean")
    self.m2 = tf.Variable(tf.fill(shape, tf.constant(initial_count, tf.float64)), trainable=False,
                          name="m2")

  @property
  def variance(self):
    return self.m2 / self.count

  def update(self, observations):
    """Adds a batch [N, *shape] to the statistics."""
    x = tf.cast(tf.reshape(observations, [-1] + self.mean.shape.as_list()), tf.float64)
    n = tf.cast(tf.shape(x)[0], tf.float64)
    batch_mean = tf.reduce_mean(x, axis=0)
    batch_m2 = tf.reduce_sum(tf.square(x - batch_mean), axis=0)
    total = self.count + n
    delta = batch_mean - self.mean
    self.mean.assign_add(delta * n / total)
    self.m2.assign_add(batch_m2 + tf.square(delta) * self.count * n / total)
    self.count.assign(total)

  def normalize(self, observation):
    scaled = ((tf.cast(observation, tf.float64) - self.mean)
              / tf.sqrt(self.variance + self.epsilon))
    return tf.cast(tf.clip_by_value(scaled, -self.clip, self.clip), observation.dtype)
