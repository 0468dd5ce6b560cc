"""Dependencies injected into the routes: the app's services, its settings, and the caller's API key."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from rag.api.errors import ApiError
from rag.api.services import Services
from rag.settings import Settings


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="An API key from RAG_API__KEYS (when keys are configured).")
_header = APIKeyHeader(name="X-API-Key", auto_error=False)


class Caller:
    """Who is calling: their key (None when the service needs none) and the collections it opens."""

    def __init__(self, key: str | None, collections: frozenset[str] | None) -> None:
        self.key = key
        self.collections = collections  # None: every collection

    def check(self, collection: str) -> None:
        if self.collections is not None and collection not in self.collections:
            raise ApiError(403, f"this API key may not use the collection {collection!r}", "permission_error")


def get_caller(
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Caller:
    keys = settings.api.keys
    if not keys:
        return Caller(None, None)
    allowed = {key: ["*"] for key in keys} if isinstance(keys, list) else keys
    given = bearer.credentials if bearer is not None else header
    if not given:
        raise ApiError(401, "an API key is required: send 'Authorization: Bearer <key>'", "authentication_error")
    for key, collections in allowed.items():
        if secrets.compare_digest(given.encode(), key.encode()):
            return Caller(key, None if "*" in collections else frozenset(collections))
    raise ApiError(401, "invalid API key", "authentication_error")


CallerDep = Annotated[Caller, Depends(get_caller)]
