"""What a run saves so that it can be resumed, and the policies it exports.

`RunCheckpoint` saves the agent (networks, optimizers, train step), the
loop's counters and — for replay that outlives an iteration — the Reverb
tables, as one unit. Order of writing: the Reverb checkpoint, then the TF
checkpoint that names it, then TF's `checkpoint` index (written atomically by
TF). A kill at any point leaves the previous complete checkpoint as the
latest; a Reverb checkpoint no TF checkpoint names is an orphan, removed on
resume before the server loads "the latest" Reverb checkpoint.

`PolicyExport` writes the greedy policy as a SavedModel once
(`policies/saved_model`) and its variables at every evaluation
(`policies/checkpoints/<iteration>`), which `tf_agents.policies.policy_loader`
(or `scripts/test_policy.py`) loads without any tfrl training code.
"""

import os
import shutil
from typing import Dict, Optional

import tensorflow as tf
from tf_agents.policies import policy_saver

from tfrl.errors import ConfigError
from tfrl.train import faults

CHECKPOINT_DIR = "checkpoints"
REPLAY_CHECKPOINT_DIR = "replay_checkpoints"
POLICY_DIR = "policies"
_REPLAY_KEY = "replay_checkpoint/.ATTRIBUTES/VARIABLE_VALUE"


class RunCheckpoint:

  def __init__(self, root_dir: str, agent, counters: Dict[str, tf.Variable], max_to_keep: int = 3):
    self._replay_path = tf.Variable("", dtype=tf.string, name="replay_checkpoint")
    self._checkpoint = tf.train.Checkpoint(agent=agent, replay_checkpoint=self._replay_path,
                                           **counters)
    self._manager = tf.train.CheckpointManager(
        self._checkpoint, os.path.join(root_dir, CHECKPOINT_DIR), max_to_keep=max_to_keep)
    self.replay_dir = os.path.join(root_dir, REPLAY_CHECKPOINT_DIR)

  @property
  def latest(self) -> Optional[str]:
    return self._manager.latest_checkpoint

  def _replay_path_of(self, checkpoint_path: str) -> str:
    try:
      reader = tf.train.load_checkpoint(checkpoint_path)
      if not reader.has_tensor(_REPLAY_KEY):
        return ""
      return reader.get_tensor(_REPLAY_KEY).decode()
    except (tf.errors.OpError, ValueError) as e:
      raise ConfigError(f"checkpoint {checkpoint_path} is unreadable "
                        f"({type(e).__name__}); delete it or use another run directory") from None

  def prepare_replay_restore(self) -> Optional[str]:
    """Before the replay server starts: removes Reverb checkpoints that no TF
    checkpoint names (a kill came between the two writes), so the server
    loads the one the latest TF checkpoint names. Returns the checkpoint
    directory to give the server."""
    linked = self._replay_path_of(self.latest) if self.latest else ""
    keep = {os.path.basename(linked)} if linked else set()
    self._remove_replay_checkpoints(keep=keep, newer_than_only=bool(linked))
    return self.replay_dir

  def restore(self):
    """Restores the latest checkpoint; a damaged one is a ConfigError."""
    self._replay_path_of(self.latest)  # readable at all?
    try:
      # Optimizer slots are created by the first train step and restored then
      # (deferred); expect_partial keeps TF from warning about them meanwhile.
      self._checkpoint.restore(self.latest).assert_existing_objects_matched().expect_partial()
    except (tf.errors.OpError, AssertionError, ValueError) as e:
      raise ConfigError(f"checkpoint {self.latest} does not match this run or is damaged "
                        f"({type(e).__name__})") from None

  def save(self, iteration: int, replay_server=None):
    """`replay_server` given: its tables are checkpointed first."""
    if replay_server is not None:
      self._replay_path.assign(replay_server.checkpoint())
    faults.point("checkpoint")
    self._manager.save(checkpoint_number=iteration)
    if replay_server is not None:
      kept = {os.path.basename(self._replay_path_of(p))
              for p in self._manager.checkpoints}
      self._remove_replay_checkpoints(keep=kept, newer_than_only=False)

  def _remove_replay_checkpoints(self, keep, newer_than_only: bool):
    if not os.path.isdir(self.replay_dir):
      return
    newest_kept = max(keep) if keep else ""
    for name in os.listdir(self.replay_dir):
      # Reverb names checkpoints by timestamp, so names sort by age.
      if name in keep or (newer_than_only and name <= newest_kept):
        continue
      shutil.rmtree(os.path.join(self.replay_dir, name), ignore_errors=True)


class PolicyExport:

  def __init__(self, root_dir: str, policy, train_step: tf.Variable):
    self._dir = os.path.join(root_dir, POLICY_DIR)
    self._saver = policy_saver.PolicySaver(policy, batch_size=None, train_step=train_step)

  def save(self, iteration: int):
    """Writes the SavedModel if missing and this evaluation's variables,
    each into a temporary directory renamed into place."""
    saved_model = os.path.join(self._dir, "saved_model")
    if not os.path.exists(os.path.join(saved_model, "saved_model.pb")):
      self._write(saved_model, self._saver.save)
    self._write(os.path.join(self._dir, "checkpoints", f"{iteration:09d}"),
                self._saver.save_checkpoint)

  @staticmethod
  def _write(final_dir: str, save_fn):
    tmp = final_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_fn(tmp)
    shutil.rmtree(final_dir, ignore_errors=True)
    os.makedirs(os.path.dirname(final_dir), exist_ok=True)
    os.rename(tmp, final_dir)
