"""Model zoo: every released variant and every compound-scaling φ, counted beside the paper.

For each released variant (b0..b7, lite0..lite4, EfficientNetV2's v2-b0..v2-b3, v2-s, v2-m,
v2-l) a row holds its width, depth and resolution,
its trainable parameters and multiply-adds counted analytically by `keras_effnet.profile` from
the resolved config (no TensorFlow graph is built), and the published figures beside them with
measured/published ratios. For each φ (Eq. 3 of the paper, `scale(phi=φ)`) the reference is the
paper's own prediction: MACs(φ) = (α·β²·γ²)^φ × MACs(φ = 0), the φ = 0 MACs counted in this
same run; the ratio says how far channel, block and resolution rounding take the real network
from the ideal curve. φ < 0 scales down (φ = -1 is 192 px, width 0.91, depth 0.83) and is
accepted by `scale()`, so it is in the default series.
The paper's Table 3 (MobileNetV1/V2 and ResNet-50 scaled by one dimension or compound) is
counted too, beside the paper's FLOPs (`keras_effnet.scaling.TABLE3`: where the paper does not
state a row's multipliers, the row says what was inferred; where a figure is missed, why).
Writes `<results>/model_zoo.md` and `.json`.

    python benchmarks/model_zoo.py --variants=b0,b1,lite0 --phi=-1,0,1,2
"""


from absl import app, flags
from common import markdown_table, parse_phi, run, validate_phi_flag, write_results

FLAGS = flags.FLAGS
flags.DEFINE_list("variants", ["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7",
                               "lite0", "lite1", "lite2", "lite3", "lite4", "v2-b0", "v2-b1",
                               "v2-b2", "v2-b3", "v2-s", "v2-m", "v2-l"],
                  "released variants to count (empty: none)")
flags.DEFINE_list("phi", [str(p) for p in range(-1, 8)],
                  "compound-scaling coefficients φ to count (numbers; empty: none)")
flags.DEFINE_enum("base", "efficientnet", ["efficientnet", "lite"],
                  "base network of the φ rows (the released variants carry their own)")
flags.DEFINE_list("table3", ["mobilenet_v1", "mobilenet_v2", "resnet50"],
                  "bases whose rows of the paper's Table 3 to count (empty: none)")
flags.DEFINE_string("results", "benchmarks/results", "where the tables go")


validate_phi_flag(allow_empty=True)


def _ratio(measured, reference):
    return None if reference is None else measured / reference


def variant_row(name):
    from keras_effnet import VARIANTS, profile, scale
    from keras_effnet.catalogue import variant_key

    config = scale(name)
    published = VARIANTS[variant_key(name)]
    p = profile(config)
    return {"name": config.name, "kind": "variant", "base": config.base, "phi": None,
            "width": config.width, "depth": config.depth, "resolution": config.resolution,
            "blocks": len(config.blocks),
            "params": p.trainable_params, "params_published": published.params,
            "params_ratio": _ratio(p.trainable_params, published.params),
            "macs": p.macs, "macs_published": published.macs, "macs_predicted": None,
            "macs_ratio": _ratio(p.macs, published.macs), "top1_published": published.top1}


def phi_row(phi, base, anchor_macs):
    from keras_effnet import ALPHA, BASES, BETA, GAMMA, profile, scale

    config = scale(phi=phi, base=base)
    p = profile(config)
    predicted = (ALPHA * BETA ** 2 * GAMMA ** 2) ** phi * anchor_macs
    return {"name": config.name, "kind": "phi", "base": config.base, "phi": phi,
            "width": config.width, "depth": config.depth, "resolution": config.resolution,
            "resolution_exact": BASES[base].resolution * GAMMA ** phi, "blocks": len(config.blocks),
            "params": p.trainable_params, "params_published": None, "params_ratio": None,
            "macs": p.macs, "macs_published": None, "macs_predicted": predicted,
            "macs_ratio": _ratio(p.macs, predicted), "top1_published": None}


COLUMNS = ["model", "width", "depth", "res", "blocks", "params", "published params",
           "params ratio", "MACs (B)", "published MACs (B)", "predicted MACs (B)", "MACs ratio",
           "published top-1"]


