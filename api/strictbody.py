"""Request bodies with one meaning. A JSON object that names a key twice, or a form that sends a
single-value field twice, is refused with 400 and a reason: frameworks keep the last value, a proxy,
a log or a person reading the request may take the first, and the two would disagree (e.g. two
``insured_id`` fields in one face check, or two ``amount``s in one settlement)."""
from __future__ import annotations

from fastapi import Request

from api.errors import ApiError
from kernel.strictjson import DuplicateKey, loads_unique


async def unique_json_keys(request: Request) -> None:
    """Dependency of every route (api/app.py): a JSON body must not repeat a key in any object."""
    if "json" not in request.headers.get("content-type", "").lower():
        return
    body = await request.body()  # cached: the route's own parsing reads the same bytes
    if not body:
        return
    try:
        loads_unique(body)
    except DuplicateKey as e:
        raise ApiError(400, "duplicate_key", f"the JSON body is ambiguous: {e}") from None
    except (ValueError, RecursionError):  # not JSON at all: the route's own parsing answers that (422)
        return


def single_fields(*names: str):
    """Dependency of a multipart route: each of ``names`` at most once."""

    async def check(request: Request) -> None:
        form = await request.form()  # parsed once: FastAPI already read it for the route's parameters
        for name in names:
            n = len(form.getlist(name))
            if n > 1:
                raise ApiError(400, "repeated_field", f"the form field {name!r} may appear once, not {n} times")

    return check
