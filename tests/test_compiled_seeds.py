"""K seeds in one compiled graph (`tfrl.train.train.num_seeds`): K regular
run directories, seed k's values those of the single-seed run with seed k
(PPO under XLA; SAC as a plain graph, whose seeds' ops run concurrently),
resume after a kill between the seeds' checkpoints, the refusals."""

import csv
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import tfrl
from tfrl.errors import ConfigError
from tfrl.train import config, faults

# In-process runs use a plain graph: what they check (seeds kept apart,
# resume) is the same in XLA, whose compile would be most of each run, and
# the process must not switch XLA's flags for later tests.
PPO = ("ppo_cartpole_compiled.gin", [
    "tfrl.train.train_compiled.jit_compile = False",
    "tfrl.train.train.num_envs = 4", "tfrl.replay.EpisodeReplay.segment_steps = 64",
    "tfrl.agents.ppo.num_epochs = 2", "tfrl.agents.ppo.value_epochs = 2",
    "tfrl.agents.ppo.num_minibatches = 2", "tfrl.agents.ppo.value_minibatches = 2",
    "tfrl.agents.ppo.actor_fc_layer_params = (16,)",
    "tfrl.agents.ppo.value_fc_layer_params = (16,)",
    "tfrl.train.train.num_iterations = 4", "tfrl.train.train.eval_interval = 2",
    "tfrl.train.train.checkpoint_interval = 2", "tfrl.train.train.num_eval_episodes = 2",
    "tfrl.train.train.eval_num_envs = 2", "tfrl.train.train.seed = 3"])
SAC = ("sac_pendulum_compiled.gin", [
    "tfrl.agents.sac.actor_fc_layer_params = (8,)", "tfrl.agents.sac.critic_fc_layer_params = (8,)",
    "tfrl.train.train.num_envs = 2", "tfrl.replay.TransitionReplay.capacity = 256",
    "tfrl.train.train.num_iterations = 4", "tfrl.train.train.eval_interval = 2",
    "tfrl.train.train.checkpoint_interval = 2", "tfrl.train.train.num_eval_episodes = 1",
    "tfrl.train.train.initial_collect_steps = 32", "tfrl.train.train.batch_size = 16",
    "tfrl.train.train.collect_steps_per_iteration = 4",
    "tfrl.train.train.train_steps_per_iteration = 2", "tfrl.train.train.export_policy = False",
    "tfrl.train.train.seed = 1"])


def train(case, root, *bindings, hooks=(), log=lambda _: None):
  gin_file, tiny = case
  config.parse_config([gin_file], tiny + list(bindings))
  return tfrl.train.train(str(root), hooks=hooks, log=log)


def checkpoint_values(root):
  """The latest checkpoint's values but the clock and how many saves it took."""
  reader = tf.train.load_checkpoint(os.path.join(root, "checkpoints"))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
          if not any(skip in n for skip in ("wall_s", "OBJECT_GRAPH", "save_counter"))}


def rows(root):
  with open(os.path.join(root, "progress.csv")) as f:
    return list(csv.DictReader(f))


def without_wall_clock(progress):
  return [{k: v for k, v in row.items() if k != "wall_s"} for row in progress]


@pytest.fixture(scope="module")
def ppo_runs(tmp_path_factory):
  """Seeds 3 and 4 in one graph, and seed 4 alone."""
  base = tmp_path_factory.mktemp("ppo_seeds")
  last_rows = train(PPO, base / "two", "tfrl.train.train.num_seeds = 2")
  train(PPO, base / "alone", "tfrl.train.train.seed = 4")
  return base / "two", base / "alone", last_rows


def _assert_seed_equals_single_run(seed_dir, single_dir):
  a, b = checkpoint_values(seed_dir), checkpoint_values(single_dir)
  assert sorted(a) == sorted(b)
  for name in a:
    np.testing.assert_array_equal(a[name], b[name], err_msg=name)
  assert without_wall_clock(rows(seed_dir)) == without_wall_clock(rows(single_dir))


def _assert_seeds_learned_apart(first_dir, second_dir):
  a, b = checkpoint_values(first_dir), checkpoint_values(second_dir)
  weights = [n for n in a if "kernel" in n and "optimizer" not in n and ".OPTIMIZER_SLOT" not in n]
  assert weights and all(not np.array_equal(a[n], b[n]) for n in weights)
  first, second = rows(first_dir), rows(second_dir)
  assert [r["loss"] for r in first[1:]] != [r["loss"] for r in second[1:]]


