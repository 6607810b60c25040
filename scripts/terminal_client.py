"""Reference face-pay terminal client: sign a capture with the device key and send it to POST /v1/verify.

    # once per device: make its key pair (the private key stays on the device), register the public key
    python scripts/terminal_client.py new-key device.pem            # prints the public key (base64)
    dualcheck terminals device-key add TERMINAL --public-key device.pub

    # each capture
    python scripts/terminal_client.py verify --url https://dualcheck.example --api-key dck_... \\
        --terminal-id TERMINAL --device-key device.pem --device-key-id KEY_ID \\
        --insured-id P123 --image capture.jpg --liveness-method infrared --liveness-passed true \\
        --liveness-score 0.97 [--settlement-ref S-1]

Prints the HTTP status and the JSON answer; exit 0 on 200, 1 otherwise. Needs `cryptography` and
`httpx`. The signed message is documented in docs/verification.md; this file is the example.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def signed_fields(private_key: Ed25519PrivateKey, key_id: str, terminal_id: str, image: bytes, *,
                  liveness_method: str | None = None, liveness_passed: bool | None = None,
                  liveness_score: float | None = None, signed_at: datetime | None = None) -> dict[str, str]:
    """The form fields a terminal adds to its capture: liveness result and attestation."""
    sha = hashlib.sha256(image).hexdigest()
    when = (signed_at or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = {}
    if liveness_method is not None:
        fields["liveness_method"] = liveness_method
        fields["liveness_passed"] = "true" if liveness_passed else "false"
        if liveness_score is not None:
            fields["liveness_score"] = f"{liveness_score:.4f}"
    # the message: fixed prefix, terminal id, capture hash, time, and the liveness fields exactly as sent
    message = "\n".join(["dualcheck-capture-v1", terminal_id, sha, when, fields.get("liveness_method", ""),
                         fields.get("liveness_passed", ""), fields.get("liveness_score", "")]).encode()
    fields.update(attestation_key_id=key_id, attestation_signed_at=when, capture_sha256=sha,
                  attestation_signature=base64.b64encode(private_key.sign(message)).decode())
    return fields


def verify(url: str, api_key: str, insured_id: str, image: bytes, fields: dict[str, str],
           settlement_ref: str | None = None, timeout: float = 30.0) -> httpx.Response:
    data = {"insured_id": insured_id, **fields}
    if settlement_ref:
        data["settlement_ref"] = settlement_ref
    return httpx.post(f"{url.rstrip('/')}/v1/verify", data=data, timeout=timeout,
                      files={"image": ("capture.jpg", image, "image/jpeg")},
                      headers={"Authorization": f"Bearer {api_key}"})


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{path} is not an Ed25519 private key")
    return key


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    nk = sub.add_parser("new-key", help="make a device key pair; print the public key")
    nk.add_argument("private_key_file", type=Path)
    v = sub.add_parser("verify", help="sign a capture and send it")
    v.add_argument("--url", required=True)
    v.add_argument("--api-key", required=True)
    v.add_argument("--terminal-id", required=True)
    v.add_argument("--device-key", type=Path, required=True, help="PEM file of the device's private key")
    v.add_argument("--device-key-id", required=True, help="the key id dualcheck gave when it was registered")
    v.add_argument("--insured-id", required=True)
    v.add_argument("--image", type=Path, required=True)
    v.add_argument("--settlement-ref")
    v.add_argument("--liveness-method", choices=("structured_light", "infrared", "binocular"))
    v.add_argument("--liveness-passed", choices=("true", "false"))
    v.add_argument("--liveness-score", type=float)
    a = ap.parse_args(argv)
    if a.cmd == "new-key":
        key = Ed25519PrivateKey.generate()
        a.private_key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
        a.private_key_file.chmod(0o600)
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        print(base64.b64encode(raw).decode())
        return 0
    image = a.image.read_bytes()
    fields = signed_fields(load_private_key(a.device_key), a.device_key_id, a.terminal_id, image,
                           liveness_method=a.liveness_method, liveness_passed=a.liveness_passed == "true",
                           liveness_score=a.liveness_score)
    r = verify(a.url, a.api_key, a.insured_id, image, fields, a.settlement_ref)
    print(r.status_code)
    print(json.dumps(r.json(), ensure_ascii=False, indent=1))
    return 0 if r.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
