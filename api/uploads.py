"""Reading uploaded files with an explicit size limit and clear refusals."""
from __future__ import annotations

from fastapi import UploadFile

from api.errors import ApiError


async def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, "too_large", f"{upload.filename or 'upload'} is over the limit of {max_bytes} bytes")
    if not data:
        raise ApiError(400, "empty", f"{upload.filename or 'upload'} is empty")
    return data
