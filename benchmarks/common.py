"""What every benchmark shares: the machine it ran on, Markdown tables, result files.

Each benchmark writes `<results>/<name>.md` (a table a reader can paste into BUILD_NOTES.md),
`<name>.json` (rows plus the machine and date), and optionally PNG plots beside them.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
from typing import Any, Sequence

from keras_effnet.files import atomic_path


CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
             "amx_int8", "amx_bf16", "asimddp", "i8mm")


def commit() -> str | None:
    """The checkout's commit (short), "+dirty" when tracked files other than results differ
    from it; None outside a git checkout. A figure belongs to the code that produced it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain",
                                "--untracked-files=no", "--", ".", ":!benchmarks/results"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    """CPU model, core count and library versions: a figure means little without them."""
    cpu, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            fields = {key.strip(): value for key, value in (
                line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines()
                if ":" in line)}
        cpu = fields.get("model name", cpu).strip()
        # the instruction sets int8 and float kernels depend on (int8 dot products: *vnni)
        flags = sorted(set(fields.get("flags", "").split()) & set(CPU_FLAGS))
    except OSError:
        pass
    gpus: list[str] = []
    if "tensorflow" in sys.modules:  # do not pay TensorFlow's import for a pure-Python benchmark
        gpus = [d.name for d in sys.modules["tensorflow"].config.list_physical_devices("GPU")]
    elif shutil.which("nvidia-smi"):
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        gpus = [line.split(" (")[0] for line in listed.stdout.splitlines() if line.strip()]
    versions = {}
    for package in ("tensorflow", "keras", "jax"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"date": datetime.date.today().isoformat(), "commit": commit(), "cpu": cpu,
            "cpu_flags": flags, "cores": os.cpu_count(),
            "gpus": gpus, **versions,
            "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
            "python": platform.python_version()}


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table of `columns` (missing values as —, floats to 4 significant figures,
    whole from 10 000 on)."""
    def cell(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_results(results_dir: str, name: str, rows: Sequence[dict[str, Any]], markdown: str,
                  **extra: Any) -> tuple[str, str]:
    """Write `<name>.md` (title, machine line, `markdown`) and `<name>.json`; return both paths."""
    os.makedirs(results_dir, exist_ok=True)
    info = machine()
    md_path = os.path.join(results_dir, f"{name}.md")
    json_path = os.path.join(results_dir, f"{name}.json")
    header = (f"<!-- {name}: {info['date']}, commit {info['commit'] or '?'}, {info['cpu']} "
              f"({info['cores']} cores; "
              f"{' '.join(info['cpu_flags']) or 'no AVX2/VNNI flags'})"
              f"{', GPUs: ' + ', '.join(info['gpus']) if info['gpus'] else ''}, "
              f"Keras {info.get('keras', '?')} on {info['keras_backend']}"
              f"{' ' + info[info['keras_backend']] if info['keras_backend'] in info else ''} -->\n")
    for path, text in ((md_path, header + markdown.rstrip() + "\n"),
                       (json_path, json.dumps({"machine": info, "rows": list(rows), **extra},
                                              indent=2, default=str) + "\n")):
        with atomic_path(path) as staged, open(staged, "w", encoding="utf-8") as f:
            f.write(text)
    print(markdown)
    print(f"wrote {md_path} and {json_path}")
    return md_path, json_path


def parse_phi(values: Sequence[str], allow_empty: bool = True) -> list[float]:
    """'-1', '2', '1.5' -> -1, 2, 1.5 (integers stay integers so names read 'phi2')."""
    import math

    out: list[float] = []
    for text in values:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"--phi: {text!r} is not a number; accepted: a comma-separated list "
                             "of numbers, e.g. --phi=0,1,2") from None
        if not math.isfinite(value):
            raise ValueError(f"--phi: {text!r}; accepted: finite numbers")
        out.append(int(value) if value.is_integer() else value)
    if not out and not allow_empty:
        raise ValueError("--phi is empty; accepted: at least one number, e.g. --phi=0,1,2")
    return out


def validate_phi_flag(allow_empty: bool = True) -> None:
    """Check --phi when flags are parsed, so a typo fails before any work."""
    from absl import flags

    def check(values: Sequence[str]) -> bool:
        try:
            parse_phi(values, allow_empty)
        except ValueError as e:
            raise flags.ValidationError(str(e)) from None
        return True

    flags.register_validator("phi", check)


HELP_FLAGS = {"--help", "-?", "--helpshort", "--helpfull"}


def run(main: Any) -> None:
    """`absl.app.run(main)`, except that asking for --help is a success (absl exits 1 after it)."""
    from absl import app

    try:
        app.run(main)
    except SystemExit as done:
        if done.code == 1 and HELP_FLAGS & set(sys.argv[1:]):
            sys.exit(0)
        raise


def define_trained_flags() -> None:
    """--trained, --calibration, --verify_data: the user's own trained models and their data,
    for the int8 benchmarks (nothing is invented: both data specs are required with models)."""
    from absl import flags

    flags.DEFINE_list("trained", [], "trained .keras models to measure too")
    flags.DEFINE_string("calibration", None, "with --trained: data spec whose train split "
                        "calibrates")
    flags.DEFINE_string("verify_data", None, "with --trained: data spec whose validation "
                        "split measures")


def check_trained_flags() -> None:
    """A usage error, before any work, for --trained without its data or naming no file."""
    from absl import app, flags

    values = flags.FLAGS
    if values.trained and not (values.calibration and values.verify_data):
        raise app.UsageError("--trained needs --calibration=SPEC and --verify_data=SPEC (the "
                             "data the models were trained on; nothing is invented)")
    missing = [p for p in values.trained if not os.path.isfile(p)]
    if missing:
        raise app.UsageError(f"--trained: no such file(s): {missing}")


def check_modes(modes: Sequence[str], accepted: Sequence[str]) -> None:
    """A usage error for an empty --modes or one naming an unknown mode."""
    from absl import app

    bad = [m for m in modes if m not in accepted]
    if bad or not modes:
        raise app.UsageError(f"--modes={','.join(modes)}: unknown {bad}; accepted: "
                             f"{', '.join(accepted)}")
