"""Dependencies injected into the routes: the app's services, its settings, and the caller's API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from rag.api.actions import Caller, caller_for_key
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


def get_caller(
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Caller:
    return caller_for_key(services.settings.api.keys, services.keys,
                          bearer.credentials if bearer is not None else header)


CallerDep = Annotated[Caller, Depends(get_caller)]
