"""Agents as gin components: factories `fn(time_step_spec, action_spec) -> TFAgent`.

Knows nothing of Reverb or environments beyond their specs.
"""

from tfrl.agents.dqn import dqn
from tfrl.agents.ppo import ppo
from tfrl.agents.reinforce import reinforce
from tfrl.agents.trpo import trpo
from tfrl.agents.vpg import vpg
from tfrl.agents.ddpg import ddpg
from tfrl.agents.td3 import td3
from tfrl.agents.sac import sac
