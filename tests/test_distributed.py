"""Distributed roles on loopback: a Reverb server, two actors and a learner
as separate processes started by hand, driven by the same gin files; then
kills. And the learner in-process, on a server filled here. (The roles
under Ray, launch_ray.py: test_ray_launch.py.)"""

import csv
import os
import re
import signal
import subprocess
import sys
import time

import portpicker
import pytest
import numpy as np
import reverb

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")

COMMON = ["tfrl.train.train.num_eval_episodes=1", "tfrl.train.train.export_policy=False",
          "tfrl.envs.load.max_episode_steps=50",  # short episodes keep on-policy iterations quick
          "tfrl.distributed.collect.report_interval_s=0"]
# DQN: 30 iterations x 10 = 300 train steps on batches of 16; 10 items sampled per insert.
DQN = ["--gin_file=dqn_cartpole.gin"] + [f"--gin_bindings={b}" for b in COMMON + [
    "tfrl.train.train.num_iterations=30", "tfrl.train.train.train_steps_per_iteration=10",
    "tfrl.train.train.batch_size=16", "tfrl.train.train.collect_steps_per_iteration=16",
    "tfrl.train.train.eval_interval=10", "tfrl.train.train.checkpoint_interval=5",
    "tfrl.agents.dqn.fc_layer_params=(32,)", "tfrl.replay.TransitionReplay.min_size=100",
    "tfrl.replay.TransitionReplay.capacity=2000", "tfrl.train.train.eval_num_envs=1"]]
# PPO: 100 updates (3 epochs each) on 2 fresh episodes each.
PPO = ["--gin_file=ppo_cartpole.gin"] + [f"--gin_bindings={b}" for b in COMMON + [
    "tfrl.train.train.num_iterations=100", "tfrl.train.train.eval_interval=50",
    "tfrl.train.train.num_envs=2", "tfrl.train.train.collect_episodes_per_iteration=2",
    "tfrl.agents.ppo.num_epochs=3", "tfrl.agents.ppo.value_epochs=3",
    "tfrl.agents.ppo.actor_fc_layer_params=(32,)", "tfrl.agents.ppo.value_fc_layer_params=(32,)",
    "tfrl.train.train.eval_num_envs=1"]]


