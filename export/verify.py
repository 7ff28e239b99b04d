"""Verify an exported artifact against its Keras model in the artifact's real runtime.

The report holds, against the Keras model on the same images: the max/mean absolute output
difference, the outputs' signal-to-quantization-noise ratio (SQNR, dB) and cosine similarity,
top-1 agreement over all images and over the *decisive* ones (whose float top-1/top-2
probability margin exceeds `near_tie_margin`; the others are near-ties, which flip under any
quantizer, and are counted, not failed), each image's margin, accuracy of both on labelled
data, file size and single-image latency, and for a TFLite file whether every op runs on the
GPU delegate (`gpu_delegate`, a static check: export/gpu_compat.py). `verify` raises
`VerificationError` (carrying the report) when a threshold is passed, or when a file meant for
the GPU (`target="gpu"`) has ops that would fall back to the CPU.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np

from keras_effnet.errors import InvalidArgument, UserError
from keras_effnet.export.contract import PROBABILITIES, model_output_kind, shown_scores
from keras_effnet.export.runtime import median_latency_ms, runner_for

# Defaults per artifact kind (the TFLite quantize mode; ONNX is "none"), from the measurements
# in BUILD_NOTES.md ("Verification thresholds"). Gated: max |Δ| (float kinds), top-1 agreement
# on the decisive images (the former all-image bars 0.99 / 0.97 / 0.90, now without the
# near-ties), the SQNR when some image is decisive (half, in dB, of the lowest measured for a
# correct artifact of the kind: 124, 45, 22, 12 dB; broken ones measured about 0 dB), and the
# accuracy drop on labelled data. Plain top-1 agreement is reported; `min_agreement` gates only
# when given (an untrained model's images are all near-ties: its top-1 flips under any
# quantizer). Float kinds: near_tie_margin >= 2 × max_abs_diff, so no decisive image can flip
# within max |Δ|; quantized kinds: 0.1.
# Quantized kinds are judged by their decisive images alone (float kinds by max |Δ| on every
# image too), so they need enough of them: `min_decisive_images`. With 30, an artifact that
# flips 1 in 4 decisive images passes the 0.90 bar with probability 0.04 (binomial), with 10
# 0.24 (docs/export.md, "What verification checked").
THRESHOLDS = {
    "none": {"max_abs_diff": 1e-4, "min_agreement": None, "min_decisive_agreement": 0.99,
             "min_sqnr_db": 60.0, "near_tie_margin": 0.01, "max_accuracy_drop": 0.01,
             "min_decisive_images": None},
    "float16": {"max_abs_diff": 1e-2, "min_agreement": None, "min_decisive_agreement": 0.97,
                "min_sqnr_db": 20.0, "near_tie_margin": 0.02, "max_accuracy_drop": 0.02,
                "min_decisive_images": None},
    "dynamic": {"max_abs_diff": None, "min_agreement": None, "min_decisive_agreement": 0.90,
                "min_sqnr_db": 10.0, "near_tie_margin": 0.1, "max_accuracy_drop": 0.05,
                "min_decisive_images": 30},
    "int8": {"max_abs_diff": None, "min_agreement": None, "min_decisive_agreement": 0.90,
             "min_sqnr_db": 6.0, "near_tie_margin": 0.1, "max_accuracy_drop": 0.05,
             "min_decisive_images": 30},
}
# what a file is for: "cpu" (the default) reports the GPU delegate check, "gpu" gates on it
TARGETS = ("cpu", "gpu")
_FRACTIONS = ("min_agreement", "min_decisive_agreement", "near_tie_margin", "max_accuracy_drop")
_COUNTS = ("min_decisive_images",)


class VerificationError(UserError, RuntimeError):
    """An artifact disagrees with its Keras model beyond the thresholds; `.report` says how
    (a user error: `effnet` reports it in one line)."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


def thresholds_for(kind: str, overrides: dict[str, float | None] | None = None
                   ) -> dict[str, float | None]:
    """The thresholds of an artifact `kind` (its quantize mode) with `overrides` applied.

    None turns a gate off. Raises ValueError for an unknown kind or threshold, and for a value
    that is negative, NaN, or above 1 where it is a fraction.

    Example:
        >>> thresholds_for("int8", {"min_sqnr_db": 15})["min_sqnr_db"]
        15
    """
    if kind not in THRESHOLDS:
        raise InvalidArgument(f"quantize={kind!r}; accepted: {', '.join(THRESHOLDS)}")
    limits = dict(THRESHOLDS[kind])
    for key, value in (overrides or {}).items():
        if key not in limits:
            raise InvalidArgument(f"unknown threshold {key!r}; accepted: {', '.join(limits)}")
        fraction, count = key in _FRACTIONS, key in _COUNTS
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                  or math.isnan(value) or value < 0 or fraction and value > 1
                                  or count and value != int(value)):
            raise InvalidArgument(f"{key}={value!r}; accepted: "
                                  + ("a number in [0, 1]" if fraction else "a whole number >= 0"
                                     if count else "a number >= 0") + ", or None (not gated)")
        limits[key] = value
    return limits


