"""tfrl.train: the loop on tiny budgets, the run directory, resume."""

import csv
import os

import gin
import pytest

import tfrl
from tfrl.errors import ConfigError
from tfrl.train import config


def progress(root):
  with open(os.path.join(root, "progress.csv")) as f:
    return list(csv.DictReader(f))


def run(root, files, bindings=()):
  config.parse_config(files, list(bindings))
  return tfrl.train.train(root, log=lambda _: None)


TINY_REINFORCE = ["tfrl.train.train.num_iterations = 4", "tfrl.train.train.num_envs = 2",
                  "tfrl.train.train.collect_episodes_per_iteration = 2",
                  "tfrl.train.train.eval_interval = 2",
                  "tfrl.train.train.checkpoint_interval = 2",
                  "tfrl.train.train.num_eval_episodes = 2"]


def test_on_policy_loop_writes_run_directory(tmp_path):
  root = str(tmp_path / "run")
  last = run(root, ["reinforce_cartpole.gin"], TINY_REINFORCE)
  rows = progress(root)
  assert [int(r["iteration"]) for r in rows] == [0, 2, 4]
  for column in ("iteration", "env_steps", "train_steps", "avg_return", "wall_s"):
    assert column in rows[0]
  assert int(rows[-1]["train_steps"]) == 4
  assert int(rows[-1]["episodes"]) == 4 * 2  # 2 episodes per iteration
  assert int(rows[-1]["env_steps"]) >= 8 * 8  # a CartPole episode lasts >= 8 steps
  assert float(last["avg_return"]) == float(rows[-1]["avg_return"])
  saved_config = open(os.path.join(root, "config.gin")).read()
  assert "reinforce.learning_rate = 0.003" in saved_config
  assert "train.num_envs = 2" in saved_config
  assert os.listdir(os.path.join(root, "tensorboard"))
  assert any(f.startswith("ckpt-4") for f in os.listdir(os.path.join(root, "checkpoints")))


def test_off_policy_loop_trains_on_sampled_batches(tmp_path):
  root = str(tmp_path / "run")
  bindings = ["tfrl.train.train.num_iterations = 30", "tfrl.train.train.eval_interval = 30",
              "tfrl.train.train.initial_collect_steps = 100",
              "tfrl.train.train.batch_size = 16", "tfrl.train.train.num_eval_episodes = 1",
              "tfrl.train.train.train_steps_per_iteration = 2",
              "tfrl.replay.TransitionReplay.min_size = 50"]
  run(root, ["envs/cartpole.gin", "agents/dqn.gin"], bindings)
  rows = progress(root)
  assert int(rows[-1]["train_steps"]) == 60
  # 100 initial + 30 collect steps; each episode's closing auto-reset step is not a transition
  assert int(rows[-1]["env_steps"]) + int(rows[-1]["episodes"]) == 130


def test_resume_continues_without_duplicate_rows(tmp_path):
  root = str(tmp_path / "run")
  run(root, ["reinforce_cartpole.gin"], TINY_REINFORCE)
  before = progress(root)
  # the same config with a bigger budget continues from iteration 4
  gin.clear_config()
  run(root, ["reinforce_cartpole.gin"], TINY_REINFORCE)  # nothing left to do
  assert progress(root) == before
  # a crash after the iteration-2 checkpoint: drop the later checkpoint, keep its row
  ckpt_dir = os.path.join(root, "checkpoints")
  for f in os.listdir(ckpt_dir):
    if f.startswith("ckpt-4"):
      os.remove(os.path.join(ckpt_dir, f))
  with open(os.path.join(ckpt_dir, "checkpoint"), "w") as f:
    f.write('model_checkpoint_path: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-2"\n')
  run(root, ["reinforce_cartpole.gin"], TINY_REINFORCE)
  after = progress(root)
  assert [int(r["iteration"]) for r in after] == [0, 2, 4]
  assert after[:2] == before[:2]
  assert int(after[-1]["train_steps"]) == 4  # restored 2, trained 2 more


def test_different_config_on_existing_run_is_refused(tmp_path):
  root = str(tmp_path / "run")
  run(root, ["reinforce_cartpole.gin"], TINY_REINFORCE)
  listing = sorted(os.listdir(root))
  with pytest.raises(ConfigError, match="different config"):
    run(root, ["reinforce_cartpole.gin"], TINY_REINFORCE + ["tfrl.agents.reinforce.learning_rate = 0.01"])
  assert sorted(os.listdir(root)) == listing


