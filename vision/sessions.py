"""ONNX Runtime session creation, kept apart from the models (as in Immich's machine-learning).

Every model in a pack gets its session from here, so threading and logging are configured once.
Sessions are built from bytes that were hash-verified a moment earlier (see packs.read_verified),
never re-read from a path that could have changed in between.
"""
from __future__ import annotations

import onnxruntime as ort

# Keep ORT's own warnings out of the service log.
ort.set_default_logger_severity(3)

PROVIDERS = ["CPUExecutionProvider"]


def session_options(threads: int) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    # Parallelism comes from request threads; one inter-op thread avoids oversubscribing small hosts.
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


def constant_initializers(model: bytes) -> bytes:
    """The same model with initializers no longer listed as graph inputs.

    Older exporters (SFace among them) list every weight as an overridable input, which stops
    ONNX Runtime from folding constants and fusing layers. Nothing ever feeds those inputs, so
    dropping them changes no output and makes SFace about a quarter faster on this CPU."""
    import onnx

    m = onnx.load_from_string(model)
    inits = {i.name for i in m.graph.initializer}
    if not any(i.name in inits for i in m.graph.input):
        return model
    keep = [i for i in m.graph.input if i.name not in inits]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    return m.SerializeToString()


def create_session(model: bytes, *, threads: int = 1) -> ort.InferenceSession:
    """A CPU session for a serialized ONNX model. ``InferenceSession.run`` is thread-safe."""
    return ort.InferenceSession(constant_initializers(model), sess_options=session_options(threads),
                                providers=PROVIDERS)
