"""A uniform replay buffer living in TF variables, for loops compiled into one graph.

The JAX tutorial's buffer, in TF: one preallocated variable per field of a
transition nest (any nest: DQN's and SAC's transitions alike), written as a
ring — the oldest rows are overwritten once `capacity` is reached — and
sampled uniformly with replacement among the rows written so far. `add` and
`sample` are plain TF ops, so they run inside `tf.function(jit_compile=True)`
with no Python or Reverb round trip. The buffer is a `tf.Module`, so a
`tf.train.Checkpoint` saves and restores its contents.
"""

import tensorflow as tf


class InGraphReplay(tf.Module):

  def __init__(self, transition_spec, capacity: int, name: str = "in_graph_replay"):
    super().__init__(name=name)
    if capacity < 1:
      from tfrl.errors import ConfigError
      raise ConfigError(f"replay capacity must be >= 1, got {capacity}")
    self.capacity = capacity
    self.spec = transition_spec
    self.storage = tf.nest.map_structure(
        lambda s: tf.Variable(tf.zeros([capacity] + list(s.shape), s.dtype), trainable=False),
        transition_spec)
    # Rows ever added; the next write goes to row `added % capacity`.
    self.added = tf.Variable(0, dtype=tf.int64, trainable=False, name="added")

  def size(self):
    return tf.minimum(self.added, self.capacity)

  def add(self, batch):
    """Writes a batch of transitions (leading dim = rows) into the ring."""
    n = tf.shape(tf.nest.flatten(batch)[0], out_type=tf.int64)[0]
    rows = tf.math.floormod(self.added + tf.range(n, dtype=tf.int64), self.capacity)[:, None]
    for variable, value in zip(tf.nest.flatten(self.storage), tf.nest.flatten(batch)):
      variable.scatter_nd_update(rows, tf.cast(value, variable.dtype))
    self.added.assign_add(n)

  def sample(self, batch_size: int, seed):
    """`batch_size` transitions drawn uniformly with replacement from the
    rows written so far (at least one row must have been written).
    `seed` is a [2] int seed: the draw is stateless."""
    rows = tf.random.stateless_uniform([batch_size], seed=seed, minval=0,
                                       maxval=self.size(), dtype=tf.int64)
    return tf.nest.map_structure(lambda v: tf.gather(v, rows), self.storage)
