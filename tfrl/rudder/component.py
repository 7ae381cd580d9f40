"""RUDDER as a component of the on-policy train loop.

`tfrl.train.train(reward_redistribution=@tfrl.rudder.RewardRedistribution)`
builds one from the environment's specs; the loop then hands it each
iteration's episodes (numpy trajectories, FIRST .. boundary) before
`agent.train`. For each batch of episodes it

  1. computes the model's loss on them and stores them in the lessons buffer,
  2. once the buffer holds `min_episodes` episodes with more than one
     distinct return, trains the model for `updates_per_iteration` steps on
     episodes drawn from the buffer (their losses updated afterwards),
  3. rewrites the episodes' rewards: redistributed_weight * redistributed
     + immediate_weight * the environment's reward. Until the model has
     trained, the environment's rewards pass through unchanged.

The agent never knows: it trains on trajectories whose rewards changed.

What it learns — the model, its optimizer, the update count and the
lessons buffer — is `checkpointed`, a trackable the train loop adds to the
run's checkpoint, so a resumed run redistributes as before the kill.
"""

from typing import List

import gin
import numpy as np
import tensorflow as tf
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory as trajectory_lib

from tfrl.networks import adam
from tfrl.rudder.lessons import LessonsBuffer
from tfrl.rudder.model import ReturnPredictor
from tfrl.rudder.redistribution import redistribute, redistribution_loss


def pad(sequences: List[np.ndarray]):
  """[T_i, F] arrays -> ([B, max T, F] zero-padded, mask [B, max T])."""
  lengths = [len(s) for s in sequences]
  batch = np.zeros((len(sequences), max(lengths)) + sequences[0].shape[1:], np.float32)
  mask = np.zeros((len(sequences), max(lengths)), np.float32)
  for b, s in enumerate(sequences):
    batch[b, :len(s)] = s
    mask[b, :len(s)] = 1.0
  return batch, mask


class EpisodeFeatures:
  """An episode's model input: per step, the flattened observation and the
  action (one-hot if discrete), concatenated, [T, F]."""

  def __init__(self, observation_spec, action_spec):
    self.num_actions = None
    if action_spec.dtype.is_integer:
      self.num_actions = int(action_spec.maximum) - int(action_spec.minimum) + 1
      self._action_min = int(action_spec.minimum)
    action_size = self.num_actions or int(np.prod(action_spec.shape))
    self.size = int(np.prod(observation_spec.shape)) + action_size

  def __call__(self, observation: np.ndarray, action: np.ndarray) -> np.ndarray:
    steps = len(observation)
    if self.num_actions:
      action = np.eye(self.num_actions, dtype=np.float32)[np.asarray(action) - self._action_min]
    return np.concatenate([np.reshape(observation, (steps, -1)).astype(np.float32),
                           np.reshape(action, (steps, -1)).astype(np.float32)], axis=1)


