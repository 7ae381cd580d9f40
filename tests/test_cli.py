"""scripts/train.py: a real run, and one clear line for every kind of bad input."""

import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "scripts", "train.py")
TINY = ["--gin_bindings=tfrl.train.train.num_iterations=2",
        "--gin_bindings=tfrl.train.train.collect_episodes_per_iteration=4",
        "--gin_bindings=tfrl.train.train.eval_interval=2",
        "--gin_bindings=tfrl.train.train.num_eval_episodes=1"]


def train(*args, cwd):
  return subprocess.run([sys.executable, TRAIN, *args], cwd=cwd, capture_output=True,
                        text=True, timeout=300)


def error_lines(result):
  # Reverb's C++ server logs its start and stop lines itself; ours are the rest.
  return [l for l in result.stderr.splitlines() if l.strip() and not l.startswith("[reverb/")]


def test_trains_into_run_dir_and_resumes(tmp_path):
  root = tmp_path / "run"
  result = train("--gin_file=reinforce_cartpole.gin", f"--root_dir={root}", "--seed=1", *TINY,
                 cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  assert re.search(r"^\s+avg_return  [-0-9.]+ ± [0-9.]+ \[", result.stdout, re.M)  # console table
  assert (root / "config.gin").exists() and (root / "progress.csv").exists()
  rows = (root / "progress.csv").read_text().splitlines()
  assert len(rows) == 3  # header, iteration 0, iteration 2
  again = train("--gin_file=reinforce_cartpole.gin", f"--root_dir={root}", "--seed=1", *TINY,
                cwd=tmp_path)
  assert again.returncode == 0 and "resuming " in again.stdout and "at iteration 2" in again.stdout
  assert (root / "progress.csv").read_text().splitlines() == rows


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  """A finished tiny REINFORCE run; tests take copies (`copy_of`)."""
  root = tmp_path_factory.mktemp("finished") / "run"
  result = train("--gin_file=reinforce_cartpole.gin", f"--root_dir={root}", *TINY,
                 cwd=root.parent)
  assert result.returncode == 0, result.stderr
  return root


def copy_of(run, tmp_path):
  # copy2 keeps modification times, which the tests compare before and after.
  return shutil.copytree(run, tmp_path / "run", copy_function=shutil.copy2)


@pytest.mark.parametrize("args, message", [
    (["--gin_file=missing.gin"], "gin file 'missing.gin' not found"),
    (["--gin_file=BAD"], "No configurable matching 'nonexistent'"),
    (["--gin_file=reinforce_cartpole.gin", "--gin_bindings=tfrl.agents.reinforce.lr=3"],
     "doesn't have a parameter named 'lr'"),
    (["--gin_file=reinforce_cartpole.gin", "--gin_bindings=tfrl.train.train.env_id='CartPol-v1'"],
     "unknown environment id 'CartPol-v1'. Did you mean: CartPole-v1"),
    (["--gin_file=envs/cartpole.gin"], "Required bindings for `train` not provided"),
    (["--gin_file=reinforce_cartpole.gin", "--gin_bindings=tfrl.agents.reinforce.learning_rate=0.5"],
     "different config"),
    # Types and ranges of the run's settings and an agent's hyperparameters
    # (TINY's bindings come last: these name parameters it does not set).
    (["--gin_file=reinforce_cartpole.gin", "--gin_bindings=tfrl.train.train.num_envs='many'"],
     "tfrl.train.train.num_envs = 'many': must be an integer"),
    (["--gin_file=reinforce_cartpole.gin", "--gin_bindings=tfrl.train.train.checkpoint_interval=0"],
     "tfrl.train.train.checkpoint_interval = 0: must be >= 1"),
    (["--gin_file=reinforce_cartpole.gin", "--seed=-1"], "flag --seed=-1: -1 is not a non-negative integer"),
    (["--gin_file=reinforce_cartpole.gin", "--gin_bindings=tfrl.train.train.seed=-1"],
     "tfrl.train.train.seed = -1: must be >= 0"),
    (["--gin_file=reinforce_cartpole.gin", "--gin_bindings=tfrl.agents.reinforce.learning_rate='fast'"],
     "tfrl.agents.reinforce.learning_rate = 'fast': must be a number"),
    (["--gin_file=reinforce_cartpole.gin", "--gin_bindings=tfrl.replay.EpisodeReplay.capacity=0"],
     "tfrl.replay.EpisodeReplay.capacity = 0: must be >= 1"),
    (["--gin_file=reinforce_cartpole.gin", "--gin_bindings=tfrl.train.train.batch_size=%NOPE"],
     "undefined gin macro(s): %NOPE"),
    # The agent against the environment's actions; a missing env package; modes.
    (["--gin_file=envs/pendulum.gin", "--gin_file=agents/dqn.gin"],
     "dqn needs discrete actions"),
    (["--gin_file=envs/cartpole.gin", "--gin_file=agents/sac.gin"],
     "sac needs continuous actions"),
    (["--gin_file=dqn_cartpole.gin", "--gin_bindings=tfrl.replay.TransitionReplay.frame_stack=4"],
     "tfrl.replay.TransitionReplay.frame_stack = 4 needs observations of uint8 frames"),
    (["--gin_file=reinforce_cartpole.gin", "--gin_bindings=tfrl.train.train.env_id='LunarLander-v3'"],
     "needs Box2D: pip install box2d"),
    (["--gin_file=reinforce_cartpole.gin", "--gin_bindings=tfrl.train.train.compiled=True"],
     "the compiled loop has no in-graph learner for agent_fn reinforce"),
    (["--gin_file=reinforce_cartpole.gin", "--replay_server=nonsense"],
     "--replay_server='nonsense' is not host:port"),
    # K seeds in one graph: a count, the compiled loop, a root of seed directories.
    (["--gin_file=ppo_cartpole_compiled.gin", "--gin_bindings=tfrl.train.train.num_seeds=0"],
     "tfrl.train.train.num_seeds = 0: must be >= 1"),
    (["--gin_file=reinforce_cartpole.gin", "--gin_bindings=tfrl.train.train.num_seeds=2"],
     "num_seeds = 2 trains the seeds in one compiled graph: it needs tfrl.train.train.compiled"),
    (["--gin_file=ppo_cartpole_compiled.gin", "--gin_bindings=tfrl.train.train.num_seeds=2"],
     "holds a single-seed run (config.gin); a 2-seed run writes seed_0..seed_1 under a new"),
])
def test_bad_input_is_one_line_and_touches_nothing(tmp_path, finished_run, args, message):
  bad = tmp_path / "bad.gin"
  bad.write_text("tfrl.train.train.env_id = 'CartPole-v1'\nnonexistent.param = 3\n")
  args = [str(bad) if a == "--gin_file=BAD" else a for a in args]
  args = [f"--gin_file={bad}" if a == str(bad) else a for a in args]
  root = copy_of(finished_run, tmp_path)
  before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
  result = train(*args, f"--root_dir={root}", *TINY, cwd=tmp_path)
  assert result.returncode == 2
  lines = error_lines(result)
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith("train.py: error:") and message in lines[0], lines[0]
  assert "Traceback" not in result.stderr
  if "bad.gin" in " ".join(args):
    assert "bad.gin, line 2" in lines[0]
  assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_damaged_checkpoint_is_one_line_and_touches_nothing(tmp_path, finished_run):
  root = copy_of(finished_run, tmp_path)
  data = sorted((root / "checkpoints").glob("ckpt-2.data-*"))[0]
  data.write_bytes(data.read_bytes()[:len(data.read_bytes()) // 2])  # truncated write
  before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}
  result = train("--gin_file=reinforce_cartpole.gin", f"--root_dir={root}", *TINY, cwd=tmp_path)
  assert result.returncode == 2
  lines = error_lines(result)
  assert len(lines) == 1 and lines[0].startswith("train.py: error: checkpoint"), result.stderr
  assert "Traceback" not in result.stderr
  assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")} == before


def test_divergence_stops_naming_the_iteration_and_keeps_the_last_checkpoint(tmp_path):
  root = tmp_path / "run"
  result = train("--gin_file=reinforce_cartpole.gin", f"--root_dir={root}", *TINY,
                 "--gin_bindings=tfrl.train.train.num_iterations=20",
                 "--gin_bindings=tfrl.train.train.checkpoint_interval=1",
                 "--gin_bindings=tfrl.agents.reinforce.learning_rate=1e30", cwd=tmp_path)
  assert result.returncode == 1
  lines = error_lines(result)
  assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
  match = re.match(r"train.py: error: non-finite .* at iteration (\d+); "
                   r"last good checkpoint: .*ckpt-(\d+)$", lines[0])
  assert match, lines[0]
  failed_at, kept = int(match.group(1)), int(match.group(2))
  assert kept == failed_at - 1
  assert f'model_checkpoint_path: "ckpt-{kept}"' in (root / "checkpoints" / "checkpoint").read_text()
