"""The distributed roles on Ray (tfrl.distributed.ray_launch, scripts/launch_ray.py):
a local Ray on loopback with 2 CPUs shared by the module; two actors and the
learner train; an actor, the learner and the server SIGKILLed are restarted
by Ray and resume; Ctrl-C at the script stops every role, leaving no
process behind."""

import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import ray
import reverb

from test_distributed import DQN, PPO, actor_reports, check_followed_versions, rows
from tfrl.distributed import ray_launch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Four roles on 2 logical CPUs: the resource requests are gin bindings.
SMALL = ["tfrl.distributed.ray.Placement.server_cpus=0",
         "tfrl.distributed.ray.Placement.actor_cpus=0.5",
         "tfrl.distributed.ray.Placement.learner_cpus=0.5"]


def split(args):
  files = [a.split("=", 1)[1] for a in args if a.startswith("--gin_file=")]
  bindings = [a.split("=", 1)[1] for a in args if a.startswith("--gin_bindings=")]
  return files, bindings


@pytest.fixture(scope="module")
def local_ray():
  ray_launch.start_local_ray(num_cpus=2)
  yield
  ray.shutdown()


def launch(tmp_path, args, extra=(), num_actors=2):
  files, bindings = split(args)
  bindings += SMALL + list(extra)
  placement = ray_launch.check_config(files, bindings)
  run = ray_launch.Launch(files, bindings, num_actors, str(tmp_path / "dist"), placement,
                          log=lambda _: None)
  run.start()
  return run


def wait_for(condition, timeout_s, what):
  deadline = time.time() + timeout_s
  while time.time() < deadline:
    value = condition()
    if value:
      return value
    time.sleep(0.5)
  raise AssertionError(f"timed out waiting for {what}")


def gone(pids):
  return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]


def checkpoints(directory):
  return [d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d))]


def items_written(lines):
  return [n for n, _ in actor_reports("\n".join(lines))]


@pytest.mark.parametrize("agent", ["dqn", "ppo"])
def test_two_actors_and_learner_train_on_ray(local_ray, tmp_path, agent):
  run = launch(tmp_path, DQN if agent == "dqn" else PPO)
  try:
    row = run.wait()
  finally:
    run.stop()
  state = run.state()  # as the roles left it
  train_steps = int(row["train_steps"])
  assert train_steps == (300 if agent == "dqn" else 100)
  last = rows(os.path.join(run.learner_dir, "progress.csv"))[-1]
  counted = "samples" if agent == "dqn" else "episodes"
  assert int(last[f"{counted}_from_actor_0"]) > 0 and int(last[f"{counted}_from_actor_1"]) > 0
  for i in (0, 1):  # both actors followed the learner's versions, reported through Ray
    check_followed_versions(actor_reports("\n".join(state["lines"][f"actor_{i}"])),
                            train_steps)
  if agent == "ppo":
    assert float(last["data_policy_lag"]) == 0.0 and int(last["episodes"]) == 200
  # The server reported a loopback address through Ray and stopped with a final checkpoint.
  assert run.address.startswith("127.0.0.1:")
  assert any("tables checkpointed to" in l for l in state["lines"]["server"])
  assert checkpoints(os.path.join(run.root_dir, "reverb")), "the final checkpoint is gone"
  pids = [s["pid"] for starts in state["starts"].values() for s in starts]
  assert wait_for(lambda: not gone(pids), 30, "the roles' processes to end")


