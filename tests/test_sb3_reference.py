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


@pytest.mark.parametrize("change, message", [
    (dict(env_wrapper="sb3_contrib.common.wrappers.TimeFeatureWrapper"),
     "rl-zoo key 'env_wrapper' is not supported"),
    (dict(frame_stack=4), "rl-zoo key 'frame_stack' is not supported"),
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
