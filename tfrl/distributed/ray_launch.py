"""The distributed roles as Ray actors: the Reverb server, N actors and the
learner placed, supervised and restarted by Ray Core (`scripts/launch_ray.py`).

Each role is one Ray actor process running the same role function as its
script (`server.serve`, `actor.collect`, `learner.learn`) on the same gin
files. Ray restarts a role whose process dies (`Placement.max_restarts`) and
retries its run call there: an actor rejoins with its id, the learner resumes
from its run directory's checkpoint, the server restores its tables from its
checkpoint directory on the same port (kept in `<checkpoint_dir>.port`). The
server reports its `host:port` through Ray; nobody types an address.

Stopping (the learner finished, Ctrl-C, a role out of restarts): actors are
killed (their unflushed chunk is lost either way); the learner and the server
get SIGTERM from a watcher thread in their own process, so they stop as under
`launch_local` did — the learner at an iteration boundary with a checkpoint,
the server after a final checkpoint; whatever is still running after
`Placement.stop_timeout_s` is killed.

A local Ray (no `address`) started here binds loopback only and starts no
dashboard. Reverb itself still listens on all interfaces (0.14 has no bind
option): firewall the port on a shared machine.
"""

import asyncio
import collections
import contextlib
import dataclasses
import logging as std_logging
import os
import signal
import threading
import time
import typing
import uuid
from typing import Callable, Dict, List, Optional, Sequence

import gin
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tfrl.checks import NonNegativeFloat, NonNegativeInt, PositiveFloat, Range, check_fields
from tfrl.errors import ConfigError

ROLES = ("server", "actor", "learner")
PORT_SUFFIX = ".port"
LINES_KEPT = 1000
# What every role process needs before TF is imported.
ROLE_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}


@gin.configurable(module="tfrl.distributed.ray")
@dataclasses.dataclass(frozen=True)
class Placement:
  """What each role asks Ray for, and how Ray supervises it.

  `pin_to_driver_node`: roles placed (and restarted) on the driver's node,
  where their directories are: the server's checkpoint directory and port,
  the learner's run directory. Drop "learner" when its run directory is on a
  filesystem every node shares (or give it a GPU node with `learner_gpus`).
  `max_restarts`: per role, -1 without limit."""
  server_cpus: NonNegativeFloat = 1.0
  server_memory_mb: NonNegativeInt = 0  # 0: no memory request
  actor_cpus: NonNegativeFloat = 1.0
  learner_cpus: NonNegativeFloat = 1.0
  learner_gpus: NonNegativeFloat = 0.0
  max_restarts: typing.Annotated[int, Range(low=-1)] = 20
  pin_to_driver_node: typing.Tuple[str, ...] = ("server", "learner")
  stop_timeout_s: PositiveFloat = 60.0
  # Extra environment variables by role ("server", "actor", "learner"), e.g.
  # {"actor": {"OMP_NUM_THREADS": "1"}}; tests put crash points there.
  env_vars: typing.Dict[str, typing.Dict[str, str]] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    check_fields(self, "tfrl.distributed.ray.Placement")
    unknown = (set(self.pin_to_driver_node) | set(self.env_vars)) - set(ROLES)
    if unknown:
      raise ConfigError(f"tfrl.distributed.ray.Placement: unknown role(s) "
                        f"{sorted(unknown)}; roles are {', '.join(ROLES)}")

  def cpus(self, role: str) -> float:
    return getattr(self, f"{role}_cpus")

  def total_cpus(self, num_actors: int) -> float:
    return self.server_cpus + num_actors * self.actor_cpus + self.learner_cpus

  def options(self, role: str, driver_node: str) -> dict:
    # max_task_retries: the run call is retried in the restarted process.
    options = dict(num_cpus=self.cpus(role), max_restarts=self.max_restarts, max_task_retries=-1)
    if self.env_vars.get(role):
      # A runtime env of its own: a worker started for this role, not one from Ray's pool.
      options["runtime_env"] = {"env_vars": dict(ROLE_ENV, **self.env_vars[role])}
    if role == "learner" and self.learner_gpus:
      options["num_gpus"] = self.learner_gpus
    if role == "server" and self.server_memory_mb:
      options["memory"] = self.server_memory_mb * 2**20
    if role in self.pin_to_driver_node:
      options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(driver_node, soft=False)
    return options


@gin.configurable(module="tfrl.distributed.ray")
@dataclasses.dataclass(frozen=True)
class LocalRay:
  """The Ray started for a run when no cluster address is given: loopback
  only, no dashboard unless `dashboard`; as many logical CPUs as the roles
  ask for (or the machine has, if more), so every role is placed even on a
  small machine (they share its cores, as separate processes would)."""
  dashboard: bool = False
  object_store_mb: typing.Annotated[int, Range(low=80)] = 128  # roles pass no large objects

  def __post_init__(self):
    check_fields(self, "tfrl.distributed.ray.LocalRay")


