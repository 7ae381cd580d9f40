"""PPO-clip (Schulman et al., 2017): tf-agents' PPOClipAgent, configured by gin."""

from typing import Optional, Sequence

import gin
import tensorflow as tf
from tf_agents.agents.ppo import ppo_clip_agent

from tfrl.networks import actor_network, adam, value_network


@gin.configurable(module="tfrl.agents")
def ppo(time_step_spec,
        action_spec,
        actor_fc_layer_params: Sequence[int] = (64, 64),
        value_fc_layer_params: Sequence[int] = (64, 64),
        learning_rate: float = 3e-4,
        learning_rate_decay_steps: Optional[int] = None,
        clip_ratio: float = 0.2,
        num_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.97,
        entropy_regularization: float = 0.0,
        value_pred_loss_coef: float = 0.5,
        normalize_observations: bool = True,
        normalize_rewards: bool = False,
        gradient_clipping: Optional[float] = 0.5):
  """Clipped-surrogate policy optimisation with GAE-lambda advantages.

  Each `train` call runs `num_epochs` full-batch gradient steps on the
  collected episodes, policy and value function sharing one Adam optimizer.
  """
  agent = ppo_clip_agent.PPOClipAgent(
      time_step_spec,
      action_spec,
      optimizer=adam(learning_rate, learning_rate_decay_steps),
      actor_net=actor_network(time_step_spec.observation, action_spec, actor_fc_layer_params),
      value_net=value_network(time_step_spec.observation, value_fc_layer_params),
      importance_ratio_clipping=clip_ratio,
      lambda_value=gae_lambda,
      discount_factor=gamma,
      entropy_regularization=entropy_regularization,
      value_pred_loss_coef=value_pred_loss_coef,
      num_epochs=num_epochs,
      use_gae=True,
      use_td_lambda_return=True,
      normalize_rewards=normalize_rewards,
      normalize_observations=normalize_observations,
      gradient_clipping=gradient_clipping,
      train_step_counter=tf.Variable(0, dtype=tf.int64, name="train_step"))
  agent.initialize()
  return agent
