"""scripts/benchmarks/sb3_reference.py's reading of rl-zoo3 entries (pure functions,
no SB3 needed) and benchmark_learning.py's check of --sb3_python."""

import importlib.util
import os
import subprocess
import sys
import types

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(REPO, "scripts", "benchmarks")

spec = importlib.util.spec_from_file_location("sb3_reference",
                                              os.path.join(BENCHMARKS, "sb3_reference.py"))
sb3_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sb3_reference)
Linear, SettingsError = sb3_reference.Linear, sb3_reference.SettingsError

NN = types.SimpleNamespace(ReLU="relu", Tanh="tanh")  # stands in for torch.nn
# Constructor argument names of the algorithms below (as inspect.signature gives them).
A2C_ARGS = {"policy", "env", "learning_rate", "n_steps", "gamma", "gae_lambda", "ent_coef",
            "vf_coef", "max_grad_norm", "use_rms_prop", "use_sde", "normalize_advantage",
            "policy_kwargs", "seed", "device", "verbose"}
DDPG_ARGS = {"policy", "env", "learning_rate", "buffer_size", "learning_starts", "gamma",
             "train_freq", "gradient_steps", "action_noise", "policy_kwargs", "seed"}
DQN_ARGS = {"policy", "env", "learning_rate", "buffer_size", "learning_starts", "batch_size",
            "tau", "gamma", "train_freq", "gradient_steps", "replay_buffer_class",
            "replay_buffer_kwargs", "optimize_memory_usage", "n_steps", "target_update_interval",
            "exploration_fraction", "exploration_initial_eps", "exploration_final_eps",
            "max_grad_norm", "stats_window_size", "tensorboard_log", "policy_kwargs", "verbose",
            "seed", "device", "_init_setup_model"}

# rl-zoo3 2.9.2's hyperparams/a2c.yml, Pendulum-v1 (as yaml reads it).
A2C_PENDULUM = {"normalize": True, "n_envs": 8, "n_timesteps": 1e6, "policy": "MlpPolicy",
                "ent_coef": 0.0, "max_grad_norm": 0.5, "n_steps": 8, "gae_lambda": 0.9,
                "vf_coef": 0.4, "gamma": 0.9, "use_rms_prop": True, "normalize_advantage": False,
                "learning_rate": "lin_7e-4", "use_sde": True,
                "policy_kwargs": "dict(log_std_init=-2, ortho_init=False)"}
# hyperparams/ddpg.yml, Pendulum-v1.
DDPG_PENDULUM = {"n_timesteps": 20000, "policy": "MlpPolicy", "gamma": 0.98,
                 "buffer_size": 200000, "learning_starts": 10000, "noise_type": "normal",
                 "noise_std": 0.1, "gradient_steps": 1, "train_freq": 1, "learning_rate": 1e-3,
                 "policy_kwargs": "dict(net_arch=[400, 300])"}


# hyperparams/dqn.yml, atari (every game's entry).
DQN_ATARI = {"env_wrapper": ["stable_baselines3.common.atari_wrappers.AtariWrapper"],
             "frame_stack": 4, "policy": "CnnPolicy", "n_timesteps": 1e7, "buffer_size": 100000,
             "learning_rate": 1e-4, "batch_size": 32, "learning_starts": 100000,
             "target_update_interval": 1000, "train_freq": 4, "gradient_steps": 1,
             "exploration_fraction": 0.1, "exploration_final_eps": 0.01,
             "optimize_memory_usage": False}
ATARI_WRAPPER = sb3_reference.ATARI_WRAPPER


def test_schedules():
  assert sb3_reference.parse_schedule("learning_rate", "lin_7.3e-4") == Linear(7.3e-4)
  assert sb3_reference.parse_schedule("clip_range", 0.2) == 0.2
  assert sb3_reference.parse_schedule("learning_rate", 1) == 1.0
  for bad in ("exp_1e-3", "lin_x", "0.001"):
    with pytest.raises(SettingsError, match="only linear schedules"):
      sb3_reference.parse_schedule("learning_rate", bad)
  with pytest.raises(SettingsError, match="neither a number"):
    sb3_reference.parse_schedule("learning_rate", True)


def test_policy_kwargs_strings():
  parse = lambda text: sb3_reference.parse_kwargs("policy_kwargs", text, {"nn": NN})
  assert parse("dict(net_arch=[256, 256])") == {"net_arch": [256, 256]}
  assert parse("""dict(
                    log_std_init=-2,
                    ortho_init=False,
                    activation_fn=nn.ReLU,
                    net_arch=dict(pi=[256, 256], vf=[256, 256])
                  )""") == {"log_std_init": -2, "ortho_init": False, "activation_fn": "relu",
                            "net_arch": {"pi": [256, 256], "vf": [256, 256]}}
  assert parse({"net_arch": [64]}) == {"net_arch": [64]}
  assert parse("{'n_quantiles': 25}") == {"n_quantiles": 25}
  # Read, not evaluated: no calls but dict(), no names but the given ones.
  for bad in ("__import__('os').system('true')", "dict(activation_fn=torch.nn.ReLU)",
              "dict(net_arch=list(range(3)))", "[64, 64]", "dict(a="):
    with pytest.raises(SettingsError, match="policy_kwargs="):
      parse(bad)


