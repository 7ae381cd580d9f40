"""Every script, given bad input (a flag, path, list, choice, port, gin file,
environment id), prints one line `<script>: error: <message>` naming the
problem and exits 2, having written nothing and started nothing.

Each case is the script in its own process, in an empty working directory
that must stay empty (output paths are relative to it). The processes run a
few at a time in one module fixture; most fail before TF is imported, the
cases marked TF (gin files, environment ids) after."""

import concurrent.futures
import os
import socket
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GRID = ["--gin_file=reinforce_cartpole.gin", "--exp_name=g"]

# (script under scripts/, arguments, what the error line says). {file}: a
# regular file; {dir}: an empty directory; {run}: a run directory holding
# config.gin and a saved_model.pb; {bad_env_run}: the same naming an unknown
# env id; {busy_port}: a port something listens on; {bad_gin}: a gin file
# binding an unknown configurable.
CASES = [
    # test_policy.py
    ("test_policy.py", [], "the following arguments are required: run_dir"),
    ("test_policy.py", ["nowhere"], "run directory 'nowhere' does not exist"),
    ("test_policy.py", ["{file}"], "is a file, not a directory"),
    ("test_policy.py", ["{dir}"], "is not a run directory (no config.gin)"),
    ("test_policy.py", ["{run}", "extra"], "unrecognized arguments: extra"),
    ("test_policy.py", ["{run}", "--foo"], "unrecognized arguments: --foo"),
    ("test_policy.py", ["{run}", "-n", "0"], "argument -n/--episodes: 0 is not >= 1"),
    ("test_policy.py", ["{run}", "-n", "x"], "argument -n/--episodes: 'x' is not an integer"),
    ("test_policy.py", ["{run}", "-l", "-5"], "argument -l/--max_len: -5 is not >= 1"),
    ("test_policy.py", ["{run}", "--checkpoint", "-1"], "argument --checkpoint: -1 is not >= 0"),
    ("test_policy.py", ["{run}", "--checkpoint", "7"], "no policy checkpoint for iteration 7"),
    ("test_policy.py", ["{run}", "--seed", "-1"], "argument --seed: -1 is not >= 0"),
    ("test_policy.py", ["{run}", "--video", "{dir}"], "is a directory"),
    ("test_policy.py", ["{run}", "--video", "nowhere/x.mp4"], "--video 'nowhere/x.mp4': no directory"),
    ("test_policy.py", ["{run}", "--video", "x.gif"], "give a file name ending in .mp4"),
    ("test_policy.py", ["{bad_env_run}"], "TF: unknown environment id 'CartPol-v9'"),
    # plot.py (the library's checks of log dirs and columns: test_experiments.py)
    ("plot.py", [], "the following arguments are required: logdir"),
    ("plot.py", ["{dir}", "--smooth", "0"], "argument --smooth/-s: 0 is not >= 1"),
    ("plot.py", ["{dir}", "--smooth", "x"], "argument --smooth/-s: 'x' is not an integer"),
    ("plot.py", ["{dir}", "--out", "{dir}"], "is a directory"),
    ("plot.py", ["{dir}", "--out", "{file}/x.png"], "cannot be created"),
    ("plot.py", ["{dir}", "--out", "x.nonsense"], "matplotlib writes no .nonsense files"),
    ("plot.py", ["{dir}", "--value"], "argument --value/-y: expected at least one argument"),
    ("plot.py", ["{dir}", "--foo"], "unrecognized arguments: --foo"),
    # grid.py (its gin checks: test_experiments.py)
    ("grid.py", [], "the following arguments are required: --gin_file, --exp_name"),
    ("grid.py", GRID + ["--seeds=1,,x"], "--seeds '1,,x': expected comma-separated integers >= 0"),
    ("grid.py", GRID + ["--seeds=-1"], "--seeds '-1': expected comma-separated integers >= 0"),
    ("grid.py", GRID + ["--seeds="], "--seeds: give at least one seed"),
    ("grid.py", GRID + ["--num_procs=0"], "argument --num_procs: 0 is not >= 1"),
    ("grid.py", GRID + ["--num_procs=x"], "argument --num_procs: 'x' is not an integer"),
    ("grid.py", GRID + ["--param=foo"], "--param 'foo': expected NAME=V1,V2,..."),
    ("grid.py", GRID + ["--param=a.b=1,,2"], "--param 'a.b=1,,2': empty value"),
    ("grid.py", GRID + ["--data_dir={file}"], "--data_dir '{file}' is a file, not a directory"),
    ("grid.py", GRID + ["extra"], "unrecognized arguments: extra"),
    # rudder_inspect.py
    ("rudder_inspect.py", ["--episodes=0"], "flag --episodes=0: 0 is not a positive integer"),
    ("rudder_inspect.py", ["--episodes=x"], "flag --episodes=x: invalid literal for int()"),
    ("rudder_inspect.py", ["--held_out=0"], "flag --held_out=0: 0 is not a positive integer"),
    ("rudder_inspect.py", ["--updates=-1"], "flag --updates=-1: -1 is not a non-negative integer"),
    ("rudder_inspect.py", ["--batch_size=0"], "flag --batch_size=0"),
    ("rudder_inspect.py", ["--lstm_units=0"], "flag --lstm_units=0"),
    ("rudder_inspect.py", ["--learning_rate=0"], "flag --learning_rate=0.0: must be > 0"),
    ("rudder_inspect.py", ["--return_scale=-1"], "flag --return_scale=-1.0: must be > 0"),
    ("rudder_inspect.py", ["--temperature=0"], "flag --temperature=0.0: must be > 0"),
    ("rudder_inspect.py", ["--aux_weight=-1"], "flag --aux_weight=-1"),
    ("rudder_inspect.py", ["--input_units=0"], "flag --input_units=0: 0 is not >= 1"),
    ("rudder_inspect.py", ["--input_units=3,x"], "flag --input_units=3,x: 'x' is not an integer"),
    ("rudder_inspect.py", ["--variant=nonsense"], "'nonsense' is not one of output_gate"),
    ("rudder_inspect.py", ["--seed=-1"], "flag --seed=-1: -1 is not a non-negative integer"),
    ("rudder_inspect.py", ["--out_dir={file}"], "--out_dir '{file}' is a file, not a directory"),
    ("rudder_inspect.py", ["extra"], "unexpected arguments ['extra']"),
    ("rudder_inspect.py", ["--foo"], "Unknown command line flag 'foo'"),
    ("rudder_inspect.py", ["--env_id=Nonsense-v0"], "TF: unknown environment id 'Nonsense-v0'"),
    # collect.py
    ("collect.py", [], "give at least one --gin_file"),
    ("collect.py", ["--gin_file=dqn_cartpole.gin"], "give the Reverb server's address explicitly"),
    ("collect.py", ["--gin_file=dqn_cartpole.gin", "--server=nonsense"],
     "--server='nonsense' is not host:port"),
    ("collect.py", ["--gin_file=dqn_cartpole.gin", "--server=localhost:0"], "is not host:port"),
    ("collect.py", ["--gin_file=dqn_cartpole.gin", "--server=localhost:70000"],
     "with a port in 1..65535"),
    ("collect.py", ["--actor_id=-1"], "flag --actor_id=-1: -1 is not a non-negative integer"),
    ("collect.py", ["--actor_id=x"], "flag --actor_id=x: invalid literal for int()"),
    ("collect.py", ["--max_env_steps=0"], "flag --max_env_steps=0: 0 is not a positive integer"),
    ("collect.py", ["--gin_file=dqn_cartpole.gin", "--server=localhost:1", "extra"],
     "unexpected arguments ['extra']"),
    ("collect.py", ["--foo"], "Unknown command line flag 'foo'"),
    ("collect.py", ["--gin_file=missing.gin", "--server=localhost:1"],
     "TF: gin file 'missing.gin' not found"),
    # reverb_server.py
    ("reverb_server.py", ["--port=8000", "--checkpoint_dir=ck"], "give at least one --gin_file"),
    ("reverb_server.py", ["--gin_file=dqn_cartpole.gin", "--checkpoint_dir=ck"],
     "give the port to listen on explicitly: --port=N"),
    ("reverb_server.py", ["--port=0"], "flag --port=0: 0 is not an integer in the range [1, 65535]"),
    ("reverb_server.py", ["--port=70000"], "flag --port=70000: 70000 is not an integer in the range"),
    ("reverb_server.py", ["--port=x"], "flag --port=x: invalid literal for int()"),
    ("reverb_server.py", ["--gin_file=dqn_cartpole.gin", "--port=8000"], "give --checkpoint_dir"),
    ("reverb_server.py", ["--gin_file=dqn_cartpole.gin", "--port=8000", "--checkpoint_dir={file}"],
     "--checkpoint_dir '{file}' is a file, not a directory"),
    ("reverb_server.py", ["--gin_file=dqn_cartpole.gin", "--port={busy_port}",
                          "--checkpoint_dir=ck"], "--port={busy_port}: cannot listen there"),
    ("reverb_server.py", ["--gin_file=dqn_cartpole.gin", "--port=8000", "--checkpoint_dir=ck",
                          "extra"], "unexpected arguments ['extra']"),
    ("reverb_server.py", ["--gin_file={bad_gin}", "--port=8000", "--checkpoint_dir=ck"],
     "TF: No configurable matching 'nonexistent'"),
    # launch_ray.py
    ("launch_ray.py", ["--root_dir=root"], "give at least one --gin_file"),
    ("launch_ray.py", ["--num_actors=0"], "flag --num_actors=0: 0 is not a positive integer"),
    ("launch_ray.py", ["--num_actors=x"], "flag --num_actors=x: invalid literal for int()"),
    ("launch_ray.py", ["--port=0"], "flag --port=0: 0 is not an integer in the range [1, 65535]"),
    ("launch_ray.py", ["--port=70000"], "flag --port=70000"),
    ("launch_ray.py", ["--gin_file=dqn_cartpole.gin", "--root_dir={file}"],
     "--root_dir '{file}' is a file, not a directory"),
    ("launch_ray.py", ["--gin_file=dqn_cartpole.gin", "--root_dir=root", "--port={busy_port}"],
     "--port={busy_port}: cannot listen there"),
    ("launch_ray.py", ["--gin_file=dqn_cartpole.gin", "--root_dir=root", "--address=ray://nowhere"],
     "--address='ray://nowhere' is not auto, ray://host:port or host:port"),
    ("launch_ray.py", ["--gin_file=dqn_cartpole.gin", "--root_dir=root", "--address=127.0.0.1:1"],
     "--address='127.0.0.1:1': cannot reach a Ray cluster there"),
    ("launch_ray.py", ["--gin_file=dqn_cartpole.gin", "--root_dir=root", "extra"],
     "unexpected arguments ['extra']"),
    ("launch_ray.py", ["--gin_file=missing.gin", "--root_dir=root"],
     "TF: gin file 'missing.gin' not found"),
    ("launch_ray.py", ["--gin_file=rudder_ppo_coin.gin", "--root_dir=root"],
     "TF: tfrl.train.train.reward_redistribution is not supported by the distributed"),
    ("launch_ray.py", ["--gin_file=dqn_cartpole.gin", "--root_dir=root",
                       "--gin_bindings=tfrl.distributed.ray.Placement.actor_cpus=-1"],
     "TF: tfrl.distributed.ray.Placement.actor_cpus = -1: must be >= 0"),
    ("launch_ray.py", ["--gin_file=dqn_cartpole.gin", "--root_dir=root",
                       "--gin_bindings=tfrl.distributed.ray.Placement.pin_to_driver_node=('x',)"],
     "TF: tfrl.distributed.ray.Placement: unknown role(s) ['x']"),
    # benchmarks/benchmark_learning.py
    ("benchmarks/benchmark_learning.py", [], "give --gin_file (repeatable) or --suite"),
    ("benchmarks/benchmark_learning.py", ["--suite=nonsense"],
     "flag --suite=nonsense: value should be one of "
     "<agents|rudder|compiled|compiled_ppo|mujoco|pixels|pixels_speed>"),
    ("benchmarks/benchmark_learning.py", ["--suite=agents", "--gin_file=dqn_cartpole.gin"],
     "give --suite or --gin_file (with --threshold), not both"),
    ("benchmarks/benchmark_learning.py", ["--suite=mujoco", "--pairs=sac_hopper,x"],
     "--pairs: x not in suite mujoco (sac_halfcheetah, td3_halfcheetah, sac_hopper"),
    ("benchmarks/benchmark_learning.py", ["--gin_file=dqn_cartpole.gin", "--pairs=x"],
     "--pairs selects pairs of a --suite; with --gin_file, list the files"),
    ("benchmarks/benchmark_learning.py", ["--gin_file=dqn_cartpole.gin", "--seeds=1,,x"],
     "flag --seeds=1,,x: '' is not an integer"),
    ("benchmarks/benchmark_learning.py", ["--gin_file=dqn_cartpole.gin", "--seeds="],
     "flag --seeds=: give at least one value"),
    ("benchmarks/benchmark_learning.py", ["--gin_file=dqn_cartpole.gin", "--threshold=1",
                                          "--threshold=2"], "give one --threshold, or one per"),
    ("benchmarks/benchmark_learning.py", ["--threshold=x"], "flag --threshold=x"),
    ("benchmarks/benchmark_learning.py", ["--gin_file=dqn_cartpole.gin", "--out_dir={file}"],
     "--out_dir '{file}' is a file, not a directory"),
    ("benchmarks/benchmark_learning.py", ["--gin_file=dqn_cartpole.gin", "extra"],
     "unexpected arguments ['extra']"),
    ("benchmarks/benchmark_learning.py", ["--gin_file=reinforce_cartpole.gin",
                                          "--gin_bindings=tfrl.agents.reinforce.lr=1"],
     "TF: doesn't have a parameter named 'lr'"),
    # benchmarks/benchmark_update.py
    ("benchmarks/benchmark_update.py", ["--agents=nonsense"], "'nonsense' is not one of dqn, sac"),
    ("benchmarks/benchmark_update.py", ["--steps=0"], "flag --steps=0: 0 is not"),
    ("benchmarks/benchmark_update.py", ["extra"], "unexpected arguments ['extra']"),
    # benchmarks/benchmark_onpolicy.py
    ("benchmarks/benchmark_onpolicy.py", ["--iterations=0"], "flag --iterations=0: 0 is not"),
    ("benchmarks/benchmark_onpolicy.py", ["extra"], "unexpected arguments ['extra']"),
    ("benchmarks/benchmark_onpolicy.py", ["--gin_file=missing.gin"],
     "TF: gin file 'missing.gin' not found"),
    ("benchmarks/benchmark_onpolicy.py", ["--gin_file=dqn_cartpole.gin"],
     "TF: dqn_cartpole.gin is not an on-policy pair"),
    # benchmarks/benchmark_collect.py
    ("benchmarks/benchmark_collect.py", ["--seconds=0"], "flag --seconds=0.0: must be > 0"),
    ("benchmarks/benchmark_collect.py", ["--repeats=0"], "flag --repeats=0: 0 is not a positive"),
    ("benchmarks/benchmark_collect.py", ["--num_envs=0"], "flag --num_envs=0: 0 is not >= 1"),
    ("benchmarks/benchmark_collect.py", ["--num_envs=1,x"], "'x' is not an integer"),
    ("benchmarks/benchmark_collect.py", ["--num_envs="], "give at least one value"),
    ("benchmarks/benchmark_collect.py", ["--replays=nonsense"],
     "'nonsense' is not one of episodes, transitions"),
    ("benchmarks/benchmark_collect.py", ["extra"], "unexpected arguments ['extra']"),
    ("benchmarks/benchmark_collect.py", ["--env_id=Nonsense-v0"],
     "TF: unknown environment id 'Nonsense-v0'"),
    # benchmarks/benchmark_compiled.py
    ("benchmarks/benchmark_compiled.py", ["--what=nonsense"],
     "flag --what=nonsense: value should be one of <speed|learning|both>"),
    ("benchmarks/benchmark_compiled.py", ["--steps=0"], "flag --steps=0"),
    ("benchmarks/benchmark_compiled.py", ["--repeats=0"], "flag --repeats=0"),
    ("benchmarks/benchmark_compiled.py", ["--calls=0"], "flag --calls=0"),
    ("benchmarks/benchmark_compiled.py", ["--chunk=0"], "flag --chunk=0"),
    ("benchmarks/benchmark_compiled.py", ["--threads=0"], "flag --threads=0: 0 is not >= 1"),
    ("benchmarks/benchmark_compiled.py", ["--threads=1,x"], "'x' is not an integer"),
    ("benchmarks/benchmark_compiled.py", ["--modes=nonsense"],
     "'nonsense' is not one of xla_runtime, xla, graph"),
    ("benchmarks/benchmark_compiled.py", ["--rngs=nonsense"],
     "'nonsense' is not one of stateless, generator"),
    ("benchmarks/benchmark_compiled.py", ["--seeds=1,,x"], "flag --seeds=1,,x: '' is not an integer"),
    ("benchmarks/benchmark_compiled.py", ["--jax_python=nowhere"], "--jax_python=nowhere"),
    ("benchmarks/benchmark_compiled.py", ["extra"], "unexpected arguments ['extra']"),
    ("benchmarks/benchmark_compiled.py", ["--gin_file=missing.gin"],
     "TF: gin file 'missing.gin' not found"),
    # benchmarks/benchmark_distributed.py
    ("benchmarks/benchmark_distributed.py", ["--num_actors=0"], "flag --num_actors=0: 0 is not >= 1"),
    ("benchmarks/benchmark_distributed.py", ["--num_actors=x"], "'x' is not an integer"),
    ("benchmarks/benchmark_distributed.py", ["--num_actors="], "give at least one value"),
    ("benchmarks/benchmark_distributed.py", ["--seconds=-1"], "flag --seconds=-1.0: must be > 0"),
    ("benchmarks/benchmark_distributed.py", ["--repeats=0"],
     "0 repeats measure nothing: give --learning_runs=N"),
    ("benchmarks/benchmark_distributed.py", ["--repeats=-1", "--learning_runs=2"],
     "flag --repeats=-1"),
    ("benchmarks/benchmark_distributed.py", ["--learning_runs=-1"], "flag --learning_runs=-1"),
    ("benchmarks/benchmark_distributed.py",
     ["--launcher=ray", "--gin_bindings=tfrl.distributed.ray.Placement.env_vars={{'x': {{}}}}"],
     "tfrl.distributed.ray.Placement: unknown role(s) ['x']"),
    ("benchmarks/benchmark_distributed.py", ["--learner_actors=0"], "flag --learner_actors=0"),
    ("benchmarks/benchmark_distributed.py", ["--launcher=k8s"],
     "flag --launcher=k8s: 'k8s' is not one of local, ray"),
    ("benchmarks/benchmark_distributed.py", ["--launcher="], "give at least one value"),
    ("benchmarks/benchmark_distributed.py", ["--learner_iterations=5"],
     "flag --learner_iterations=5: must be >= 20"),
    ("benchmarks/benchmark_distributed.py", ["--prefill_steps=0"], "flag --prefill_steps=0"),
    ("benchmarks/benchmark_distributed.py", ["extra"], "unexpected arguments ['extra']"),
    ("benchmarks/benchmark_distributed.py", ["--gin_file=ppo_cartpole.gin"],
     "TF: on-policy replay (whole episodes)"),
]


