#!/usr/bin/env python
r"""The Reverb server role: the replay table(s) and the policy-variable table
of the agent the gin files describe, checkpointed to --checkpoint_dir.

  python scripts/reverb_server.py --gin_file=dqn_cartpole.gin --port=8000 \
      --checkpoint_dir=runs/dist/reverb

Reverb listens on ALL interfaces (*:port) and has no authentication: keep the
port behind a firewall or on a private network. Stops (with a final
checkpoint) on SIGTERM or Ctrl-C; restarted on the same --checkpoint_dir it
restores its tables.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin file(s), as for train.py.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings, applied after the files.")
flags.DEFINE_integer("port", None, "Port to listen on (required; Reverb binds all interfaces).",
                     lower_bound=1, upper_bound=65535)
flags.DEFINE_string("checkpoint_dir", None, "Where the tables are checkpointed (required).")


def main(argv):
  # Before TF is imported and before anything is created.
  if not FLAGS.gin_file:
    _cli.fail("give at least one --gin_file")
  if FLAGS.port is None:
    _cli.fail("give the port to listen on explicitly: --port=N")
  if not FLAGS.checkpoint_dir:
    _cli.fail("give --checkpoint_dir (the tables are checkpointed there)")
  _cli.check_creatable_dir(FLAGS.checkpoint_dir, "--checkpoint_dir")
  _cli.check_port_free(FLAGS.port, "--port")
  from tfrl.train import config
  config.run_script("reverb_server.py", argv, FLAGS.gin_file, FLAGS.gin_bindings, serve)


def serve():
  from tfrl.distributed import server
  server.serve(FLAGS.port, FLAGS.checkpoint_dir, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
  _cli.run(main)
