"""The graph rewrites applied when a session is built must not change a single output value."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from vision.packs import YUNET_SFACE, read_verified
from vision.sessions import PROVIDERS, branchless_prelu, constant_initializers, create_session, session_options


def _model(models_dir, role: str) -> bytes:
    f = YUNET_SFACE.file(role)
    return read_verified(models_dir / f.name, f.sha256)


def _prelu_model(slopes: np.ndarray) -> bytes:
    c = slopes.size
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 4, 4])
    node = helper.make_node("PRelu", ["x", "slope"], ["y"])
    graph = helper.make_graph([node], "p", [x], [y], [numpy_helper.from_array(slopes.reshape(c, 1, 1), "slope")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7).SerializeToString()


@pytest.mark.parametrize("slopes", [
    np.array([0.0, 0.25, 1.0], np.float32),             # all in [0, 1]: the max(x, s*x) form
    np.array([-0.8, 0.3, 1.12], np.float32),            # outside [0, 1]: the relu + s*min(x, 0) form
])
def test_branchless_prelu_equals_prelu(slopes):
    model = _prelu_model(slopes)
    rewritten = branchless_prelu(model)
    assert not any(n.op_type == "PRelu" for n in onnx.load_from_string(rewritten).graph.node)
    x = np.random.default_rng(1).normal(size=(1, slopes.size, 4, 4)).astype(np.float32) * 10
    expected = np.where(x > 0, x, x * slopes.reshape(1, -1, 1, 1))
    got = create_session(model).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, expected)


def test_model_without_prelu_is_returned_as_is(models_dir):
    yunet = _model(models_dir, "detector")
    assert branchless_prelu(yunet) is yunet


def test_sface_embeddings_unchanged_on_real_faces(models_dir, pipeline, load):
    """The shipped SFace graph (27 PRelu) and the session's rewritten graph agree bit for bit."""
    raw = _model(models_dir, "recognizer")
    shipped = ort.InferenceSession(constant_initializers(raw), sess_options=session_options(1), providers=PROVIDERS)
    ours = create_session(raw)
    name = shipped.get_inputs()[0].name
    for rel in ("faces/obama.jpg", "faces/biden.jpg", "faces/obama2.jpg"):
        crop = pipeline.analyze(load(rel))[0].aligned[:, :, ::-1]  # RGB, as the recogniser feeds it
        blob = crop[None].transpose(0, 3, 1, 2).astype(np.float32)
        np.testing.assert_array_equal(ours.run(None, {name: blob})[0], shipped.run(None, {name: blob})[0])
