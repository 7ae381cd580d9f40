"""Episodes of a uniformly random policy, straight from gymnasium: the
inspection script's and the tests' data for the redistribution model."""

from typing import List, Tuple

import gymnasium as gym
import numpy as np


def random_episodes(env_id: str, num_episodes: int, seed: int = 0
                    ) -> Tuple[List[np.ndarray], List[np.ndarray], List[np.ndarray]]:
  """Per episode: observations [T, ...] (each before its action), actions [T], rewards [T]."""
  env = gym.make(env_id)
  env.action_space.seed(seed)
  observations, actions, rewards = [], [], []
  for i in range(num_episodes):
    obs, _ = env.reset(seed=seed * 1_000_003 + i)
    ep_obs, ep_act, ep_rew = [], [], []
    done = False
    while not done:
      action = env.action_space.sample()
      ep_obs.append(obs)
      ep_act.append(action)
      obs, reward, terminated, truncated, _ = env.step(action)
      ep_rew.append(reward)
      done = terminated or truncated
    observations.append(np.asarray(ep_obs, np.float32))
    actions.append(np.asarray(ep_act))
    rewards.append(np.asarray(ep_rew, np.float32))
  env.close()
  return observations, actions, rewards


def coin_moves(observations: np.ndarray, actions: np.ndarray, coin: int = 8):
  """CoinWalk steps [..., T]: (moves toward the coin, moves away from it),
  both from positions other than the coin's (from it, every move is away).
  A move blocked at an end (the position does not change) is neither."""
  position = np.argmax(observations, axis=-1)
  after = np.clip(position + 2 * np.asarray(actions) - 1, 0, observations.shape[-1] - 1)
  elsewhere = position != coin
  toward = (np.abs(after - coin) < np.abs(position - coin)) & elsewhere
  away = (np.abs(after - coin) > np.abs(position - coin)) & elsewhere
  return toward, away


def coin_credit(redistributed: np.ndarray, observations: np.ndarray, actions: np.ndarray,
                coin: int = 8):
  """The redistributed reward of CoinWalk moves toward and away from the coin
  (`coin_moves`): {"toward"|"away": (mean, fraction > 0, count)}."""
  out = {}
  for name, moves in zip(("toward", "away"), coin_moves(observations, actions, coin)):
    credit = redistributed[:, :moves.shape[1]][moves]
    out[name] = (float(credit.mean()), float(np.mean(credit > 0)), int(moves.sum()))
  return out