def test_actor_learner_and_server_killed_are_restarted_by_ray_and_resume(local_ray, tmp_path):
  # Limiter open (actors write whether or not the learner samples); the
  # learner SIGKILLs itself at its 17th train call (last checkpoint: 15);
  # the server checkpoints every second.
  run = launch(tmp_path, DQN, ["tfrl.distributed.samples_per_insert.value=1e-3",
                               "tfrl.distributed.samples_per_insert.error_buffer=1e9",
                               "tfrl.distributed.serve.checkpoint_interval_s=1",
                               "tfrl.distributed.ray.Placement.env_vars="
                               "{'learner': {'TFRL_KILL_AT': 'train:17'}}"])
  lines = lambda name: run.state()["lines"].get(name, [])

  def after_restart(name, pattern):
    """A match of `pattern` (a non-zero count) in `name`'s lines after its last restart."""
    found = lines(name)
    marks = [i for i, l in enumerate(found) if "restarted by Ray" in l]
    matches = [re.search(pattern, l) for l in found[marks[-1]:]] if marks else []
    return next((m for m in matches if m and m.group(1) != "0"), None)

  try:
    wait_for(lambda: any(n > 0 for n in items_written(lines("actor_0"))), 300, "actor_0's items")
    first_actor = run.state()["starts"]["actor_0"][0]["pid"]
    os.kill(first_actor, signal.SIGKILL)
    row = run.wait()
    # Ray restarted actor_0 (a new process, the same id), whose new items reach the server.
    wait_for(lambda: after_restart("actor_0", r"items_written=(\d+)"), 300,
             "actor_0's items after its restart")
    # The server, SIGKILLed after a checkpoint of its items, comes back on
    # its port with them, and the actors reconnect.
    directory = os.path.join(run.root_dir, "reverb")
    wait_for(lambda: checkpoints(directory), 60, "a server checkpoint")
    time.sleep(1.5)  # one more checkpoint, of the items now in the table
    os.kill(run.state()["starts"]["server"][0]["pid"], signal.SIGKILL)
    restored = wait_for(lambda: after_restart("server", r"transitions: (\d+) items"), 300,
                        "the restarted server's tables")
    wait_for(lambda: any("(a new server instance)" in l for l in lines("actor_1")), 120,
             "actor_1 reconnecting")
    state = run.state()
  finally:
    run.stop()
  starts = {name: [s["pid"] for s in runs] for name, runs in state["starts"].items()}
  assert starts["actor_0"][0] == first_actor and len(starts["actor_0"]) == 2
  assert len(starts["actor_1"]) == 1 and len(starts["server"]) == 2
  assert int(restored.group(1)) > 0
  port = run.address.rsplit(":", 1)[1]
  assert f"listening on *:{port} " in restored.string, "the server came back on another port"
  # The learner died once and resumed from its checkpoint at iteration 15.
  assert len(starts["learner"]) == 2
  assert any("resuming" in l and "at iteration 15" in l for l in state["lines"]["learner"])
  progress = rows(os.path.join(run.learner_dir, "progress.csv"))
  assert [int(r["iteration"]) for r in progress] == [0, 10, 20, 30]  # unique, in order
  assert int(row["train_steps"]) == 300 and int(progress[-1]["train_steps"]) == 300
  pids = [p for runs in starts.values() for p in runs]
  assert wait_for(lambda: not gone(pids), 30, "the roles' processes to end")


def test_ctrl_c_stops_every_role_and_leaves_no_process(tmp_path):
  root = tmp_path / "dist"
  files, bindings = split(DQN)
  args = [sys.executable, os.path.join(REPO, "scripts", "launch_ray.py"), "--num_actors=2",
          f"--root_dir={root}"] + [f"--gin_file={f}" for f in files] + [
          f"--gin_bindings={b}" for b in bindings + SMALL + ["tfrl.train.train.num_iterations=100000"]]
  # A session of its own, so a Ctrl-C is signalled as a terminal does: to the whole group.
  process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
  try:
    progress = root / "learner" / "progress.csv"
    wait_for(lambda: progress.exists() and len(rows(str(progress))) >= 2, 300,
             "the learner's second progress row")
    tree = [p.pid for p in psutil.Process(process.pid).children(recursive=True)]
    assert len(tree) >= 5  # Ray's services and the four roles, at least
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=180)
  finally:
    if process.poll() is None:
      os.killpg(process.pid, signal.SIGKILL)
  assert process.returncode == 130, output[-3000:]
  assert "stopping every role (Ctrl-C)" in output
  # The learner stopped at an iteration boundary with a checkpoint, the server after its own.
  assert re.search(r"^learner: interrupted at iteration \d+; checkpointed there", output, re.M), \
      output[-3000:]
  assert "did not stop within" not in output
  assert re.search(r"^server: stopping; tables checkpointed to", output, re.M), output[-3000:]
  assert not gone(tree), [psutil.Process(p).cmdline() for p in gone(tree)]
