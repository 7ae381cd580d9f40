"""Where the Reverb tables live: an embedded server, or an external one."""

import socket
import tempfile
from typing import Optional, Sequence

import reverb

from tfrl.errors import ConfigError
from tfrl.replay import reverb_logs


class ReplayServer:
  """Owns (or points at) the Reverb server holding the replay tables.

  By default the server runs embedded in this process on a free port. Give
  `address` ("host:port") to use a server running elsewhere instead; its
  tables must already exist with the names the replay components expect.
  `with ReplayServer(tables) as server:` closes it on exit (close adders
  first: nest their `with` inside).
  """

  def __init__(self,
               tables: Sequence[reverb.Table] = (),
               address: Optional[str] = None,
               port: Optional[int] = None,
               checkpoint_dir: Optional[str] = None,
               restore_from: Optional[str] = None):
    """`checkpoint_dir`: where `checkpoint()` writes (and whose latest
    checkpoint the server loads at start); `restore_from`: a checkpoint to
    load when `checkpoint_dir` holds none."""
    reverb_logs.quiet()  # Reverb's routine start/stop/sampler lines off the console
    self._server = None
    # Without a checkpoint_dir Reverb would make itself a temporary directory
    # (tempfile.mkdtemp) and leave it behind; this one goes at close.
    self._scratch_dir = None
    if address is None:
      if not checkpoint_dir:
        self._scratch_dir = tempfile.TemporaryDirectory(prefix="tfrl-reverb-")
        checkpoint_dir = self._scratch_dir.name
      checkpointer = reverb.checkpointers.DefaultCheckpointer(
          checkpoint_dir, fallback_checkpoint_path=restore_from)
      self._server = reverb.Server(list(tables), port=port, checkpointer=checkpointer)
      # Reverb listens on all interfaces; in-process clients talk over loopback.
      address = f"localhost:{self._server.port}"
    self.address = address
    self.client = reverb.Client(address)
    if self._server is None:
      self._check_reachable(tables)

  def _check_reachable(self, tables):
    host, _, port = self.address.rpartition(":")
    try:
      socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as e:
      raise ConfigError(f"replay server {self.address!r} is not reachable: {e}") from None
    info = self.client.server_info(timeout=10)
    missing = [t.name for t in tables if t.name not in info]
    if missing:
      raise ConfigError(f"replay server {self.address} has no table(s) {missing}")

  @property
  def embedded(self) -> bool:
    return self._server is not None

  def checkpoint(self) -> Optional[str]:
    """Writes a Reverb checkpoint of all tables; returns its path."""
    return self.client.checkpoint()

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()

  def close(self):
    if self._server is not None:
      self._server.stop()
      self._server = None
    if self._scratch_dir is not None:
      self._scratch_dir.cleanup()
      self._scratch_dir = None
