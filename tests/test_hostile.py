"""Files from others are hostile: a `.tflite` someone shares may carry a zip bomb, a broken
archive or a wrong count as its labels file. Every reader (`effnet app`, `predict`) bounds
its reads, checks the count against the outputs, and stops with a one-line error that names
the file and the cause, before anything is written; memory stays bounded (measured in a
child process, against the same command on a sound file)."""

import functools
import io
import os
import shutil
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import keras_effnet
from keras_effnet.export.tflite_metadata import (LABELS_FILE, MAX_LABELS_BYTES, read_labels,
                                                 strip_associated_files)

LABELS = ["cat", "dog", "fox"]

# the tests that read `sound`: one worker builds the module's model once
HOSTILE = pytest.mark.xdist_group("hostile")


@pytest.fixture(scope="module")
def sound(tmp_path_factory):
    """(folder, the bytes of a sound 3-class float TFLite file with metadata and labels)."""
    from keras_effnet.export import to_tflite

    folder = tmp_path_factory.mktemp("hostile")
    model = keras_effnet.build(keras_effnet.scale(phi=-6, base="lite"), num_classes=3,
                               input_shape=(32, 32, 3))
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    to_tflite(model, folder / "sound.tflite", labels=LABELS, verify_data=pixels)
    return folder, (folder / "sound.tflite").read_bytes()


def _with_archive(flatbuffer, entries, compression=zipfile.ZIP_STORED):
    """The flatbuffer with a zip of `entries` ({name: bytes, or an iterable of byte chunks})
    appended, as the metadata schema appends its associated files."""
    whole = io.BytesIO(flatbuffer)
    whole.seek(0, io.SEEK_END)
    with zipfile.ZipFile(whole, "a", compression) as archive:
        for name, data in entries.items():
            with archive.open(name, "w", force_zip64=True) as f:
                for chunk in ([data] if isinstance(data, bytes) else data):
                    f.write(chunk)
    return whole.getvalue()


def _patched(data, field, value, size=4):
    """`data` with one field of its (single) central directory record set to `value`: the
    sizes (compressed at 20, uncompressed at 24) or the compression method (10, 2 bytes)."""
    at = data.rindex(b"PK\x01\x02") + field
    return data[:at] + struct.pack("<I" if size == 4 else "<H", value) + data[at + size:]


@functools.cache
def hostile_files(sound_bytes):
    """{case: (file bytes, what the error must say)}, made once."""
    flat = strip_associated_files(sound_bytes)
    stored = _with_archive(flat, {LABELS_FILE: b"cat\ndog\nfox\n"})
    bomb = (b"a\n" * (8 << 20) for _ in range(16))  # 256 MiB of labels, deflated to ~0.3 MB
    return {
        "bomb": (_with_archive(flat, {LABELS_FILE: bomb}, zipfile.ZIP_DEFLATED),
                 "claims 268,435,456 bytes, far above any real label set"),
        "truncated": (_patched(_patched(stored, 20, 10_000_000), 24, 10_000_000),
                      "archive is broken or unsupported"),
        "compression": (_patched(stored, 10, 99, size=2),
                        "archive is broken or unsupported (That compression method is not "
                        "supported)"),
        "not_utf8": (_with_archive(flat, {LABELS_FILE: b"cat\n\xff\xfe\nfox\n"}),
                     "its labels.txt is not UTF-8 text (byte 4)"),
        "count": (_with_archive(flat, {LABELS_FILE: b"a\nb\nc\nd\ne\n"}),
                  "its labels.txt has 5 labels for a model with 3 outputs; they must agree"),
    }


@HOSTILE
@pytest.mark.parametrize("case", ["bomb", "truncated", "compression", "not_utf8", "count"])
def test_a_hostile_labels_file_is_refused_by_every_reader(sound, case, tmp_path):
    from keras_effnet.export.predict import predict
    from keras_effnet.export.webapp import make_app

    folder, data = sound
    payload, says = hostile_files(data)[case]
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(payload)
    with pytest.raises(ValueError) as caught:
        make_app(str(path), str(tmp_path / "app"))
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and says in message and "\n" not in message, message
    assert not (tmp_path / "app").exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        path.name]
    photo = folder / "photo.png"
    if not photo.exists():
        from PIL import Image

        Image.new("RGB", (40, 30), (200, 30, 30)).save(photo)
    with pytest.raises(ValueError, match="^" + str(path).replace(".", r"\.") + ": "):
        predict(str(path), [str(photo)])


@HOSTILE
def test_read_labels_bounds_what_it_reads(sound):
    """A labels entry that claims a small size but inflates to 24 MiB is read no further than
    the claim (then fails its CRC): the read is bounded whatever the archive says; a sound
    file's labels read back."""
    _, data = sound
    assert read_labels(data) == LABELS and read_labels(data, 3) == LABELS
    flat = strip_associated_files(data)
    bomb = _with_archive(flat, {LABELS_FILE: (b"a\n" * (1 << 20) for _ in range(12))},
                         zipfile.ZIP_DEFLATED)
    lying = _patched(bomb, 24, 1000)  # claims 1 000 bytes inflated
    with pytest.raises(ValueError, match=r"^lying.tflite: its attached labels.txt cannot be "
                                         r"read: .*Bad CRC-32"):
        read_labels(lying, source="lying.tflite")
    assert MAX_LABELS_BYTES == 16 << 20


