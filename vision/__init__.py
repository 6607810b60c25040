"""Face detection, quality gating, recognition and matching for face-pay verification.

Entry points: ``pipeline.FacePipeline`` (image -> analysed faces), ``matching`` (decisions),
``image.decode_image`` (untrusted bytes -> pixels), ``packs`` / ``cli`` (model provisioning).
"""
