"""A run SIGKILLed at several points resumes from its last checkpoint:
counters continue, progress.csv has every evaluation once, and the replay
table is restored to what it held at the checkpoint."""

import csv
import math
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "scripts", "train.py")
DQN_TINY = ["num_iterations=12", "eval_interval=2", "checkpoint_interval=4",
            "initial_collect_steps=40", "collect_steps_per_iteration=10",
            "train_steps_per_iteration=2", "batch_size=8", "num_eval_episodes=1",
            "export_policy=False"]


def train(root, kill_at=None):
  env = dict(os.environ)
  env.pop("TFRL_KILL_AT", None)
  if kill_at:
    env["TFRL_KILL_AT"] = kill_at
  args = [sys.executable, TRAIN, "--gin_file=envs/cartpole.gin", "--gin_file=agents/dqn.gin",
          f"--root_dir={root}", "--gin_bindings=tfrl.replay.TransitionReplay.min_size=20"]
  args += [f"--gin_bindings=tfrl.train.train.{b}" for b in DQN_TINY]
  return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)


def iterations(root):
  with open(os.path.join(root, "progress.csv")) as f:
    return [int(r["iteration"]) for r in csv.DictReader(f)]


def latest_checkpoint(root):
  path = os.path.join(root, "checkpoints", "checkpoint")
  if not os.path.exists(path):
    return None
  return int(re.search(r'model_checkpoint_path: "ckpt-(\d+)"', open(path).read()).group(1))


def test_sigkill_at_any_point_then_resume(tmp_path):
  root = str(tmp_path / "run")
  # Each kill lands in a later part of the run; the counts are per process.
  kills = [("collect:95", None),   # mid-collection of iteration 6 (40 initial + 10 per iteration)
           ("checkpoint:1", 4),    # between the replay and the agent checkpoint of iteration 8
           ("train:3", 4)]         # mid-training, iteration 7
  expected_checkpoint = 4
  for kill_at, resumes_from in kills:
    result = train(root, kill_at)
    assert result.returncode == -9, f"{kill_at}: not killed\n{result.stderr[-2000:]}"
    if resumes_from is not None:
      assert "resuming " in result.stdout and f"at iteration {resumes_from}" in result.stdout
      assert re.search(r"replay restored: \d+ items, as checkpointed", result.stdout)
    assert latest_checkpoint(root) == expected_checkpoint
    # Rows past the checkpoint may exist until the resume drops them; none is doubled.
    assert sorted(set(iterations(root))) == iterations(root)
  result = train(root)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "at iteration 4" in result.stdout
  assert re.search(r"replay restored: \d+ items, as checkpointed", result.stdout)
  assert iterations(root) == [0, 2, 4, 6, 8, 10, 12]
  with open(os.path.join(root, "progress.csv")) as f:
    last = list(csv.DictReader(f))[-1]
  assert int(last["train_steps"]) == 12 * 2   # the counter continued from the checkpoint
  assert latest_checkpoint(root) == 12
  # Exactly the replay checkpoints that the kept agent checkpoints name remain.
  replay = {n for n in os.listdir(os.path.join(root, "replay_checkpoints")) if n != ".reverb"}
  assert replay == {"ckpt-4", "ckpt-8", "ckpt-12"}
  assert_tensorboard_matches_progress(root)


def assert_tensorboard_matches_progress(root):
  """TensorBoard's scalars, read back, are exactly progress.csv's rows."""
  from tensorboard.backend.event_processing import event_accumulator
  events = event_accumulator.EventAccumulator(os.path.join(root, "tensorboard"))
  events.Reload()
  with open(os.path.join(root, "progress.csv")) as f:
    rows = list(csv.DictReader(f))
  tags = events.Tags()["scalars"]
  assert {"avg_return", "env_steps", "loss"} <= set(tags)
  for tag in tags:
    expected = [(int(r["env_steps"]), float(r[tag])) for r in rows if r[tag] != ""]
    got = [(e.step, e.value) for e in events.Scalars(tag)]
    assert len(got) == len(expected), tag
    for (step, value), (want_step, want) in zip(got, expected):
      assert step == want_step, (tag, got, expected)
      # TensorBoard keeps float32: equal to the CSV's 6 digits within its precision.
      assert math.isclose(value, want, rel_tol=1e-6) or (math.isnan(value) and math.isnan(want)), \
          (tag, got, expected)
