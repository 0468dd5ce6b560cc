"""`/admin/keys`: an admin key makes, lists, rotates and revokes the API keys of the key file (hashed on disk)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from fastapi import Path as Path_
from pydantic import BaseModel, Field

from rag.api.deps import CallerDep, ServicesDep
from rag.api.errors import ApiError
from rag.api.keys import UnknownKeyError
from rag.api.schemas import CollectionName, ErrorResponse

router = APIRouter(prefix="/admin/keys", tags=["admin"])
ERRORS = {code: {"model": ErrorResponse} for code in (401, 403, 404, 422)}
KeyId = Annotated[str, Path_(max_length=64)]
GroupName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class KeyOut(BaseModel):
    id: str
    name: str
    groups: list[str]
    collections: list[str]
    admin: bool
    created: float


class KeyList(BaseModel):
    keys: list[KeyOut]


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    groups: list[GroupName] = Field(default_factory=list, max_length=100,
                                    description="The groups whose documents it may read (besides public ones).")
    collections: list[CollectionName | Annotated[str, Field(pattern=r"^\*$")]] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=100)
    admin: bool = False


class IssuedKey(BaseModel):
    key: str = Field(description="The key itself: shown this once, only its hash is kept.")
    entry: KeyOut


def _admin(caller) -> None:  # noqa: ANN001
    if not caller.admin:
        raise ApiError(403, "managing keys needs an admin key", "permission_error")


@router.get("", response_model=KeyList, responses=ERRORS)
def list_keys(services: ServicesDep, caller: CallerDep) -> KeyList:
    """Every key of the key file, without the keys themselves."""
    _admin(caller)
    return KeyList(keys=[KeyOut(**entry.public()) for entry in services.keys.entries()])


@router.post("", status_code=201, response_model=IssuedKey, responses=ERRORS)
def create_key(body: NewKey, services: ServicesDep, caller: CallerDep) -> IssuedKey:
    """A new key; the response holds it once."""
    _admin(caller)
    entry, key = services.keys.create(body.name, groups=tuple(body.groups), collections=tuple(body.collections),
                                      admin=body.admin)
    return IssuedKey(key=key, entry=KeyOut(**entry.public()))


@router.post("/{key_id}/rotate", response_model=IssuedKey, responses=ERRORS)
def rotate_key(key_id: KeyId, services: ServicesDep, caller: CallerDep) -> IssuedKey:
    """A new secret for the key (same id, groups and collections); the old one stops working at once."""
    _admin(caller)
    try:
        entry, key = services.keys.rotate(key_id)
    except UnknownKeyError:
        raise ApiError(404, f"no key {key_id!r}", "not_found_error") from None
    return IssuedKey(key=key, entry=KeyOut(**entry.public()))


@router.delete("/{key_id}", status_code=204, responses=ERRORS)
def revoke_key(key_id: KeyId, services: ServicesDep, caller: CallerDep) -> Response:
    _admin(caller)
    try:
        services.keys.revoke(key_id)
    except UnknownKeyError:
        raise ApiError(404, f"no key {key_id!r}", "not_found_error") from None
    return Response(status_code=204)
