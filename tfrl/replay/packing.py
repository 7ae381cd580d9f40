"""A trajectory window packed into one row of bytes, for replay items that
Reverb samples as a single column.

Reverb's cost per sample grows with the columns an item references (each is
its own chunk to find, decompress and batch); a packed window is one column
of one chunk, so a uniform transition sample costs a few microseconds. The
layout is a function of the data spec alone: every field's bytes, in
`tf.nest.flatten` order, step after step of the window. Unpacking is exact
for any numeric or bool dtype.
"""

import numpy as np
import tensorflow as tf


class PackedLayout:
  """How the fields of `data_spec` (one env's step) lie in a packed row."""

  def __init__(self, data_spec, sequence_length: int):
    self.data_spec = data_spec
    self.sequence_length = sequence_length
    self.fields = tf.nest.flatten(data_spec)
    self.field_bytes = [max(1, s.dtype.size) * s.shape.num_elements() for s in self.fields]
    self.step_bytes = sum(self.field_bytes)
    self.window_bytes = sequence_length * self.step_bytes

  @staticmethod
  def pack_step(step, num_envs: int) -> np.ndarray:
    """One batch step (a nest of numpy arrays [num_envs, ...], in the data
    spec's dtypes) as uint8 rows [num_envs, step_bytes]."""
    return np.concatenate([np.ascontiguousarray(leaf).reshape(num_envs, -1).view(np.uint8)
                           for leaf in tf.nest.flatten(step)], axis=1)

  def unpack(self, rows: tf.Tensor):
    """uint8 windows [N, window_bytes] -> the data spec's nest of [N, L, ...]."""
    n, length = tf.shape(rows)[0], self.sequence_length
    steps = tf.reshape(rows, [n, length, self.step_bytes])
    leaves, offset = [], 0
    for spec, size in zip(self.fields, self.field_bytes):
      piece = steps[:, :, offset:offset + size]
      offset += size
      if spec.dtype == tf.bool:
        piece = tf.cast(piece, tf.bool)
      elif spec.dtype.size > 1:
        piece = tf.bitcast(tf.reshape(piece, [n, length, -1, spec.dtype.size]), spec.dtype)
      elif spec.dtype != tf.uint8:
        piece = tf.bitcast(piece, spec.dtype)
      leaves.append(tf.reshape(piece, tf.concat([[n, length], spec.shape], 0)))
    return tf.nest.pack_sequence_as(self.data_spec, leaves)
