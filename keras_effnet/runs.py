"""Run folders: what `train` leaves in `out`, and the one way to read it back. Stdlib only.

A run folder holds model.keras, best.keras (its score in best.json), history.csv, logs/,
backup/ while the run goes on, and summary.json: a `RunSummary`, written by `RunFolder.write`
alone (atomically) and read by `RunFolder.read` alone (bounded, and checked field by field: a
summary.json beside a model may come from anyone, and a bad one is a one-line error naming
the file). Also here: the one rule for a model's labels (`choose_labels`), the output-folder
check (`prepare_folder`) and the guard that keeps two runs' settings out of one folder
(`claim_settings`), both shared by `train` and `search`.

Example:
    >>> summary = RunFolder("runs/flowers").read()
    >>> summary.data.class_names[:2], summary.validation["accuracy"]
    (('daisy', 'rose'), 0.93)
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, Callable

from keras_effnet.errors import InvalidArgument, NotWritable
from keras_effnet.files import write_json

SUMMARY = "summary.json"
# Far above any summary.json `train` writes (21 843 ImageNet-21k class names and 1 000 epochs
# of history are under 2 MiB); a larger file is refused unread.
MAX_SUMMARY_BYTES = 64 << 20


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scores(value: Any) -> bool:
    return isinstance(value, dict) and all(_int(v) or isinstance(v, float) for v in value.values())


# What each field annotation of RunData and RunSummary accepts in the JSON form, in words.
_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "text"),
    "str | None": (lambda v: v is None or isinstance(v, str), "text or null"),
    "int": (_int, "an integer"),
    "float": (lambda v: _int(v) or isinstance(v, float), "a number"),
    "dict[str, Any]": (lambda v: isinstance(v, dict), "an object"),
    "dict[str, Any] | None": (lambda v: v is None or isinstance(v, dict), "an object or null"),
    "dict[str, str]": (lambda v: isinstance(v, dict) and all(isinstance(x, str)
                                                             for x in v.values()),
                       "an object of file names"),
    "dict[str, float]": (_scores, "an object of numbers"),
    "list[dict[str, float]]": (lambda v: isinstance(v, list) and all(map(_scores, v)),
                               "a list of objects of numbers"),
    "tuple[str, ...]": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                        "a list of text"),
    "tuple[int, int] | None": (lambda v: v is None or (isinstance(v, list) and len(v) == 2
                                                       and all(map(_int, v))),
                               "null or [count, index]"),
    "list[dict[str, Any]] | None": (lambda v: v is None or (isinstance(v, list) and all(
        isinstance(x, dict) for x in v)), "a list of objects or null"),
    "RunData": (lambda v: isinstance(v, dict), "an object")}


def _checked(kind: type, raw: Any, where: str = "") -> dict[str, Any]:
    """`raw`'s fields for the dataclass `kind`, each checked against its annotation (those
    with a default may be missing: summaries written before them); a ValueError saying which
    field is wrong."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where[:-1]}={_short(raw)}; accepted: an object" if where
                         else f"a JSON {type(raw).__name__}, not an object")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(raw) - set(fields))
    missing = [name for name, f in fields.items() if name not in raw
               and f.default is dataclasses.MISSING]
    if unknown or missing:
        raise ValueError(f"{where}unknown field(s) {unknown}" if unknown
                         else f"{where}missing field(s) {missing}")
    for name, value in raw.items():
        check, accepted = _KINDS[fields[name].type]
        if not check(value):
            raise ValueError(f"{where}{name}={_short(value)}; accepted: {accepted}")
    return dict(raw)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class RunData:
    """What the run trained on (`keras_effnet.data.Data.describe`)."""

    spec: str
    num_classes: int
    class_names: tuple[str, ...]
    train_size: int
    validation_size: int
    resolution: int
    skipped_files: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None  # (count, index) of a multi-worker input pipeline

    def __post_init__(self) -> None:  # lists (the JSON form) kept as tuples
        for name in ("class_names", "skipped_files", "shard"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    @classmethod
    def from_dict(cls, raw: Any) -> "RunData":
        data = cls(**_checked(cls, raw, "data."))
        names = data.class_names
        if len(names) != data.num_classes or not all(
                name.strip() and not {"\n", "\r"} & set(name) for name in names):
            raise ValueError(f"data.class_names={_short(list(names))}; accepted: "
                             f"num_classes={data.num_classes} one-line names")
        return data

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "class_names": list(self.class_names),
                "skipped_files": list(self.skipped_files),
                "shard": None if self.shard is None else list(self.shard)}


