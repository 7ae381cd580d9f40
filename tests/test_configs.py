"""Every gin file: a short header, and every ready pair parses, passes the
run config's checks and builds its agent for its environment."""

import glob
import os

import pytest

import tfrl
from tfrl.train import config

GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gin_configs")
READY_PAIRS = sorted(glob.glob(os.path.join(GIN_DIR, "*.gin")))
ALL_FILES = sorted(glob.glob(os.path.join(GIN_DIR, "**", "*.gin"), recursive=True))


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: os.path.relpath(p, GIN_DIR))
def test_header_is_at_most_five_comment_lines(path):
  lines = open(path).read().splitlines()
  header = 0
  while header < len(lines) and lines[header].startswith("#"):
    header += 1
  assert 1 <= header <= 5, f"{path}: {header} header lines"


@pytest.mark.parametrize("path", READY_PAIRS, ids=os.path.basename)
def test_ready_pair_builds_its_agent(path):
  config.parse_config([path])
  run_config = tfrl.train.RunConfig().check()
  env = tfrl.envs.load(run_config.env_id, seed=0)
  try:
    agent = run_config.agent_fn(env.time_step_spec(), env.action_spec())
  finally:
    env.close()
  assert agent.train_step_counter is not None
