"""ONNX Runtime session creation, kept apart from the models (as in Immich's machine-learning).

Every model in a pack gets its session from here, so threading and logging are configured once.
Sessions are built from bytes that were hash-verified a moment earlier (see packs.read_verified),
never re-read from a path that could have changed in between.
"""
from __future__ import annotations

import onnxruntime as ort

# SFace declares its initializers as graph inputs; ORT warns about each one at load. Harmless noise.
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


def create_session(model: bytes, *, threads: int = 1) -> ort.InferenceSession:
    """A CPU session for a serialized ONNX model. ``InferenceSession.run`` is thread-safe."""
    return ort.InferenceSession(model, sess_options=session_options(threads), providers=PROVIDERS)
