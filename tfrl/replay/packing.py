"""A trajectory window packed into one row of bytes, for replay items that
Reverb samples as a single column.

Reverb's cost per sample grows with the columns an item references (each is
its own chunk to find, decompress and batch); a packed window is one column
of one chunk, so a uniform transition sample costs a few microseconds. The
layout is a function of the data spec alone: every field's bytes, in
`tf.nest.flatten` order, step after step of the window. Unpacking is exact
for any numeric or bool dtype.

`FrameStackLayout` packs a step with only the newest frame of a stacked
observation; an item then spans several appended steps (shared between
overlapping items, so each frame is stored once) and `stack_frames`
rebuilds the stacks when read.
"""

import numpy as np
import tensorflow as tf

from tfrl.errors import ConfigError


class PackedLayout:
  """How the fields of `data_spec` (one env's step) lie in a packed row."""

  def __init__(self, data_spec, sequence_length: int):
    self.data_spec = data_spec
    self.sequence_length = sequence_length
    self.fields = tf.nest.flatten(data_spec)
    self.field_bytes = [max(1, s.dtype.size) * s.shape.num_elements() for s in self.fields]
    self.step_bytes = sum(self.field_bytes)
    self.window_bytes = sequence_length * self.step_bytes
    # An item is one appended row holding a whole window (see FrameStackLayout).
    self.item_steps = 1
    self.row_bytes = self.window_bytes

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


def stack_frames(frames: tf.Tensor, step_type: tf.Tensor, frame_stack: int) -> tf.Tensor:
  """Rebuilds stacked observations from each step's newest frame.

  `frames` [N, T, ...] and `step_type` [N, T] are T consecutive steps of N
  streams; returns [N, T - frame_stack + 1, ..., frame_stack]: the stack of
  step p (p = frame_stack - 1, ..., T - 1) is frames p - frame_stack + 1 .. p,
  oldest first, with the frames from before p's episode began (a FIRST step
  after them, up to p) zeroed — gymnasium's FrameStackObservation with
  zero padding.
  """
  num_steps = frames.shape[1]
  positions = np.arange(num_steps - frame_stack + 1)[:, None] + np.arange(frame_stack)  # [P, S]
  stacks = tf.gather(frames, positions, axis=1)  # [N, P, S, ...]
  firsts = tf.cumsum(tf.cast(tf.equal(step_type, 0), tf.int32), axis=1)  # StepType.FIRST == 0
  # Frame j of p's stack is p's episode's if no FIRST step lies in (j, p].
  same_episode = tf.equal(tf.gather(firsts, positions[:, -1:], axis=1),
                          tf.gather(firsts, positions, axis=1))  # [N, P, S]
  mask = tf.reshape(tf.cast(same_episode, frames.dtype),
                    tf.concat([tf.shape(same_episode), tf.ones([frames.shape.rank - 2], tf.int32)], 0))
  stacks *= mask
  rank = stacks.shape.rank
  return tf.transpose(stacks, [0, 1] + list(range(3, rank)) + [2])


# XLA fuses the gather, mask and transpose: ~4x faster than TF's kernels on
# 32 Atari windows (each a uint8 transpose into channels-last).
_compiled_stack_frames = tf.function(stack_frames, jit_compile=True)


class FrameStackLayout:
  """Stacked-frame observations stored once per frame: each step keeps only
  its newest frame (the observation's last axis, index -1) and the other
  fields, packed as `PackedLayout` does; an item spans the last
  `frame_stack + sequence_length - 1` steps, and `unpack` rebuilds each
  window step's stack of `frame_stack` frames (`stack_frames`).

  `data_spec` must be a Trajectory whose observation is one uint8 tensor
  with `frame_stack` as its last dimension.
  """

  def __init__(self, data_spec, sequence_length: int, frame_stack: int):
    observation = getattr(data_spec, "observation", None)
    if (not isinstance(observation, tf.TensorSpec) or observation.dtype != tf.uint8
        or observation.shape.rank < 2 or observation.shape[-1] != frame_stack):
      raise ConfigError(
          f"tfrl.replay.TransitionReplay.frame_stack = {frame_stack} needs observations of "
          f"uint8 frames stacked on the last axis [..., {frame_stack}]; this env's are "
          f"{_describe(observation)}: unbind frame_stack (default None stores them whole)")
    self.data_spec = data_spec
    self.sequence_length = sequence_length
    self.frame_stack = frame_stack
    self.item_steps = frame_stack + sequence_length - 1
    frame_spec = tf.TensorSpec(observation.shape[:-1], tf.uint8, observation.name)
    self.stored = PackedLayout(data_spec._replace(observation=frame_spec), self.item_steps)
    self.row_bytes = self.stored.step_bytes
    self.window_bytes = self.stored.window_bytes

  @staticmethod
  def pack_step(step, num_envs: int) -> np.ndarray:
    """One batch step as uint8 rows [num_envs, row_bytes]: the newest frame only."""
    return PackedLayout.pack_step(step._replace(observation=step.observation[..., -1]), num_envs)

  def unpack(self, rows: tf.Tensor):
    """uint8 items [N, item_steps * row_bytes] -> the data spec's nest of
    [N, sequence_length, ...], observations stacked."""
    steps = self.stored.unpack(rows)
    window = tf.nest.map_structure(lambda x: x[:, self.frame_stack - 1:], steps)
    return window._replace(
        observation=_compiled_stack_frames(steps.observation, steps.step_type, self.frame_stack))


def _describe(spec) -> str:
  if isinstance(spec, tf.TensorSpec):
    return f"{spec.dtype.name} {spec.shape.as_list()}"
  return "a nest" if spec is not None else "not a Trajectory's"
