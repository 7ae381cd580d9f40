"""What every distributed role agrees on: settings, tables, item tags, policy variables.

All three roles (server, actor, learner) read the same gin files, so they
build the same agent and hence the same table signatures. Items carry two
tags in the trajectory's `policy_info` — which actor wrote them and the policy
version (the learner's train step) that acted — so the learner can check
where its data came from and how stale it is. Policy weights travel through a
Reverb table too (tf-agents' `ReverbVariableContainer` layout). `ServerLink`
gives every blocking call on the server a bounded wait and tells a busy
server from a dead or restarted one, so roles can rebuild their connection.
"""

import functools
import time
from typing import Callable, Dict, List, Optional

import gin
import grpc
import numpy as np
import reverb
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from reverb import reverb_types
from reverb.cc import schema_pb2
from tf_agents.experimental.distributed import reverb_variable_container as variable_container
from tf_agents.trajectories import trajectory as trajectory_lib

from tfrl import envs
from tfrl.errors import ConfigError
from tfrl.train.settings import RunConfig
from tfrl.train.sources import tensor_specs

VARIABLE_TABLE = variable_container.DEFAULT_TABLE
TAG_SPECS = {"actor_id": tf.TensorSpec([], tf.int32),
             "policy_version": tf.TensorSpec([], tf.int64)}


def role_config(config: Optional[RunConfig] = None) -> RunConfig:
  """The run config every role shares (default: gin's `tfrl.train.train`
  bindings), checked, with what only the single-process loop runs refused
  rather than silently trained without."""
  config = (config if config is not None else RunConfig()).check()
  # Segments continue episodes across iterations, which one actor's chunks
  # per policy version (and the learner's staleness drops) do not.
  segments = getattr(config.replay, "segment_steps", None) is not None
  for name, unsupported in (("tfrl.train.train.reward_redistribution",
                             config.reward_redistribution is not None),
                            ("tfrl.train.train.compiled", config.compiled),
                            ("tfrl.replay.EpisodeReplay.segment_steps", segments)):
    if unsupported:
      raise ConfigError(f"{name} is not supported by the distributed actors "
                        f"and learner; run this config with scripts/train.py alone")
  return config


def build_agent(config: RunConfig, env=None):
  """The agent the config describes (specs taken from `env`, or a fresh one)."""
  if env is None:
    env = envs.load(config.env_id, seed=config.seed)
    try:
      return build_agent(config, env)
    finally:
      env.close()
  agent = config.agent_fn(*tensor_specs(env))
  config.replay.check(agent.collect_data_spec)
  return agent


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
    value = (settings.train_steps_per_iteration * settings.batch_size
             / settings.collect_steps_per_iteration)
  if value <= 0:
    raise ConfigError(f"samples_per_insert must be > 0, got {value}")
  floor = 2 * max(1.0, value)
  if error_buffer is None:
    min_items = settings.replay.min_size / settings.num_envs
    error_buffer = max(floor, 0.1 * min_items * value)
  elif error_buffer < floor:
    raise ConfigError(f"error_buffer {error_buffer} < 2 * max(1, samples_per_insert) = {floor}")
  return float(value), float(error_buffer)