@dataclass(frozen=True)
class RunSummary:
    """A run's summary.json: what trained (model, config, recipe, data), how (epochs, global
    batch, replicas, strategy, precision, seed, starting weights), the result (validation
    scores, history, the stages of a progressive or staged fine-tuning run) and the files it
    wrote (`artifacts`)."""

    model: str
    config: dict[str, Any]  # ModelConfig.to_dict() of the model as built
    recipe: dict[str, Any]  # dataclasses.asdict(Recipe)
    data: RunData
    epochs: int
    global_batch_size: int
    replicas: int
    strategy: str
    mixed_precision: str
    seed: int
    validation: dict[str, float]  # "loss", "accuracy" (and "top5" above 5 classes)
    fit_seconds_this_run: float
    history: list[dict[str, float]]  # history.csv's rows
    artifacts: dict[str, str]  # {role: file name in the folder}
    initial_weights: str | None = None  # "imagenet", a weights file, None: from scratch
    weights: str | None = None  # the same, in words
    progressive: dict[str, Any] | None = None  # {"schedule": Progressive.to_dict()}
    # from pretrained weights: {"mode": "full"} or {"mode": "staged", FineTuning's fields}
    fine_tuning: dict[str, Any] | None = None
    stages: list[dict[str, Any]] | None = None  # a staged run's stages.json rows

    @classmethod
    def from_dict(cls, raw: Any, source: str = SUMMARY) -> "RunSummary":
        """A summary from its JSON form; an InvalidArgument naming `source` and the field
        when it is not one that `train` writes."""
        try:
            fields = _checked(cls, raw)
            fields["data"] = RunData.from_dict(fields["data"])
        except ValueError as err:
            raise _not_ours(source, err) from None
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what summary.json holds and `train` returns)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["data"] = self.data.to_dict()
        for name in ("progressive", "fine_tuning", "stages"):
            if fields[name] is None:
                del fields[name]
        return fields


def _not_ours(path: str, detail: Any) -> InvalidArgument:
    return InvalidArgument(f"{path}: not a {SUMMARY} that `effnet train` wrote ({detail})")


