"""Training: the loop, evaluation and the run directory (config, progress, checkpoints)."""

from tfrl.train.evaluation import EvalResult, Evaluator
from tfrl.train.runner import on_policy_train_function, train
