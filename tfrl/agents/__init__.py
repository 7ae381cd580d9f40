"""Agents as gin components: factories `fn(time_step_spec, action_spec) -> TFAgent`.

Knows nothing of Reverb or environments beyond their specs.
"""

from tfrl.agents.dqn import dqn
from tfrl.agents.ppo import ppo
from tfrl.agents.reinforce import reinforce
