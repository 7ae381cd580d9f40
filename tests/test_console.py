"""What a run prints: a compact table per evaluation, a summary line at the
end, no Reverb or library noise; real errors still reach the console."""

import math
import os
import subprocess
import sys
import textwrap

from tfrl.replay import reverb_logs
from tfrl.train.logger import EpochLogger, format_summary, format_table
from tfrl.train.run_dir import ProgressCsv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT)
ENV.pop("TFRL_REVERB_LOGS", None)

REINFORCE_ROW = dict(
    iteration=25, env_steps=29743, train_steps=25, episodes=400,
    train_return=33.97, train_return_std=20.11, train_return_min=10.0, train_return_max=139.0,
    train_length=33.97, loss=-0.8779, policy_gradient_loss=-0.8779,
    policy_network_regularization_loss=0.0, entropy_regularization_loss=0.0,
    value_estimation_loss=0.0, value_network_regularization_loss=math.nan, entropy=0.6678,
    eval_return_std=115.6, eval_return_min=55.0, eval_return_max=342.0, eval_length=179.6,
    avg_return=179.6, wall_s=2.253)


def test_table_leaves_out_zero_and_nan_diagnostics_and_keeps_counters_and_returns():
  lines = format_table(REINFORCE_ROW).splitlines()
  assert lines[0] == "iteration 25  env_steps 29743  train_steps 25  episodes 400  wall_s 2.253"
  by_name = {line.split()[0]: line.split(None, 1)[1] for line in lines[1:]}
  assert by_name == {"avg_return": "179.6 ± 115.6 [55, 342]  length 179.6",
                     "train_return": "33.97 ± 20.11 [10, 139]  length 33.97",
                     "loss": "-0.8779", "policy_gradient_loss": "-0.8779", "entropy": "0.6678"}
  # The first row: zero counters and no training yet.
  first = format_table(dict(iteration=0, env_steps=0, train_steps=0, episodes=0,
                            eval_return_std=9.87, eval_return_min=8.0, eval_return_max=42.0,
                            eval_length=13.7, avg_return=13.7, wall_s=0.13)).splitlines()
  assert first == ["iteration 0  env_steps 0  train_steps 0  episodes 0  wall_s 0.13",
                   "  avg_return  13.7 ± 9.87 [8, 42]  length 13.7"]


def test_a_counter_a_mode_cannot_know_is_left_out():
  # The off-policy distributed learner has no episode count.
  table = format_table({"iteration": 10, "env_steps": 480, "train_steps": 100, "episodes": None,
                        "avg_return": 9.5, "loss": 0.25})
  header = table.splitlines()[0]
  assert "episodes" not in header and "None" not in table
  assert header.startswith("iteration 10  env_steps 480  train_steps 100")


def test_a_diagnostic_that_was_nonzero_stays_in_the_table_and_csv_keeps_every_column(tmp_path):
  printed = []
  logger = EpochLogger(ProgressCsv(str(tmp_path / "progress.csv"), ["iteration"]),
                       console=printed.append)
  logger.write(dict(REINFORCE_ROW, iteration=1, value_estimation_loss=0.5))
  logger.write(dict(REINFORCE_ROW, iteration=2))
  assert "value_estimation_loss" in printed[1]           # 0 now, but not always
  assert "entropy_regularization_loss" not in printed[1]  # 0 in every row
  rows = logger.progress.rows()
  assert set(REINFORCE_ROW) <= set(rows[1])
  assert rows[1]["entropy_regularization_loss"] == "0"
  assert rows[1]["value_network_regularization_loss"] == "nan"


def test_summary_names_final_and_best_return_counters_time_and_directory():
  rows = [dict(iteration="0", env_steps="0", train_steps="0", avg_return="13.7"),
          dict(iteration="25", env_steps="29743", train_steps="25", avg_return="500"),
          dict(iteration="50", env_steps="85737", train_steps="50", avg_return="500"),
          dict(iteration="75", env_steps="120000", train_steps="75", avg_return="338.6")]
  assert format_summary(rows, "runs/x", 14.79) == (
      "done at iteration 75: avg_return 338.6 (best 500 at iteration 25), env_steps 120000, "
      "train_steps 75, 14.79 s; the run is in runs/x")