def read_json(path: str, limit: int = MAX_SUMMARY_BYTES) -> Any:
    """A JSON file read no further than `limit` bytes; an InvalidArgument naming it when it is
    larger, unreadable or not JSON."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        raise InvalidArgument(f"{path}: cannot read it ({err.strerror})") from None
    if len(data) > limit:
        raise InvalidArgument(f"{path}: larger than {limit >> 20} MiB, far above any file "
                              "the package writes; refused")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise InvalidArgument(f"{path}: not JSON ({str(err).splitlines()[0]})") from None


@dataclass(frozen=True)
class RunFolder:
    """The folder of one `train` run (`path`); its summary.json is written and read here only."""

    path: str

    @classmethod
    def beside(cls, model: str) -> "RunFolder":
        """The folder a model file lies in (relative when `model` is)."""
        return cls(os.path.dirname(os.fspath(model)) or ".")

    @property
    def summary_path(self) -> str:
        return os.path.join(self.path, SUMMARY)

    def write(self, summary: RunSummary) -> None:
        write_json(summary.to_dict(), self.summary_path)

    def read(self, model: str | None = None) -> RunSummary | None:
        """The folder's summary; None without one. Given `model` (a path), only the summary
        of the run that wrote it (its final or best model), None for any other model; the
        summary is then checked only once it names `model`. An InvalidArgument naming the
        file when it is not a summary that `train` writes (too large, not JSON, a field
        missing or of the wrong kind)."""
        path = self.summary_path
        if not os.path.isfile(path):
            return None
        raw = read_json(path)
        if model is not None:
            artifacts = raw.get("artifacts", {}) if isinstance(raw, dict) else None
            if not isinstance(artifacts, dict):
                raise _not_ours(path, f"artifacts={_short(artifacts)}; accepted: an object")
            if os.path.basename(model) not in (artifacts.get("model"), artifacts.get("best")):
                return None
        return RunSummary.from_dict(raw, path)


def run_summary(model: str) -> tuple[RunSummary, str] | None:
    """(summary, its path) of the `train` run that wrote `model` (the summary.json beside it
    names it); None for any other model; an InvalidArgument naming a broken summary.json."""
    folder = RunFolder.beside(os.path.abspath(model))
    summary = folder.read(model)
    return None if summary is None else (summary, folder.summary_path)


# ---- a model's labels ----------------------------------------------------------------------

NO_LABELS = "none (class indices)"


@dataclass(frozen=True)
class Labels:
    """The class names a model's scores are read with and where they come from: `origin`
    "given", "own", "run" or "none"; `source` says it in words."""

    names: list[str] | None
    source: str
    origin: str


def choose_labels(given: list[str] | None = None, own: list[str] | None = None,
                  run: RunFolder | None = None, *, model: str | None = None,
                  given_source: str = "the labels given",
                  own_source: str = "the model's class_names") -> Labels:
    """The one rule for a model's labels: those the user gives (`--labels`), else the model
    file's own (`class_names`, TFLite or ONNX metadata), else the class names its run
    recorded (`run`'s summary.json, read only when it is needed; with `model`, only when that
    run wrote `model`), else none: class indices."""
    if given is not None:  # as given: the caller checks them
        return Labels(given, given_source, "given")
    if own:
        return Labels(list(own), own_source, "own")
    summary = run.read(model) if run is not None else None
    if summary is not None:
        return Labels(list(summary.data.class_names), f"{run.summary_path} (the run's data)",
                      "run")
    return Labels(None, NO_LABELS, "none")


# ---- output folders and their settings -----------------------------------------------------

def prepare_folder(out: str, what: str = "output folder") -> None:
    """Create `out` (and its parents) and check it is writable: `NotWritable` (a
    PermissionError) saying which `what` cannot be used otherwise."""
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise NotWritable(f"cannot create {what} {out!r}: {err}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise NotWritable(f"{what} is not writable: {out!r}")


def refuse_other_settings(where: str, holds: str, settings: dict[str, Any], previous: Any,
                          remedy: str) -> None:
    """An InvalidArgument naming the keys that differ when `previous` settings (JSON) are not
    `settings`: going on would mix two runs (resume another run's checkpoint, join another
    search)."""
    settings = json.loads(json.dumps(settings, default=str))  # their JSON form
    previous = previous if isinstance(previous, dict) else {}
    changed = sorted(k for k in settings.keys() | previous.keys()
                     if settings.get(k) != previous.get(k))
    if changed:
        raise InvalidArgument(f"{where} holds {holds} ({', '.join(changed)} differ): {remedy}")


def claim_settings(path: str, settings: dict[str, Any], holds: str, remedy: str,
                   check: bool = True) -> None:
    """Record `settings` in `path` (its folder created), or, when `path` already holds some
    and `check` (something there depends on them), refuse other ones (`refuse_other_settings`,
    its folder named)."""
    if check and os.path.exists(path):
        refuse_other_settings(repr(os.path.dirname(path)), holds, settings, read_json(path),
                              remedy)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(settings, path)


__all__ = ["Labels", "RunData", "RunFolder", "RunSummary", "choose_labels", "claim_settings",
           "prepare_folder", "read_json", "refuse_other_settings", "run_summary"]
