"""The lessons buffer: complete episodes the reward-redistribution model keeps learning from.

A Reverb table of episodes (the model's input features [T, F] and the
return), as in RUDDER's reference implementation:
  * sampled with probability softmax(loss / temperature) over the stored
    episodes: Reverb's `Prioritized` selector with exponent 1 on priority
    exp(loss / temperature) is exactly that softmax;
  * an episode's loss is updated after it is replayed (`update_losses`);
  * when full, the lowest-loss episode leaves (a `MinHeap` remover): a new
    episode of lower loss than every stored one leaves at once, i.e. it
    replaces the lowest only if its loss is higher.
Episodes whose return has not been stored before enter with the highest
priority seen so far, so rare returns are kept and replayed soon: that keeps
the returns in the buffer diverse, which the model needs to learn anything.
"""

import math
from typing import Sequence

import gin
import numpy as np
import reverb
import tensorflow as tf

from tfrl.replay import ReplayServer


@gin.configurable(module="tfrl.rudder")
class LessonsBuffer:

  def __init__(self, capacity: int = 512, temperature: float = 1.0,
               max_exponent: float = 20.0, table_name: str = "lessons"):
    """`max_exponent` caps loss / temperature: Reverb sums priorities in
    doubles, and exp(20) next to exp(0) keeps that sum exact enough; losses
    beyond 20 temperatures are sampled alike."""
    self.capacity = capacity
    self.temperature = temperature
    self.max_exponent = max_exponent
    self.table_name = table_name
    self.returns_seen = set()
    self.episodes_added = 0
    self._max_priority = 1.0
    self._server = self._writer = None

  def start(self, feature_size: int):
    signature = (tf.TensorSpec([None, feature_size], tf.float32, name="features"),
                 tf.TensorSpec([], tf.float32, name="return"))
    table = reverb.Table(name=self.table_name,
                         sampler=reverb.selectors.Prioritized(priority_exponent=1.0),
                         remover=reverb.selectors.MinHeap(),
                         max_size=self.capacity,
                         rate_limiter=reverb.rate_limiters.MinSize(1),
                         signature=signature)
    self._server = ReplayServer([table])
    self._writer = self._server.client.writer(max_sequence_length=1)

  def priority(self, loss: float) -> float:
    return math.exp(min(float(loss) / self.temperature, self.max_exponent))

  def add(self, features: Sequence[np.ndarray], returns: Sequence[float],
          losses: Sequence[float]):
    """Stores episodes ([T_i, F] features, return, the model's loss on them)."""
    for x, ret, loss in zip(features, returns, losses):
      priority = self.priority(loss)
      key = round(float(ret), 6)
      if key not in self.returns_seen:
        priority = max(priority, self._max_priority)
        self.returns_seen.add(key)
      self._max_priority = max(self._max_priority, priority)
      self._writer.append((np.asarray(x, np.float32), np.float32(ret)))
      self._writer.create_item(self.table_name, 1, priority)
      self.episodes_added += 1
    self._writer.flush()

  def sample(self, num_episodes: int):
    """num_episodes draws (with replacement): (features list, returns [N], keys [N])."""
    features, returns, keys = [], [], []
    for sample in self._server.client.sample(self.table_name, num_samples=num_episodes):
      x, ret = sample[0].data
      features.append(x)
      returns.append(float(ret))
      keys.append(int(sample[0].info.key))
    return features, np.asarray(returns, np.float32), keys

  def update_losses(self, keys: Sequence[int], losses: Sequence[float]):
    """New losses of replayed episodes (a key drawn twice keeps its last loss)."""
    updates = {k: self.priority(l) for k, l in zip(keys, losses)}
    self._max_priority = max([self._max_priority] + list(updates.values()))
    self._server.client.mutate_priorities(self.table_name, updates=updates)

  @property
  def size(self) -> int:
    return self._server.client.server_info()[self.table_name].current_size

  def close(self):
    if self._writer is not None:
      self._writer.close()
    if self._server is not None:
      self._server.close()
    self._server = self._writer = None

