"""The actor role: pull the latest policy, collect with the batched driver,
write tagged items to the replay table; repeat.

Off-policy actors collect continuously; the table's SampleToInsertRatio
limiter blocks their writes when they run ahead of the learner. On-policy
actors collect one batch of whole episodes per policy version and then wait
for the next version (episodes from an older version would be dropped).
A lost server (killed, restarting) raises nothing here: Reverb's clients
wait for it (gRPC wait-for-ready; the writer's stream and the variable
sample block) and carry on over the same objects once it listens again on the
same address (tests/test_distributed.py kills it for ~10 s). Items the dead
server had accepted after its last checkpoint are gone with it.
"""

import time
from typing import Callable, Optional

import gin
import reverb

from tfrl import envs
from tfrl.distributed import wiring
from tfrl.drivers import Driver
from tfrl.train import faults

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
            log: Callable[[str], None] = print) -> dict:
  """Collects until `max_env_steps` (None: until stopped).

  Per pull of the policy variables an actor collects `steps_per_pull`
  (off-policy; default collect_steps_per_iteration) or `episodes_per_pull`
  whole episodes (on-policy; default collect_episodes_per_iteration).
  Prints `actor=<id> env_steps=.. items_written=.. policy_version=..` lines.
  """
  settings = wiring.train_settings()
  replay = settings["replay"]
  num_envs = settings["num_envs"]
  steps_per_pull = steps_per_pull or settings["collect_steps_per_iteration"]
  episodes_per_pull = episodes_per_pull or settings["collect_episodes_per_iteration"]
  envs.check_env_id(settings["env_id"])
  env = envs.load(settings["env_id"], seed=settings["seed"] + ACTOR_SEED_STRIDE * (actor_id + 1),
                  num_envs=num_envs)
  agent = wiring.build_agent(settings, env)
  wiring.replay_tables(settings, agent)  # the replay component learns the item layout
  tagger = wiring.Tagger(None, actor_id, num_envs)
  driver = Driver(env, agent.collect_policy, observers=[tagger, faults.collect_observer])
  wiring.wait_for_server(server_address, connect_timeout_s, log)
  tagger.adder = replay.adder(reverb.Client(server_address), num_envs)
  variables = wiring.PolicyVariables(server_address, agent)

  def report():
    log(f"actor={actor_id} env_steps={driver.env_steps} "
        f"items_written={tagger.adder.items_written} "
        f"policy_version={tagger.policy_version} "
        f"steps_per_s={driver.env_steps / max(1e-9, time.time() - start):.1f}")

  log(f"actor {actor_id} connected to {server_address}")
  start = last_report = time.time()
  collected_version = None
  try:
    while max_env_steps is None or driver.env_steps < max_env_steps:
      tagger.policy_version = variables.pull()
      if replay.on_policy:
        if tagger.policy_version == collected_version:
          time.sleep(0.02)  # this version's batch is written; wait for the next
          continue
        driver.run_episodes(episodes_per_pull)
        collected_version = tagger.policy_version
      else:
        driver.run_steps(steps_per_pull)
      if time.time() - last_report >= report_interval_s:
        report()
        last_report = time.time()
      # Every item of the chunk is in the table here (the driver flushed).
      faults.point("actor_chunk")
  finally:
    if tagger.adder is not None:
      tagger.adder.close()  # flushes what is still buffered
    env.close()
  report()
  return dict(env_steps=driver.env_steps, items_written=tagger.adder.items_written)
