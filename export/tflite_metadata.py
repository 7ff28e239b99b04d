"""Image-classifier metadata (the TFLite metadata schema) on an exported TFLite file.

What on-device runtimes read before they run a model: MediaPipe Tasks' `ImageClassifier`
(Android, iOS, web, Python), LiteRT's Task Library and Android Studio's model import. It says
that the input is an RGB image and how raw [0, 255] pixels map onto the input tensor
(`NormalizationOptions`), and that the output holds one score per label, with the labels as an
associated file. Without it MediaPipe refuses a float-input file outright.

The file layout is the schema's own: a `ModelMetadata` flatbuffer (file identifier "M001")
stored in a model buffer named `TFLITE_METADATA`, and the associated files appended to the
flatbuffer as an uncompressed zip archive. The model's flatbuffer is read and rewritten with
TensorFlow's `tensorflow.lite.tools.flatbuffer_utils` (its maintained object API); the
metadata table is encoded with the `flatbuffers` runtime from the table layouts below (the
schema's field order, `metadata_schema.fbs` 1.0.0: the fields written here are all from its
first version). Tests decode the result with MediaPipe's own generated schema module and load
it in MediaPipe's `ImageClassifier` (BUILD_NOTES.md says why the encoder is not a dependency).

Example:
    >>> data = with_metadata(flatbuffer, TFLiteMetadata(author="Me"), labels=["cat", "dog"])
    >>> read_labels(data)
    ['cat', 'dog']
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass, asdict
from typing import Any

import numpy as np

from keras_effnet.errors import InvalidArgument, InvalidType

METADATA_BUFFER = "TFLITE_METADATA"
LABELS_FILE = "labels.txt"
# What a labels file may take: far above any real label set (ImageNet-21k's 21 843 classes
# with every synonym: about 1 MB), far below what would hurt (a zip bomb stops here).
MAX_LABELS_BYTES = 16 << 20
# The output tensor's metadata name of each output kind (export/contract.py): "probability" is
# the schema's and MediaPipe Model Maker's name for a softmax output.
OUTPUT_NAMES = {"probabilities": "probability", "logits": "logits"}
MIN_PARSER_VERSION = "1.0.0"  # every field written here exists since the schema's 1.0.0

# Field order of the tables written (metadata_schema.fbs); a union takes two slots, its type
# then its value. Only the leading fields used here are listed.
_LAYOUT = {
    "ModelMetadata": ("name", "description", "version", "subgraph_metadata", "author",
                      "license", "associated_files", "min_parser_version"),
    "SubGraphMetadata": ("name", "description", "input_tensor_metadata",
                         "output_tensor_metadata"),
    "TensorMetadata": ("name", "description", "dimension_names", "content", "process_units",
                       "stats", "associated_files"),
    "Content": ("content_properties_type", "content_properties", "range"),
    "ImageProperties": ("color_space", "default_size"),
    "ImageSize": ("width", "height"),
    "FeatureProperties": (),
    "ProcessUnit": ("options_type", "options"),
    "NormalizationOptions": ("mean", "std"),
    "Stats": ("max", "min"),
    "AssociatedFile": ("name", "description", "type", "locale"),
}
# Enum values (metadata_schema.fbs) of the scalar fields written, by field name.
_SCALARS = {"content_properties_type": "uint8", "options_type": "uint8", "color_space": "int8",
            "type": "int8", "width": "uint32", "height": "uint32"}
CONTENT_FEATURE, CONTENT_IMAGE = 1, 2  # union ContentProperties
OPTIONS_NORMALIZATION = 1  # union ProcessUnitOptions
COLOR_RGB = 1  # enum ColorSpaceType
FILE_TENSOR_AXIS_LABELS = 2  # enum AssociatedFileType


@dataclass(frozen=True)
class TFLiteMetadata:
    """What the file says about itself; None: derived from the model (name, description) or
    left out (author, license). `version` is the model's version, not the package's."""

    name: str | None = None
    description: str | None = None
    version: str = "1"
    author: str | None = None
    license: str | None = None

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidArgument(f"metadata {key}={value!r}; accepted: a non-empty string or "
                                      "None")


class _Table:
    """One table to encode: its schema name and its field values (absent fields omitted)."""

    def __init__(self, kind: str, **fields: Any) -> None:
        unknown = set(fields) - set(_LAYOUT[kind])
        if unknown:
            raise KeyError(f"{kind} has no field(s) {sorted(unknown)}")
        self.kind, self.fields = kind, {k: v for k, v in fields.items() if v is not None}


def _encode(builder: Any, value: Any) -> Any:
    """Offset of `value` in `builder`: a table, a string, a list of tables or strings, or a
    float vector (numpy)."""
    if isinstance(value, str):
        return builder.CreateString(value)
    if isinstance(value, np.ndarray):
        return builder.CreateNumpyVector(value.astype("<f4"))
    if isinstance(value, list):
        offsets = [_encode(builder, item) for item in value]
        builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            builder.PrependUOffsetTRelative(offset)
        return builder.EndVector()
    layout = _LAYOUT[value.kind]
    children = {name: _encode(builder, item) for name, item in value.fields.items()
                if name not in _SCALARS}  # nested objects are written before their table
    builder.StartObject(len(layout))
    for slot, name in enumerate(layout):
        if name in children:
            builder.PrependUOffsetTRelativeSlot(slot, children[name], 0)
        elif name in value.fields:
            prepend = {"uint8": builder.PrependUint8Slot, "int8": builder.PrependInt8Slot,
                       "uint32": builder.PrependUint32Slot}[_SCALARS[name]]
            prepend(slot, int(value.fields[name]), 0)
    return builder.EndObject()


def encode_metadata(root: _Table) -> bytes:
    """A `ModelMetadata` table as a finished flatbuffer with the schema's identifier."""
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(_encode(builder, root), file_identifier=b"M001")
    return bytes(builder.Output())


