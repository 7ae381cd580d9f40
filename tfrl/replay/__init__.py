"""Reverb replay: server, tables, adders (writing) and readers. Knows nothing of agents."""

from tfrl.replay import packing
from tfrl.replay.adders import BatchSequenceAdder, EpisodeAdder, SegmentAdder, SequenceAdder
from tfrl.replay.replays import EpisodeReplay, TransitionReplay, valid_sequences
from tfrl.replay.server import ReplayServer
