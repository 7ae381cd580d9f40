"""Training: the run config, the one loop and its step sources, evaluation, the run directory."""

from tfrl.train import config
from tfrl.train.evaluation import EvalResult, Evaluator
from tfrl.train.loop import (Advance, Checkpoint, Evaluate, ExportPolicy, FiniteLoss, Hook, Run,
                             StepSource, StopAtReturn, run_loop)
from tfrl.train.runner import train
from tfrl.train.settings import RunConfig
from tfrl.train.sources import on_policy_train_function, off_policy_train_function