def input_normalization(dtype: str, quantization: tuple[float, int]) -> tuple[float, float]:
    """(mean, std) that map raw [0, 255] pixels x onto the input tensor as (x - mean) / std.

    Float input: (0, 1), the model normalises inside. Integer input q = x / scale + zero point:
    (-zero point · scale, scale); pixels themselves for a uint8 input of scale 1, zero point 0.
    """
    if dtype.startswith("float"):
        return 0.0, 1.0
    scale, zero = quantization
    return float(-zero * scale) + 0.0, float(scale)


def _tensor_info(model: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The input and the outputs (name, shape, dtype, quantization) of a parsed model's graph."""
    from tensorflow.lite.tools.flatbuffer_utils import type_to_name

    graph = model.subgraphs[0]

    def details(index: int) -> dict[str, Any]:
        tensor = graph.tensors[index]
        params = tensor.quantization
        scale = params.scale if params is not None and params.scale is not None else [0.0]
        zero = (params.zeroPoint if params is not None and params.zeroPoint is not None
                else [0])
        return {"name": tensor.name.decode(), "shape": [int(v) for v in tensor.shape],
                "dtype": type_to_name(tensor.type).lower(),
                "quantization": (float(scale[0]), int(zero[0]))}

    return details(int(graph.inputs[0])), [details(int(i)) for i in graph.outputs]


def metadata_table(model: Any, info: TFLiteMetadata, labels: list[str] | None,
                   output: str, input_note: str | None = None) -> tuple[_Table, dict[str, Any]]:
    """The `ModelMetadata` of an image classifier for this parsed model, and what it says.
    `output`: the output's kind (probabilities or logits: `contract.OUTPUT_KINDS`), written
    as its name; `input_note`: appended to the input's description (the input contract)."""
    if output not in OUTPUT_NAMES:
        raise InvalidArgument(f"output={output!r}; accepted: {', '.join(OUTPUT_NAMES)}")
    probabilities = output == "probabilities"
    image, outputs = _tensor_info(model)
    if len(image["shape"]) != 4 or image["shape"][-1] != 3:
        raise InvalidArgument(f"image-classifier metadata needs one (1, H, W, 3) RGB input; the "
                              f"model takes {list(image['shape'])}")
    dtype = image["dtype"]
    mean, std = input_normalization(dtype, image["quantization"])
    height, width = (int(v) for v in image["shape"][1:3])
    classes = int(outputs[0]["shape"][-1])
    if labels is not None and (len(outputs) != 1 or classes != len(labels)):
        raise InvalidArgument(f"{len(labels)} labels for a model whose output has {classes} "
                              f"scores{'' if len(outputs) == 1 else f' ({len(outputs)} outputs)'}; "
                              "they must agree")
    score = OUTPUT_NAMES[output]
    input_meta = _Table(
        "TensorMetadata", name="image",
        description=f"RGB image, {width}x{height}, pixels 0..255 as (x - {mean:g}) / {std:g} "
                    f"({dtype})" + (f"; {input_note}" if input_note else ""),
        content=_Table("Content", content_properties_type=CONTENT_IMAGE,
                       content_properties=_Table("ImageProperties", color_space=COLOR_RGB,
                                                 default_size=_Table("ImageSize", width=width,
                                                                     height=height))),
        process_units=[_Table("ProcessUnit", options_type=OPTIONS_NORMALIZATION,
                              options=_Table("NormalizationOptions",
                                             mean=np.array([mean]), std=np.array([std])))])
    output_meta = [_Table(
        "TensorMetadata", name=score if len(outputs) == 1 else str(out["name"]),
        description=(f"{'Probabilities' if probabilities else 'Logits (apply a softmax)'} "
                     f"of the {classes} labels respectively"),
        content=_Table("Content", content_properties_type=CONTENT_FEATURE,
                       content_properties=_Table("FeatureProperties")),
        stats=_Table("Stats", max=np.array([1.0]), min=np.array([0.0])) if probabilities
        else None,
        associated_files=None if labels is None else [_Table(
            "AssociatedFile", name=LABELS_FILE, description="Labels for the scores",
            type=FILE_TENSOR_AXIS_LABELS)]) for out in outputs]
    root = _Table("ModelMetadata", name=info.name, description=info.description,
                  version=info.version, author=info.author, license=info.license,
                  min_parser_version=MIN_PARSER_VERSION,
                  subgraph_metadata=[_Table("SubGraphMetadata", name=info.name,
                                            input_tensor_metadata=[input_meta],
                                            output_tensor_metadata=output_meta)])
    said = {"written": True, **{k: v for k, v in asdict(info).items() if v is not None},
            "input": {"dtype": dtype, "size": [height, width], "normalization_mean": mean,
                      "normalization_std": std},
            "output": output, "labels": None if labels is None else len(labels)}
    return root, said


def with_metadata(flatbuffer: bytes, info: TFLiteMetadata, labels: list[str] | None = None, *,
                  output: str = "probabilities", input_note: str | None = None
                  ) -> tuple[bytes, dict[str, Any]]:
    """`flatbuffer` with image-classifier metadata (replacing any it had) and, given labels,
    the labels file; and what was written (for the export report).

    The model's own tables and buffers are unchanged: the interpreter computes the same bytes.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    if labels is not None:
        labels = check_labels(labels)
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(strip_associated_files(
        flatbuffer)))  # parsed once: read for the metadata, then rewritten with it
    root, said = metadata_table(model, info, labels, output, input_note)
    entries = [m for m in (model.metadata or []) if m.name.decode() != METADATA_BUFFER]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(encode_metadata(root), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_BUFFER, len(model.buffers) - 1
    model.metadata = entries + [entry]
    data = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    if labels is not None:  # appended as the schema's own populator does: the file is a zip
        whole = io.BytesIO(data)
        whole.seek(0, io.SEEK_END)
        with zipfile.ZipFile(whole, "a", zipfile.ZIP_STORED) as archive:
            archive.writestr(LABELS_FILE, "\n".join(labels) + "\n")
        data = whole.getvalue()
    return data, said


def check_labels(labels: Any) -> list[str]:
    """Labels as a list of non-empty one-line strings, or a clear error."""
    if isinstance(labels, str) or not hasattr(labels, "__iter__"):
        raise InvalidType(f"labels={labels!r}; accepted: a list of class names")
    labels = list(labels)
    bad = [label for label in labels if not isinstance(label, str) or not label.strip()
           or "\n" in label or "\r" in label]
    if not labels or bad:
        raise InvalidArgument("labels must be non-empty one-line strings; got "
                              f"{bad[:3] or labels!r}")
    return labels


def read_labels_file(path: str) -> list[str]:
    """A labels file: one class name per line (blank lines at the end ignored), at most
    MAX_LABELS_BYTES; a ValueError naming the file otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_LABELS_BYTES + 1)
    except OSError as err:
        raise InvalidArgument(f"{path}: cannot read the labels file ({err.strerror})") from None
    return _labels(data, path, "labels file")


