"""tfrl: reinforcement learning on TensorFlow, tf-agents and Reverb, wired by gin."""

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    # Reverb wheels only work with the TF minor version they were built
    # against; dm-reverb 0.14 and tf-agents 0.19 were built against TF 2.15.
    # The CPU build: these machines have no GPU, and it is a fraction of the size.
    "tensorflow-cpu==2.15.1",
    # The TFP release that pairs with TF 2.15 (0.24 needs TF 2.16).
    "tensorflow-probability==0.23.0",
    # The last tf-agents release; it pins typing-extensions 4.5 and pygame 2.1.3
    # and still imports the old gym (<=0.23), which it installs beside gymnasium.
    "tf-agents==0.19.0",
    # Installed without its [tensorflow] extra so it cannot pull another TF.
    "dm-reverb==0.14.0",
    # tfrl's environment API (terminated/truncated); tf-agents only wraps old gym.
    # gymnasium 1.4 needs typing-extensions>=4.12, which tf-agents' 4.5 pin forbids.
    "gymnasium>=1.0,<1.4",
    # The MuJoCo continuous-control tasks (HalfCheetah, Hopper, ...) out of the box;
    # 4.0 is the release checked with gymnasium 1.3's v5 envs and numpy 1.26.
    "mujoco>=4.0,<5",
    # Atari 2600 games (ALE/Pong-v5, ...); 0.12 bundles the ROMs, no download step.
    "ale-py>=0.12,<0.13",
    # gymnasium's AtariPreprocessing resizes with OpenCV; 4.11.0.86 is the
    # newest headless build that accepts numpy < 2.
    "opencv-python-headless==4.11.0.86",
    # MinAtar: 10x10xk versions of five Atari games, feasible on a CPU; its
    # gymnasium ids (MinAtar/Breakout-v1, ...) are registered by tfrl.envs.
    "minatar==1.0.15",
    # TF 2.15 and Reverb 0.14 are compiled against the numpy 1.x ABI.
    "numpy>=1.23,<2",
    "gin-config>=0.5",
    "absl-py>=1.0",
    # Videos of policies (mp4 via the bundled ffmpeg binary) under a virtual display.
    "imageio>=2.9",
    "imageio-ffmpeg>=0.4",
    "pyvirtualdisplay>=3.0",
    # tfrl.experiments.plot draws learning curves to PNG (Figure(layout=...) needs 3.5).
    "matplotlib>=3.5",
    # tfrl.experiments.plot reads progress.csv files whose columns vary by run.
    "pandas>=1.5",
    # tfrl.experiments.grid: the progress bar over a grid's runs.
    "tqdm>=4.60",
    # scripts/launch_ray.py: the distributed roles on Ray Core (no extras:
    # ray[default] >= 2.56 needs pydantic 2, i.e. typing-extensions >= 4.16).
    # One minor: the launcher reads two of Ray's private settings (ray_launch.py).
    "ray>=2.60,<2.61",
    # ServerLink asks Reverb's ServerInfo RPC itself (for the server's instance
    # id, which Reverb's Python client drops); both come with TF, unpinned here.
    "grpcio",
    "protobuf",
]

setup(
    name="tfrl",
    version="0.1.0",
    description="Reinforcement learning on TensorFlow, tf-agents and Reverb, wired by gin.",
    packages=find_packages(include=["tfrl", "tfrl.*"]),
    python_requires=">=3.9,<3.12",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # The notebooks run in tests/test_notebooks.py through a Jupyter kernel.
        # IPython >= 8.19 imports typing_extensions.TypeAliasType (4.6+), which
        # tf-agents' typing-extensions==4.5 pin forbids; 8.18 is the last without it.
        "test": ["pytest>=7", "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6.20",
                 "ipython<8.19"],
    },
)
