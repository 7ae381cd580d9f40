#!/usr/bin/env python
r"""Starts the distributed roles on this machine, over loopback:
a Reverb server, --num_actors actors and the learner (train.py).

  python scripts/launch_local.py --gin_file=dqn_cartpole.gin --num_actors=2 --root_dir=runs/dist

root_dir/learner is the learner's run directory, root_dir/reverb the
server's checkpoints, root_dir/logs/<role>.log each role's output. Exits 0
when the learner finishes (actors and server are then stopped, the server
writing a final checkpoint); exits 1 if any role dies before that, stopping
the others; Ctrl-C stops every role (exit 130). Running again on the same
root_dir resumes: the learner from its checkpoint, the server from its tables.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from absl import flags

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPTS)
import _cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin file(s), given to every role.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings, given to every role.")
flags.DEFINE_integer("num_actors", 2, "Actor processes.", lower_bound=1)
flags.DEFINE_string("root_dir", None, "Where the learner, server checkpoints and logs go.")
flags.DEFINE_integer("port", None, "Reverb port (default: a free one). Reverb listens on all "
                     "interfaces: firewall it on a shared machine.", lower_bound=1,
                     upper_bound=65535)
flags.DEFINE_float("stop_timeout_s", 30.0, "How long a role may take to stop before SIGKILL.",
                   lower_bound=0)


def free_port() -> int:
  try:
    import portpicker  # pylint: disable=import-outside-toplevel
    return portpicker.pick_unused_port()
  except ImportError:
    with socket.socket() as s:
      s.bind(("localhost", 0))
      return s.getsockname()[1]


class Role:

  def __init__(self, name, script, args, log_dir):
    self.name = name
    self.log_path = os.path.join(log_dir, f"{name}.log")
    self._log = open(self.log_path, "ab")
    # A session of its own: Ctrl-C reaches the launcher only, which stops
    # the roles in order (the server last, so it can checkpoint).
    self.process = subprocess.Popen([sys.executable, os.path.join(SCRIPTS, script)] + args,
                                    stdout=self._log, stderr=subprocess.STDOUT,
                                    start_new_session=True)

  def returncode(self):
    return self.process.poll()

  def stop(self, timeout_s):
    if self.process.poll() is None:
      self.process.send_signal(signal.SIGTERM)
      try:
        self.process.wait(timeout_s)
      except subprocess.TimeoutExpired:
        self.process.kill()
        self.process.wait()
    self._log.close()

  def tail(self, n=5) -> str:
    with open(self.log_path, "rb") as f:
      lines = f.read().decode(errors="replace").splitlines()
    return "\n".join("    " + l for l in lines[-n:])


def wait_listening(port, server, timeout_s=300.0) -> bool:
  deadline = time.time() + timeout_s
  while time.time() < deadline and server.returncode() is None:
    try:
      socket.create_connection(("localhost", port), timeout=1).close()
      return True
    except OSError:
      time.sleep(0.3)
  return False


def check_config(gin_files, bindings):
  """What every role would refuse, refused before any role starts: the roles'
  own gin parse and settings checks, run once here."""
  from tfrl.distributed import wiring  # pylint: disable=import-outside-toplevel  (imports TF)
  from tfrl.train import config  # pylint: disable=import-outside-toplevel
  config.parse_config(gin_files, bindings)
  wiring.role_config()


def main(argv):
  del argv  # _cli.run refuses positional arguments
  if not FLAGS.gin_file:
    fail("give at least one --gin_file")
  root = FLAGS.root_dir or os.path.join(
      "runs", os.path.splitext(os.path.basename(FLAGS.gin_file[-1]))[0] + "-distributed-"
      + time.strftime("%Y%m%d-%H%M%S"))
  _cli.check_creatable_dir(root, "--root_dir")
  if FLAGS.port is not None:
    _cli.check_port_free(FLAGS.port, "--port")
  check_config(FLAGS.gin_file, FLAGS.gin_bindings)
  log_dir = os.path.join(root, "logs")
  os.makedirs(log_dir, exist_ok=True)
  port = FLAGS.port or free_port()
  address = f"localhost:{port}"
  gin_args = [f"--gin_file={f}" for f in FLAGS.gin_file]
  gin_args += [f"--gin_bindings={b}" for b in FLAGS.gin_bindings]

  roles = []
  interrupted = False

  def on_sigint(signum, frame):
    nonlocal interrupted
    interrupted = True
  signal.signal(signal.SIGINT, on_sigint)
  signal.signal(signal.SIGTERM, on_sigint)

  def stop_all():
    # Actors first (nothing more to write), the learner, the server last.
    for role in sorted(roles, key=lambda r: {"learner": 1, "server": 2}.get(r.name, 0)):
      role.stop(FLAGS.stop_timeout_s)

  server = Role("server", "reverb_server.py",
                gin_args + [f"--port={port}", f"--checkpoint_dir={os.path.join(root, 'reverb')}"],
                log_dir)
  roles.append(server)
  print(f"Reverb server on port {port} (listening on all interfaces); logs in {log_dir}",
        flush=True)
  if not wait_listening(port, server):
    stop_all()
    print(f"launch_local.py: error: the server did not start:\n{server.tail()}", file=sys.stderr)
    sys.exit(1)
  for i in range(FLAGS.num_actors):
    roles.append(Role(f"actor_{i}", "collect.py",
                      gin_args + [f"--server={address}", f"--actor_id={i}"], log_dir))
  learner = Role("learner", "train.py", gin_args + [f"--replay_server={address}",
                                                    f"--root_dir={os.path.join(root, 'learner')}"],
                 log_dir)
  roles.append(learner)
  print(f"started {FLAGS.num_actors} actor(s) and the learner", flush=True)

  while True:
    if interrupted:
      print("stopping every role (Ctrl-C)", flush=True)
      stop_all()
      sys.exit(130)
    if learner.returncode() == 0:
      stop_all()
      print(f"learner finished; run directory {os.path.join(root, 'learner')}", flush=True)
      return
    died = [r for r in roles if r.returncode() is not None]
    if died:
      role = died[0]
      stop_all()
      print(f"launch_local.py: error: {role.name} exited with status {role.returncode()} "
            f"(log {role.log_path}):\n{role.tail()}", file=sys.stderr)
      sys.exit(1)
    time.sleep(0.5)


def fail(message: str, code: int = 2):
  _cli.fail(message, code)


if __name__ == "__main__":
  _cli.run(main)
