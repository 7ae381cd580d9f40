"""RUDDER's math as small pure functions over padded batches of episodes.

Shapes: `predictions` [B, T] (the model's return prediction after each step),
`returns` [B], `mask` [B, T] (1 on an episode's steps, 0 on padding after
its end; every episode has at least one step).
"""

from typing import Tuple

import tensorflow as tf


def last_step(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  """values[b, length_b - 1]: each episode's value at its last step, [B]."""
  lengths = tf.cast(tf.reduce_sum(mask, axis=1), tf.int32)
  return tf.gather(values, lengths - 1, axis=1, batch_dims=1)


def redistribution_loss(predictions: tf.Tensor, returns: tf.Tensor, mask: tf.Tensor,
                        aux_weight: float = 0.5) -> Tuple[tf.Tensor, tf.Tensor]:
  """The model's loss, (mean over the batch, per episode [B]).

    main_b = (prediction at the last step - return)^2
    aux_b  = mean over the episode's steps of (prediction_t - return)^2
    loss_b = main_b + aux_weight * aux_b

  The auxiliary task (predict the final return at every step) pushes the
  model to see the return coming early, which moves redistributed reward
  toward the actions that caused it. Mean *squared* error: the tutorial's
  code squares the mean error, `mean(pred - ret) ** 2`, which lets errors of
  opposite sign cancel.
  """
  mask = tf.cast(mask, predictions.dtype)
  returns = tf.cast(returns, predictions.dtype)
  main = tf.square(last_step(predictions, mask) - returns)
  squared = tf.square(predictions - returns[:, None]) * mask
  aux = tf.reduce_sum(squared, axis=1) / tf.reduce_sum(mask, axis=1)
  per_episode = main + aux_weight * aux
  return tf.reduce_mean(per_episode), per_episode


def redistribute(predictions: tf.Tensor, returns: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  """Contribution analysis by differences of successive predictions, [B, T].

    reward_0 = prediction_0,  reward_t = prediction_t - prediction_{t-1}

  These sum to the last prediction; the prediction error
  (return - last prediction) is then spread evenly over the episode's steps,
  so each redistributed episode has exactly its original return (return
  equivalence). Padding steps get 0. Compute in float64 when the sum must
  hold to 1e-5 or better.
  """
  mask = tf.cast(mask, predictions.dtype)
  returns = tf.cast(returns, predictions.dtype)
  predictions = predictions * mask
  previous = tf.pad(predictions[:, :-1], [[0, 0], [1, 0]])
  rewards = (predictions - previous) * mask
  error = returns - tf.reduce_sum(rewards, axis=1)
  return rewards + (error / tf.reduce_sum(mask, axis=1))[:, None] * mask
