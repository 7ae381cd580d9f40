"""Beyond one process: a Reverb server, actors and a learner as separate
processes wired by the same gin files (server.py, actor.py, learner.py;
wiring.py holds what they agree on). Knows agents only through their specs
and policy variables."""

from tfrl.distributed.wiring import (PolicyVariables, ServerLink, ServerLost, Tagger,
                                     policy_variables, replay_tables, split_tags, tagged_data_spec,
                                     role_config, variable_table)
from tfrl.distributed.actor import collect
from tfrl.distributed.learner import learn
from tfrl.distributed.server import serve