def margins(outputs: np.ndarray, output: str = PROBABILITIES) -> np.ndarray:
    """Top-1 minus top-2 probability of each output row (1 for a single-class output);
    `output`: what the outputs are (probabilities, or logits: their softmax is used)."""
    top = np.sort(shown_scores(outputs, output), -1)
    return top[..., -1] - (top[..., -2] if top.shape[-1] > 1 else 0.0)


def compare(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None,
            near_tie_margin: float = THRESHOLDS["int8"]["near_tie_margin"],
            output: str = PROBABILITIES) -> dict[str, Any]:
    """The report's numbers for `candidate` outputs against `reference` (the float model's);
    `output`: the outputs' kind (probabilities or logits), for the margins."""
    ref, got = np.asarray(reference, "float64"), np.asarray(candidate, "float64")
    diff = np.abs(ref - got)
    agree = ref.argmax(-1) == got.argmax(-1)
    margin = margins(ref, output)
    decisive = margin > near_tie_margin
    noise = float(np.sum(diff ** 2))
    norms = np.linalg.norm(ref, axis=-1) * np.linalg.norm(got, axis=-1)
    cosine = np.sum(ref * got, -1) / np.maximum(norms, np.finfo("float64").tiny)  # 0: a zero row
    report = {"images": int(len(ref)), "non_finite_outputs": int(np.sum(~np.isfinite(got))),
              "max_abs_diff": float(diff.max()),
              "mean_abs_diff": float(diff.mean()),
              # signal-to-quantization-noise ratio of the outputs; None: identical outputs
              "sqnr_db": (float(10 * np.log10(np.sum(ref ** 2) / noise)) if noise > 0
                          else None),
              "cosine_similarity": float(np.mean(cosine)),
              "top1_agreement": float(np.mean(agree)),
              "near_tie_margin": near_tie_margin,
              "near_ties": int(np.sum(~decisive)), "decisive_images": int(np.sum(decisive)),
              "decisive_agreement": float(np.mean(agree[decisive])) if decisive.any() else None,
              # the float model's top-1/top-2 probability margin of each image
              "margins": [round(float(m), 6) for m in margin.ravel()],
              # indices (into the verification images) whose top-1 class differs; at most 1000
              "disagreeing_images": [int(i) for i in np.flatnonzero(
                  ~agree.reshape(len(ref), -1).all(-1))[:1000]]}
    if labels is not None:
        report["keras_accuracy"] = float(np.mean(ref.argmax(-1) == labels))
        report["artifact_accuracy"] = float(np.mean(got.argmax(-1) == labels))
        report["accuracy_drop"] = report["keras_accuracy"] - report["artifact_accuracy"]
    return report


def checked(report: dict[str, Any]) -> str:
    """What a verification checked, in one line: how many images, how many decisive, on what
    data, and the accuracies or why there are none."""
    line = (f"verified on {report['images']} images ({report['decisive_images']} decisive, "
            f"{report['near_ties']} near-ties at margin {report['near_tie_margin']:g})")
    if report.get("verify_data"):
        line += f" of {report['verify_data']}"
    if "keras_accuracy" in report:
        line += (f"; top-1 accuracy: Keras {report['keras_accuracy']:.4f}, artifact "
                 f"{report['artifact_accuracy']:.4f}")
    else:
        line += f"; accuracy {report.get('accuracy', 'not computed')}"
    if report.get("gpu_delegate"):
        from keras_effnet.export.gpu_compat import summary

        line += f"; GPU delegate: {summary(report['gpu_delegate'])}"
    return line


def check_target(target: str | None, tflite: bool = True) -> str:
    """`target` as verification takes it ("cpu" for None); "gpu" only for TFLite files."""
    if target is None:
        return "cpu"
    if target not in TARGETS:
        raise InvalidArgument(f"target={target!r}; accepted: {', '.join(TARGETS)}, or None")
    if target == "gpu" and not tflite:
        raise InvalidArgument("target='gpu' applies to TFLite files (the GPU delegate's)")
    return target