def test_k_seeds_give_k_regular_runs_each_the_single_seed_run(ppo_runs):
  two, alone, last_rows = ppo_runs
  assert sorted(os.listdir(two)) == ["seed_3", "seed_4"]
  for seed in (3, 4):
    seed_dir = two / f"seed_{seed}"
    assert [int(r["iteration"]) for r in rows(seed_dir)] == [0, 2, 4]
    assert [int(r["env_steps"]) for r in rows(seed_dir)] == [0, 128, 256]
    assert sorted(os.listdir(seed_dir / "policies" / "checkpoints")) == [
        "000000000", "000000002", "000000004"]
    assert (seed_dir / "policies" / "saved_model" / "saved_model.pb").exists()
    assert (seed_dir / "tensorboard").is_dir()
    config_lines = (seed_dir / "config.gin").read_text().splitlines()
    assert config_lines[1].startswith(f"# seed {seed} of a 2-seed run")
  assert [float(r["avg_return"]) for r in last_rows] == [
      float(rows(two / f"seed_{s}")[-1]["avg_return"]) for s in (3, 4)]
  # Seed 4's agent is built after seed 3's and shares the graph with it:
  # every checkpointed value and progress row is its single-seed run's.
  _assert_seed_equals_single_run(two / "seed_4", alone)
  _assert_seeds_learned_apart(two / "seed_3", two / "seed_4")


def test_k_seeds_of_an_off_policy_learner_in_a_plain_graph(tmp_path):
  """SAC (sac_pendulum_compiled.gin: a plain TF graph, whose seeds' loops
  TF's executor runs concurrently): seed 2 of seeds 1-2 is seed 2 alone."""
  train(SAC, tmp_path / "two", "tfrl.train.train.num_seeds = 2")
  train(SAC, tmp_path / "alone", "tfrl.train.train.seed = 2")
  for seed in (1, 2):
    assert [int(r["iteration"]) for r in rows(tmp_path / "two" / f"seed_{seed}")] == [0, 2, 4]
  _assert_seed_equals_single_run(tmp_path / "two" / "seed_2", tmp_path / "alone")
  _assert_seeds_learned_apart(tmp_path / "two" / "seed_1", tmp_path / "two" / "seed_2")


class _EndSeedsAt(tfrl.train.Hook):
  """At `iteration`, seed `stop` asks to stop (as StopAtReturn does) and
  seed `diverge` diverges (as FiniteLoss raises)."""

  def __init__(self, iteration, stop, diverge):
    self.iteration, self.stop, self.diverge = iteration, stop, diverge

  def after(self, run, advance):
    if run.iteration == self.iteration and run.config.seed == self.stop:
      run.request_stop("test")
    if run.iteration == self.iteration and run.config.seed == self.diverge:
      raise FloatingPointError(f"non-finite loss nan {run.diverged()}")


def test_a_seed_that_stops_or_diverges_leaves_the_others_running_as_they_would(ppo_runs,
                                                                              tmp_path):
  """Seeds 3-5; at iteration 2 seed 4 asks to stop and seed 5 diverges:
  seed 4's run ends there, checkpointed; seed 5's stops before its
  checkpoint; seed 3 trains on to 4 and ends as in the run where neither
  did; then seed 5's error is raised, naming its run directory."""
  two, _, _ = ppo_runs
  with pytest.raises(FloatingPointError, match=r"seed_5: non-finite loss nan at iteration 2; "
                                               r"last good checkpoint: None"):
    train(PPO, tmp_path, "tfrl.train.train.num_seeds = 3", hooks=[_EndSeedsAt(2, 4, 5)])
  assert [r["iteration"] for r in rows(tmp_path / "seed_4")] == ["0", "2"]
  assert checkpoint_values(tmp_path / "seed_4")["iteration/.ATTRIBUTES/VARIABLE_VALUE"] == 2
  assert not (tmp_path / "seed_5" / "checkpoints").exists()
  assert [r["iteration"] for r in rows(tmp_path / "seed_5")] == ["0", "2"]
  assert [r["iteration"] for r in rows(tmp_path / "seed_3")] == ["0", "2", "4"]
  _assert_seed_equals_single_run(tmp_path / "seed_3", two / "seed_3")