@HOSTILE
def test_effnet_app_on_a_zip_bomb_costs_what_a_sound_file_costs(sound, tmp_path):
    """`effnet app` in a child process: on a zip bomb (256 MiB of labels) it exits 2 with one
    line naming the file, writing nothing, at about the peak memory of the same command on
    the sound file (before: 9.5 GB and a 4.8 GB app.json for a 1 GiB bomb)."""
    folder, data = sound
    bomb = tmp_path / "bomb.tflite"
    bomb.write_bytes(hostile_files(data)["bomb"][0])
    peaks = {}
    for name, model in (("sound", folder / "sound.tflite"), ("bomb", bomb)):
        probe = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], "
                 "capture_output=True, text=True); print(done.returncode, resource.getrusage("
                 "resource.RUSAGE_CHILDREN).ru_maxrss); sys.stderr.write(done.stderr)")
        exe = shutil.which("effnet") or os.path.join(os.path.dirname(sys.executable), "effnet")
        run = subprocess.run([sys.executable, "-c", probe, exe, "app", f"--model={model}",
                              f"--out={tmp_path / ('app_' + name)}"], capture_output=True,
                             text=True, timeout=300)
        code, peak_kb = run.stdout.split()
        peaks[name] = (int(code), int(peak_kb) / 1024, run.stderr)
    assert peaks["sound"][0] == 0, peaks["sound"][2][-2000:]
    code, peak_mb, stderr = peaks["bomb"]
    assert code == 2 and stderr.strip().count("\n") == 0, stderr[-2000:]
    assert stderr.startswith(f"effnet app: error: {bomb}: its {LABELS_FILE} claims"), stderr
    assert not (tmp_path / "app_bomb").exists()
    assert peak_mb < peaks["sound"][1] + 64, peaks


def _png_bomb(path, side=16384):
    """A 1-bit PNG of side² pixels: ~100 KB on disk, side² x 3 bytes once decoded to RGB."""
    from PIL import Image

    Image.new("1", (side, side)).save(path, optimize=True)


def _animated_gif(path, frames=300, size=(480, 360)):
    """A GIF of `frames` frames whose first frame is red, the others blue."""
    from PIL import Image

    first = Image.new("RGB", size, (220, 20, 20))
    rest = (Image.new("RGB", size, (20, 20, 220 - i % 50)) for i in range(frames - 1))
    first.save(path, save_all=True, append_images=rest, duration=40)


def test_image_bombs_are_refused_from_their_header_and_gifs_decode_one_frame(tmp_path):
    """A 16 384² PNG is refused by its header with the size and the limit named (and
    classified when max_pixels allows it); an animated GIF gives its first frame alone."""
    from keras_effnet.cli import flag_values
    from keras_effnet.export.predict import MAX_PIXELS, load_image

    assert flag_values("predict")["max_pixels"].default == MAX_PIXELS == 100_000_000
    bomb, gif = tmp_path / "bomb.png", tmp_path / "many.gif"
    _png_bomb(bomb)
    _animated_gif(gif, frames=12)
    with pytest.raises(ValueError, match=rf"^{bomb}: image too large \(16384x16384 = 268 MP, "
                                         r"above max_pixels=100,000,000\); to classify it, "
                                         r"raise the limit: max_pixels=N$"):
        load_image(str(bomb), 32)
    small = tmp_path / "small.png"
    _png_bomb(small, side=200)
    with pytest.raises(ValueError, match="200x200 = 0 MP, above max_pixels=1,000"):
        load_image(str(small), 32, max_pixels=1000)
    assert load_image(str(small), 32, max_pixels=40_000).shape == (32, 32, 3)
    first = load_image(str(gif), 32)
    np.testing.assert_allclose(first.reshape(-1, 3).mean(0), [220, 20, 20], atol=1)


@HOSTILE
def test_predict_on_bombs_costs_what_a_photo_costs(sound, tmp_path):
    """`effnet predict` in a child process on a photo, a PNG bomb (16 384², 0.1 MB: 805 MB as
    RGB) and a 300-frame GIF: the bomb is skipped with its reason, the GIF classified from its
    first frame, and the peak memory is that of the same command on the photo alone (before:
    +2.1 GB for the bomb, +1.2 GB for a 1 200-frame GIF). The model: the module's sound file."""
    from PIL import Image

    model = sound[0] / "sound.tflite"
    photo, bomb, gif = tmp_path / "photo.png", tmp_path / "bomb.png", tmp_path / "many.gif"
    Image.new("RGB", (640, 480), (30, 160, 60)).save(photo)
    _png_bomb(bomb)
    _animated_gif(gif)
    exe = shutil.which("effnet") or os.path.join(os.path.dirname(sys.executable), "effnet")
    probe = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], "
             "capture_output=True, text=True); sys.stdout.write(done.stdout); print(done."
             "returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "sys.stderr.write(done.stderr)")
    runs = {}
    for name, files in (("photo", [photo]), ("bombs", [photo, bomb, gif])):
        done = subprocess.run([sys.executable, "-c", probe, exe, "predict",
                               f"--model={model}", *map(str, files)],
                              capture_output=True, text=True, timeout=300)
        *lines, last = done.stdout.strip().splitlines()
        code, peak_kb = last.split()
        runs[name] = (int(code), int(peak_kb) / 1024, lines, done.stderr)
    assert runs["photo"][0] == 0 and runs["bombs"][0] == 0, runs
    _, peak_mb, lines, stderr = runs["bombs"]
    assert any(line.startswith(f"{gif}: ") for line in lines), lines
    assert (f"skipped {bomb}: image too large (16384x16384 = 268 MP, above "
            "--max_pixels=100,000,000); to classify it, raise the limit: --max_pixels=N") in stderr
    assert peak_mb < runs["photo"][1] + 100, {k: v[1] for k, v in runs.items()}