@contextlib.contextmanager
def ray_session(address: Optional[str] = None, num_cpus: Optional[float] = None,
                log: Callable[[str], None] = print):
  """Connected to the cluster at `address`, or to a local Ray started (and
  stopped at the end) here; an already initialized Ray (tests) is used as is."""
  if ray.is_initialized():
    yield
    return
  if address:
    ray.init(address=address, configure_logging=False, log_to_driver=True,
             runtime_env={"env_vars": dict(ROLE_ENV)})
    log(f"Ray cluster at {address}")
  else:
    settings = LocalRay()
    start_local_ray(num_cpus=max(os.cpu_count() or 1, num_cpus or 0),
                    dashboard=settings.dashboard, object_store_mb=settings.object_store_mb)
    log(f"local Ray on 127.0.0.1 (loopback only; "
        f"{'dashboard on' if settings.dashboard else 'no dashboard'})")
  try:
    yield
  finally:
    ray.shutdown()


def start_local_ray(num_cpus: float, dashboard: bool = False, object_store_mb: int = 128,
                    log_to_driver: bool = True):
  """ray.init of a one-machine Ray whose every service listens on 127.0.0.1.

  Ray resolves a node address of localhost to the machine's network address;
  its own switch for one-machine Ray (the one it uses on macOS and Windows)
  is RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: read at import, so set here both in
  the environment (Ray's processes) and in the imported constant. (A Ctrl-C
  at the terminal signals Ray's services too, which are in the launcher's
  process group; they ignore it, checked: the launcher stops the roles.)"""
  from ray._private import ray_constants  # pylint: disable=import-outside-toplevel
  os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
  ray_constants.ENABLE_RAY_CLUSTER = False
  # The roles' environment for the whole job, so Ray's pre-started workers serve them.
  ray.init(num_cpus=int(-(-num_cpus // 1)), include_dashboard=dashboard,
           object_store_memory=object_store_mb * 2**20, configure_logging=False,
           log_to_driver=log_to_driver, runtime_env={"env_vars": dict(ROLE_ENV)})


def check_config(gin_files: Sequence[str], bindings: Sequence[str]):
  """What every role would refuse, refused before any role starts: the roles'
  own gin parse and settings checks, run once here. Returns the Placement."""
  from tfrl.distributed import wiring  # pylint: disable=import-outside-toplevel
  from tfrl.train import config  # pylint: disable=import-outside-toplevel
  config.parse_config(gin_files, bindings)
  wiring.role_config()
  return Placement()


@ray.remote(num_cpus=0)
class Coordinator:
  """The run's shared state: each role's starts (pid, node), its last
  LINES_KEPT log lines, and the stop flags (by role) its watcher thread waits on."""

  def __init__(self):
    self.starts: Dict[str, List[dict]] = {}
    self.lines: Dict[str, collections.deque] = {}  # each role's last LINES_KEPT log lines
    self._stops: Dict[str, asyncio.Event] = {}  # by role: the learner stops before the server

  def _event(self, role: str) -> asyncio.Event:
    return self._stops.setdefault(role, asyncio.Event())

  async def register(self, name: str, pid: int, node_id: str) -> int:
    self.starts.setdefault(name, []).append(dict(pid=pid, node_id=node_id, time=time.time()))
    return len(self.starts[name])

  async def report(self, name: str, line: str):
    self.lines.setdefault(name, collections.deque(maxlen=LINES_KEPT)).append(line)

  async def state(self) -> dict:
    return dict(starts=self.starts, lines={n: list(l) for n, l in self.lines.items()})

  async def wait_stop(self, role: str):
    await self._event(role).wait()

  async def stop(self, role: str):
    self._event(role).set()


class _Role:
  """One role's process. The constructor (rerun by Ray at a restart) parses
  the gin files and registers; `run` (retried by Ray) runs the role."""

  def __init__(self, name: str, gin_files, bindings, coordinator: str, on_stop=None):
    # The coordinator by name: a handle among the arguments would be an object
    # a restart needs from the store (Ray warns of it with max_restarts > 0).
    self.name, self.coordinator = name, ray.get_actor(coordinator)
    from absl import logging  # pylint: disable=import-outside-toplevel
    from tfrl.train import config  # pylint: disable=import-outside-toplevel
    # As the role scripts: TF's deprecation notices off (Ray's workers run no absl app).
    logging.set_verbosity(logging.ERROR)
    std_logging.getLogger("tensorflow").setLevel(std_logging.ERROR)
    config.parse_config(gin_files, bindings)
    starts = ray.get(self.coordinator.register.remote(
        name, os.getpid(), ray.get_runtime_context().get_node_id()))
    if starts > 1:
      self.log(f"{name}: restarted by Ray (start {starts}, pid {os.getpid()})")
    if on_stop is not None:
      threading.Thread(target=self._watch_stop, args=(on_stop,), daemon=True).start()

  def __repr__(self):  # Ray prefixes the role's log lines with this
    return self.name

  def log(self, line: str):
    print(line, flush=True)
    try:  # waited for, so the driver reads a role's lines in order with its results
      ray.get(self.coordinator.report.remote(self.name, line))
    except ray.exceptions.RayError:
      pass  # the coordinator is gone: the run is being torn down

  def _watch_stop(self, on_stop):
    try:
      ray.get(self.coordinator.wait_stop.remote(self.name))
    except Exception:  # pylint: disable=broad-except  (the driver is gone: stop too)
      pass
    on_stop()


def _sigterm_self():
  """The role's own stop path: the server's final checkpoint, the learner's
  checkpoint at the iteration boundary (both handle SIGTERM in the main
  thread, where Ray runs a role's calls)."""
  os.kill(os.getpid(), signal.SIGTERM)


@ray.remote
class ServerRole(_Role):

  def __init__(self, gin_files, bindings, coordinator, checkpoint_dir: str,
               port: Optional[int] = None):
    super().__init__("server", gin_files, bindings, coordinator, on_stop=_sigterm_self)
    self.checkpoint_dir = checkpoint_dir
    self.port = persistent_port(checkpoint_dir, port)

  def address(self) -> str:
    return f"{ray.util.get_node_ip_address()}:{self.port}"

  def run(self):
    from tfrl.distributed import server  # pylint: disable=import-outside-toplevel
    self.log(f"server: Reverb on port {self.port} listens on ALL interfaces with no "
             "authentication (Reverb 0.14 cannot bind loopback only): firewall it")
    server.serve(self.port, self.checkpoint_dir, log=self.log)


@ray.remote
class ActorRole(_Role):

  def __init__(self, gin_files, bindings, coordinator, actor_id: int, server_address: str):
    super().__init__(f"actor_{actor_id}", gin_files, bindings, coordinator)
    self.actor_id, self.server_address = actor_id, server_address

  def run(self):
    from tfrl.distributed import actor  # pylint: disable=import-outside-toplevel
    return actor.collect(self.server_address, self.actor_id, log=self.log)


@ray.remote
class LearnerRole(_Role):

  def __init__(self, gin_files, bindings, coordinator, root_dir: str, server_address: str):
    bindings = list(bindings) + [f"tfrl.train.train.replay_server_address = '{server_address}'"]
    super().__init__("learner", gin_files, bindings, coordinator, on_stop=_sigterm_self)
    self.root_dir = root_dir

  def run(self) -> dict:
    from tfrl.distributed import learner  # pylint: disable=import-outside-toplevel
    from tfrl.train import loop  # pylint: disable=import-outside-toplevel
    from tfrl.train.settings import RunConfig  # pylint: disable=import-outside-toplevel
    try:
      # As train.py calls it (the same operative config: either can resume the run).
      row = learner.learn(self.root_dir, RunConfig(), log=self.log)
    except loop.Interrupted as e:
      return dict(interrupted=str(e))
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def persistent_port(checkpoint_dir: str, port: Optional[int] = None) -> int:
  """The server's port: given, or the one a previous start of this
  checkpoint directory used (so actors and the learner find a restarted
  server where it was), or a free one; recorded in `<checkpoint_dir>.port`
  (not inside it: Reverb's checkpointer takes the directory's last entry by
  name for its latest checkpoint, and keeps only that one)."""
  os.makedirs(checkpoint_dir, exist_ok=True)
  path = os.path.normpath(checkpoint_dir) + PORT_SUFFIX
  if port is None and os.path.exists(path):
    with open(path) as f:
      port = int(f.read())
  if port is None:
    import portpicker  # pylint: disable=import-outside-toplevel
    port = portpicker.pick_unused_port()
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    f.write(str(port))
  os.replace(tmp, path)
  return port


class RoleFailed(RuntimeError):
  """A role stopped for good (out of restarts, or an error in its run)."""


class Launch:
  """The roles of one run on the connected Ray: `start()`, `wait()` until the
  learner finishes (or a role fails, or `stop_requested()`), `stop()`.

  root_dir/learner is the learner's run directory, root_dir/reverb the
  server's checkpoints (the layout launch_local.py had)."""

  def __init__(self, gin_files: Sequence[str], bindings: Sequence[str], num_actors: int,
               root_dir: str, placement: Placement, port: Optional[int] = None,
               log: Callable[[str], None] = print):
    self.gin_files, self.bindings = list(gin_files), list(bindings)
    self.num_actors, self.root_dir = num_actors, os.path.abspath(root_dir)
    self.placement, self.port, self.log = placement, port, log
    self.coordinator = self.server = self.learner = None
    self.actors = []
    self.runs: Dict[str, ray.ObjectRef] = {}
    self.address = None
    self.final_state = None

  @property
  def learner_dir(self) -> str:
    return os.path.join(self.root_dir, "learner")

  def roles(self) -> dict:
    return dict({"server": self.server, "learner": self.learner},
                **{f"actor_{i}": a for i, a in enumerate(self.actors)})

  def start(self, with_learner: bool = True):
    """Places the roles (without the learner: collection only, for benchmarks)."""
    node = ray.get_runtime_context().get_node_id()
    p, args = self.placement, (self.gin_files, self.bindings)
    self.coordinator_name = f"tfrl-coordinator-{uuid.uuid4().hex[:12]}"
    self.coordinator = Coordinator.options(name=self.coordinator_name).remote()
    self.server = ServerRole.options(**p.options("server", node)).remote(
        *args, self.coordinator_name, os.path.join(self.root_dir, "reverb"), self.port)
    self.address = ray.get(self.server.address.remote())
    self.runs["server"] = self.server.run.remote()
    self.log(f"Reverb server at {self.address} (listening on all interfaces, no "
             "authentication: firewall the port)")
    for i in range(self.num_actors):
      actor = ActorRole.options(**p.options("actor", node)).remote(
          *args, self.coordinator_name, i, self.address)
      self.actors.append(actor)
      self.runs[f"actor_{i}"] = actor.run.remote()
    if not with_learner:
      return
    self.learner = LearnerRole.options(**p.options("learner", node)).remote(
        *args, self.coordinator_name, self.learner_dir, self.address)
    self.runs["learner"] = self.learner.run.remote()
    self.log(f"started {self.num_actors} actor(s) and the learner; learner run directory "
             f"{self.learner_dir}")

  def state(self) -> dict:
    """Each role's starts (pid, node) and last log lines (after `stop`: as they were)."""
    if self.coordinator is None:
      return self.final_state
    return ray.get(self.coordinator.state.remote())

  def last_line(self, name: str) -> str:
    lines = self.state()["lines"].get(name)
    return lines[-1] if lines else "(none)"

  def wait(self, stop_requested: Callable[[], bool] = lambda: False,
           poll_s: float = 0.5) -> Optional[dict]:
    """The learner's last row when it finishes; None when `stop_requested()`.
    Raises RoleFailed when a role is gone for good."""
    pending = dict(self.runs)
    while not stop_requested():
      done, _ = ray.wait(list(pending.values()), num_returns=1, timeout=poll_s)
      for ref in done:
        name = next(n for n, r in pending.items() if r == ref)
        del pending[name]
        try:
          result = ray.get(ref)
        except (ray.exceptions.RayError, ConfigError) as e:
          raise RoleFailed(f"{name} failed: {_first_line(e)}; its last line: "
                           f"{self.last_line(name)!r}") from None
        if name == "learner":
          return result
        raise RoleFailed(f"{name} stopped by itself; its last line: "
                         f"{self.last_line(name)!r}")
    return None

  def stop(self):
    """Actors killed, then the learner and the server stopped by SIGTERM in
    their process (checkpoints), anything left after stop_timeout_s killed."""
    if self.coordinator is None:
      return
    for actor in self.actors:
      ray.kill(actor, no_restart=True)
    deadline = time.time() + self.placement.stop_timeout_s
    for name, handle in [("learner", self.learner), ("server", self.server)]:
      if handle is None:
        continue
      self.coordinator.stop.remote(name)
      try:
        result = ray.get(self.runs[name], timeout=max(0.1, deadline - time.time()))
        # Here, not only through Ray's log forwarding, which may not deliver
        # a role's last lines before the driver exits.
        if isinstance(result, dict) and "interrupted" in result:
          self.log(f"{name}: {result['interrupted']}")
        elif name == "server":
          self.log(f"server: {self.last_line('server')}")
      except ray.exceptions.GetTimeoutError:
        self.log(f"{name} did not stop within {self.placement.stop_timeout_s:g} s: killed")
      except (ray.exceptions.RayError, ConfigError):
        pass  # already reported, or killed on the way
      ray.kill(handle, no_restart=True)
    self.final_state = self.state()
    ray.kill(self.coordinator)
    self.coordinator = None


def _first_line(error: BaseException) -> str:
  cause = getattr(error, "cause", None)
  text = str(cause if cause is not None else error).strip()
  lines = [l for l in text.splitlines() if l.strip()]
  return lines[-1] if lines else type(error).__name__