def test_zoo_conventions():
  a2c = sb3_reference.zoo_settings(A2C_PENDULUM, A2C_ARGS, {"nn": NN})
  assert (a2c.n_envs, a2c.n_timesteps, a2c.policy, a2c.noise) == (8, 1_000_000, "MlpPolicy", None)
  assert a2c.normalize == {"gamma": 0.9}  # rl-zoo: VecNormalize with the algorithm's gamma
  assert a2c.model_kwargs["learning_rate"] == Linear(7e-4)
  assert a2c.model_kwargs["policy_kwargs"] == {"log_std_init": -2, "ortho_init": False}
  assert not {"n_envs", "n_timesteps", "policy", "normalize"} & set(a2c.model_kwargs)
  assert A2C_PENDULUM["learning_rate"] == "lin_7e-4"  # the entry itself is left as it was

  ddpg = sb3_reference.zoo_settings(DDPG_PENDULUM, DDPG_ARGS)
  assert (ddpg.n_envs, ddpg.normalize, ddpg.noise) == (1, None, ("normal", 0.1))
  assert ddpg.model_kwargs == {"gamma": 0.98, "buffer_size": 200000, "learning_starts": 10000,
                               "gradient_steps": 1, "train_freq": 1, "learning_rate": 1e-3,
                               "policy_kwargs": {"net_arch": [400, 300]}}
  train_freq = sb3_reference.zoo_settings(dict(DDPG_PENDULUM, train_freq=[1, "episode"]),
                                          DDPG_ARGS).model_kwargs["train_freq"]
  assert train_freq == (1, "episode")  # SB3 takes a tuple
  normalized = sb3_reference.zoo_settings(
      dict(DDPG_PENDULUM, normalize="dict(norm_obs=False, norm_reward=True)"), DDPG_ARGS)
  assert normalized.normalize == {"norm_obs": False, "norm_reward": True, "gamma": 0.98}