def case_id(case):
  script, args, _ = case
  return f"{os.path.basename(script)}:{' '.join(args) or '(none)'}"


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
  base = tmp_path_factory.mktemp("inputs")
  (base / "file").write_text("x")
  (base / "dir").mkdir()
  for name, env_id in (("run", "CartPole-v1"), ("bad_env_run", "CartPol-v9")):
    (base / name / "policies" / "saved_model").mkdir(parents=True)
    (base / name / "config.gin").write_text(f"tfrl.train.train.env_id = '{env_id}'\n")
    (base / name / "policies" / "saved_model" / "saved_model.pb").write_text("not a policy")
  (base / "bad.gin").write_text("nonexistent.param = 3\n")
  return dict(file=str(base / "file"), dir=str(base / "dir"), run=str(base / "run"),
              bad_env_run=str(base / "bad_env_run"), bad_gin=str(base / "bad.gin"))


@pytest.fixture(scope="module")
def results(fixtures, tmp_path_factory, request):
  """{case id: (CompletedProcess, files left in its working directory)} of
  the selected cases (so `-k` runs only those)."""
  selected = [item.callspec.params["case"] for item in request.session.items
              if item.module is request.module
              and "case" in getattr(getattr(item, "callspec", None), "params", {})]
  with socket.socket() as busy:
    busy.bind(("", 0))
    busy.listen()
    names = dict(fixtures, busy_port=busy.getsockname()[1])

    def run(case):
      script, args, _ = case
      cwd = tmp_path_factory.mktemp("cwd")
      # tfrl from this tree; TF's C++ start-up lines off; temp dirs inside cwd.
      env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(cwd))
      result = subprocess.run(
          [sys.executable, os.path.join(REPO, "scripts", script)] +
          [a.format(**names) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
          timeout=180)
      return result, sorted(os.listdir(cwd))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
      done = dict(zip(map(case_id, selected), pool.map(run, selected)))
    return done, names


def error_lines(stderr):
  # Reverb's C++ server logs its own start and stop lines.
  return [l for l in stderr.splitlines() if l.strip() and not l.startswith("[reverb/")]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(results, case):
  done, names = results
  script, _, message = case
  result, left = done[case_id(case)]
  message = message.removeprefix("TF: ").format(**names)
  lines = error_lines(result.stderr)
  assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
  assert len(lines) == 1, result.stderr[-2000:]
  assert lines[0].startswith(f"{os.path.basename(script)}: error: "), lines[0]
  assert message in lines[0], lines[0]
  assert left == [], left
