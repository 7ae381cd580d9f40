"""Which in-graph learner (the compiled loop's, `tfrl.train.compiled`)
drives which tf-agents agent; tfrl's subclasses record the parts the
learners are built of (`tfrl.agents.diagnostics`)."""

import inspect

from tf_agents.agents.ddpg import ddpg_agent
from tf_agents.agents.dqn import dqn_agent
from tf_agents.agents.sac import sac_agent
from tf_agents.agents.td3 import td3_agent

from tfrl.agents.ddpg import InGraphDdpg
from tfrl.agents.dqn import InGraphDqn
from tfrl.agents.ppo import InGraphPpo, PpoAgent
from tfrl.agents.sac import InGraphSac
from tfrl.errors import ConfigError

# agent type -> a function of the agent that builds its learner (PPO's runs
# in the compiled on-policy loop, `tfrl.train.compiled_on_policy`).
LEARNERS = {dqn_agent.DqnAgent: InGraphDqn.from_agent,
            PpoAgent: InGraphPpo.from_agent,
            ddpg_agent.DdpgAgent: InGraphDdpg.from_agent,
            td3_agent.Td3Agent: InGraphDdpg.from_agent,
            sac_agent.SacAgent: InGraphSac.from_agent}


def _names():
  return ", ".join(t.__name__ for t in LEARNERS)


def in_graph_learner(agent):
  for agent_type, learner in LEARNERS.items():
    if isinstance(agent, agent_type):
      return learner(agent)
  raise ConfigError(f"the compiled loop has no in-graph learner for {type(agent).__name__} "
                    f"(it has: {_names()})")


def check_has_learner(agent_fn) -> None:
  """ConfigError unless the factory `agent_fn` says (its return annotation,
  as tfrl's do) that it builds an agent with a learner — checked before
  anything is built or written."""
  built = inspect.signature(agent_fn).return_annotation
  if not (inspect.isclass(built) and issubclass(built, tuple(LEARNERS))):
    name = getattr(agent_fn, "__name__", repr(agent_fn))
    what = "does not say what it builds" if built is inspect.Signature.empty else \
        f"builds {getattr(built, '__name__', built)}"
    raise ConfigError(f"the compiled loop has no in-graph learner for agent_fn {name} ({what}; "
                      f"it has learners for: {_names()}, e.g. tfrl.agents.dqn, ppo, ddpg, td3, sac)")
