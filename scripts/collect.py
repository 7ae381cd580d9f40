#!/usr/bin/env python
r"""The actor role: pulls the latest policy from the Reverb server, collects
with the batched driver, writes to the replay table.

  python scripts/collect.py --gin_file=dqn_cartpole.gin --server=10.0.0.5:8000 --actor_id=0

The same gin files as the server and the learner. Runs until stopped (or
--max_env_steps); a restarted actor simply rejoins.
"""

import faulthandler
import os
import signal
import sys

# `kill -USR1 <pid>` prints every thread's Python stack (where an actor waits).
faulthandler.register(signal.SIGUSR1, all_threads=True)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin file(s), as for train.py.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings, applied after the files.")
flags.DEFINE_string("server", None, "host:port of the Reverb server (required).")
flags.DEFINE_integer("actor_id", 0, "This actor's id (tags its items; seeds its envs).",
                     lower_bound=0)
flags.DEFINE_integer("max_env_steps", None, "Stop after this many env steps (default: never).",
                     lower_bound=1)


def main(argv):
  if not FLAGS.gin_file:
    _cli.fail("give at least one --gin_file")
  _cli.check_address(FLAGS.server, "--server")  # before TF is imported
  from tfrl.train import config
  config.run_script("collect.py", argv, FLAGS.gin_file, FLAGS.gin_bindings, collect)


def collect():
  from tfrl.distributed import actor, wiring
  wiring.check_address(FLAGS.server, "--server")
  actor.collect(FLAGS.server, FLAGS.actor_id, max_env_steps=FLAGS.max_env_steps,
                log=lambda m: print(m, flush=True))


if __name__ == "__main__":
  _cli.run(main)