def replay_tables(settings: RunConfig, agent) -> List[reverb.Table]:
  """The replay table(s) of the agent's replay component, for tagged items;
  off-policy tables rate-limited by `samples_per_insert`."""
  replay = settings.replay
  spec = tagged_data_spec(agent.collect_data_spec)
  if replay.on_policy:
    # Each episode is read at most once (max_times_sampled=1); the learner
    # drops stale ones, the FIFO drops the oldest when full.
    return replay.tables(spec, settings.num_envs)
  value, error_buffer = samples_per_insert(settings)
  return replay.tables(spec, settings.num_envs, samples_per_insert=value,
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
  """The learner pushes, actors pull, through the one-slot variables table.

  Replaces tf-agents' ReverbVariableContainer, whose TF-op client has no
  timeout: the push here is a TrajectoryWriter flushed through `link.wait`,
  and the pull samples only once a bounded `server_info` shows the slot
  filled, so a server that is gone raises `ServerLost` instead of blocking.
  Items have the layout the container wrote (the flattened variables), so
  checkpoints written by either load in the other.
  """

  def __init__(self, link: "ServerLink", agent):
    self._link = link
    self._variables = tf.nest.flatten(policy_variables(agent))
    self._train_step = agent.train_step_counter
    self._client = reverb.Client(link.address)
    self._writer = None

  def push(self):
    if self._writer is None:
      self._writer = self._client.trajectory_writer(num_keep_alive_refs=1)
    self._writer.append([v.numpy() for v in self._variables])
    self._writer.create_item(VARIABLE_TABLE, 1.0, [column[-1] for column in self._writer.history])
    self._link.wait(lambda timeout_ms: self._writer.flush(timeout_ms=timeout_ms))

  def pull(self) -> int:
    """Loads the latest pushed variables (waiting until the learner has
    pushed once); returns their policy version."""
    while self._link.table_info(VARIABLE_TABLE).current_size == 0:
      time.sleep(0.1)
    # The slot is filled and never emptied by sampling: this returns at once
    # unless the server dies in between (then Reverb waits for it, unbounded).
    sample = next(self._client.sample(VARIABLE_TABLE, 1, emit_timesteps=False))
    for variable, value in zip(self._variables, sample.data):
      variable.assign(np.reshape(value, variable.shape))
    return int(self._train_step.numpy())

  def close(self):
    """Drops the writer without waiting for the server (a push either
    completed or is abandoned)."""
    if self._writer is not None:
      self._writer.close()
      self._writer = None


class ServerLost(Exception):
  """The Reverb server stopped answering, or answers as a new instance (it
  was restarted). Writers, samplers and clients of the old connection must be
  dropped and rebuilt (`ServerLink.connect`); what they had not delivered is
  lost."""


@functools.lru_cache(maxsize=None)
def _server_info_response():
  """The message Reverb's ServerInfo call answers with: its tables and the
  server's `tables_state_id`, a random 128-bit id drawn when the server
  starts, checkpoint restored or not. Reverb's Python client returns the
  tables only, so tfrl asks over gRPC itself; the message is declared here
  from Reverb's own schema protos (field numbers as in reverb_service.proto)."""
  file_proto = descriptor_pb2.FileDescriptorProto(
      name="tfrl/reverb_server_info.proto", package="tfrl.reverb",
      dependency=[schema_pb2.DESCRIPTOR.name], syntax="proto3")
  message = file_proto.message_type.add(name="ServerInfoResponse")
  field = descriptor_pb2.FieldDescriptorProto
  message.field.add(name="tables_state_id", number=1, type=field.TYPE_MESSAGE,
                    label=field.LABEL_OPTIONAL, type_name=".deepmind.reverb.Uint128")
  message.field.add(name="table_info", number=2, type=field.TYPE_MESSAGE,
                    label=field.LABEL_REPEATED, type_name=".deepmind.reverb.TableInfo")
  pool = descriptor_pool.Default()
  pool.AddSerializedFile(file_proto.SerializeToString())
  return message_factory.GetMessageClass(
      pool.FindMessageTypeByName("tfrl.reverb.ServerInfoResponse"))


def server_info(address: str, timeout_s: float):
  """(tables by name as `reverb.Client.server_info` gives them, the server
  instance's id), in one gRPC call bounded by `timeout_s`."""
  response_type = _server_info_response()
  with grpc.insecure_channel(address) as channel:
    call = channel.unary_unary("/deepmind.reverb.ReverbService/ServerInfo",
                               request_serializer=lambda _: b"",
                               response_deserializer=response_type.FromString)
    response = call(None, timeout=timeout_s)
  tables = {t.name: reverb_types.TableInfo.from_serialized_proto(t.SerializeToString())
            for t in response.table_info}
  return tables, (response.tables_state_id.high, response.tables_state_id.low)


@gin.configurable(module="tfrl.distributed")
class ServerLink:
  """Bounded waits on one Reverb server, and what a wait that runs out means.

  Reverb 0.14's clients never raise when the server is gone: they wait and
  retry by themselves, and after a long outage their gRPC connection comes
  back only when its reconnect back-off next fires (up to minutes; clients of
  one process share it). So every blocking call a role makes goes through
  `wait`, which gives it `wait_s`; when that runs out `check` asks the server,
  with a fresh client and `probe_timeout_s`, whether it is still the instance
  `connect` reached. The same instance answering means the wait was its rate
  limiter's (an actor ahead of the learner): wait again. No answer, or a new
  instance (another `tables_state_id`: restarted, restored from its
  checkpoint), raises `ServerLost`; the role then drops its old writer and
  clients (releasing the stale connection and its back-off) and calls
  `connect`, which waits up to `reconnect_timeout_s` for the server.
  """

  def __init__(self, address: str, log: Callable[[str], None] = print, wait_s: float = 10.0,
               probe_timeout_s: float = 5.0, reconnect_timeout_s: float = 600.0):
    self.address = address
    self.wait_s = wait_s
    self.probe_timeout_s = probe_timeout_s
    self.reconnect_timeout_s = reconnect_timeout_s
    self._log = log
    self._instance = None  # the tables_state_id of the server last reached

  def connect(self, timeout_s: Optional[float] = None) -> bool:
    """Blocks until the server answers (it may be starting or restarting);
    returns whether it is a different instance from the one reached before.
    After `timeout_s` (default `reconnect_timeout_s`) raises ConfigError if
    the server never answered (a wrong address?), ServerLost if it did once."""
    timeout_s = self.reconnect_timeout_s if timeout_s is None else timeout_s
    deadline = time.time() + timeout_s
    said = False
    while True:
      try:
        _, instance = self._probe()
        break
      except _NO_ANSWER as e:
        if time.time() > deadline:
          message = (f"Reverb server {self.address} did not answer within {timeout_s:.0f} s "
                     f"({type(e).__name__})")
          raise (ConfigError if self._instance is None else ServerLost)(message) from None
        if not said:
          self._log(f"waiting for the Reverb server at {self.address} ...")
          said = True
        time.sleep(0.5)
    new_instance = self._is_new(instance)
    self._instance = instance
    return new_instance

  def wait(self, blocking_call: Callable[[Optional[int]], None]) -> None:
    """Runs `blocking_call(timeout_ms)` (a Reverb writer's flush or
    end_episode) until it completes while the same server answers; raises
    ServerLost when it does not."""
    while True:
      try:
        blocking_call(max(1, int(self.wait_s * 1000)))
        return
      except reverb.errors.DeadlineExceededError:
        self.check()

  def check(self) -> Dict[str, "reverb_types.TableInfo"]:
    """The server's tables if the instance `connect` reached answers within
    `probe_timeout_s`; ServerLost otherwise."""
    try:
      info, instance = self._probe()
    except _NO_ANSWER as e:
      raise ServerLost(f"the Reverb server at {self.address} did not answer within "
                       f"{self.probe_timeout_s:.0f} s ({type(e).__name__})") from None
    if self._is_new(instance):
      raise ServerLost(f"the Reverb server at {self.address} was restarted")
    return info

  def _is_new(self, instance) -> bool:
    """Whether `instance` (a tables_state_id) is another server than the one reached."""
    return self._instance is not None and instance != self._instance

  def table_info(self, table: str) -> "reverb_types.TableInfo":
    """One table's info, from a bounded `check`."""
    return self.check()[table]

  def explain(self, error: Exception) -> "ServerLost":
    """`error` (raised by a Reverb call without a timeout, e.g. the legacy
    Writer's "stream lost with items unconfirmed") as ServerLost if the server
    is gone or restarted; re-raises it otherwise."""
    try:
      self.check()
    except ServerLost as lost:
      return lost
    raise error

  def _probe(self):
    """(the server's tables, its instance id), over a channel of its own:
    not the one Reverb's clients of this process share, so the probe is not
    held up by that connection's reconnect back-off."""
    return server_info(self.address, self.probe_timeout_s)


_NO_ANSWER = (grpc.RpcError, RuntimeError, tf.errors.OpError, ConnectionError,
              reverb.errors.ReverbError)


def check_address(address: Optional[str], flag: str) -> str:
  """Roles connect only where they are told: "host:port", given explicitly."""
  if not address:
    raise ConfigError(f"give the Reverb server's address explicitly: {flag}=host:port")
  host, _, port = address.rpartition(":")
  if not host or not port.isdigit():
    raise ConfigError(f"{flag}={address!r} is not host:port")
  if not 1 <= int(port) <= 65535:
    raise ConfigError(f"{flag}={address!r}: the port must be in 1..65535")
  return address

