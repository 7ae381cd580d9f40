"""The actor role: pull the latest policy, collect with the batched driver,
write tagged items to the replay table; repeat.

Off-policy actors collect continuously; the table's SampleToInsertRatio
limiter blocks their writes when they run ahead of the learner. On-policy
actors collect one batch of whole episodes per policy version and then wait
for the next version (episodes from an older version would be dropped).
A lost server (killed, restarting): the writer's flushes and the variable
pulls wait at most `ServerLink.wait_s` at a time; when a wait runs out and the
server does not answer, or answers as a new instance (restarted from its
checkpoint), the actor drops its writer and clients with the items not yet
confirmed (at most the chunk in progress), waits for the server, builds new
ones, resets its envs and goes on. Nothing is written twice: a new writer
never re-sends the old one's items. Items the dead server had accepted after
its last checkpoint are gone with it. On-policy actors write through Reverb's
legacy Writer, which has no timeout: they wait inside a write while the
server is gone; an error it raises then counts as a lost server if the server
is gone or restarted.
"""

import time
from typing import Callable, Optional

import gin
import reverb

from tfrl import envs
from tfrl.distributed import wiring
from tfrl.drivers import Driver
from tfrl.replay import reverb_logs
from tfrl.train import faults
from tfrl.train.settings import RunConfig

# Vector envs seed sub-env i with seed + i: actors' seeds are far apart.
ACTOR_SEED_STRIDE = 10_007


@gin.configurable(module="tfrl.distributed")
def collect(server_address: str,
            actor_id: int,
            max_env_steps: Optional[int] = None,
            steps_per_pull: Optional[int] = None,
            episodes_per_pull: Optional[int] = None,
            connect_timeout_s: float = 120.0,
            report_interval_s: float = 2.0,
            log: Callable[[str], None] = print,
            config: Optional[RunConfig] = None) -> dict:
  """Collects until `max_env_steps` (None: until stopped).

  Per pull of the policy variables an actor collects `steps_per_pull`
  (off-policy; default collect_steps_per_iteration) or `episodes_per_pull`
  whole episodes (on-policy; default collect_episodes_per_iteration).
  Prints `actor=<id> env_steps=.. items_written=.. policy_version=..` lines
  (items_written: items the server confirmed, or will once the chunk in
  progress is flushed; items dropped at a reconnect are not counted).
  """
  reverb_logs.quiet()  # Reverb's "pending items alarmingly high" lines off the actor's log
  config = wiring.role_config(config)
  replay = config.replay
  num_envs = config.num_envs
  steps_per_pull = steps_per_pull or config.collect_steps_per_iteration
  episodes_per_pull = episodes_per_pull or config.collect_episodes_per_iteration
  env = envs.load(config.env_id, seed=config.seed + ACTOR_SEED_STRIDE * (actor_id + 1),
                  num_envs=num_envs)
  agent = wiring.build_agent(config, env)
  tagger = wiring.Tagger(None, actor_id, num_envs)
  driver = Driver(env, agent.collect_policy, observers=[tagger, faults.collect_observer])
  link = wiring.ServerLink(server_address, log)
  link.connect(connect_timeout_s)
  connection = _Connection(link, replay, agent, tagger, num_envs)
  # Items of earlier connections that the server confirmed.
  written_before = 0

  def items_written():
    return written_before + tagger.adder.items_written

  def report():
    log(f"actor={actor_id} env_steps={driver.env_steps} "
        f"items_written={items_written()} "
        f"policy_version={tagger.policy_version} "
        f"steps_per_s={driver.env_steps / max(1e-9, time.time() - start):.1f}")

  log(f"actor {actor_id} connected to {server_address}")
  start = last_report = time.time()
  collected_version = None
  confirmed = 0  # items of the current adder that the server confirmed (flushed)
  reset_envs = False
  try:
    while max_env_steps is None or driver.env_steps < max_env_steps:
      try:
        if reset_envs:  # a new writer holds no steps: episodes and windows start afresh
          driver.reset()
          reset_envs = False
        tagger.policy_version = connection.variables.pull()
        if replay.on_policy:
          if tagger.policy_version == collected_version:
            time.sleep(0.02)  # this version's batch is written; wait for the next
            continue
          driver.run_episodes(episodes_per_pull)
          collected_version = tagger.policy_version
        else:
          driver.run_steps(steps_per_pull)
      except (wiring.ServerLost, RuntimeError) as error:
        # RuntimeError: on-policy actors' legacy Reverb Writer, which has no
        # timeout, may report a stream lost with the server as an error.
        lost = error if isinstance(error, wiring.ServerLost) else link.explain(error)
        log(f"actor {actor_id}: {lost}; dropping {tagger.adder.items_written - confirmed} "
            "unconfirmed item(s), reconnecting")
        written_before += confirmed
        restarted = connection.rebuild()
        confirmed, collected_version, reset_envs = 0, None, True
        log(f"actor {actor_id} reconnected to {server_address}"
            f"{' (a new server instance)' if restarted else ''}")
        continue
      confirmed = tagger.adder.items_written
      if time.time() - last_report >= report_interval_s:
        report()
        last_report = time.time()
      # Every item of the chunk is in the table here (the driver flushed).
      faults.point("actor_chunk")
  finally:
    connection.close()
    env.close()
  report()
  return dict(env_steps=driver.env_steps, items_written=items_written())


class _Connection:
  """An actor's writer (the tagger's adder) and variable transport on one
  server connection, rebuilt together when the link reports the server lost."""

  def __init__(self, link: wiring.ServerLink, replay, agent, tagger: wiring.Tagger,
               num_envs: int):
    self._link, self._replay, self._agent = link, replay, agent
    self._tagger, self._num_envs = tagger, num_envs
    self.variables = None
    self._open()

  def _open(self):
    adder = self._replay.adder(reverb.Client(self._link.address), self._num_envs)
    if hasattr(adder, "wait"):  # TrajectoryWriter adders: bounded flushes
      adder.wait = self._link.wait
    self._tagger.adder = adder
    self.variables = wiring.PolicyVariables(self._link, self._agent)

  def rebuild(self) -> bool:
    """Drops the old writer and clients (their unconfirmed items with them),
    waits for the server, opens anew. Returns whether a new server instance
    answered."""
    self.close()
    restarted = self._link.connect()
    self._open()
    return restarted

  def close(self):
    """Closes the writer without waiting for unconfirmed items (a
    TrajectoryWriter's close does not flush; the driver flushed every
    completed chunk)."""
    self.variables.close()
    try:
      self._tagger.adder.close()
    except (RuntimeError, reverb.errors.ReverbError):
      pass  # the lost connection's last error: nothing left to deliver there