def failures(report: dict[str, Any], limits: dict[str, float | None]) -> list[str]:
    """The gates `report` fails under `limits`, each naming its threshold."""
    failed = []
    wanted = limits.get("min_decisive_images")
    if wanted is not None and report["decisive_images"] < wanted:
        failed.append(f"too few decisive images to judge: {report['decisive_images']} of the "
                      f"{report['images']} verified have a float top-1/top-2 margin above "
                      f"{report['near_tie_margin']}, min_decisive_images {wanted:g}; verify on "
                      "more images (verify_count=N, or a larger verification set), or accept "
                      "the unjudged artifact with min_decisive_images=0")
    if report["non_finite_outputs"]:  # NaN compares as passing every threshold below
        failed.append(f"{report['non_finite_outputs']} outputs are NaN or infinite")
    if limits["max_abs_diff"] is not None and report["max_abs_diff"] > limits["max_abs_diff"]:
        failed.append(f"max |Δ| {report['max_abs_diff']:.2e} > max_abs_diff "
                      f"{limits['max_abs_diff']:.0e}")
    if limits["min_agreement"] is not None and report["top1_agreement"] < limits["min_agreement"]:
        failed.append(f"top-1 agreement {report['top1_agreement']:.3f} < min_agreement "
                      f"{limits['min_agreement']}")
    decisive = report["decisive_images"] > 0
    if (decisive and limits["min_decisive_agreement"] is not None
            and report["decisive_agreement"] < limits["min_decisive_agreement"]):
        failed.append(f"top-1 agreement {report['decisive_agreement']:.3f} on the "
                      f"{report['decisive_images']} decisive images (float top-1/top-2 margin "
                      f"> {report['near_tie_margin']}) < min_decisive_agreement "
                      f"{limits['min_decisive_agreement']}")
    # Without a decisive image the outputs are near-constant: their SQNR then measures the
    # output quantizer's resolution against 1/classes, not the artifact (BUILD_NOTES.md).
    if (decisive and limits["min_sqnr_db"] is not None and report["sqnr_db"] is not None
            and report["sqnr_db"] < limits["min_sqnr_db"]):
        failed.append(f"SQNR {report['sqnr_db']:.1f} dB < min_sqnr_db {limits['min_sqnr_db']}")
    if ("accuracy_drop" in report and limits["max_accuracy_drop"] is not None
            and report["accuracy_drop"] > limits["max_accuracy_drop"]):
        failed.append(f"accuracy drop {report['accuracy_drop']:.3f} > max_accuracy_drop "
                      f"{limits['max_accuracy_drop']}")
    return failed


def verify(artifact: str, reference_model: Any, images: np.ndarray,
           labels: np.ndarray | None = None, *, kind: str = "none", num_threads: int = 2,
           thresholds: dict[str, float | None] | None = None,
           latency_repeats: int = 20, target: str | None = None) -> dict[str, Any]:
    """Run `artifact` (.tflite / .onnx) and `reference_model` on `images`; check and report.

    `kind`: the artifact's quantize mode (its default THRESHOLDS); `thresholds` override them.
    `target="gpu"`: a TFLite file with ops the GPU delegate lacks fails (default "cpu": they
    are reported).
    """
    limits = thresholds_for(kind, thresholds)
    tflite = artifact.endswith(".tflite")
    target = check_target(target, tflite)
    runner = runner_for(artifact, num_threads)
    expected = np.asarray(reference_model.predict(images, batch_size=32, verbose=0), "float32")
    report = compare(expected, runner(images), labels, limits["near_tie_margin"],
                     model_output_kind(reference_model))
    report.update(artifact=os.path.basename(artifact), kind=kind,
                  size_bytes=os.path.getsize(artifact), threads=num_threads,
                  median_latency_ms=round(median_latency_ms(runner, images[0],
                                                             latency_repeats), 3),
                  thresholds=limits, target=target)
    if tflite:
        from keras_effnet.export.gpu_compat import gpu_delegate, refusal

        with open(artifact, "rb") as f:
            report["gpu_delegate"] = gpu_delegate(f.read())
    failed = failures(report, limits)
    if tflite and target == "gpu" and not report["gpu_delegate"]["runs_wholly_on_gpu"]:
        failed.append(refusal(report["gpu_delegate"], kind))
    report["passed"] = not failed
    if failed:
        raise VerificationError(f"{artifact}: verification failed: {'; '.join(failed)}",
                                report)
    return report