def test_routine_reverb_lines_are_dropped_and_the_rest_passes():
  started = b"[reverb/cc/platform/default/server.cc:71] Started replay server on port 41321\n"
  sampler = (b"[reverb/cc/client.cc:165] Sampler and server are owned by the same process "
             b"(15430) so Table episodes is accessed directly without gRPC.\n")
  error = b"[reverb/cc/trajectory_writer.cc:99] Some real trouble with the stream\n"
  stored = b"[reverb/cc/reverb_service_impl.cc:168] Stored checkpoint to /r/2026-12-01T10:36\n"
  pending = (b"[reverb/cc/trajectory_writer.cc:660] The number of pending items is alarmingly "
             b"high, did you forget to call Flush? 51 items are waiting to be sent and 0 items "
             b"have been sent to the server but haven't been confirmed yet. It is important.\n")
  assert reverb_logs.drop_routine(stored + pending) == (b"", b"")
  bar = b"\rtrain:  7%|#5   | 7/100 [00:00<00:07, 11.89it/s]"
  out, held = reverb_logs.drop_routine(started + b"text\n" + bar + sampler + error + bar)
  assert (out, held) == (b"text\n" + bar + error + bar, b"")
  # A line arriving in pieces is held until it is whole.
  out, held = reverb_logs.drop_routine(b"ok [rev")
  assert (out, held) == (b"ok ", b"[rev")
  out, held = reverb_logs.drop_routine(held + sampler[4:40])
  assert (out, held) == (b"", sampler[:40])
  assert reverb_logs.drop_routine(held + sampler[40:]) == (b"", b"")
  # TF's lines at the first XLA compilation, whole in a read, go too.
  xla = (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
         b"I0000 00:00:1796139662.296277     425 device_compiler.h:186] Compiled cluster using "
         b"XLA!  This line is logged at most once for the lifetime of the process.\n"
         b"2026-12-01 15:41:02.300569: E external/local_xla/xla/stream_executor/"
         b"stream_executor_internal.h:177] SetPriority unimplemented for this stream.\n")
  assert reverb_logs.drop_routine(b"a\n" + xla + b"E0000 real XLA error\n") == (
      b"a\nE0000 real XLA error\n", b"")
  # Nothing is held back at the end.
  assert reverb_logs.drop_routine(b"[reverb/cc/x.cc:1] cut", final=True) == (
      b"[reverb/cc/x.cc:1] cut", b"")


def test_the_filtered_stderr_still_shows_errors_even_of_a_dying_process():
  script = textwrap.dedent(f"""
      import importlib.util, os, sys
      spec = importlib.util.spec_from_file_location("reverb_logs", {reverb_logs.__file__!r})
      reverb_logs = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(reverb_logs)
      reverb_logs.quiet()
      os.write(2, b"[reverb/cc/platform/default/server.cc:84] Shutting down replay server\\n")
      print("python says", file=sys.stderr)
      os.write(2, b"[reverb/cc/client.cc:1] Check failed: a real error\\n")
      os.abort()
      """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=ENV, timeout=60)
  assert result.returncode < 0  # aborted
  assert result.stderr.splitlines() == ["python says",
                                        "[reverb/cc/client.cc:1] Check failed: a real error"]


def run_train(*args):
  return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"), *args],
                        capture_output=True, text=True, env=ENV, timeout=300)


def test_a_small_run_prints_tables_and_a_summary_and_no_reverb_or_library_lines(tmp_path):
  root = str(tmp_path / "run")
  result = run_train("--gin_file=reinforce_cartpole.gin", f"--root_dir={root}",
                     "--gin_bindings=tfrl.train.train.num_iterations=2",
                     "--gin_bindings=tfrl.train.train.eval_interval=2",
                     "--gin_bindings=tfrl.train.train.collect_episodes_per_iteration=4",
                     "--gin_bindings=tfrl.train.train.num_eval_episodes=1")
  assert result.returncode == 0, result.stderr
  lines = (result.stdout + result.stderr).splitlines()
  for noise in ("reverb/", "Sampler and server", "SyntaxWarning", "Gym has been unmaintained"):
    assert not [line for line in lines if noise in line], result.stdout + result.stderr
  assert lines[-1].startswith("done at iteration 2: avg_return ") and lines[-1].endswith(root)
  # The start line, two tables (a counters line; returns, loss and REINFORCE's
  # two non-zero diagnostics: at most 6 lines each) and the summary; the
  # boxed tables alone took 34 lines.
  assert len(lines) <= 14, "\n".join(lines)


def test_ppo_traces_without_autograph_syntax_warnings(tmp_path):
  result = run_train("--gin_file=ppo_cartpole.gin", f"--root_dir={tmp_path / 'run'}",
                     "--gin_bindings=tfrl.train.train.num_iterations=1",
                     "--gin_bindings=tfrl.train.train.eval_interval=1",
                     "--gin_bindings=tfrl.train.train.num_eval_episodes=1")
  assert result.returncode == 0, result.stderr
  assert "SyntaxWarning" not in result.stderr, result.stderr
  assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_a_bad_binding_is_still_one_line_on_the_console(tmp_path):
  result = run_train("--gin_file=reinforce_cartpole.gin", f"--root_dir={tmp_path / 'run'}",
                     "--gin_bindings=tfrl.train.train.num_iterations=-1")
  assert result.returncode == 2
  assert result.stdout == ""
  lines = result.stderr.splitlines()
  assert len(lines) == 1 and lines[0].startswith("train.py: error: ") \
      and "num_iterations" in lines[0], result.stderr
