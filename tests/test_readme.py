"""README.md's by-hand snippet runs as pasted, on a fraction of its budget
(its full budget, 100 iterations, is what the README reports)."""

import math
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FULL_BUDGET, TEST_BUDGET = "ITERATIONS = 100", "ITERATIONS = 10"
EXIT_NOISE = ("Writer-object deleted without calling .close", "Socket closed")


def by_hand_snippet() -> str:
  readme = open(os.path.join(REPO, "README.md")).read()
  section = readme.split("## By hand (notebook style)\n", 1)[1]
  return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_by_hand_snippet_trains_and_exits_quietly(tmp_path):
  snippet = by_hand_snippet()
  assert FULL_BUDGET in snippet, "the README snippet no longer names its budget"
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
  done = subprocess.run([sys.executable, "-c", snippet.replace(FULL_BUDGET, TEST_BUDGET)],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  found = re.search(r"iteration 10: loss (\S+), greedy return (\S+)", done.stdout)
  assert found, done.stdout
  loss, greedy_return = float(found.group(1)), float(found.group(2))
  assert math.isfinite(loss) and 8 <= greedy_return <= 500  # a CartPole episode lasts >= 8 steps
  for noise in EXIT_NOISE:
    assert noise not in done.stderr, done.stderr[-3000:]
