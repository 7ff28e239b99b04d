"""What the `effnet` commands print: the profile and Table 3 tables (`effnet profile`), the
verification table and the metadata line of an exported file (`effnet export`, `effnet
quickstart`), and a command's progress lines."""

from __future__ import annotations

import dataclasses


def stage(command: str, text: str) -> None:
    """A progress line of the running command."""
    print(f"[effnet {command}] {text}", flush=True)


def _published(config):
    """The published `Variant` whose architecture `config` is (a released variant, or φ = 0
    of a stock base: B0 / Lite0 / V2-B0), else None. Its MACs hold at its own resolution only."""
    from keras_effnet import VARIANTS, scale
    from keras_effnet.catalogue import base_variant
    from keras_effnet.pretrained import released_variant

    if config.phi == 0 and base_variant(config.base):
        config = dataclasses.replace(config, name=scale(base_variant(config.base)).name, phi=None)
    key = released_variant(config, among=VARIANTS)
    return VARIANTS[key] if key else None


def profile_table(configs) -> str:
    """Width, depth, resolution, params and MACs, with the published figures beside them."""
    from keras_effnet import profile

    head = (f"{'model':<26} {'width':>6} {'depth':>6} {'res':>5} {'params':>12} "
            f"{'published':>12} {'MACs (B)':>9} {'published':>9} {'ratio':>6}")
    rows = [head, "-" * len(head)]
    for config in configs:
        p = profile(config)
        ref = _published(config)
        macs = ref.macs if ref and ref.resolution == config.resolution else None
        rows.append(
            f"{config.name:<26} {config.width:>6.3f} {config.depth:>6.3f} {config.resolution:>5} "
            f"{p.trainable_params:>12,} {f'{ref.params:,}' if ref else '—':>12} "
            f"{p.macs / 1e9:>9.3f} {f'{macs / 1e9:.3f}' if macs else '—':>9} "
            f"{f'{p.macs / macs:.3f}' if macs else '—':>6}")
    rows.append("params: trainable, 1000 classes. MACs: conv/depthwise/dense multiply-adds "
                "(the paper's FLOPs); published: paper Table 2 / Lite reference README.")
    return "\n".join(rows)


def table3_rows(base: str) -> list:
    """The paper's Table 3 rows of `base` (none for most bases)."""
    from keras_effnet.scaling import TABLE3

    return [row for row in TABLE3 if row.base == base]


def table3_table(rows) -> str:
    """The paper's Table 3 rows of one base: our network's MACs beside the paper's FLOPs."""
    from keras_effnet import profile

    head = (f"{'Table 3 row':<22} {'model':<34} {'res':>4} {'params':>12} {'MACs (B)':>9} "
            f"{'paper (B)':>9} {'ratio':>6} {'paper top-1':>11}")
    lines = [head, "-" * len(head)]
    notes = []
    for row in rows:
        config = row.config()
        p = profile(config)
        lines.append(f"{row.base + ' ' + row.label:<22} {config.name:<34} {config.resolution:>4} "
                     f"{p.trainable_params:>12,} {p.macs / 1e9:>9.3f} {row.macs / 1e9:>9.1f} "
                     f"{p.macs / row.macs:>6.3f} {row.top1:>10.1f}%")
        if row.note:
            notes.append(f"{row.base} {row.label}: {row.note}")
    lines.append("Table 3 rows use the reference's depth rounding (ceil); top-1 is the paper's "
                 "(ImageNet), not measured here.")
    return "\n".join(lines + notes)


def _number(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def report_table(reports: list[dict]) -> str:
    """The verification table printed by export and quickstart (the decisive agreement is over
    the images whose float top-1/top-2 margin exceeds the report's near_tie_margin; GPU: "all"
    when every op of a TFLite file runs on the GPU delegate, else how many would fall back)."""
    rows = [f"{'artifact':<28} {'size (MB)':>9} {'max |Δ|':>9} {'SQNR dB':>8} "
            f"{'top-1 agree':>11} {'decisive':>8} {'ties':>5} {'acc keras':>9} {'acc art.':>9} "
            f"{'ms (1 img)':>10} {'GPU':>7}  ok"]
    for r in reports:
        sqnr = "inf" if r["sqnr_db"] is None else f"{r['sqnr_db']:.1f}"
        rows.append(f"{r['artifact']:<28} {r['size_bytes'] / 1e6:>9.2f} {r['max_abs_diff']:>9.2e} "
                    f"{sqnr:>8} {r['top1_agreement']:>11.4f} "
                    f"{_number(r['decisive_agreement'], '.4f'):>8} {r['near_ties']:>5} "
                    f"{_number(r.get('keras_accuracy'), '.4f'):>9} "
                    f"{_number(r.get('artifact_accuracy'), '.4f'):>9} "
                    f"{r['median_latency_ms']:>10.2f} {_gpu(r.get('gpu_delegate')):>7}  "
                    f"{'yes' if r['passed'] else 'NO'}")
    return "\n".join(rows)


def _gpu(entry: dict | None) -> str:
    if not entry:
        return "—"
    return "all" if entry["runs_wholly_on_gpu"] else f"{len(entry['fallback_ops'])} CPU"


def layer_lines(report: dict) -> list[str]:
    """What `effnet export` prints of an int8 layer report: the worst layers, the CSV, and
    what the layers kept in float cost against the plain int8 file."""
    from keras_effnet.export.layer_report import short

    lines = []
    if report.get("worst_layers"):
        lines.append("worst int8 layers (channel SQNR, SQNR; the float layer against the int8 "
                     "one on the calibration images):")
        lines += [f"  {row['rank']}. {short(row['layer'])} ({row['op']}): "
                  f"{row['channel_sqnr_db']:g} dB, {row['sqnr_db']:g} dB"
                  for row in report["worst_layers"]]
    if report.get("layer_report"):
        lines.append(f"layer report: {report['layer_report']} (every quantized layer, worst "
                     "first)")
    entry = report.get("float_layers")
    if entry and "plain_int8" in entry:
        plain = entry["plain_int8"]
        sqnr = ("" if "sqnr_db_gained" not in entry else
                f", SQNR {plain['sqnr_db']:.1f} -> {report['sqnr_db']:.1f} dB")
        accuracy = ("" if "accuracy_gained" not in entry else
                    f", accuracy {plain['artifact_accuracy']:.4f} -> "
                    f"{report['artifact_accuracy']:.4f}")
        lines.append(f"float layers: {entry['count']} kept in float with the ops reading them "
                     f"({len(entry['kept_in_float'])} ops): size {plain['size_bytes'] / 1e6:.3f}"
                     f" -> {report['size_bytes'] / 1e6:.3f} MB, latency "
                     f"{plain['median_latency_ms']:.2f} -> {report['median_latency_ms']:.2f} ms "
                     f"(1 image){sqnr}{accuracy}, against plain int8")
    return lines


def metadata_line(written: dict) -> str:
    """What a TFLite file's metadata says, in one line of a report."""
    if not written["written"]:
        return "metadata: none (--nometadata): on-device runtimes that need it will refuse the file"
    return (f"metadata: image classifier {written['name']!r}, input {written['input']['dtype']} "
            f"as (pixels - {written['input']['normalization_mean']:g}) / "
            f"{written['input']['normalization_std']:g}, "
            + (f"{written['labels']} labels" if written["labels"] else "no labels")
            + " (loads as is in MediaPipe Tasks / LiteRT)")
