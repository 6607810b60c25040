"""Which organisations' footage and evidence a caller may see.

One function decides it, so user roles (inspectors of a region, a later issue) plug in here and every
footage route follows: for now an admin key sees every organisation; terminal and ingest keys see no
footage at all.
"""
from __future__ import annotations

from api.keys import Principal


def can_see_org(principal: Principal, org_id: str | None) -> bool:
    """May ``principal`` see cameras, footage, holds and exports of organisation ``org_id``?"""
    if principal.role == "admin":
        return True
    return False
