"""From a run to an app: TFLite metadata read back by MediaPipe's own schema module, the files
loaded as they are by MediaPipe Tasks' `ImageClassifier` (the on-device API), and
`effnet predict` on real image files (`effnet` runs in this process: tests/test_cli.py runs the
console script where its start-up is what a test checks).

The structure tests use a small untrained Lite (φ = −6; its scores are near-ties, but MediaPipe and
the interpreter must still agree exactly); the agreement tests use the main job's trained
lite0 on its validation images.
"""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

import keras_effnet
from conftest import effnet_in_process as effnet
from keras_effnet.data import examples
from keras_effnet.export import TFLiteMetadata, to_onnx, to_tflite
from keras_effnet.export.contract import output_kind
from keras_effnet.export.mediapipe_client import check, classify
from keras_effnet.export.predict import load_image, predict
from keras_effnet.export.runtime import TFLiteRunner
from keras_effnet.export.tflite_metadata import (LABELS_FILE, METADATA_BUFFER, has_metadata,
                                                 read_labels, strip_associated_files)

LABELS = ["red fox", "bicycle-built-for-two", "crème brûlée"]
DATA = "synthetic?train=64&validation=16&classes=3"
# every TFLite mode and I/O type: (quantize, io_dtype)
MODES = [("none", "float32"), ("float16", "float32"), ("dynamic", "float32"),
         ("int8", "float32"), ("int8", "uint8"), ("int8", "int8")]
NO_GATES = {"min_decisive_agreement": None, "min_sqnr_db": None, "max_accuracy_drop": None,
            "min_decisive_images": None,
            "max_abs_diff": None}


TINY_LITE = keras_effnet.scale(phi=-6, base="lite")  # 7 blocks: converts in seconds


@pytest.fixture(scope="module")
def small():
    return keras_effnet.build(TINY_LITE, num_classes=3, input_shape=(32, 32, 3))


@pytest.fixture(scope="module")
def graph(small):
    """One trace of `small` for every mode's files."""
    from keras_effnet.export import traced

    with traced(small) as shared:
        yield shared


@pytest.fixture(scope="module")
def images():
    return examples(DATA, 32, 8, split="validation")[0]


def _schema():
    """MediaPipe's generated reader of the metadata schema: the independent decoder."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema

    return schema


def _metadata(data):
    """The ModelMetadata table of a TFLite file's bytes, decoded by MediaPipe's schema module."""
    from tensorflow.lite.python import schema_py_generated as model_schema

    model = model_schema.Model.GetRootAs(data, 0)
    entry = next(model.Metadata(i) for i in range(model.MetadataLength())
                 if model.Metadata(i).Name() == METADATA_BUFFER.encode())
    buffer = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    assert _schema().ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0)
    return _schema().ModelMetadataT.InitFromPackedBuf(buffer, 0)


def _outputs(path, images):
    """The interpreter's raw output tensors (bytes as computed) on `images`."""
    runner = TFLiteRunner(str(path))
    out = []
    for image in images:
        runner.interpreter.set_tensor(runner.input["index"], runner._quantize(image[None]))
        runner.interpreter.invoke()
        out.append(runner.interpreter.get_tensor(runner.output["index"]).copy())
    return np.concatenate(out)


