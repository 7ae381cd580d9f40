"""What every distributed role agrees on: settings, tables, item tags, policy variables.

All three roles (server, actor, learner) read the same gin files, so they
build the same agent and hence the same table signatures. Items carry two
tags in the trajectory's `policy_info` — which actor wrote them and the policy
version (the learner's train step) that acted — so the learner can check
where its data came from and how stale it is. Policy weights travel through a
Reverb table too (tf-agents' `ReverbVariableContainer`).
"""

import inspect
import time
from typing import Callable, Dict, List, Optional

import gin
import numpy as np
import reverb
import tensorflow as tf
from tf_agents.experimental.distributed import reverb_variable_container as variable_container
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import trajectory as trajectory_lib

from tfrl import envs
from tfrl.errors import ConfigError

VARIABLE_TABLE = variable_container.DEFAULT_TABLE
TAG_SPECS = {"actor_id": tf.TensorSpec([], tf.int32),
             "policy_version": tf.TensorSpec([], tf.int64)}


def train_settings() -> Dict[str, object]:
  """`tfrl.train.train`'s arguments as the gin files set them (defaults
  filled in): one source of truth for every role."""
  from tfrl.train.runner import train  # pylint: disable=import-outside-toplevel
  settings = {name: p.default for name, p in inspect.signature(train).parameters.items()
              if p.default is not inspect.Parameter.empty}
  settings.update(gin.get_bindings("tfrl.train.train"))
  missing = [n for n in ("env_id", "agent_fn", "replay") if settings.get(n) is gin.REQUIRED]
  if missing:
    raise ConfigError(f"the gin files bind no tfrl.train.train.{', '.join(missing)}")
  return settings


def build_agent(settings, env=None):
  """The agent the gin files describe (specs taken from `env`, or a fresh one)."""
  if env is None:
    envs.check_env_id(settings["env_id"])
    env = envs.load(settings["env_id"], seed=settings["seed"])
    try:
      return build_agent(settings, env)
    finally:
      env.close()
  return settings["agent_fn"](tensor_spec.from_spec(env.time_step_spec()),
                              tensor_spec.from_spec(env.action_spec()))


def tagged_data_spec(data_spec: trajectory_lib.Trajectory) -> trajectory_lib.Trajectory:
  """The agent's collect_data_spec with the tags beside its own policy_info."""
  return data_spec._replace(policy_info=dict(TAG_SPECS, policy_info=data_spec.policy_info))


def split_tags(traj: trajectory_lib.Trajectory):
  """(the trajectory the agent expects, {tag: values})."""
  info = dict(traj.policy_info)
  return traj._replace(policy_info=info.pop("policy_info")), info


class Tagger:
  """Wraps an adder: each trajectory it passes on carries the actor id and
  the policy version in force. Forwards the driver's env mask, flush, reset."""

  def __init__(self, adder, actor_id: int, num_envs: int):
    self.adder = adder
    self.accepts_env_mask = getattr(adder, "accepts_env_mask", False)
    self.policy_version = 0
    self._actor_ids = np.full(num_envs, actor_id, np.int32)
    self._num_envs = num_envs

  def __call__(self, traj, *env_mask):
    tags = {"actor_id": self._actor_ids,
            "policy_version": np.full(self._num_envs, self.policy_version, np.int64)}
    self.adder(traj._replace(policy_info=dict(tags, policy_info=traj.policy_info)), *env_mask)

  def flush(self):
    self.adder.flush()

  def reset(self):
    self.adder.reset()

  def close(self):
    self.adder.close()


