"""Terminals' device keys (the public halves of the keys they sign captures with) and the attestation rule.

Admin keys only: registering a device key is what makes a terminal's liveness verdicts believed, so a
terminal (or its institution) never registers its own (docs/verification.md).
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.deps import require, runtime
from api.keys import Principal
from api.responses import AUTHENTICATED, errors
from api.services import Services
from facepay.attestation import (
    add_device_key,
    key_view,
    list_device_keys,
    revoke_device_key,
    set_org_requirement,
    set_terminal_requirement,
)
from storage.audit import audit
from storage.db import session_scope
from storage.models import Organisation, Terminal

router = APIRouter(prefix="/v1", tags=["terminals"], responses=errors(*AUTHENTICATED, 409))


class DeviceKeyIn(BaseModel):
    public_key: str = Field(..., max_length=2000, description="Ed25519 public key: PEM (SubjectPublicKeyInfo) "
                            "or base64 of its 32 raw bytes.")
    label: str = Field("", max_length=200, description="Which device (serial number, model).")


class TerminalRuleIn(BaseModel):
    required: bool | None = Field(..., description="true/false: this terminal's own rule; null: as its organisation.")


class OrgRuleIn(BaseModel):
    required: bool


@router.post("/terminals/{terminal_id}/device-keys", status_code=201)
def create_device_key(terminal_id: str, body: DeviceKeyIn, request: Request, rt: Services = Depends(runtime),
                      who: Principal = Depends(require("admin"))):
    """Register a device key for a terminal; its `key_id` is what the terminal sends with each signature."""
    with session_scope(rt.sessions) as db:
        key = add_device_key(db, terminal_id, body.public_key, body.label)
        audit(db, actor=who.actor, action="device_key.add", outcome="ok", org_id=key.org_id,
              subject=f"terminal:{terminal_id}", request_id=request.state.request_id,
              detail={"key_id": key.id, "fingerprint": key.fingerprint, "label": key.label})
        return key_view(key)


@router.get("/terminals/{terminal_id}/device-keys")
def get_device_keys(terminal_id: str, rt: Services = Depends(runtime), who: Principal = Depends(require("admin"))):
    """A terminal's device keys (revoked ones too) and whether it must attest its captures."""
    with session_scope(rt.sessions) as db:
        keys = [key_view(k) for k in list_device_keys(db, terminal_id)]
        term = db.get(Terminal, terminal_id)
        org = db.get(Organisation, term.org_id)
        return {"terminal_id": terminal_id, "require_attestation": term.require_attestation,
                "org_require_attestation": org.require_attestation,
                "attestation_required": term.require_attestation if term.require_attestation is not None
                else org.require_attestation, "keys": keys}


@router.delete("/terminals/{terminal_id}/device-keys/{key_id}")
def delete_device_key(terminal_id: str, key_id: str, request: Request, rt: Services = Depends(runtime),
                      who: Principal = Depends(require("admin"))):
    """Revoke a device key: signatures made with it are refused from now on (it stays listed)."""
    with session_scope(rt.sessions) as db:
        key = revoke_device_key(db, terminal_id, key_id)
        audit(db, actor=who.actor, action="device_key.revoke", outcome="ok", org_id=key.org_id,
              subject=f"terminal:{terminal_id}", request_id=request.state.request_id, detail={"key_id": key.id})
        return key_view(key)


@router.put("/terminals/{terminal_id}/attestation")
def put_terminal_rule(terminal_id: str, body: TerminalRuleIn, request: Request, rt: Services = Depends(runtime),
                      who: Principal = Depends(require("admin"))):
    """Require (or not) a valid attestation of this terminal's captures; null follows its organisation."""
    with session_scope(rt.sessions) as db:
        set_terminal_requirement(db, terminal_id, body.required)
        audit(db, actor=who.actor, action="terminal.attestation", outcome="ok", subject=f"terminal:{terminal_id}",
              request_id=request.state.request_id, detail={"required": body.required})
    rt.verifier.terminal_checks.rules.forget()  # this process acts on the new rule at once (others within seconds)
    return {"terminal_id": terminal_id, "require_attestation": body.required}


@router.put("/orgs/{org_id}/attestation")
def put_org_rule(org_id: str, body: OrgRuleIn, request: Request, rt: Services = Depends(runtime),
                 who: Principal = Depends(require("admin"))):
    """Require (or not) a valid attestation of every capture of the organisation's terminals (a terminal's
    own rule, where set, wins)."""
    with session_scope(rt.sessions) as db:
        set_org_requirement(db, org_id, body.required)
        audit(db, actor=who.actor, action="org.attestation", outcome="ok", org_id=org_id,
              request_id=request.state.request_id, detail={"required": body.required})
    rt.verifier.terminal_checks.rules.forget()
    return {"org_id": org_id, "require_attestation": body.required}
