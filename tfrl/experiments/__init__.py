"""Experiments: grids of runs over bindings and seeds, and plots of their progress.csv."""

from tfrl.experiments.grid import ExperimentGrid, RunResult, summary_table
from tfrl.experiments.plot import (Curve, Run, draw, expand_logdirs, find_run_dirs, load_runs,
                                   make_curves, plot_runs)
