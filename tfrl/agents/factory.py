"""What every agent factory does before it builds: take the specs as given
(tensor specs, or the array specs a PyEnvironment returns), check the
agent can act in the environment's action space, and check every
hyperparameter against its annotation — each problem one ConfigError line."""

import functools

from tf_agents.specs import tensor_spec

from tfrl.checks import checked_arguments
from tfrl.errors import ConfigError

DISCRETE, CONTINUOUS = "discrete", "continuous"


def describe_actions(action_spec) -> str:
  if action_spec.dtype.is_integer:
    count = int(action_spec.maximum) - int(action_spec.minimum) + 1
    return f"discrete ({count} actions)"
  return f"continuous (shape {tuple(action_spec.shape)})"


def check_actions(name: str, actions: str, action_spec) -> None:
  """ConfigError unless `action_spec` is of the kind `actions` names."""
  discrete = action_spec.dtype.is_integer
  if actions == DISCRETE and not discrete:
    raise ConfigError(f"{name} needs discrete actions; this environment's are "
                      f"{describe_actions(action_spec)}: use ppo, sac, td3 or ddpg")
  if actions == CONTINUOUS and discrete:
    raise ConfigError(f"{name} needs continuous actions; this environment's are "
                      f"{describe_actions(action_spec)}: use dqn, ppo, trpo or reinforce")


def agent_factory(name: str, actions: str = None):
  """Decorates `fn(time_step_spec, action_spec, **hyperparameters)` (under
  `@gin.configurable`): specs converted to tensor specs, the action kind
  checked (`actions`: DISCRETE, CONTINUOUS or None for both), arguments
  checked against their annotations (errors name `tfrl.agents.<name>.<param>`)."""
  def decorate(fn):
    checked = checked_arguments(f"tfrl.agents.{name}")(fn)

    @functools.wraps(fn)
    def factory(time_step_spec, action_spec, *args, **kwargs):
      time_step_spec = tensor_spec.from_spec(time_step_spec)
      action_spec = tensor_spec.from_spec(action_spec)
      check_actions(name, actions, action_spec)
      return checked(time_step_spec, action_spec, *args, **kwargs)
    return factory
  return decorate
