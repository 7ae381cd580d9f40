"""The server role: one Reverb server holding the replay table(s) and the
policy-variable table, checkpointed to a directory.

Reverb 0.14 listens on all interfaces (`*:port`; it has no option to bind
loopback only) and has no authentication: whoever reaches the port can
insert items or overwrite the policy variables actors load. Run it on a
private network or behind a firewall that admits only the actor and learner
machines.
"""

import os
import signal
import time
from typing import Callable, Optional

import gin

from tfrl.distributed import wiring
from tfrl.errors import ConfigError
from tfrl.replay import ReplayServer
from tfrl.train.settings import RunConfig


class _Stop(Exception):
  pass


def _raise_stop(signum, frame):
  del signum, frame
  raise _Stop()


@gin.configurable(module="tfrl.distributed")
def serve(port: int, checkpoint_dir: str, checkpoint_interval_s: float = 60.0,
          log: Callable[[str], None] = print, config: Optional[RunConfig] = None):
  """Serves until SIGTERM/SIGINT, checkpointing every `checkpoint_interval_s`
  and once more at shutdown. A checkpoint in `checkpoint_dir` is restored at
  start (tables, items, rate limiter counts and the last pushed variables)."""
  if not port or port <= 0:
    raise ConfigError("give the port to listen on explicitly: --port=N")
  config = wiring.role_config(config)
  agent = wiring.build_agent(config)
  tables = wiring.replay_tables(config, agent) + [wiring.variable_table(agent)]
  os.makedirs(checkpoint_dir, exist_ok=True)
  try:
    server = ReplayServer(tables, port=port, checkpoint_dir=checkpoint_dir)
  except RuntimeError as e:  # Reverb: "Failed to BuildAndStart gRPC server" (port taken)
    raise ConfigError(f"cannot listen on port {port}: {str(e).splitlines()[0]}") from None
  info = server.client.server_info()
  sizes = ", ".join(f"{name}: {t.current_size} items" for name, t in sorted(info.items()))
  log(f"Reverb server listening on *:{port} (all interfaces, no authentication); "
      f"tables {sizes}; checkpoints in {checkpoint_dir}")
  previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    next_checkpoint = time.time() + checkpoint_interval_s
    while True:
      time.sleep(max(0.0, min(1.0, next_checkpoint - time.time())))
      if time.time() >= next_checkpoint:
        server.checkpoint()
        next_checkpoint = time.time() + checkpoint_interval_s
  except _Stop:
    # Ignore further signals while the final checkpoint is written.
    for s in previous:
      signal.signal(s, signal.SIG_IGN)
    path = server.checkpoint()
    log(f"stopping; tables checkpointed to {path}")
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
    server.close()
