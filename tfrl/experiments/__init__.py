"""Experiments: grids of runs over bindings and seeds, plots of their
progress.csv, and episodes of a policy watched or recorded as video."""

from tfrl.experiments.episodes import Episodes, run_episodes, start_virtual_display, write_mp4
from tfrl.experiments.grid import ExperimentGrid, RunResult, summary_table
from tfrl.experiments.plot import (Curve, Run, draw, expand_logdirs, find_run_dirs, load_runs,
                                   make_curves, plot_runs)
