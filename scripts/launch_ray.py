#!/usr/bin/env python
r"""Runs the distributed roles — a Reverb server, --num_actors actors and the
learner — as Ray actors, placed, supervised and restarted by Ray.

  python scripts/launch_ray.py --gin_file=dqn_cartpole.gin --num_actors=2 --root_dir=runs/dist
  python scripts/launch_ray.py --gin_file=dqn_cartpole.gin --num_actors=8 --address=auto

Without --address a local Ray is started for the run (loopback only, no
dashboard) and stopped at the end; with it the roles go onto that cluster
(`auto`: the one this machine belongs to; `ray://head:10001`: through Ray
Client). Every role's output reaches this console prefixed by its role.
root_dir/learner is the learner's run directory, root_dir/reverb the server's
checkpoints (its port in root_dir/reverb.port). A role whose process dies is restarted by Ray and
resumes (tfrl.distributed.ray.Placement.max_restarts; resources per role are
the other Placement bindings). Exits 0 when the learner finishes, 1 if a role
fails for good, 130 on Ctrl-C (every role stopped, the learner and server
checkpointing). Running again on the same root_dir resumes.
"""

import os
import signal
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin file(s), given to every role.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings, given to every role "
                          "(and tfrl.distributed.ray.Placement.* for the resources).")
flags.DEFINE_integer("num_actors", 2, "Actor processes.", lower_bound=1)
flags.DEFINE_string("root_dir", None, "Where the learner's run and the server's checkpoints go "
                    "(on a cluster: a path on the driver's node, where both run by default).")
flags.DEFINE_string("address", None, "An existing Ray cluster: auto, ray://host:port or "
                    "host:port (default: a local Ray on loopback, for this run).")
flags.DEFINE_integer("port", None, "Reverb port (default: a free one, then kept in "
                     "root_dir/reverb.port). Reverb listens on all interfaces.", lower_bound=1,
                     upper_bound=65535)


def gin_file_for_roles(name: str) -> str:
  """A file that exists from here is passed absolute (the roles' working
  directory is Ray's); a bare name resolves against gin_configs/ in each role."""
  return os.path.abspath(name) if os.path.exists(name) else name


def main(argv):
  del argv  # _cli.run refuses positional arguments
  if not FLAGS.gin_file:
    _cli.fail("give at least one --gin_file")
  root = FLAGS.root_dir or os.path.join(
      "runs", os.path.splitext(os.path.basename(FLAGS.gin_file[-1]))[0] + "-ray-"
      + time.strftime("%Y%m%d-%H%M%S"))
  _cli.check_creatable_dir(root, "--root_dir")
  if FLAGS.port is not None and FLAGS.address is None:
    _cli.check_port_free(FLAGS.port, "--port")
  if FLAGS.address is not None:
    _cli.check_ray_address(FLAGS.address, "--address")
  from tfrl.distributed import ray_launch  # imports Ray and TF
  gin_files = [gin_file_for_roles(f) for f in FLAGS.gin_file]
  placement = ray_launch.check_config(gin_files, FLAGS.gin_bindings)

  interrupted = []
  log = lambda m: print(m, flush=True)
  with ray_launch.ray_session(FLAGS.address, placement.total_cpus(FLAGS.num_actors), log):
    launch = ray_launch.Launch(gin_files, FLAGS.gin_bindings, FLAGS.num_actors, root, placement,
                               FLAGS.port, log)
    signal.signal(signal.SIGINT, lambda *_: interrupted.append(1))
    signal.signal(signal.SIGTERM, lambda *_: interrupted.append(1))
    try:
      launch.start()
      row = launch.wait(stop_requested=lambda: bool(interrupted))
    except ray_launch.RoleFailed as e:
      log("stopping every role")
      launch.stop()
      _cli.fail(str(e), code=1)
    if row is None or "interrupted" in row:
      log("stopping every role (Ctrl-C)")
      launch.stop()
      sys.exit(130)
    launch.stop()
    log(f"learner finished; run directory {launch.learner_dir}")


if __name__ == "__main__":
  _cli.run(main)