class _Killed(Exception):
  pass


def test_killed_between_the_seeds_checkpoints_resumes_each_to_the_straight_run(
    ppo_runs, tmp_path, monkeypatch):
  """Checkpoints every iteration; killed inside seed 4's second save
  (seed 3 saved iteration 2, seed 4 holds iteration 1). The same command
  resumes seed 3 at 2 and seed 4 at 1, runs seed 4 alone to 2, then both:
  each ends where the straight two-seed run did."""
  two, _, _ = ppo_runs
  root = tmp_path / "killed"
  saves = []

  def kill_at_fourth_save(name):
    if name == "checkpoint":
      saves.append(name)
      if len(saves) == 4:
        raise _Killed()
  monkeypatch.setattr(faults, "point", kill_at_fourth_save)
  every_iteration = ["tfrl.train.train.num_seeds = 2", "tfrl.train.train.checkpoint_interval = 1"]
  with pytest.raises(_Killed):
    train(PPO, root, *every_iteration)
  assert checkpoint_values(root / "seed_3")["iteration/.ATTRIBUTES/VARIABLE_VALUE"] == 2
  assert checkpoint_values(root / "seed_4")["iteration/.ATTRIBUTES/VARIABLE_VALUE"] == 1
  monkeypatch.setattr(faults, "point", lambda name: None)
  messages = []
  train(PPO, root, *every_iteration, log=messages.append)
  assert any(m.startswith("[seed 3] resuming") and "at iteration 2" in m for m in messages)
  assert any(m.startswith("[seed 4] resuming") and "at iteration 1" in m for m in messages)
  for seed in (3, 4):
    straight, resumed = two / f"seed_{seed}", root / f"seed_{seed}"
    # (Not avg_return: a new process evaluates on freshly seeded envs.)
    assert [(r["iteration"], r["env_steps"]) for r in rows(resumed)] == [
        (r["iteration"], r["env_steps"]) for r in rows(straight)]
    a, b = checkpoint_values(straight), checkpoint_values(resumed)
    assert sorted(a) == sorted(b)
    # The log of episodes finished since the console last took them is a
    # ring its reader resets: where they sit depends on when it read.
    for name in [n for n in a if "_finished_" in n]:
      del a[name]
    for name in a:
      np.testing.assert_array_equal(a[name], b[name], err_msg=f"seed {seed}: {name}")


def _mtimes(root):
  return {p: p.stat().st_mtime_ns for p in root.rglob("*")}


def test_refusals_write_nothing(ppo_runs, tmp_path):
  two, alone, _ = ppo_runs
  # A single-seed run's directory, another K-seed run's, a damaged seed.
  single = shutil.copytree(alone, tmp_path / "single")
  before = _mtimes(single)
  with pytest.raises(ConfigError, match="holds a single-seed run"):
    train(PPO, single, "tfrl.train.train.num_seeds = 2")
  assert _mtimes(single) == before
  other = tmp_path / "other"
  shutil.copytree(two / "seed_3", other / "seed_9")
  with pytest.raises(ConfigError, match="holds seed_9, not one of this run's seed directories "
                                        "seed_3..seed_4"):
    train(PPO, other, "tfrl.train.train.num_seeds = 2")
  assert os.listdir(other) == ["seed_9"]
  damaged = shutil.copytree(two, tmp_path / "damaged")
  data = sorted((damaged / "seed_4" / "checkpoints").glob("ckpt-4.data-*"))[0]
  data.write_bytes(data.read_bytes()[:len(data.read_bytes()) // 2])
  before = _mtimes(damaged)
  with pytest.raises(ConfigError, match=r"seed_4/checkpoints/ckpt-4 (is unreadable|does not "
                                        r"match this run or is damaged)"):
    train(PPO, damaged, "tfrl.train.train.num_seeds = 2")
  assert _mtimes(damaged) == before  # seed 3's run, opened first, untouched too
  with pytest.raises(ConfigError, match="num_seeds = 2 trains the seeds in one compiled graph"):
    config.parse_config(["ppo_cartpole.gin"], ["tfrl.train.train.num_seeds = 2"])
    tfrl.train.train(str(tmp_path / "regular"), log=lambda _: None)
  assert not (tmp_path / "regular").exists()