@gin.configurable(module="tfrl.rudder")
class RewardRedistribution:

  def __init__(self, time_step_spec, action_spec,
               model_fn=ReturnPredictor,
               lessons_fn=LessonsBuffer,
               learning_rate: float = 1e-3,
               batch_size: int = 8,
               updates_per_iteration: int = 16,
               min_episodes: int = 256,
               aux_weight: float = 0.5,
               return_scale: float = 1.0,
               redistributed_weight: float = 1.0,
               immediate_weight: float = 0.0):
    """`return_scale`: the model regresses return / return_scale, keeping
    its losses (and the lessons' softmax temperature) near 1 whatever the
    task's return range. `min_episodes`: the reference demo waits for more
    than 256."""
    self.features = EpisodeFeatures(time_step_spec.observation, action_spec)
    self.model = model_fn()
    self.lessons = lessons_fn()
    self.lessons.start(self.features.size)
    self.optimizer = adam(learning_rate)
    self.batch_size = batch_size
    self.updates_per_iteration = updates_per_iteration
    self.min_episodes = min_episodes
    self.aux_weight = aux_weight
    self.return_scale = return_scale
    self.redistributed_weight = redistributed_weight
    self.immediate_weight = immediate_weight
    self._model_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="model_updates")
    self.diagnostics = {}
    self._build()
    self.checkpointed = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                            model_updates=self._model_updates,
                                            lessons=self.lessons)

    x_spec = tf.TensorSpec([None, None, self.features.size], tf.float32)
    row_spec = tf.TensorSpec([None], tf.float32)
    mask_spec = tf.TensorSpec([None, None], tf.float32)
    # One trace each, whatever the episodes' lengths.
    self.predict = tf.function(lambda x: self.model(x) * return_scale, input_signature=[x_spec])
    self._loss = tf.function(
        lambda x, returns, mask: redistribution_loss(self.model(x), returns / return_scale, mask,
                                                     aux_weight)[1],
        input_signature=[x_spec, row_spec, mask_spec])
    self._train_step = tf.function(self._train_step_fn,
                                   input_signature=[x_spec, row_spec, mask_spec])

  def _build(self):
    """Creates the model's and the optimizer's variables now rather than at
    their first use, so that a restored checkpoint sets them at once: TF
    would hold the values until the variables appear, and a checkpoint
    saved before then would lack them."""
    self.model(tf.zeros([1, 1, self.features.size]))
    self.optimizer.build(self.model.trainable_variables)

  def _train_step_fn(self, x, returns, mask):
    with tf.GradientTape() as tape:
      loss, per_episode = redistribution_loss(self.model(x), returns / self.return_scale, mask,
                                              self.aux_weight)
    variables = self.model.trainable_variables
    self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss, per_episode

  @property
  def model_updates(self) -> int:
    return int(self._model_updates.numpy())

  @property
  def active(self) -> bool:
    """Whether rewards are being redistributed (the model has trained)."""
    return self.model_updates > 0

  def train_model(self, num_updates: int) -> float:
    """`num_updates` steps on batches from the lessons buffer; the mean loss."""
    losses = []
    for _ in range(num_updates):
      features, returns, keys = self.lessons.sample(self.batch_size)
      x, mask = pad(features)
      loss, per_episode = self._train_step(x, returns, mask)
      self.lessons.update_losses(keys, per_episode.numpy())
      losses.append(float(loss))
      self._model_updates.assign_add(1)
    return float(np.mean(losses))

  def store(self, features: List[np.ndarray], returns: np.ndarray) -> np.ndarray:
    """Puts episodes ([T_i, F] features, returns) in the lessons buffer with
    the model's current loss on them; returns those losses."""
    x, mask = pad(features)
    losses = self._loss(x, np.asarray(returns, np.float32), mask).numpy()
    self.lessons.add(features, returns, losses)
    return losses

  def redistribute(self, features: List[np.ndarray], returns: np.ndarray) -> np.ndarray:
    """The redistributed rewards of episodes, [B, max T] float64 (0 past an
    episode's end); each row sums to its return."""
    x, mask = pad(features)
    predictions = tf.cast(self.predict(x), tf.float64)
    return redistribute(predictions, np.asarray(returns, np.float64), mask).numpy()

  def __call__(self, episodes: List[trajectory_lib.Trajectory]) -> List[trajectory_lib.Trajectory]:
    steps = [e.step_type != ts.StepType.LAST for e in episodes]  # boundary rows excluded
    features = [self.features(e.observation[s], e.action[s]) for e, s in zip(episodes, steps)]
    env_rewards = [e.reward[s].astype(np.float64) for e, s in zip(episodes, steps)]
    returns = np.array([r.sum() for r in env_rewards])

    # The loss on fresh episodes, before the model trains on them: a held-out figure.
    new_loss = self.store(features, returns)
    self.diagnostics = dict(rudder_new_episode_loss=float(np.mean(new_loss)))
    if self.lessons.size >= self.min_episodes and len(self.lessons.returns_seen) > 1:
      # Only when trained: progress.csv averages each column over its iterations.
      self.diagnostics["rudder_loss"] = self.train_model(self.updates_per_iteration)
    self.diagnostics.update(rudder_active=float(self.active),
                            lessons_size=float(self.lessons.size))
    if not self.active:
      return episodes

    redistributed = self.redistribute(features, returns)
    rewritten = []
    for b, (episode, step) in enumerate(zip(episodes, steps)):
      reward = episode.reward.copy()
      reward[step] = (self.redistributed_weight * redistributed[b, :step.sum()]
                      + self.immediate_weight * env_rewards[b])
      rewritten.append(episode._replace(reward=reward))
    return rewritten

  def close(self):
    self.lessons.close()