def test_linear_schedule_and_full_runs():
  """Linear is rl-zoo's linear_schedule (x * progress_remaining); a budget
  that starts a longer run keeps that run's pace."""
  lin = Linear(2.5e-4)
  assert [lin(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([2.5e-4, 1.25e-4, 0.0])
  kwargs = sb3_reference.full_run_schedules(
      dict(learning_rate=lin, clip_range=0.1, exploration_fraction=0.1, batch_size=32),
      n_timesteps=10_000_000, budget=100_000)
  assert kwargs["learning_rate"] == Linear(2.5e-4, zero_at=100.0)
  # The budget's end (progress_remaining 0) is 1 % into the full run.
  assert kwargs["learning_rate"](0.0) == pytest.approx(2.5e-4 * 0.99)
  assert kwargs["exploration_fraction"] == pytest.approx(10.0)  # 1M of 10M steps: 10 budgets
  assert (kwargs["clip_range"], kwargs["batch_size"]) == (0.1, 32)
  same = sb3_reference.full_run_schedules(dict(learning_rate=lin), 100_000, 100_000)
  assert same["learning_rate"](0.25) == pytest.approx(lin(0.25))


def test_atari_entry():
  """rl-zoo's atari entry: AtariWrapper (with or without kwargs), VecFrameStack, CnnPolicy."""
  atari = sb3_reference.zoo_settings(DQN_ATARI, DQN_ARGS)
  assert (atari.env_wrappers, atari.frame_stack, atari.policy) == (((ATARI_WRAPPER, {}),), 4,
                                                                    "CnnPolicy")
  assert atari.env_kwargs == {} and atari.n_timesteps == 10_000_000
  assert not {"env_wrapper", "frame_stack", "env_kwargs"} & set(atari.model_kwargs)
  for form in (ATARI_WRAPPER, [ATARI_WRAPPER]):
    assert sb3_reference.parse_env_wrappers(form) == ((ATARI_WRAPPER, {}),)
  assert sb3_reference.parse_env_wrappers(
      [{ATARI_WRAPPER: {"terminal_on_life_loss": False}}]) == (
          (ATARI_WRAPPER, {"terminal_on_life_loss": False}),)
  with_kwargs = sb3_reference.zoo_settings(
      dict(DQN_ATARI, env_kwargs="dict(frameskip=1)"), DQN_ARGS)
  assert with_kwargs.env_kwargs == {"frameskip": 1}
  # Evaluation envs: whole games with the raw score, as tfrl.envs.Atari's.
  assert sb3_reference.ENV_WRAPPERS[ATARI_WRAPPER] == dict(terminal_on_life_loss=False,
                                                           clip_reward=False)


def test_own_minatar_entry_reads_as_dqn():
  entry = sb3_reference.OWN_ENTRIES["dqn"]["MinAtar/Breakout-v0"]
  settings = sb3_reference.zoo_settings(entry, DQN_ARGS, {"MinAtarCNN": "cnn"})
  assert settings.model_kwargs["policy_kwargs"] == {"features_extractor_class": "cnn",
                                                    "net_arch": [128]}
  assert (settings.n_envs, settings.env_wrappers, settings.frame_stack) == (1, (), None)
  # 100k of 5M steps: eps 1 -> 0.1 over the first 100k, as tfrl's 100k updates.
  assert settings.model_kwargs["exploration_fraction"] * settings.n_timesteps == 100_000


def test_hyperparams_overrides():
  entry = sb3_reference.override_entry(
      DQN_ATARI, ["learning_starts=5000", "learning_rate = lin_1e-4", "frame_stack=2"])
  assert (entry["learning_starts"], entry["learning_rate"], entry["frame_stack"]) == (
      5000, "lin_1e-4", 2)
  assert DQN_ATARI["learning_starts"] == 100000  # the entry itself is left as it was
  assert sb3_reference.zoo_settings(entry, DQN_ARGS).model_kwargs["learning_rate"] == Linear(1e-4)
  for bad in ("learning_starts", "=3"):
    with pytest.raises(SettingsError, match="is not key=value"):
      sb3_reference.override_entry(DQN_ATARI, [bad])


@pytest.mark.parametrize("change, message", [
    (dict(env_wrapper="sb3_contrib.common.wrappers.TimeFeatureWrapper"),
     "env_wrapper 'sb3_contrib.common.wrappers.TimeFeatureWrapper' is not supported"),
    (dict(env_wrapper=[{ATARI_WRAPPER: {}, "x.Y": {}}]), "is not one {name: kwargs}"),
    (dict(env_wrapper=[{ATARI_WRAPPER: "dict(noop_max="}]), "cannot be read"),
    (dict(env_wrapper=[]), "neither a class name nor a list"),
    (dict(vec_env_wrapper="x.Y"), "rl-zoo key 'vec_env_wrapper' is not supported"),
    (dict(frame_stack=0), "frame_stack=0 is not a positive integer"),
    (dict(frame_stack=True), "frame_stack=True is not a positive integer"),
    (dict(env_kwargs=[1]), r"env_kwargs=\[1\] is neither a dict"),
    (dict(n_quantiles=25), "rl-zoo key 'n_quantiles' is neither"),
    (dict(seed=3), "rl-zoo key 'seed' is neither"),  # the script sets it
    (dict(noise_type="brown"), "noise_type='brown' is not one of"),
    (dict(noise_std=None), "noise_type and noise_std go together"),
    (dict(n_envs=0), "n_envs=0 is not a positive integer"),
    (dict(policy="my.Policy"), "only SB3's policy names"),
    (dict(normalize="yes"), "normalize='yes' cannot be read"),
])
def test_zoo_refusals(change, message):
  entry = {k: v for k, v in dict(DDPG_PENDULUM, **change).items() if v is not None}
  with pytest.raises(SettingsError, match=message):
    sb3_reference.zoo_settings(entry, DDPG_ARGS)


@pytest.mark.parametrize("python", ["/nonexistent", sys.executable])
def test_bad_sb3_python_is_one_line(python, tmp_path):
  """Before any run: tfrl's venv has no stable_baselines3."""
  result = subprocess.run(
      [sys.executable, os.path.join(BENCHMARKS, "benchmark_learning.py"),
       "--gin_file=ppo_cartpole.gin", "--threshold=475", "--seeds=0", f"--sb3_python={python}",
       f"--out_dir={tmp_path / 'runs'}"], capture_output=True, text=True, timeout=60)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [result.stderr.strip()]
  assert result.stderr.startswith(f"benchmark_learning.py: error: --sb3_python={python}: ")
  assert ("No such file" if python == "/nonexistent" else "cannot import") in result.stderr
  assert result.stdout == "" and not (tmp_path / "runs").exists()


def test_budgeted_configs_and_twins_exist():
  """Every config of the pixel suites is a file with a budget and an SB3 twin
  whose hyperparameters sb3_reference.py has: rl-zoo's atari entry or its own."""
  script = """
import os, benchmark_learning, sb3_reference
for suite in ("pixels", "pixels_speed"):
  for gin_file, _ in benchmark_learning.SUITES[suite]:
    name = benchmark_learning.pair_name(gin_file)
    assert os.path.isfile(gin_file), gin_file
    assert name in benchmark_learning.BUDGETS and name in benchmark_learning.SB3_TWINS, name
    algo, env_id, _, zoo_env = benchmark_learning.SB3_TWINS[name]
    assert zoo_env == "atari" or env_id in sb3_reference.OWN_ENTRIES[algo], name
print("ok")
"""
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=BENCHMARKS))
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "ok"
