"""scripts/test_policy.py: the saved policy runs without tfrl's training code,
records an mp4 without a display, and bad input is one line."""

import os
import re
import shutil
import subprocess
import sys

import imageio
import pytest

import tfrl
from tfrl.train import config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_POLICY = os.path.join(REPO, "scripts", "test_policy.py")
TINY = ["tfrl.train.train.num_iterations = 2", "tfrl.train.train.eval_interval = 2",
        "tfrl.train.train.num_envs = 2", "tfrl.train.train.collect_episodes_per_iteration = 2",
        "tfrl.train.train.num_eval_episodes = 1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("policy") / "run")
  config.parse_config(["reinforce_cartpole.gin"], TINY)
  tfrl.train.train(root, log=lambda _: None)
  return root


def test_policy(*args):
  env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # a machine with no display
  return subprocess.run([sys.executable, TEST_POLICY, *args], capture_output=True, text=True,
                        timeout=300, env=env)
test_policy.__test__ = False  # a helper, not a test


def test_exports_a_policy_per_evaluation(run_dir):
  policies = os.path.join(run_dir, "policies")
  assert os.path.exists(os.path.join(policies, "saved_model", "saved_model.pb"))
  assert sorted(os.listdir(os.path.join(policies, "checkpoints"))) == ["000000000", "000000002"]


def test_video_without_a_display(run_dir, tmp_path):
  video = tmp_path / "episodes.mp4"
  result = test_policy(run_dir, "-n", "2", "-l", "30", "--video", str(video))
  assert result.returncode == 0, result.stderr
  lengths = [int(n) for n in re.findall(r"^episode \d+: return [-\d.]+, length (\d+)$",
                                        result.stdout, re.M)]
  assert len(lengths) == 2 and all(1 <= n <= 30 for n in lengths)
  # (a comprehension: list() would size itself by the reader's infinite len())
  frames = [frame for frame in imageio.get_reader(str(video))]
  assert len(frames) == sum(n + 1 for n in lengths)   # the reset frame + one per step
  assert frames[0].ndim == 3 and frames[0].shape[2] == 3


def test_earlier_checkpoint_and_bad_input(run_dir, tmp_path):
  earlier = test_policy(run_dir, "-n", "1", "--norender", "--checkpoint", "0")
  assert earlier.returncode == 0 and "000000000" in earlier.stdout, earlier.stderr
  cases = [([str(tmp_path / "nowhere")], "does not exist"),
           ([str(tmp_path)], "is not a run directory"),
           ([run_dir, "--checkpoint", "7"], "no policy checkpoint for iteration 7")]
  no_policy = tmp_path / "no_policy"
  no_policy.mkdir()
  (no_policy / "config.gin").write_text("train.env_id = 'CartPole-v1'\n")
  cases.append(([str(no_policy)], "holds no saved policy"))
  for args, message in cases:
    result = test_policy(*args, "--norender")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("test_policy.py: error:")
    assert message in result.stderr and "Traceback" not in result.stderr


def _snapshot(directory):
  return {os.path.relpath(os.path.join(d, n), directory): open(os.path.join(d, n), "rb").read()
          for d, _, names in os.walk(directory) for n in names}


def test_truncated_policy_checkpoint_is_one_line_and_touches_nothing(run_dir, tmp_path):
  damaged = str(tmp_path / "damaged")
  shutil.copytree(run_dir, damaged)
  variables = os.path.join(damaged, "policies", "checkpoints", "000000002", "variables")
  data = next(os.path.join(variables, n) for n in os.listdir(variables) if ".data" in n)
  with open(data, "r+b") as f:
    f.truncate(10)
  before = _snapshot(damaged)
  result = test_policy(damaged, "-n", "1", "--norender")
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("test_policy.py: error: cannot load the policy")
  assert "000000002" in lines[0]
  assert _snapshot(damaged) == before
  # The undamaged earlier evaluation still loads.
  assert test_policy(damaged, "-n", "1", "--norender", "--checkpoint", "0").returncode == 0