@pytest.mark.parametrize("quantize,io_dtype", MODES)
def test_every_tflite_mode_gets_classifier_metadata_that_changes_nothing(
        small, graph, images, quantize, io_dtype, tmp_path):
    """Metadata on every mode: MediaPipe's schema module reads what was written, the labels
    are the associated file in order, the interpreter computes the same bytes as the bare
    file, and the file grows by less than 1 % besides the labels. MediaPipe's ImageClassifier
    (which takes float32 and uint8 inputs) opens the file as it is, names the classes from its
    labels and scores as the interpreter does (an untrained model: near-ties, still equal)."""
    kwargs = dict(representative_data=images, verify_data=images, thresholds=NO_GATES,
                  io_dtype=io_dtype, bias_correction=False)  # (bias correction: tested apart)
    meta = TFLiteMetadata(author="Ada Lovelace", license="Apache-2.0", version="2.1")
    report = to_tflite(graph, tmp_path / "m.tflite", quantize, labels=LABELS, metadata=meta,
                       **kwargs)
    bare = to_tflite(graph, tmp_path / "bare.tflite", quantize, metadata=False, **kwargs)
    data, plain = (tmp_path / "m.tflite").read_bytes(), (tmp_path / "bare.tflite").read_bytes()
    assert has_metadata(data) and not has_metadata(plain)
    assert bare["tflite_metadata"] == {"written": False}

    decoded = _metadata(data)
    schema = _schema()
    assert decoded.name.decode() == small.name and decoded.version.decode() == "2.1"
    assert decoded.author.decode() == "Ada Lovelace" and decoded.license.decode() == "Apache-2.0"
    assert f"3 classes, 32x32 RGB" in decoded.description.decode()
    assert decoded.minParserVersion.decode() == "1.0.0"
    (graph,) = decoded.subgraphMetadata
    (image,) = graph.inputTensorMetadata
    assert image.content.contentPropertiesType == schema.ContentProperties.ImageProperties
    assert image.content.contentProperties.colorSpace == schema.ColorSpaceType.RGB
    size = image.content.contentProperties.defaultSize
    assert (size.width, size.height) == (32, 32)
    (unit,) = image.processUnits
    assert unit.optionsType == schema.ProcessUnitOptions.NormalizationOptions
    runner = TFLiteRunner(str(tmp_path / "m.tflite"))
    mean, std = float(unit.options.mean[0]), float(unit.options.std[0])
    if io_dtype == "float32":  # the model normalises inside
        assert (mean, std) == (0.0, 1.0)
    else:  # (pixel - mean) / std is the tensor's quantized value
        scale, zero = runner.input["quantization"]
        assert (mean, std) == pytest.approx((-zero * scale, scale))
    (scores,) = graph.outputTensorMetadata
    assert scores.name.decode() == "probability"
    assert scores.content.contentPropertiesType == schema.ContentProperties.FeatureProperties
    assert (list(scores.stats.max), list(scores.stats.min)) == ([1.0], [0.0])
    (labels_file,) = scores.associatedFiles
    assert labels_file.name.decode() == LABELS_FILE
    assert labels_file.type == schema.AssociatedFileType.TENSOR_AXIS_LABELS
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == [LABELS_FILE]
        assert archive.getinfo(LABELS_FILE).compress_type == zipfile.ZIP_STORED
    assert read_labels(data) == LABELS and read_labels(plain) is None
    # the output contract: the metadata says probabilities; a bare file, its SOFTMAX op does
    assert output_kind(str(tmp_path / "m.tflite")) == "probabilities"
    assert output_kind(str(tmp_path / "bare.tflite")) == "probabilities"
    assert "centre square of 0.875 of its shorter side" in image.description.decode()
    photo = tmp_path / "photo.png"
    Image.fromarray(np.round(images[0]).astype("uint8")).save(photo)
    (shown,) = predict(str(tmp_path / "m.tflite"), [str(photo)], top_k=3)["predictions"]
    own = runner(load_image(str(photo), 32)[None])[0]  # dequantized, as the file gives them
    assert {t["index"]: t["probability"] for t in shown["top"]} == pytest.approx(
        {i: round(float(v), 6) for i, v in enumerate(own)}, abs=1e-6)

    np.testing.assert_array_equal(_outputs(tmp_path / "m.tflite", images),
                                  _outputs(tmp_path / "bare.tflite", images))
    labels_bytes = len(data) - len(strip_associated_files(data))
    assert labels_bytes < 400  # the zip of three names
    assert len(data) - labels_bytes - len(plain) < 0.01 * len(plain)
    assert report["tflite_metadata"] == {
        "written": True, "name": small.name, "description": decoded.description.decode(),
        "version": "2.1", "author": "Ada Lovelace", "license": "Apache-2.0",
        "input": {"dtype": io_dtype, "size": [32, 32], "normalization_mean": mean,
                  "normalization_std": std}, "output": "probabilities", "labels": 3}

    if io_dtype == "int8":
        return  # MediaPipe takes float32 and uint8 image tensors only
    result = check(str(tmp_path / "m.tflite"), images)
    assert result["images"] == len(images) and result["labels_agree"]
    assert result["top1_agreement"] == 1.0
    assert result["max_score_diff"] <= (1e-6 if quantize != "int8"
                                        else result["output_step"]), result
    answers = classify(str(tmp_path / "m.tflite"), images)
    assert sorted(name for _, name, _ in answers[0]) == sorted(LABELS)


