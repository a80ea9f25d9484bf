"""Files in the tenant's space of the object store: `/files`, streamed both ways."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from loadbay.api.deps import FilesTenant, FileStoreDep, ReadTenant, SettingsDep
from loadbay.api.errors import error_responses
from loadbay.api.responses import json_response

router = APIRouter(prefix="/files", tags=["files"])


class StoredFile(BaseModel):
    name: str
    size: int


class FileEntry(StoredFile):
    lastModified: str


class FileList(BaseModel):
    data: list[FileEntry]


@router.put(
    "/{name:path}",
    status_code=201,
    summary="Upload a file (streamed; any size up to LOADBAY_MAX_FILE_BYTES)",
    response_model=StoredFile,
    responses=error_responses(400, 401, 403, 413, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def put_file(
    name: str,
    request: Request,
    tenant: FilesTenant,
    files: FileStoreDep,
    config: SettingsDep,
) -> Response:
    size = await files.put(tenant, name, request.stream(), max_bytes=config.max_file_bytes)
    return json_response({"name": name, "size": size}, status_code=201)


@router.get(
    "/{name:path}",
    summary="Download a file (streamed)",
    response_class=StreamingResponse,
    responses=error_responses(400, 401, 403, 404, 429),
)
async def get_file(
    name: str,
    tenant: ReadTenant,
    files: FileStoreDep,
) -> Response:
    size = await files.size(tenant, name)
    chunks: AsyncIterator[bytes] = await files.read(tenant, name)
    return StreamingResponse(
        chunks, media_type="application/octet-stream", headers={"Content-Length": str(size)}
    )


@router.get(
    "",
    summary="List the tenant's files",
    response_model=FileList,
    responses=error_responses(401, 403, 429),
)
async def list_files(
    tenant: ReadTenant,
    files: FileStoreDep,
    prefix: str = Query("", max_length=1024, description="Only names starting with this."),
) -> Response:
    found = await files.list(tenant, prefix)
    return json_response(
        {
            "data": [
                {"name": f.name, "size": f.size, "lastModified": f.last_modified.isoformat()}
                for f in found
            ]
        }
    )


@router.delete(
    "/{name:path}",
    status_code=204,
    summary="Delete a file",
    responses=error_responses(400, 401, 403, 429),
)
async def delete_file(
    name: str,
    tenant: FilesTenant,
    files: FileStoreDep,
) -> Response:
    await files.delete(tenant, name)
    return Response(status_code=204)
