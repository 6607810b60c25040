"""Build a SCRFD-format detector from YuNet by ONNX graph surgery, for testing InsightFace packs.

No real SCRFD model is available offline, so we re-express YuNet's outputs the way InsightFace's
SCRFD code expects them (9 outputs: score/bbox/kps for strides 8/16/32, 2 anchors per location) and
let insightface's own SCRFD decoding find faces with it.

Per location (column c, row r, stride s), YuNet predicts
    centre = ((c + d0) s, (r + d1) s), size = (exp(d2) s, exp(d3) s), landmark_i = ((c + k_xi) s, (r + k_yi) s)
and SCRFD decodes, around the anchor centre (c s, r s),
    box = (cx - l s, cy - t s, cx + r s, cy + b s), landmark_i = (cx + p_xi s, cy + p_yi s)
so  l = exp(d2)/2 - d0, t = exp(d3)/2 - d1, r = d0 + exp(d2)/2, b = d1 + exp(d3)/2  and  p = k.
The score is YuNet's sqrt(cls * obj) for the first anchor and 0 for the second.
Input: SCRFD feeds (RGB - 127.5) / 128; YuNet wants BGR 0..255, so the graph undoes that first.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRIDES = (8, 16, 32)


def scrfd_from_yunet(yunet_bytes: bytes) -> bytes:
    m = onnx.load_from_string(yunet_bytes)
    g = m.graph
    yunet_in = g.input[0].name
    nodes, inits = [], []

    def const(name, value, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    # --- input: (RGB - 127.5) / 128  ->  BGR 0..255 ------------------------------------------
    x = node("Mul", ["input.1", const("s_128", 128.0)], "s_pre0")
    x = node("Add", [x, const("s_1275", 127.5)], "s_pre1")
    pre = [*nodes]
    nodes.clear()
    pre.append(helper.make_node("Gather", [x, const("s_bgr", [2, 1, 0], np.int64)], [yunet_in], axis=1))

    # --- outputs ---------------------------------------------------------------------------
    shp = {k: const(f"s_shape{k}", [-1, k], np.int64) for k in (1, 4, 10)}
    zero = const("s_zero", 0.0)
    half = const("s_half", 0.5)
    outs = {"score": [], "bbox": [], "kps": []}
    for s in STRIDES:
        p = f"s{s}_"
        sc = node("Sqrt", [node("Mul", [f"cls_{s}", f"obj_{s}"], p + "co")], p + "sqrt")
        sc = node("Reshape", [sc, shp[1]], p + "sc")
        z = node("Mul", [sc, zero], p + "z")
        sc2 = node("Concat", [sc, z], p + "sc2", axis=1)
        outs["score"].append(node("Reshape", [sc2, shp[1]], f"score_{s}"))

        bb = node("Reshape", [f"bbox_{s}", shp[4]], p + "bb")
        nodes.append(helper.make_node("Split", [bb], [p + "d0", p + "d1", p + "d2", p + "d3"], axis=1, split=[1, 1, 1, 1]))
        hw = node("Mul", [node("Exp", [p + "d2"], p + "e2"), half], p + "hw")
        hh = node("Mul", [node("Exp", [p + "d3"], p + "e3"), half], p + "hh")
        l_ = node("Sub", [hw, p + "d0"], p + "l")
        t_ = node("Sub", [hh, p + "d1"], p + "t")
        r_ = node("Add", [p + "d0", hw], p + "r")
        b_ = node("Add", [p + "d1", hh], p + "b")
        ltrb = node("Concat", [l_, t_, r_, b_], p + "ltrb", axis=1)
        dup = node("Concat", [ltrb, ltrb], p + "ltrb2", axis=1)
        outs["bbox"].append(node("Reshape", [dup, shp[4]], f"bbox_scrfd_{s}"))

        k = node("Reshape", [f"kps_{s}", shp[10]], p + "k")
        k2 = node("Concat", [k, k], p + "k2", axis=1)
        outs["kps"].append(node("Reshape", [k2, shp[10]], f"kps_scrfd_{s}"))

    new_nodes = pre + list(g.node) + nodes
    del g.node[:]
    g.node.extend(new_nodes)
    g.initializer.extend(inits)
    del g.input[:]
    g.input.append(helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 640, 640]))
    del g.output[:]
    for name, width in [*((n, 1) for n in outs["score"]), *((n, 4) for n in outs["bbox"]), *((n, 10) for n in outs["kps"])]:
        g.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, width]))
    del g.value_info[:]
    onnx.checker.check_model(m)
    return m.SerializeToString()
