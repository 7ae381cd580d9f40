"""Crash points for testing resume: with TFRL_KILL_AT="<point>:<n>" set, the
process SIGKILLs itself the n-th time it reaches `point(<point>)`.

Points in the loop: "collect" (each collected batch step), "train" (before
each train call), "checkpoint" (between writing the replay checkpoint and the
agent checkpoint), "progress" (after an evaluation row, before the
checkpoint). Distributed actors: "actor_chunk" (after each collected chunk,
all its items flushed to the server). Unset, `point` costs one dict lookup.
"""

import collections
import os
import signal

_reached = collections.Counter()


def point(name: str):
  spec = os.environ.get("TFRL_KILL_AT")
  if not spec:
    return
  target, _, count = spec.partition(":")
  if target != name:
    return
  _reached[name] += 1
  if _reached[name] == int(count or 1):
    os.kill(os.getpid(), signal.SIGKILL)


def collect_observer(_trajectory):
  """A driver observer marking every collected batch step as a crash point."""
  point("collect")