@gin.configurable(module="tfrl.distributed")
def samples_per_insert(settings, value: Optional[float] = None,
                       error_buffer: Optional[float] = None):
  """(samples per insert, error buffer) for off-policy replay.

  `value`: Reverb items sampled per item inserted; None keeps train.py's own
  ratio, train_steps_per_iteration * batch_size / collect_steps_per_iteration
  (an item holds every env's window, so this is transitions trained per
  transition collected). `error_buffer`: how many samples learner and actors
  may drift from that ratio before the faster one blocks; None: 10% of
  `min_size`'s worth, at least 2 * max(1, ratio) (Reverb's floor).
  """
  if value is None:
    value = (settings["train_steps_per_iteration"] * settings["batch_size"]
             / settings["collect_steps_per_iteration"])
  if value <= 0:
    raise ConfigError(f"samples_per_insert must be > 0, got {value}")
  floor = 2 * max(1.0, value)
  if error_buffer is None:
    min_items = settings["replay"].min_size / settings["num_envs"]
    error_buffer = max(floor, 0.1 * min_items * value)
  elif error_buffer < floor:
    raise ConfigError(f"error_buffer {error_buffer} < 2 * max(1, samples_per_insert) = {floor}")
  return float(value), float(error_buffer)


def replay_tables(settings, agent) -> List[reverb.Table]:
  """The replay table(s) of the agent's replay component, for tagged items;
  off-policy tables rate-limited by `samples_per_insert`. Also prepares the
  component to read them (it learns the data spec here)."""
  replay = settings["replay"]
  spec = tagged_data_spec(agent.collect_data_spec)
  if replay.on_policy:
    # Each episode is read at most once (max_times_sampled=1); the learner
    # drops stale ones, the FIFO drops the oldest when full.
    return replay.tables(spec, settings["num_envs"])
  value, error_buffer = samples_per_insert(settings)
  return replay.tables(spec, settings["num_envs"], samples_per_insert=value,
                       error_buffer=error_buffer)


def policy_variables(agent) -> dict:
  """What actors load: the collect policy's variables and the train step
  (the policy version; DQN's epsilon schedule also reads it)."""
  return {variable_container.POLICY_KEY: agent.collect_policy.variables(),
          variable_container.TRAIN_STEP_KEY: agent.train_step_counter}


def variable_table(agent) -> reverb.Table:
  """One slot holding the latest pushed policy variables; sampling never
  removes it, and it blocks until the learner has pushed once."""
  signature = tf.nest.map_structure(lambda v: tf.TensorSpec(v.shape, v.dtype),
                                    policy_variables(agent))
  return reverb.Table(name=VARIABLE_TABLE, sampler=reverb.selectors.Uniform(),
                      remover=reverb.selectors.Fifo(), max_size=1, max_times_sampled=0,
                      rate_limiter=reverb.rate_limiters.MinSize(1), signature=signature)


class PolicyVariables:
  """The learner pushes, actors pull (tf-agents' ReverbVariableContainer)."""

  def __init__(self, address: str, agent):
    self._container = variable_container.ReverbVariableContainer(address)
    self._variables = policy_variables(agent)
    self._train_step = agent.train_step_counter

  def push(self):
    self._container.push(self._variables)

  def pull(self) -> int:
    """Loads the latest pushed variables (blocking until there are some);
    returns their policy version."""
    self._container.update(self._variables)
    return int(self._train_step.numpy())


def check_address(address: Optional[str], flag: str) -> str:
  """Roles connect only where they are told: "host:port", given explicitly."""
  if not address:
    raise ConfigError(f"give the Reverb server's address explicitly: {flag}=host:port")
  host, _, port = address.rpartition(":")
  if not host or not port.isdigit():
    raise ConfigError(f"{flag}={address!r} is not host:port")
  return address


def wait_for_server(address: str, timeout_s: float, log: Callable[[str], None] = print) -> None:
  """Blocks until the server at `address` answers (it may be restarting)."""
  deadline = time.time() + timeout_s
  said = False
  while True:
    try:
      reverb.Client(address).server_info(timeout=5)
      return
    except (RuntimeError, tf.errors.OpError, ConnectionError, reverb.errors.ReverbError) as e:
      if time.time() > deadline:
        raise ConfigError(f"Reverb server {address} did not answer within {timeout_s:.0f} s "
                          f"({type(e).__name__})") from None
      if not said:
        log(f"waiting for the Reverb server at {address} ...")
        said = True
      time.sleep(0.5)
