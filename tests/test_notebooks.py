"""The notebooks in scripts/notebooks run top to bottom (their own small
budgets) in a Jupyter kernel, produce what their text promises, and are
stored without outputs."""

import glob
import os

import imageio
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "scripts", "notebooks")
NOTEBOOKS = sorted(glob.glob(os.path.join(NOTEBOOK_DIR, "*.ipynb")))


def execute(name, workdir, smaller_budget=()):
  """Runs the notebook in `workdir`. `smaller_budget`: (text, replacement)
  pairs applied to the code cells first, so the suite runs a notebook on a
  fraction of the budget its readers see (each must match)."""
  notebook = nbformat.read(os.path.join(NOTEBOOK_DIR, name), as_version=4)
  for text, replacement in smaller_budget:
    cells = [cell for cell in notebook.cells if cell.cell_type == "code" and text in cell.source]
    assert cells, f"{name} no longer contains {text!r}"
    for cell in cells:
      cell.source = cell.source.replace(text, replacement)
  # Raises CellExecutionError (with the failing cell and traceback) on any error.
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": str(workdir)}}).execute()
  return notebook


def outputs_text(notebook):
  return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                 for output in cell.outputs)


def displayed(notebook, mime):
  return [output for cell in notebook.cells if cell.cell_type == "code"
          for output in cell.outputs if mime in output.get("data", {})]


def test_there_are_notebooks_and_they_are_stored_without_outputs():
  assert len(NOTEBOOKS) >= 3
  for path in NOTEBOOKS:
    for cell in nbformat.read(path, as_version=4).cells:
      if cell.cell_type == "code":
        assert cell.outputs == [] and cell.execution_count is None, \
            f"{os.path.basename(path)} is stored with outputs"


def test_reinforce_by_hand(tmp_path):
  notebook = execute("01_reinforce_by_hand.ipynb", tmp_path,
                     smaller_budget=[("NUM_ITERATIONS = 60", "NUM_ITERATIONS = 20")])
  text = outputs_text(notebook)
  assert "observation spec" in text and "experience shape (batch, time): (1," in text
  # No Reverb log lines, no TensorFlow start-up lines, no notice of the old gym.
  assert "reverb/" not in text and "tensorflow/" not in text and "unmaintained" not in text
  assert text.count("average return") >= 2
  assert len(displayed(notebook, "image/png")) == 1
  assert len(displayed(notebook, "text/html")) == 1      # the embedded video
  frames = [frame for frame in imageio.get_reader(str(tmp_path / "reinforce_cartpole.mp4"))]
  length = int(text.split(" steps, ")[0].rsplit(" over ", 1)[1])
  assert len(frames) == length + 1 and frames[0].shape[2] == 3
  assert (tmp_path / "reinforce_returns.png").stat().st_size > 0


def test_swapping_agents(tmp_path):
  notebook = execute("02_swapping_agents.ipynb", tmp_path, smaller_budget=[
      ("num_iterations = 16", "num_iterations = 8"), ("num_iterations = 48", "num_iterations = 16"),
      ("checkpoint_interval = 48", "checkpoint_interval = 16")])
  text = outputs_text(notebook)
  swapped = {line.split()[0]: line for line in text.splitlines() if " -> agent_fn = " in line}
  assert "agent_fn = @tfrl.agents.dqn, replay = @tfrl.replay.TransitionReplay()" \
      in swapped["agents/dqn.gin"]
  assert "agent_fn = @tfrl.agents.ppo, replay = @tfrl.replay.EpisodeReplay()" \
      in swapped["agents/ppo.gin"]
  assert "ConfigError:" in text and "clip" in text
  for agent in ("ppo", "dqn"):
    assert f"{agent} seed 0:" in text
    assert (tmp_path / "swap_runs" / agent / f"{agent}_s0" / "progress.csv").exists()
  assert len(displayed(notebook, "image/png")) == 1
  assert (tmp_path / "swap_avg_return.png").stat().st_size > 0


def test_rudder(tmp_path):
  notebook = execute("03_rudder.ipynb", tmp_path,
                     smaller_budget=[("NUM_UPDATES = 1500", "NUM_UPDATES = 500")])
  text = outputs_text(notebook)
  # The simplified cell: cell input on x, input gate on h, no forget/output gate.
  weights = [line.split()[0] for line in text.splitlines() if line.startswith("return_predictor/")]
  assert any("cell_input_kernel" in w for w in weights)
  assert any("input_gate_recurrent_kernel" in w for w in weights)
  assert not any("forget" in w or "output_gate" in w for w in weights)
  error = float(text.split("|sum of redistributed rewards - return| over 200 episodes: ")[1].split()[0])
  assert error < 1e-5
  losses = [float(line.split()[-1]) for line in text.splitlines() if "lessons loss" in line]
  assert losses[-1] < losses[0]
  assert len(displayed(notebook, "image/png")) == 2
  for name in ("rudder_redistribution.png", "rudder_lstm_internals.png"):
    assert (tmp_path / name).stat().st_size > 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_every_notebook_has_a_test(path):
  tested = {"01_reinforce_by_hand.ipynb", "02_swapping_agents.ipynb", "03_rudder.ipynb"}
  assert os.path.basename(path) in tested