def _labels(data: bytes, source: str, what: str) -> list[str]:
    """The class names of a labels file's bytes, checked; errors name `source` and `what`."""
    if len(data) > MAX_LABELS_BYTES:
        raise InvalidArgument(f"{source}: its {what} is larger than {MAX_LABELS_BYTES >> 20} MiB, "
                              "far above any real label set; refused")
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise InvalidArgument(f"{source}: its {what} is not UTF-8 text (byte {err.start})") \
            from None
    while lines and not lines[-1].strip():
        lines.pop()
    try:
        return check_labels(lines)
    except ValueError as err:
        raise InvalidArgument(f"{source}: its {what}: {err}") from None


def strip_associated_files(data: bytes) -> bytes:
    """The flatbuffer alone: `data` without an appended archive of associated files."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        offsets = [item.header_offset for item in archive.infolist()]
    return data[:min(offsets)] if offsets else data


def read_labels(model: str | bytes, classes: int | None = None,
                source: str | None = None) -> list[str] | None:
    """The labels file attached to a TFLite file (path or bytes); None when it has none.

    The file may come from anyone: the archive is read by its directory, the labels entry
    with a bounded read (MAX_LABELS_BYTES, whatever size it claims: a zip bomb stops there),
    and a broken archive, a compression it cannot read, text that is not UTF-8 or, given
    `classes` (the model's outputs), a label count that differs is a one-line ValueError
    naming the file (`source`, default the path)."""
    source = source or (model if isinstance(model, str) else "the TFLite file")
    handle = model if isinstance(model, str) else io.BytesIO(model)
    try:
        if not zipfile.is_zipfile(handle):
            return None
        with zipfile.ZipFile(handle) as archive:
            try:
                entry = archive.getinfo(LABELS_FILE)
            except KeyError:
                return None
            if entry.file_size > MAX_LABELS_BYTES:
                raise InvalidArgument(f"{source}: its {LABELS_FILE} claims {entry.file_size:,} "
                                      f"bytes, far above any real label set (at most "
                                      f"{MAX_LABELS_BYTES >> 20} MiB); refused")
            with archive.open(entry) as f:
                data = f.read(MAX_LABELS_BYTES + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error,
            NotImplementedError, RuntimeError, OSError) as err:
        raise InvalidArgument(f"{source}: its attached {LABELS_FILE} cannot be read: the archive "
                              f"is broken or unsupported ({str(err) or type(err).__name__})") \
            from None
    labels = _labels(data, source, LABELS_FILE)
    if classes is not None and len(labels) != classes:
        raise InvalidArgument(f"{source}: its {LABELS_FILE} has {len(labels)} labels for a model "
                              f"with {classes} outputs; they must agree")
    return labels


def model_root(model: str | bytes) -> Any:
    """The root `Model` table of a TFLite file (path or bytes), read in place with LiteRT's copy
    of the TFLite schema module (TensorFlow's is the same generated code; LiteRT's imports
    without TensorFlow, so reading a file's metadata stays instant)."""
    from ai_edge_litert import schema_py_generated as schema

    if isinstance(model, str):
        with open(model, "rb") as f:
            model = f.read()
    return schema.Model.GetRootAs(model, 0)


def _metadata_buffer(root: Any) -> bytes | None:
    """The bytes of the TFLITE_METADATA buffer (a `ModelMetadata` flatbuffer), or None."""
    for i in range(root.MetadataLength()):
        if root.Metadata(i).Name() == METADATA_BUFFER.encode():
            return root.Buffers(root.Metadata(i).Buffer()).DataAsNumpy().tobytes()
    return None


def has_metadata(model: str | bytes) -> bool:
    """Whether a TFLite file (path or bytes) carries a TFLITE_METADATA buffer."""
    return _metadata_buffer(model_root(model)) is not None


def _field(table: Any, kind: str, name: str) -> int:
    """The absolute position of field `name` of a `kind` table, 0 when absent (a table's
    vtable: 2 bytes a field, after 4 bytes of its own size and the object's)."""
    slot = table.Offset(4 + 2 * _LAYOUT[kind].index(name))
    return slot + table.Pos if slot else 0


def _child(table: Any, kind: str, name: str, index: int = 0) -> Any:
    """Element `index` of the vector of tables `name`, or None."""
    from flatbuffers import table as flatbuffer_table

    slot = table.Offset(4 + 2 * _LAYOUT[kind].index(name))  # Vector* add the table's Pos
    if not slot or table.VectorLen(slot) <= index:
        return None
    return flatbuffer_table.Table(table.Bytes, table.Indirect(table.Vector(slot) + 4 * index))


def _root_table(model: str | bytes) -> Any:
    from flatbuffers import encode, packer, table

    data = _metadata_buffer(model_root(model))
    return None if data is None else table.Table(data, encode.Get(packer.uoffset, data, 0))


def output_name(model: str | bytes) -> str | None:
    """The metadata name of a TFLite file's (first) output tensor: "probability" or "logits"
    in our files (`OUTPUT_NAMES`); None without metadata or name."""
    root = _root_table(model)
    graph = None if root is None else _child(root, "ModelMetadata", "subgraph_metadata")
    tensor = None if graph is None else _child(graph, "SubGraphMetadata",
                                                 "output_tensor_metadata")
    at = None if tensor is None else _field(tensor, "TensorMetadata", "name")
    return tensor.String(at).decode("utf-8") if at else None


def read_metadata(model: str | bytes) -> dict[str, str | None] | None:
    """What a TFLite file's metadata says of the model: its name, description, version, author
    and license (None where absent); None for a file without metadata."""
    root = _root_table(model)
    if root is None:
        return None

    def text(name: str) -> str | None:
        at = _field(root, "ModelMetadata", name)
        return root.String(at).decode("utf-8") if at else None

    return {name: text(name) for name in ("name", "description", "version", "author",
                                          "license")}