def table3_row(row):
    from keras_effnet import profile

    config = row.config()
    p = profile(config)
    return {"base": row.base, "row": row.label, "name": config.name,
            "multipliers": dict(row.multipliers), "resolution": config.resolution,
            "repeats": [s.repeats for s in config.stages], "params": p.trainable_params,
            "macs": p.macs, "macs_paper": row.macs, "macs_ratio": p.macs / row.macs,
            "top1_paper": row.top1, "note": row.note}


TABLE3_COLUMNS = ["Table 3 row", "model", "res", "params", "MACs (B)", "paper (B)", "ratio",
                  "paper top-1"]


def _display(row):
    def billions(x):
        return None if x is None else x / 1e9

    return {"model": row["name"], "width": row["width"], "depth": row["depth"],
            "res": row["resolution"], "blocks": row["blocks"], "params": row["params"],
            "published params": row["params_published"], "params ratio": row["params_ratio"],
            "MACs (B)": billions(row["macs"]),
            "published MACs (B)": billions(row["macs_published"]),
            "predicted MACs (B)": billions(row["macs_predicted"]),
            "MACs ratio": row["macs_ratio"], "published top-1": row["top1_published"]}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; this script takes flags only")
    from keras_effnet import ALPHA, BETA, GAMMA, profile, scale
    from keras_effnet.catalogue import FAMILIES
    from keras_effnet.scaling import TABLE3

    phis = parse_phi(FLAGS.phi, allow_empty=True)
    unknown = sorted(set(FLAGS.table3) - set(FAMILIES))
    if unknown:
        raise app.UsageError(f"--table3: {unknown}; accepted: {', '.join(FAMILIES)}")
    try:  # a bad name or a φ too small for the base: say so before counting anything
        for name in FLAGS.variants:
            scale(name)
        for phi in phis:
            scale(phi=phi, base=FLAGS.base)
    except (ValueError, TypeError) as e:
        raise app.UsageError(str(e)) from None
    rows = []
    for name in FLAGS.variants:
        rows.append(variant_row(name))
        print(f"counted {rows[-1]['name']}", flush=True)
    anchor = profile(scale(phi=0, base=FLAGS.base)).macs
    for phi in phis:
        rows.append(phi_row(phi, FLAGS.base, anchor))
        print(f"counted {rows[-1]['name']}", flush=True)
    table3 = [table3_row(r) for r in TABLE3 if r.base in FLAGS.table3]
    factor = ALPHA * BETA ** 2 * GAMMA ** 2
    notes = (
        "\n\nparams: trainable, 1000-class head, counted analytically from the config. "
        "MACs: multiply-adds of conv/depthwise/dense (the paper's FLOPs). Published: paper "
        "Table 2 (B0–B7), the Lite reference's unit test and README (lite0–lite4), "
        "keras.applications' counts and the authors' README (v2-b0–b3) / the V2 paper's "
        "Table 7 (v2-s, m, l). Predicted "
        f"(φ rows): (α·β²·γ²)^φ × MACs(φ=0) with α·β²·γ² = {factor:.4f} and MACs(φ=0) = "
        f"{anchor / 1e9:.4f} B of the {FLAGS.base} base counted in this run. Ratio: "
        "measured / published, or measured / predicted. φ rows: depth α^φ (repeats rounded to "
        "nearest), width β^φ (channels to multiples of 8), resolution 224·γ^φ to a multiple of 8.")
    if table3:
        notes += ("\n\n## The paper's Table 3\n\n" + markdown_table(
            [{"Table 3 row": f"{r['base']} {r['row']}", "model": r["name"],
              "res": r["resolution"], "params": r["params"], "MACs (B)": r["macs"] / 1e9,
              "paper (B)": r["macs_paper"] / 1e9, "ratio": r["macs_ratio"],
              "paper top-1": r["top1_paper"]} for r in table3], TABLE3_COLUMNS)
            + "\n\nTable 3 rows use the reference's depth rounding (ceil). Notes:\n"
            + "".join(f"\n- {r['base']} {r['row']}: {r['note']}" for r in table3 if r["note"]))
    write_results(FLAGS.results, "model_zoo", rows,
                  markdown_table([_display(r) for r in rows], COLUMNS) + notes,
                  coefficients={"alpha": ALPHA, "beta": BETA, "gamma": GAMMA,
                                "macs_factor_per_phi": factor},
                  phi_base=FLAGS.base, phi0_macs=anchor, table3=table3)

if __name__ == "__main__":
    run(main)