def test_a_run_of_an_older_run_format_is_refused_before_anything_is_written(tmp_path):
  """A config.gin without the run-format line (tfrl before format 2, whose
  replay checkpoints hold another table layout) is one error, not a resume."""
  root = str(tmp_path / "run")
  run(root, ["reinforce_cartpole.gin"], TINY_REINFORCE)
  config_path = os.path.join(root, "config.gin")
  with open(config_path) as f:
    first, rest = f.read().split("\n", 1)
  assert first == "# tfrl run format: 2"
  with open(config_path, "w") as f:
    f.write(rest)
  before = {name: os.path.getmtime(os.path.join(root, name)) for name in os.listdir(root)}
  with pytest.raises(ConfigError, match="run format 1; this one reads format 2"):
    run(root, ["reinforce_cartpole.gin"], TINY_REINFORCE)
  assert {name: os.path.getmtime(os.path.join(root, name)) for name in os.listdir(root)} == before


def test_non_empty_foreign_directory_is_refused(tmp_path):
  (tmp_path / "notes.txt").write_text("mine")
  with pytest.raises(ConfigError, match="not empty"):
    run(str(tmp_path), ["reinforce_cartpole.gin"], TINY_REINFORCE)
  assert os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize("agent", ["vpg", "ppo", "trpo"])
def test_on_policy_family_swaps_in_by_agent_file(tmp_path, agent):
  root = str(tmp_path / "run")
  run(root, ["envs/cartpole.gin", f"agents/{agent}.gin"],
      ["tfrl.train.train.num_iterations = 2", "tfrl.train.train.eval_interval = 2",
       "tfrl.train.train.num_eval_episodes = 1", "tfrl.train.train.num_envs = 2",
       "tfrl.train.train.collect_episodes_per_iteration = 2",
       f"tfrl.agents.{agent}.value_epochs = 2"])
  rows = progress(root)
  assert int(rows[-1]["train_steps"]) == 2  # one train step per batch of episodes
  assert int(rows[-1]["episodes"]) == 4
  assert f"train.agent_fn = @tfrl.agents.{agent}" in open(os.path.join(root, "config.gin")).read()


def test_killed_before_first_checkpoint_restarts_without_duplicate_rows(tmp_path):
  root = tmp_path / "run"
  run(str(root), ["reinforce_cartpole.gin"], TINY_REINFORCE)
  for f in (root / "checkpoints").iterdir():
    f.unlink()  # as if killed after writing progress rows but before any checkpoint
  run(str(root), ["reinforce_cartpole.gin"], TINY_REINFORCE)
  assert [int(r["iteration"]) for r in progress(str(root))] == [0, 2, 4]


def test_stop_at_return_hook_ends_the_run_with_a_checkpoint(tmp_path):
  root = str(tmp_path / "run")
  config.parse_config(["reinforce_cartpole.gin"],
                      TINY_REINFORCE + ["tfrl.train.train.num_iterations = 40"])
  logged = []
  last = tfrl.train.train(root, hooks=[tfrl.train.StopAtReturn(0.0)], log=logged.append)
  # Any CartPole return is >= 0: the first row after iteration 0 stops the run.
  assert [int(r["iteration"]) for r in progress(root)] == [0, 2]
  assert int(last["iteration"]) == 2
  assert any(m.startswith("stopping at iteration 2: avg_return") for m in logged)
  checkpoints = os.listdir(os.path.join(root, "checkpoints"))
  assert any(f.startswith("ckpt-2.") for f in checkpoints)


def test_checkpoints_also_come_by_the_clock(tmp_path):
  root = str(tmp_path / "run")
  run(root, ["reinforce_cartpole.gin"],
      TINY_REINFORCE + ["tfrl.train.train.checkpoint_interval = 1000",
                        "tfrl.train.train.checkpoint_interval_s = 1e-9"])
  checkpoints = os.listdir(os.path.join(root, "checkpoints"))
  # Every iteration is past the time limit; the last 3 are kept.
  assert {f.split(".")[0] for f in checkpoints if f.startswith("ckpt-")} == {"ckpt-2", "ckpt-3",
                                                                              "ckpt-4"}


def test_a_run_config_and_settings_are_not_mixed(tmp_path):
  config.parse_config(["reinforce_cartpole.gin"], TINY_REINFORCE)
  with pytest.raises(ConfigError, match="either a RunConfig or settings"):
    tfrl.train.train(str(tmp_path / "run"), tfrl.train.RunConfig(), seed=3)
  assert not os.path.exists(tmp_path / "run")


def test_interrupt_before_the_first_iteration_checkpoints_iteration_0_once(tmp_path):
  import signal  # pylint: disable=import-outside-toplevel

  class InterruptAtStart(tfrl.train.Hook):
    def begin(self, run):
      os.kill(os.getpid(), signal.SIGINT)

  root = str(tmp_path / "run")
  config.parse_config(["reinforce_cartpole.gin"], TINY_REINFORCE)
  with pytest.raises(tfrl.train.loop.Interrupted, match="interrupted at iteration 0"):
    tfrl.train.train(root, hooks=[InterruptAtStart()], log=lambda _: None)
  assert [int(r["iteration"]) for r in progress(root)] == [0]
  run(root, ["reinforce_cartpole.gin"], TINY_REINFORCE)
  assert [int(r["iteration"]) for r in progress(root)] == [0, 2, 4]
