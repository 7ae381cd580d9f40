"""Reverb replay: server, tables, adders (writing) and readers. Knows nothing of agents."""

from tfrl.replay.adders import BatchSequenceAdder, EpisodeAdder, SequenceAdder, valid_sequences
from tfrl.replay.replays import EpisodeReplay, TransitionReplay
from tfrl.replay.server import ReplayServer