def test_no_labels_still_loads_and_the_report_says_so(graph, images, tmp_path):
    path = tmp_path / "m.tflite"
    report = to_tflite(graph, path, verify_data=images)
    assert report["tflite_metadata"]["labels"] is None
    assert "no labels" in report["tflite_metadata"]["note"]
    assert read_labels(str(path)) is None
    answer = classify(str(path), images[:1])[0]
    assert sorted(index for index, _, _ in answer) == [0, 1, 2]
    assert {name for _, name, _ in answer} == {None}  # MediaPipe has no names to give


def test_bad_labels_and_metadata_are_refused_before_converting(small, tmp_path):
    with pytest.raises(ValueError, match="2 labels for a model whose outputs"):
        to_tflite(small, tmp_path / "m.tflite", labels=["a", "b"])
    with pytest.raises(ValueError, match="one-line strings"):
        to_tflite(small, tmp_path / "m.tflite", labels=["a", "b\nc", "d"])
    with pytest.raises(TypeError, match="accepted: a list of class names"):
        to_tflite(small, tmp_path / "m.tflite", labels="abc")
    with pytest.raises(ValueError, match="author=''"):
        TFLiteMetadata(author="")
    with pytest.raises(TypeError, match="metadata="):
        to_tflite(small, tmp_path / "m.tflite", metadata="yes")
    assert list(tmp_path.iterdir()) == []


def test_class_names_travel_with_the_model(small, images, tmp_path):
    """A model's class_names are saved in its .keras file and become the artifacts' labels."""
    model = keras_effnet.build(TINY_LITE, num_classes=3, input_shape=(32, 32, 3))
    model.class_names = LABELS
    keras_effnet.save_model(model, tmp_path / "m.keras")
    loaded = keras_effnet.load_model(tmp_path / "m.keras", compile=False)
    assert loaded.class_names == LABELS
    to_tflite(loaded, tmp_path / "m.tflite", verify_data=images)
    to_onnx(loaded, tmp_path / "m.onnx", verify_data=images)
    assert read_labels(str(tmp_path / "m.tflite")) == LABELS
    import onnx

    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(props["labels"]) == LABELS
    with pytest.raises(ValueError, match="2 class names for a model with 3"):
        loaded.class_names = ["a", "b"]


# ----------------------------------------------------------------- the main job's lite0


@pytest.mark.xdist_group("trained-lite0")
def test_trained_files_agree_in_mediapipe_on_validation_images(quickstart_run, uint8_export):
    """The main job's float32 and int8 files and a uint8-I/O int8 file (conftest's
    `uint8_export`), on 64 validation images: MediaPipe's top-1 name equals the interpreter's
    top-1 label, scores within one output step (int8) or 1e-6 (float), and the labels are the
    run's class names in order."""
    from keras_effnet.cli import QUICKSTART_DEFAULTS

    _, run = quickstart_run
    summary = json.loads((run / "summary.json").read_text())
    names = summary["data"]["class_names"]
    assert uint8_export.returncode == 0, uint8_export.stdout[-3000:] + uint8_export.stderr
    images, targets = examples(QUICKSTART_DEFAULTS["data"], 64, 64, split="validation")
    for path in (run / "model_float32.tflite", run / "model_int8.tflite", uint8_export.path):
        assert read_labels(str(path)) == names
        result = check(str(path), images, targets)
        assert result["labels_agree"] and result["top1_agreement"] == 1.0, (path, result)
        limit = 1e-6 if "float32" in path.name else result["output_step"]
        assert result["max_score_diff"] <= limit, (path, result)
        assert result["accuracy"] >= 0.9, (path, result)
        expected = TFLiteRunner(str(path))(np.round(images)).argmax(-1)
        assert result["top1"] == [names[i] for i in expected]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Validation images of the main job's data as PNG files, a text file and a broken PNG."""
    import tensorflow as tf

    from keras_effnet.cli import QUICKSTART_DEFAULTS

    folder = tmp_path_factory.mktemp("photos")
    images, targets = examples(QUICKSTART_DEFAULTS["data"], 96, 6, split="validation")
    for i, image in enumerate(images):
        png = tf.io.encode_png(np.round(image).astype("uint8")).numpy()
        (folder / f"{i}.png").write_bytes(png)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    return folder, targets


