"""SIGINT / SIGTERM mid-run: the loop checkpoints at the iteration it stops
at, the rerun resumes there and says so, and progress.csv and TensorBoard
hold exactly an uninterrupted run's rows up to that point."""

import csv
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from test_resume import assert_tensorboard_matches_progress

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "scripts", "train.py")
BINDINGS = ["tfrl.train.train.num_envs = 2", "tfrl.train.train.collect_episodes_per_iteration = 2",
            "tfrl.train.train.eval_interval = 2", "tfrl.train.train.num_eval_episodes = 1",
            "tfrl.train.train.eval_num_envs = 1", "tfrl.train.train.export_policy = False",
            # Only the interrupt may checkpoint before the end.
            "tfrl.train.train.checkpoint_interval = 1000", "tfrl.envs.load.max_episode_steps = 20"]


def command(root, num_iterations):
  bindings = BINDINGS + [f"tfrl.train.train.num_iterations = {num_iterations}"]
  return [sys.executable, TRAIN, "--gin_file=reinforce_cartpole.gin", f"--root_dir={root}"] + [
      f"--gin_bindings={b}" for b in bindings]


def rows(root):
  path = os.path.join(root, "progress.csv")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return list(csv.DictReader(f))


def counters(row):
  """A row without its clock (wall time differs from run to run)."""
  return {k: v for k, v in row.items() if k != "wall_s"}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_checkpoints_where_it_stops_and_the_rerun_resumes_there(tmp_path, signum):
  root = str(tmp_path / "run")
  process = subprocess.Popen(command(root, 10_000), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  while len(rows(root)) < 3:  # iterations 0, 2, 4 written
    assert process.poll() is None and time.time() < deadline, process.communicate()
    time.sleep(0.05)
  process.send_signal(signum)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 128 + signum, stderr
  lines = [l for l in stderr.splitlines() if l.startswith("train.py:")]
  match = re.fullmatch(r"train.py: error: interrupted at iteration (\d+); checkpointed there: "
                       r"the same command resumes the run", lines[-1])
  assert match, stderr[-2000:]
  stopped_at = int(match.group(1))
  with open(os.path.join(root, "checkpoints", "checkpoint")) as f:
    assert f'model_checkpoint_path: "ckpt-{stopped_at}"' in f.read()
  interrupted_rows = rows(root)
  assert all(int(r["iteration"]) <= stopped_at for r in interrupted_rows)
  assert_tensorboard_matches_progress(root)

  # An uninterrupted run of the same seed up to there wrote the same rows.
  reference = str(tmp_path / "reference")
  done = subprocess.run(command(reference, stopped_at), capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  expected = [r for r in rows(reference) if int(r["iteration"]) % 2 == 0]
  assert [counters(r) for r in interrupted_rows] == [counters(r) for r in expected]

  # The rerun says where it resumes and goes on from there.
  rerun = subprocess.Popen(command(root, 10_000), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
  while len(rows(root)) <= len(interrupted_rows):
    assert rerun.poll() is None and time.time() < deadline + 240, rerun.communicate()
    time.sleep(0.05)
  rerun.send_signal(signal.SIGINT)
  stdout, _ = rerun.communicate(timeout=120)
  assert f"resuming {root} at iteration {stopped_at}" in stdout
  assert [counters(r) for r in rows(root)[:len(interrupted_rows)]] == \
      [counters(r) for r in interrupted_rows]
  assert_tensorboard_matches_progress(root)