def rows(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def actor_reports(text):
  """(items_written, policy_version) of each report line."""
  return [(int(m.group(1)), int(m.group(2)))
          for m in re.finditer(r"items_written=(\d+) policy_version=(\d+)", text)]


def check_followed_versions(reports, final_version):
  versions = [v for _, v in reports]
  assert versions == sorted(versions), "an actor went back to an older policy"
  assert len(set(versions)) >= 3 and versions[-1] >= final_version // 2, versions


def start(script, args, log_path, kill_at=None, reverb_logs=False):
  """`reverb_logs`: keep Reverb's routine log lines (tfrl filters them out)."""
  env = dict(os.environ)
  env.pop("TFRL_KILL_AT", None)
  if kill_at:
    env["TFRL_KILL_AT"] = kill_at
  if reverb_logs:
    env["TFRL_REVERB_LOGS"] = "1"
  log = open(log_path, "w")
  return subprocess.Popen([sys.executable, os.path.join(SCRIPTS, script)] + args,
                          stdout=log, stderr=subprocess.STDOUT, env=env)


def wait(process, timeout):
  try:
    return process.wait(timeout)
  except subprocess.TimeoutExpired:
    process.kill()
    raise


def test_actor_and_learner_killed_and_restarted(tmp_path):
  port = portpicker.pick_unused_port()
  address = f"localhost:{port}"
  learner_dir = str(tmp_path / "learner")
  log = lambda name: str(tmp_path / f"{name}.log")
  text = lambda name: open(log(name)).read()
  server = start("reverb_server.py", DQN + [f"--port={port}", f"--checkpoint_dir={tmp_path}/reverb"],
                 log("server"))
  processes = [server]
  try:
    actors = [start("collect.py", DQN + [f"--server={address}", "--actor_id=0"], log("actor_0a"),
                    kill_at="actor_chunk:4"),
              start("collect.py", DQN + [f"--server={address}", "--actor_id=1"], log("actor_1"))]
    processes += actors
    learner = start("train.py", DQN + [f"--replay_server={address}", f"--root_dir={learner_dir}"],
                    log("learner_a"), kill_at="train:17")
    processes.append(learner)
    # The actor dies after its 4th chunk (all flushed); restart it, same id.
    assert wait(actors[0], 300) == -signal.SIGKILL
    restarted = start("collect.py", DQN + [f"--server={address}", "--actor_id=0"],
                      log("actor_0b"))
    processes.append(restarted)
    # The learner dies at its 17th train call (iteration 17; last checkpoint 15).
    assert wait(learner, 300) == -signal.SIGKILL, text("learner_a")[-3000:]
    learner = start("train.py", DQN + [f"--replay_server={address}", f"--root_dir={learner_dir}"],
                    log("learner_b"))
    processes.append(learner)
    assert wait(learner, 300) == 0, text("learner_b")[-3000:]
    assert "resuming " in text("learner_b") and "at iteration 15" in text("learner_b")
    progress = rows(os.path.join(learner_dir, "progress.csv"))
    assert [int(r["iteration"]) for r in progress] == [0, 10, 20, 30]
    assert int(progress[-1]["train_steps"]) == 300
    assert int(progress[-1]["samples_from_actor_0"]) > 0 and int(progress[-1]["samples_from_actor_1"]) > 0
    assert progress[-1]["episodes"] == ""  # sampled windows do not count episodes

    # Accounting. The killed actor's 4 chunks were all flushed when it died;
    # live actors may be blocked by the rate limiter inside one chunk, whose
    # items (16 steps / 4 envs = 4) may be partly in. Nothing else may differ.
    killed = actor_reports(text("actor_0a"))
    assert len(killed) == 4
    info = reverb.Client(address).server_info()["transitions"]
    inserted = info.rate_limiter_info.insert_stats.completed
    reported = killed[-1][0] + actor_reports(text("actor_0b"))[-1][0] + \
        actor_reports(text("actor_1"))[-1][0]
    assert reported <= inserted <= reported + 2 * 4, (reported, inserted)
    assert info.current_size == min(inserted, 2000 // 4)  # FIFO capacity, nothing else removed
    # Actors follow the learner's versions; its restart rolls the policy back
    # once, to its checkpoint (iteration 15 = train step 150), never further.
    for name in ("actor_0a", "actor_0b", "actor_1"):
      versions = [v for _, v in actor_reports(text(name))]
      drops = [b for a, b in zip(versions, versions[1:]) if b < a]
      assert len(drops) <= 1 and all(b >= 150 for b in drops), versions
    # The restarted actor started from the learner's current version, not 0.
    assert actor_reports(text("actor_0b"))[0][1] > 0
  finally:
    for p in processes[1:] + [server]:
      if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
          p.wait(30)
        except subprocess.TimeoutExpired:
          p.kill()


def test_server_killed_and_restarted_from_its_checkpoint(tmp_path):
  """SIGKILL the server mid-run and restart it on the same port and
  checkpoint dir: it restores the tables of its last checkpoint; actors
  notice (bounded waits), drop their writers, reconnect and write again;
  training completes.

  For an exact count, actors and learner are paused (SIGSTOP) while the
  test asks for the checkpoint; the actors are resumed while the server is
  dead. The learner stays paused until both actors have reconnected: it
  needs only one actor's data and would otherwise finish the run within
  about a second of the restart, before the other actor's wait runs out
  (`ServerLink.wait_s`), leaving nothing to sample that actor's items."""
  port = portpicker.pick_unused_port()
  address = f"localhost:{port}"
  learner_dir = str(tmp_path / "learner")
  log = lambda name: str(tmp_path / f"{name}.log")
  text = lambda name: open(log(name)).read()
  server_args = DQN + ["--gin_bindings=tfrl.distributed.serve.checkpoint_interval_s=3600",
                       f"--port={port}", f"--checkpoint_dir={tmp_path}/reverb"]
  server = start("reverb_server.py", server_args, log("server_a"))
  processes = [server]
  try:
    clients = [start("collect.py", DQN + [f"--server={address}", f"--actor_id={i}"],
                     log(f"actor_{i}")) for i in (0, 1)]
    learner = start("train.py", DQN + [f"--replay_server={address}", f"--root_dir={learner_dir}"],
                    log("learner"))
    clients.append(learner)
    processes += clients
    progress_path = os.path.join(learner_dir, "progress.csv")
    deadline = time.time() + 120
    while not (os.path.exists(progress_path) and len(rows(progress_path)) >= 2):
      assert time.time() < deadline and learner.poll() is None, text("learner")[-3000:]
      time.sleep(0.2)
    # Mid-run (iteration 10 of 30): freeze the clients, let in-flight writes land.
    for p in clients:
      p.send_signal(signal.SIGSTOP)
    client = reverb.Client(address)
    state = lambda: {n: (t.current_size, t.rate_limiter_info.insert_stats.completed)
                     for n, t in client.server_info(timeout=10).items()}
    before = state()
    while True:
      time.sleep(0.5)
      now = state()
      if now == before:
        break
      before = now
    client.checkpoint()
    checkpointed = state()
    assert checkpointed == before and checkpointed["transitions"][0] > 0
    server.kill()
    assert server.wait(30) == -signal.SIGKILL
    reports_before = [actor_reports(text(f"actor_{i}")) for i in (0, 1)]
    for p in clients[:2]:
      p.send_signal(signal.SIGCONT)
    time.sleep(3)  # actors run against a dead server for a while
    server = start("reverb_server.py", server_args, log("server_b"), reverb_logs=True)
    processes.append(server)
    reconnected = lambda i: f"actor {i} reconnected to {address}" in text(f"actor_{i}")
    deadline = time.time() + 180
    while not (reconnected(0) and reconnected(1)):
      running = all(p.poll() is None for p in (server, clients[0], clients[1]))
      assert time.time() < deadline and running, (text("actor_0")[-2000:], text("actor_1")[-2000:])
      time.sleep(0.5)
    learner.send_signal(signal.SIGCONT)
    assert wait(learner, 180) == 0, text("learner")[-3000:]
    # Reverb's own account of what it loaded at restart.
    loaded = dict((m.group(1), int(m.group(2))) for m in re.finditer(
        r"Table (\w+) and (\d+) items have been successfully loaded", text("server_b")))
    assert loaded == {name: size for name, (size, _) in checkpointed.items()}, text("server_b")
    progress = rows(progress_path)
    assert [int(r["iteration"]) for r in progress] == [0, 10, 20, 30]
    assert int(progress[-1]["train_steps"]) == 300
    # Collection went on after the restart: more inserts than the checkpoint held.
    assert state()["transitions"][1] > checkpointed["transitions"][1]
    # Actors report every few seconds; a learner that finishes sooner than
    # that after the restart leaves them no report yet: wait (bounded) for one.
    reports_after = lambda i: actor_reports(
        text(f"actor_{i}").split(f"actor {i} reconnected to {address}")[-1])
    deadline = time.time() + 60
    while not (reports_after(0) and reports_after(1)) and time.time() < deadline:
      time.sleep(0.5)
    for i in (0, 1):
      actor_log = text(f"actor_{i}")
      # Each actor noticed the lost server, reconnected, and then wrote chunks
      # the new server confirmed, acting with weights the learner pushed
      # after the restart (newer than any it had before).
      after = actor_reports(actor_log.split(f"actor {i} reconnected to {address}")[-1])
      newest_before = max(v for _, v in reports_before[i])
      assert after and after[-1][0] > reports_before[i][-1][0], (after, actor_log[-4000:])
      assert max(v for _, v in after) > newest_before, (after, reports_before[i])
  finally:
    for p in processes[1:] + [server]:
      if p.poll() is None:
        p.send_signal(signal.SIGCONT)
        p.send_signal(signal.SIGTERM)
        try:
          p.wait(30)
        except subprocess.TimeoutExpired:
          p.kill()


@pytest.mark.parametrize("gin_file, binding", [
    ("rudder_ppo_delayed_cartpole.gin", None),
    ("dqn_cartpole.gin", "tfrl.train.train.compiled = True")])
def test_roles_refuse_what_only_the_single_process_loop_runs(gin_file, binding):
  """RUDDER and the compiled loop live in tfrl.train.train's own loop: the
  distributed roles say so instead of training without them."""
  from tfrl.distributed import wiring
  from tfrl.errors import ConfigError
  from tfrl.train import config
  config.parse_config([gin_file], [binding] if binding else [])
  with pytest.raises(ConfigError, match="not supported by the distributed actors"):
    wiring.role_config()


def test_learner_stops_on_a_non_finite_loss_and_keeps_the_last_good_checkpoint(tmp_path):
  """The learner runs the one loop's finite checks: weights poisoned after
  iteration 3 make iteration 4's loss NaN; the run stops with one line and
  the iteration-2 checkpoint stays the latest."""
  import dataclasses

  import tensorflow as tf
  import tfrl
  from tfrl.distributed import wiring
  from tfrl.train import config as train_config

  train_config.parse_config(["reinforce_cartpole.gin"], [
      "tfrl.train.train.num_iterations = 6", "tfrl.train.train.num_envs = 2",
      "tfrl.train.train.collect_episodes_per_iteration = 2",
      "tfrl.train.train.eval_interval = 2", "tfrl.train.train.checkpoint_interval = 2",
      "tfrl.train.train.num_eval_episodes = 1", "tfrl.train.train.export_policy = False",
      "tfrl.distributed.learn.max_policy_lag = 1000"])
  settings = wiring.role_config()
  actor_agent = wiring.build_agent(settings)
  server = tfrl.replay.ReplayServer(wiring.replay_tables(settings, actor_agent)
                                    + [wiring.variable_table(actor_agent)])
  env = tfrl.envs.load(settings.env_id, seed=5, num_envs=2)
  tagger = wiring.Tagger(settings.replay.adder(server.client, 2), actor_id=0, num_envs=2)
  tfrl.drivers.Driver(env, actor_agent.collect_policy, observers=[tagger]).run_episodes(12)
  tagger.close()

  class PoisonAfterIteration3(tfrl.train.Hook):
    def after(self, run, advance):
      if run.iteration == 3:
        for variable in run.agent.trainable_variables:
          if variable.dtype.is_floating:
            variable.assign(tf.fill(variable.shape, np.nan))

  root = str(tmp_path / "learner")
  learner_settings = dataclasses.replace(settings, replay_server_address=server.address)
  with pytest.raises(FloatingPointError, match="at iteration 4; last good checkpoint: .*ckpt-2"):
    tfrl.distributed.learn(root, learner_settings, hooks=[PoisonAfterIteration3()],
                           log=lambda _: None)
  server.close()
  env.close()
  assert tf.train.latest_checkpoint(os.path.join(root, "checkpoints")).endswith("ckpt-2")
  assert [int(r["iteration"]) for r in rows(os.path.join(root, "progress.csv"))] == [0, 2]


def test_server_link_tells_each_start_from_a_checkpoint_from_the_instance_before(tmp_path):
  """Reverb's tables_state_id, asked over gRPC, names the instance: two
  restarts from one checkpoint are new instances to a link that reached the
  first; the same instance answering (busy or not) is not."""
  from tfrl.distributed import wiring
  port = portpicker.pick_unused_port()
  checkpoint_dir = str(tmp_path / "reverb")
  table = lambda: reverb.Table.queue("data", 10)
  start = lambda: reverb.Server([table()], port=port,
                                checkpointer=reverb.checkpointers.DefaultCheckpointer(checkpoint_dir))
  server = start()
  client = reverb.Client(f"localhost:{port}")
  client.insert([np.float32(1)], {"data": 1.0})
  client.checkpoint()
  link = wiring.ServerLink(f"localhost:{port}", log=lambda _: None, probe_timeout_s=2)
  assert link.connect(10) is False
  client.insert([np.float32(2)], {"data": 1.0})
  tables, first = wiring.server_info(link.address, 2)
  assert link.check()["data"].current_size == tables["data"].current_size == 2
  assert tables["data"].rate_limiter_info.insert_stats.completed == 2
  instances = {first}
  for _ in range(2):  # both restored from the checkpoint written above
    server.stop()
    server = start()
    tables, instance = wiring.server_info(link.address, 2)
    assert tables["data"].current_size == 1  # the checkpoint's
    instances.add(instance)
    with pytest.raises(wiring.ServerLost, match="was restarted"):
      link.check()
    assert link.connect(10) is True and link.connect(10) is False
  server.stop()
  assert len(instances) == 3
  with pytest.raises(wiring.ServerLost, match="did not answer"):
    link.check()
