"""Environments: gymnasium as tf-agents PyEnvironments. Knows nothing of agents."""

from tfrl.envs import mujoco_setup  # noqa: F401  first: MuJoCo reads its GL backend when it loads

from tfrl.envs.atari import Atari, MinAtar  # the preprocessing of ALE/... and MinAtar/... ids
from tfrl.envs.delayed import CoinWalk, DelayedReward  # also registers the delayed-reward ids
from tfrl.envs.gymnasium_env import GymnasiumEnvironment, VectorGymnasiumEnvironment, spec_from_space
from tfrl.envs.suite import check_env_id, load
