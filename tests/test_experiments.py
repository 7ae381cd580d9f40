"""tfrl.experiments: plots of synthetic run directories, and real grids of tiny train.py runs."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from tfrl.experiments import ExperimentGrid, expand_logdirs, plot_runs
from tfrl.experiments.plot import load_runs, make_curves

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"tfrl.train.train.num_iterations": 2, "tfrl.train.train.eval_interval": 2,
        "tfrl.train.train.num_envs": 2, "tfrl.train.train.collect_episodes_per_iteration": 2,
        "tfrl.train.train.num_eval_episodes": 1}
# progress.csv columns grow over time; the plotter reads the header, so an extra one is here.
HEADER = "iteration,env_steps,train_steps,episodes,avg_return,train_return,loss,wall_s,eval_length"


def script(name):
  """scripts/<name>.py as a module, so its main() runs in this process (no second TF import)."""
  spec = importlib.util.spec_from_file_location(f"{name}_script",
                                                os.path.join(REPO, "scripts", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def write_run(run_dir, seed, slope, rows=8):
  """A progress.csv whose avg_return is slope * iteration + seed (x differs per seed)."""
  os.makedirs(run_dir)
  lines = [HEADER]
  for it in range(rows):
    steps = it * (100 + 7 * seed)  # seeds reach an iteration after different env steps
    lines.append(f"{it},{steps},{it},{it * 4},{slope * it + seed},{slope * it},{1.0 / (it + 1)},"
                 f"{it * 0.5},{slope * it}")
  with open(os.path.join(run_dir, "progress.csv"), "w") as f:
    f.write("\n".join(lines) + "\n")


@pytest.fixture
def data(tmp_path):
  """data/bench_algo{1,2}/bench_algo{1,2}_s{0,1,2}: two experiments x three seeds."""
  for algo, slope in [("bench_algo1", 10.0), ("bench_algo2", 3.0)]:
    for seed in range(3):
      write_run(tmp_path / "data" / algo / f"{algo}_s{seed}", seed, slope)
  return tmp_path / "data"


def legend_texts(fig):
  return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_mean_curve_per_experiment_saved_as_png(data, tmp_path):
  out = tmp_path / "fig.png"
  fig = plot_runs([str(data / "bench_algo")], xaxis="iteration", out=str(out))["avg_return"]
  assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  ax = fig.axes[0]
  lines = ax.get_lines()
  assert len(lines) == 2
  assert legend_texts(fig) == ["bench_algo1", "bench_algo2"]
  # Same iterations on every seed: the mean is exactly slope * it + mean(seeds) = +1.
  np.testing.assert_allclose(lines[0].get_ydata(), 10.0 * np.arange(8) + 1)
  np.testing.assert_allclose(lines[1].get_ydata(), 3.0 * np.arange(8) + 1)
  assert len(ax.collections) == 2  # a ±std band per experiment
  assert ax.get_xlabel() == "iteration" and ax.get_ylabel() == "avg_return"
  assert "mean ± std over 3 runs" in ax.get_title()


def test_count_draws_every_seed_and_legend_names_logdirs(data):
  fig = plot_runs([str(data / "bench_algo1"), str(data / "bench_algo2")], legend=["A", "B"],
                  count=True)["avg_return"]
  assert len(fig.axes[0].get_lines()) == 6
  assert legend_texts(fig) == ["A s0", "A s1", "A s2", "B s0", "B s1", "B s2"]
  colors = [l.get_color() for l in fig.axes[0].get_lines()]
  assert len(set(colors[:3])) == 1 and len(set(colors)) == 2  # one colour per experiment


def test_env_steps_differ_per_seed_and_mean_stays_inside_each_run(data):
  [curve, _] = make_curves(load_runs([str(data / "bench_algo")]), "env_steps", "avg_return")
  assert curve.num_runs == 3 and curve.x[-1] == 7 * 114  # seed 2 ran furthest
  # A run counts only up to its own last x (no extrapolation): at x = 798 only seed 2 does.
  assert curve.std[-1] == 0 and curve.y[-1] == 10 * 7 + 2  # slope * iteration + seed


def test_smooth_is_a_centred_moving_average(data):
  [curve, _] = make_curves(load_runs([str(data / "bench_algo")]), "iteration", "loss", smooth=3)
  loss = 1.0 / (np.arange(8) + 1)
  expected = np.concatenate([[loss[:2].mean()], np.convolve(loss, np.ones(3) / 3, "valid"),
                             [loss[-2:].mean()]])
  np.testing.assert_allclose(curve.y, expected)


def test_prefix_autocompletes_to_sibling_dirs(data):
  (data / "bench_algo10").mkdir()
  (data / "other").mkdir()
  assert expand_logdirs([str(data / "bench_algo")]) == [
      str(data / n) for n in ("bench_algo1", "bench_algo10", "bench_algo2")]
  assert expand_logdirs([str(data / "bench_algo1")]) == [str(data / "bench_algo1")]  # a dir is itself


def test_cli_writes_one_png_per_value_with_select(data, tmp_path, capsys):
  out = tmp_path / "figs" / "cmp.png"
  assert script("plot").main([str(data / "bench"), "--value", "avg_return", "loss",
                              "--select", "algo2", f"--out={out}"]) == 0
  assert (tmp_path / "figs" / "cmp_avg_return.png").exists()
  assert (tmp_path / "figs" / "cmp_loss.png").exists()
  assert "cmp_loss.png" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["{data}/bench_algo", "--value", "nope"],
     "unknown --value 'nope'; progress.csv columns are: iteration, env_steps, train_steps, "
     "episodes, avg_return, train_return, loss, wall_s, eval_length"),
    (["{data}/bench_algo", "--xaxis", "steps"], "unknown --xaxis 'steps'"),
    (["{data}/bench_algo", "--legend", "only-one"], "--legend has 1 entry for 2 log directories"),
    (["{data}/nothing_here"], "no directory is or starts with"),
    (["{empty}"], "no run directories (folders holding progress.csv) under"),
    (["{data}/bench_algo", "--exclude", "bench"], "leave no run directories"),
    (["{data}/bench_algo", "--smooth", "x"], "argument --smooth/-s: 'x' is not an integer"),
])
def test_cli_bad_input_is_one_line(data, tmp_path, capsys, args, message):
  (tmp_path / "empty").mkdir()
  args = [a.format(data=data, empty=tmp_path / "empty") for a in args]
  with pytest.raises(SystemExit) as exit_:
    script("plot").main(args + [f"--out={tmp_path / 'x.png'}"])
  assert exit_.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("plot.py: error: ") and message in err[0], err
  assert not (tmp_path / "x.png").exists()


def test_cli_process_unknown_value_no_traceback(data, tmp_path):
  result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "plot.py"),
                           str(data / "bench_algo"), "--value", "nope"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      "plot.py: error: unknown --value 'nope'; progress.csv columns are: iteration, env_steps, "
      "train_steps, episodes, avg_return, train_return, loss, wall_s, eval_length"]


def test_variant_names_follow_spinning_up():
  grid = ExperimentGrid("g")
  grid.add("tfrl.agents.reinforce.learning_rate", [1e-3, 3e-3], shorthand="lr")
  grid.add("tfrl.train.train.num_envs", [2, 4])
  grid.add("tfrl.train.train.env_id", "CartPole-v1", shorthand="", in_name=True)
  grid.add("tfrl.agents.reinforce.normalize_returns", [True, False], shorthand="norm")
  grid.add("tfrl.agents.reinforce.fc_layer_params", (64, 64))  # a tuple is one value
  grid.add("tfrl.train.train.num_iterations", 3)
  variants = grid.variants()
  assert len(variants) == 8
  assert [grid.variant_name(v) for v in variants[:2]] == [
      "g_lr0-001_numenv2_cartpole-v1_norm", "g_lr0-001_numenv2_cartpole-v1"]
  assert grid.variant_name(variants[-1]) == "g_lr0-003_numenv4_cartpole-v1"
  assert grid.bindings(variants[0]) == [
      "tfrl.agents.reinforce.learning_rate=0.001", "tfrl.train.train.num_envs=2",
      "tfrl.train.train.env_id='CartPole-v1'", "tfrl.agents.reinforce.normalize_returns=True",
      "tfrl.agents.reinforce.fc_layer_params=(64, 64)", "tfrl.train.train.num_iterations=3"]
  run_dir = grid.runs([5], "d")[0][3]
  assert run_dir == os.path.join("d", "g_lr0-001_numenv2_cartpole-v1_norm",
                                 "g_lr0-001_numenv2_cartpole-v1_norm_s5")


def test_cli_param_syntax():
  grid = script("grid")
  assert grid.parse_param("a.b[x]=(64,64),(32,)") == ("a.b", "x", [(64, 64), (32,)])
  assert grid.parse_param("tfrl.train.train.env_id=CartPole-v1,'Acrobot-v1',@f") == (
      "tfrl.train.train.env_id", None, ["CartPole-v1", "Acrobot-v1", "@f"])
  with pytest.raises(ValueError, match="expected NAME=V1,V2"):
    grid.parse_param("no_values")


@pytest.mark.parametrize("args, message", [
    (["--param=tfrl.agents.reinforce.lr=1,2"], "variant g_lr1: Configurable 'tfrl.agents.reinforce' doesn't have a parameter named 'lr'"),
    (["--param=tfrl.train.train.num_envs=1,2", "--seeds=0,x"], "--seeds '0,x': expected"),
    (["--gin_file=missing.gin"], "gin file 'missing.gin' not found"),
])
def test_grid_cli_bad_input_is_one_line_and_runs_nothing(tmp_path, capsys, args, message):
  argv = ["--exp_name=g", f"--data_dir={tmp_path / 'runs'}"] + args
  if not any(a.startswith("--gin_file") for a in args):
    argv.append("--gin_file=reinforce_cartpole.gin")
  with pytest.raises(SystemExit) as exit_:
    script("grid").main(argv)
  assert exit_.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("grid.py: error: ") and message in err[0], err
  assert not (tmp_path / "runs").exists()


def test_grid_runs_bindings_by_seeds_in_parallel(tmp_path):
  grid = ExperimentGrid("tiny")
  grid.add("tfrl.agents.reinforce.learning_rate", [1e-3, 3e-3], shorthand="lr")
  for name, value in TINY.items():
    grid.add(name, value)
  results = grid.run(["reinforce_cartpole.gin"], seeds=[0, 1], data_dir=str(tmp_path / "runs"),
                     num_procs=2, quiet=True)
  assert [r.status for r in results] == ["ok"] * 4, [r.error for r in results]
  found = sorted(os.path.relpath(r, tmp_path / "runs")
                 for r in (os.path.join(d, n) for d, _, files in os.walk(tmp_path / "runs")
                           for n in files if n == "progress.csv"))
  assert found == [os.path.join(v, f"{v}_s{s}", "progress.csv")
                   for v in ("tiny_lr0-001", "tiny_lr0-003") for s in (0, 1)]
  assert all(r.final_avg_return is not None and r.final_avg_return > 0 for r in results)
  # Seeds reached train.py: the two seeds of one variant evaluated differently.
  configs = [open(os.path.join(r.run_dir, "config.gin")).read() for r in results]
  assert "seed = 0" in configs[0] and "seed = 1" in configs[1]
  assert "learning_rate = 0.003" in configs[2]
  # The layout is what the plotter groups by: one curve per variant, over its two seeds.
  fig = plot_runs([str(tmp_path / "runs" / "tiny_")])["avg_return"]
  assert legend_texts(fig) == ["tiny_lr0-001", "tiny_lr0-003"]


def test_grid_failed_run_is_reported_and_others_finish(tmp_path, capsys):
  tiny = [f"--param={n}={v}" for n, v in TINY.items() if n != "tfrl.train.train.num_envs"]
  code = script("grid").main(["--gin_file=reinforce_cartpole.gin", "--exp_name=bad",
                              "--param=tfrl.train.train.num_envs=0,2", *tiny, "--num_procs=2",
                              f"--data_dir={tmp_path / 'runs'}"])
  out = capsys.readouterr().out
  assert code == 1
  assert "FAILED bad_numenv0_s0: train.py: error: tfrl.train.train.num_envs = 0: must be >= 1" in out
  table = out[out.index("variant "):].splitlines()
  assert table[2].split()[:4] == ["bad_numenv0", "0", "failed", "(exit"]
  assert table[3].split()[:3] == ["bad_numenv2", "0", "ok"]
  assert "1 of 2 runs succeeded" in out
  assert (tmp_path / "runs" / "bad_numenv2" / "bad_numenv2_s0" / "progress.csv").exists()
  assert "tfrl.train.train.num_envs = 0: must be >= 1" in (tmp_path / "runs" / "bad_numenv0" / "bad_numenv0_s0.log").read_text()
