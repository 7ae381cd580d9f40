"""RUDDER (Arjona-Medina et al., 2019): reward redistribution for delayed rewards.

An LSTM learns to predict an episode's return from its (observation, action)
steps; differences of its successive predictions become the rewards an agent
trains on. Agent-agnostic: `RewardRedistribution` rewrites the rewards of
collected episodes before `agent.train`. Knows nothing of agents.
"""

from tfrl.rudder.component import EpisodeFeatures, RewardRedistribution, pad
from tfrl.rudder.lessons import LessonsBuffer
from tfrl.rudder.model import ReturnPredictor, RudderLSTMCell
from tfrl.rudder.redistribution import last_step, redistribute, redistribution_loss
