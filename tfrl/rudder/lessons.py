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

The buffer is part of a run's checkpoint (a `tf.train.experimental.PythonState`
inside the same `tf.train.Checkpoint` as the agent): `serialize` packs a
Reverb checkpoint of the table (items, priorities) and the bookkeeping into
one string, `deserialize` restarts the server on it. Reverb offers no way to
list a table's items, so its own checkpoint is the only exact copy; carried
inside the TF checkpoint it is written, kept and deleted with it.
"""

import contextlib
import io
import math
import os
import shutil
import tempfile
import uuid
from typing import Sequence

import gin
import numpy as np
import reverb
import tensorflow as tf

from tfrl.replay import ReplayServer

_REVERB_FILE = "reverb/"  # prefix of the Reverb checkpoint's files in the serialized state


@gin.configurable(module="tfrl.rudder")
class LessonsBuffer(tf.train.experimental.PythonState):

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
    self._feature_size = None
    self._server = self._writer = None
    # Reverb checkpoints only to disk: serialize and deserialize pass through
    # this directory, which exists only while they run.
    self._scratch_dir = os.path.join(tempfile.gettempdir(), f"tfrl-lessons-{uuid.uuid4().hex}")

  def start(self, feature_size: int):
    self._feature_size = feature_size
    self._start_server()

  def _table(self) -> reverb.Table:
    signature = (tf.TensorSpec([None, self._feature_size], tf.float32, name="features"),
                 tf.TensorSpec([], tf.float32, name="return"))
    return reverb.Table(name=self.table_name,
                        sampler=reverb.selectors.Prioritized(priority_exponent=1.0),
                        remover=reverb.selectors.MinHeap(),
                        max_size=self.capacity,
                        rate_limiter=reverb.rate_limiters.MinSize(1),
                        signature=signature)

  def _start_server(self, restore_from=None):
    """Its checkpoint directory holds no checkpoint (see `_scratch`), so the
    server loads `restore_from` (a Reverb checkpoint) if given, else starts empty."""
    self._server = ReplayServer([self._table()],
                                checkpoint_dir=os.path.join(self._scratch_dir, "checkpoints"),
                                restore_from=restore_from)
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

  def serialize(self) -> bytes:
    """The table's contents (a Reverb checkpoint's files) and the
    bookkeeping, as one .npz archive."""
    with self._scratch():
      reverb_files = _read_tree(self._server.checkpoint())
    arrays = {_REVERB_FILE + name: np.frombuffer(data, np.uint8)
              for name, data in reverb_files.items()}
    arrays.update(returns_seen=np.array(sorted(self.returns_seen), np.float64),
                  episodes_added=np.int64(self.episodes_added),
                  max_priority=np.float64(self._max_priority))
    archive = io.BytesIO()
    np.savez(archive, **arrays)
    return archive.getvalue()

  def deserialize(self, string_value: bytes):
    """Replaces the contents by those `serialize` returned."""
    with np.load(io.BytesIO(string_value), allow_pickle=False) as arrays:
      reverb_files = {key[len(_REVERB_FILE):]: arrays[key].tobytes()
                      for key in arrays.files if key.startswith(_REVERB_FILE)}
      self._restart_from(reverb_files)
      self.returns_seen = set(arrays["returns_seen"].tolist())
      self.episodes_added = int(arrays["episodes_added"])
      self._max_priority = float(arrays["max_priority"])

  def _restart_from(self, reverb_files: dict):
    with self._scratch() as scratch:
      restore_from = os.path.join(scratch, "restore")
      _write_tree(restore_from, reverb_files)
      self.close()
      self._start_server(restore_from)

  @contextlib.contextmanager
  def _scratch(self):
    try:
      yield self._scratch_dir
    finally:
      shutil.rmtree(self._scratch_dir, ignore_errors=True)

  def close(self):
    if self._writer is not None:
      self._writer.close()
    if self._server is not None:
      self._server.close()
    self._server = self._writer = None


def _read_tree(root: str) -> dict:
  files = {}
  for directory, _, names in os.walk(root):
    for name in names:
      path = os.path.join(directory, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, root)] = f.read()
  return files


def _write_tree(root: str, files: dict):
  for relative, data in files.items():
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(data)
