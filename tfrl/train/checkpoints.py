"""What a run saves so that it can be resumed, and the policies it exports.

`RunCheckpoint` saves the agent (networks, optimizers, train step), the
loop's counters and — for replay that outlives an iteration — the Reverb
tables, as one unit. Order of writing: the Reverb server writes its
checkpoint into `replay_checkpoints/.reverb/`; it is renamed to
`replay_checkpoints/ckpt-<iteration>` (Reverb deletes its older checkpoints
itself, which must not take the one the last agent checkpoint names); then the
TF checkpoint naming it; then TF's `checkpoint` index (written atomically by
TF). A kill at any point leaves the previous complete checkpoint as the
latest. On resume the server is started on an empty `.reverb/` with the named
replay checkpoint as its fallback, so exactly that one is loaded; replay
checkpoints no agent checkpoint names are removed.

`PolicyExport` writes the greedy policy as a SavedModel once
(`policies/saved_model`) and its variables at every evaluation
(`policies/checkpoints/<iteration>`), which `tf_agents.policies.policy_loader`
(or `scripts/test_policy.py`) loads without any tfrl training code.
"""

import os
import shutil
import warnings
from typing import Dict, Optional, Tuple

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
    self._reverb_dir = os.path.join(self.replay_dir, ".reverb")

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

  def prepare_replay_restore(self) -> Tuple[str, Optional[str]]:
    """Before the replay server starts: clears Reverb's own directory and the
    replay checkpoints no agent checkpoint names (a kill came between the
    writes). Returns (the server's checkpoint directory, the replay
    checkpoint to load or None)."""
    shutil.rmtree(self._reverb_dir, ignore_errors=True)
    self._remove_unnamed_replay_checkpoints()
    linked = self._replay_path_of(self.latest) if self.latest else ""
    restore_from = os.path.join(self.replay_dir, linked) if linked else None
    if restore_from and not os.path.isdir(restore_from):
      raise ConfigError(f"replay checkpoint {restore_from} named by {self.latest} is missing")
    return self._reverb_dir, restore_from

  def restore(self):
    """Restores the latest checkpoint; a damaged one is a ConfigError."""
    self._replay_path_of(self.latest)  # readable at all?
    try:
      # Optimizer slots are created by the first train step and restored then
      # (deferred); expect_partial keeps TF from warning about them meanwhile.
      self._checkpoint.restore(self.latest).assert_existing_objects_matched().expect_partial()
    except (tf.errors.OpError, AssertionError, ValueError, IndexError, KeyError) as e:
      raise ConfigError(f"checkpoint {self.latest} does not match this run or is damaged "
                        f"({type(e).__name__})") from None

  def save(self, iteration: int, replay_server=None):
    """`replay_server` given: its tables are checkpointed first."""
    if replay_server is not None:
      name = f"ckpt-{iteration}"
      final = os.path.join(self.replay_dir, name)
      shutil.rmtree(final, ignore_errors=True)  # an orphan of a killed attempt
      os.rename(replay_server.checkpoint(), final)
      self._replay_path.assign(name)
    faults.point("checkpoint")
    self._manager.save(checkpoint_number=iteration)
    if replay_server is not None:
      self._remove_unnamed_replay_checkpoints()

  def _remove_unnamed_replay_checkpoints(self):
    if not os.path.isdir(self.replay_dir):
      return
    named = {self._replay_path_of(p) for p in self._manager.checkpoints}
    for name in os.listdir(self.replay_dir):
      if name.startswith("ckpt-") and name not in named:
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
      with warnings.catch_warnings():
        # TF notes that loading needs tfp's distribution types registered;
        # tf-agents' policy_loader imports tfp, so it always is.
        warnings.filterwarnings("ignore", message="Encoding a StructuredValue")
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