@pytest.mark.xdist_group("trained-lite0")
@pytest.mark.parametrize("artifact", ["model_int8.tflite", "model.onnx", "model.keras"])
def test_predict_names_classes_of_image_files(quickstart_run, photo_folder, artifact):
    """`effnet predict` on a folder (and a file named twice): top-k names from the file's
    own labels, probabilities, the broken image named and skipped; --json as the function."""

    _, run = quickstart_run
    folder, targets = photo_folder
    names = json.loads((run / "summary.json").read_text())["data"]["class_names"]
    result = effnet("predict", f"--model={run / artifact}", str(folder), "--top_k=2", "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    printed = json.loads(result.stdout)
    assert printed == predict(str(run / artifact), [str(folder)], top_k=2)
    assert printed["labels_source"] == {
        "model_int8.tflite": "the file's TFLite metadata", "model.onnx": "the file's ONNX "
        "metadata", "model.keras": "the model's class_names"}[artifact]
    got = {p["image"].rsplit("/", 1)[-1]: p["top"] for p in printed["predictions"]}
    assert sorted(got) == [f"{i}.png" for i in range(6)]
    for i, target in enumerate(targets):
        top = got[f"{i}.png"]
        assert len(top) == 2 and top[0]["probability"] >= top[1]["probability"]
        assert top[0]["label"] == names[top[0]["index"]]
    assert np.mean([got[f"{i}.png"][0]["index"] == t for i, t in enumerate(targets)]) >= 0.8
    assert [s["image"].rsplit("/", 1)[-1] for s in printed["skipped"]] == ["broken.png"]
    assert "broken.png: not an image (" in result.stderr

    plain = effnet("predict", f"--model={run / artifact}", str(folder / "0.png"))
    assert plain.returncode == 0, plain.stderr[-2000:]
    line = plain.stdout.strip().splitlines()[-1]
    assert line.startswith(f"{folder / '0.png'}: {got['0.png'][0]['label']} ")


@pytest.mark.xdist_group("trained-lite0")
def test_predict_labels_fall_back_to_the_run_then_indices(quickstart_run, photo_folder,
                                                          tmp_path):
    """A bare file in the run folder takes the run's class names; elsewhere, indices."""
    import shutil

    _, run = quickstart_run
    folder, _ = photo_folder
    data = (run / "model_float32.tflite").read_bytes()
    bare = run / "bare.tflite"
    from keras_effnet.export.tflite_metadata import strip_associated_files

    bare.write_bytes(strip_associated_files(data))
    try:
        result = effnet("predict", f"--model={bare}", str(folder / "1.png"))
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"labels: {run / 'summary.json'} (the run's data)" in result.stdout
        shutil.move(bare, tmp_path / "bare.tflite")
        result = effnet("predict", f"--model={tmp_path / 'bare.tflite'}", str(folder / "1.png"),
                        "--top_k=1")
        assert result.returncode == 0, result.stderr[-2000:]
        assert "labels: none (class indices)" in result.stdout
        assert result.stdout.strip().splitlines()[-1].split(": ")[1].split()[0].isdigit()
    finally:
        bare.unlink(missing_ok=True)


def test_predict_bad_input_exits_nonzero(tmp_path, photo_folder):
    folder, _ = photo_folder
    missing = effnet("predict", f"--model={tmp_path / 'none.tflite'}", str(folder))
    assert missing.returncode == 2 and "model file not found" in missing.stderr
    (tmp_path / "m.txt").write_text("x")
    unknown = effnet("predict", f"--model={tmp_path / 'm.txt'}", str(folder))
    assert unknown.returncode == 2 and "accepted models end in .keras, .tflite, .onnx" in (
        unknown.stderr)
    model = keras_effnet.build(TINY_LITE, num_classes=3, input_shape=(32, 32, 3))
    to_tflite(model, tmp_path / "m.tflite", verify_data=np.zeros((1, 32, 32, 3), "float32"))
    nothing = effnet("predict", f"--model={tmp_path / 'm.tflite'}", str(folder / "notes.txt"),
                     str(folder / "broken.png"))
    assert nothing.returncode == 2 and "no image classified (2 skipped)" in nothing.stderr
    assert "notes.txt: not an image (not JPEG, PNG, GIF, BMP" in nothing.stderr
    no_images = effnet("predict", f"--model={tmp_path / 'm.tflite'}")
    assert no_images.returncode == 2 and "give the images to classify" in no_images.stderr
    assert "Traceback" not in nothing.stderr + unknown.stderr + missing.stderr


def test_effnet_export_writes_labels_and_metadata_from_flags(tmp_path):
    model = keras_effnet.build(TINY_LITE, num_classes=3, input_shape=(32, 32, 3))
    keras_effnet.save_model(model, tmp_path / "m.keras")
    (tmp_path / "labels.txt").write_text("\n".join(LABELS) + "\n\n")
    common = [f"--model={tmp_path / 'm.keras'}", f"--verify_data={DATA}"]
    result = effnet("export", *common, f"--labels={tmp_path / 'labels.txt'}", "--author=Ada",
                    "--license=MIT", "--model_version=3", f"--out={tmp_path / 'a.tflite'}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"labels: 3 from {tmp_path / 'labels.txt'}" in result.stdout
    assert "3 labels (loads as is in MediaPipe Tasks / LiteRT)" in result.stdout
    decoded = _metadata((tmp_path / "a.tflite").read_bytes())
    assert (decoded.author, decoded.license, decoded.version) == (b"Ada", b"MIT", b"3")
    assert read_labels(str(tmp_path / "a.tflite")) == LABELS
    for flags, message in (
            (["--format=onnx", "--author=Ada"], "--author does not apply to --format=onnx"),
            (["--nometadata", "--license=MIT"], "--license does not apply"),
            (["--format=saved_model", f"--labels={tmp_path / 'labels.txt'}"], "--labels does "
             "not apply"),
            ([f"--labels={tmp_path / 'none.txt'}"], "none.txt"),
            (["--description="], "metadata --description=; accepted")):
        refused = effnet("export", *common, *flags, f"--out={tmp_path / 'c.tflite'}")
        assert refused.returncode == 2 and message in refused.stderr, (flags, refused.stderr)
    (tmp_path / "two.txt").write_text("a\nb\n")
    wrong = effnet("export", *common, f"--labels={tmp_path / 'two.txt'}",
                   f"--out={tmp_path / 'c.tflite'}")
    assert wrong.returncode == 2 and "2 labels for a model whose outputs" in wrong.stderr
    assert not (tmp_path / "c.tflite").exists()


@pytest.mark.large  # a second CLI export (metadata=False in-process: default tier, above)
def test_effnet_export_nometadata_writes_a_bare_file(tmp_path):
    model = keras_effnet.build(TINY_LITE, num_classes=3, input_shape=(32, 32, 3))
    keras_effnet.save_model(model, tmp_path / "m.keras")
    bare = effnet("export", f"--model={tmp_path / 'm.keras'}", f"--verify_data={DATA}",
                  "--nometadata", f"--out={tmp_path / 'b.tflite'}")
    assert bare.returncode == 0, bare.stderr[-3000:]
    assert "metadata: none (--nometadata)" in bare.stdout
    assert not has_metadata(str(tmp_path / "b.tflite"))
    assert json.loads((tmp_path / "b.tflite.json").read_text())["tflite_metadata"] == {
        "written": False}
    assert "labels: none" in bare.stdout  # no class names anywhere: said, not invented


@pytest.mark.parametrize("top_k", [0, -1, 1.5, True])
def test_predict_refuses_a_bad_top_k(top_k, tmp_path):

    with pytest.raises(ValueError, match=rf"top_k={top_k!r}; accepted: an integer >= 1"):
        predict(str(tmp_path / "m.tflite"), [str(tmp_path)], top_k=top_k)


def test_a_logits_model_says_so_and_predict_shows_their_softmax(images, tmp_path):
    """A model with a linear head: its TFLite metadata and its ONNX property say "logits", and
    `predict` shows the softmax of the file's outputs (a softmax model's files: in the test
    above, shown as the file gives them)."""
    from keras_effnet.export.contract import shown_scores
    from keras_effnet.export.runtime import ONNXRunner

    logits = keras_effnet.build(TINY_LITE, num_classes=3, input_shape=(32, 32, 3),
                                classifier_activation=None)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.round(images[0]).astype("uint8")).save(photo)
    pixels = load_image(str(photo), 32)[None]
    for path, runner in ((tmp_path / "l.tflite", TFLiteRunner),
                         (tmp_path / "l.onnx", ONNXRunner)):
        (to_tflite if path.suffix == ".tflite" else to_onnx)(logits, path, verify_data=images)
        assert output_kind(str(path)) == "logits"
        result = predict(str(path), [str(photo)], top_k=3)
        expected = shown_scores(runner(str(path))(pixels)[0], "logits")
        assert result["output"] == "logits"
        assert {t["index"]: t["probability"] for t in result["predictions"][0]["top"]} == \
            pytest.approx({i: round(float(v), 6) for i, v in enumerate(expected)}, abs=1e-6)
