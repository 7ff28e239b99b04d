"""Verify an exported artifact against its Keras model in the artifact's real runtime.

The report holds the max/mean absolute output difference, the outputs' signal-to-noise ratio
(SQNR, dB), top-1 agreement with Keras, accuracy of both on labelled data, file size and median
single-image latency. `verify` raises
`VerificationError` (carrying the report) when a threshold is passed.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keras_effnet.export.runtime import median_latency_ms, runner_for

# Defaults per artifact kind: float artifacts must match Keras closely; quantized ones must
# agree on the top-1 class wherever Keras is decisive, and keep the accuracy.
THRESHOLDS = {
    "none": {"max_abs_diff": 1e-4, "min_agreement": 0.99, "max_accuracy_drop": 0.01},
    "float16": {"max_abs_diff": 1e-2, "min_agreement": 0.97, "max_accuracy_drop": 0.02},
    "dynamic": {"max_abs_diff": None, "min_agreement": 0.90, "max_accuracy_drop": 0.05},
    "int8": {"max_abs_diff": None, "min_agreement": 0.90, "max_accuracy_drop": 0.05},
}


class VerificationError(RuntimeError):
    """An artifact disagrees with its Keras model beyond the thresholds; `.report` says how."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


def compare(reference: np.ndarray, candidate: np.ndarray,
            labels: np.ndarray | None = None) -> dict[str, Any]:
    diff = np.abs(reference.astype("float64") - candidate.astype("float64"))
    expected, got = reference.argmax(-1), candidate.argmax(-1)
    noise = float(np.sum(diff ** 2))
    report = {"images": int(len(reference)), "max_abs_diff": float(diff.max()),
              "mean_abs_diff": float(diff.mean()),
              # signal-to-quantization-noise ratio of the outputs; None: identical outputs
              "sqnr_db": (float(10 * np.log10(np.sum(reference.astype("float64") ** 2) / noise))
                          if noise > 0 else None),
              "top1_agreement": float(np.mean(expected == got)),
              # indices (into the verification images) whose top-1 class differs; at most 1000
              "disagreeing_images": [int(i) for i in np.flatnonzero(expected != got)[:1000]]}
    if labels is not None:
        report["keras_accuracy"] = float(np.mean(expected == labels))
        report["artifact_accuracy"] = float(np.mean(got == labels))
        report["accuracy_drop"] = report["keras_accuracy"] - report["artifact_accuracy"]
    return report


def verify(artifact: str, reference_model: Any, images: np.ndarray,
           labels: np.ndarray | None = None, *, kind: str = "none", num_threads: int = 2,
           thresholds: dict[str, float | None] | None = None,
           latency_repeats: int = 20) -> dict[str, Any]:
    """Run `artifact` (.tflite / .onnx) and `reference_model` on `images`; check and report."""
    limits = {**THRESHOLDS.get(kind, THRESHOLDS["none"]), **(thresholds or {})}
    runner = runner_for(artifact, num_threads)
    expected = np.asarray(reference_model.predict(images, batch_size=32, verbose=0), "float32")
    got = runner(images)
    report = compare(expected, got, labels)
    report.update(artifact=os.path.basename(artifact), kind=kind,
                  size_bytes=os.path.getsize(artifact), threads=num_threads,
                  median_latency_ms=round(median_latency_ms(runner, images[0],
                                                             latency_repeats), 3),
                  thresholds=limits)
    failures = []
    if limits["max_abs_diff"] is not None and report["max_abs_diff"] > limits["max_abs_diff"]:
        failures.append(f"max |Δ| {report['max_abs_diff']:.2e} > {limits['max_abs_diff']:.0e}")
    if report["top1_agreement"] < limits["min_agreement"]:
        failures.append(f"top-1 agreement {report['top1_agreement']:.3f} < "
                        f"{limits['min_agreement']}")
    if ("accuracy_drop" in report and limits["max_accuracy_drop"] is not None
            and report["accuracy_drop"] > limits["max_accuracy_drop"]):
        failures.append(f"accuracy drop {report['accuracy_drop']:.3f} > "
                        f"{limits['max_accuracy_drop']}")
    report["passed"] = not failures
    if failures:
        raise VerificationError(f"{artifact}: verification failed: {'; '.join(failures)}",
                                report)
    return report
