"""Operations: readiness with index stats, and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rag.api.deps import CallerDep, ServicesDep
from rag.api.schemas import CollectionList, Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(services: ServicesDep) -> JSONResponse:
    """200 once the models are loaded and the indexes open (with their stats, unless keys are needed: counts of
    documents are not for every caller); 503 before that or on failure."""
    collections = {}
    keys_needed = bool(services.settings.api.keys) or bool(services.keys)
    for name in [] if keys_needed else services.collections.names():
        try:
            collections[name] = services.collections.get(name).stats()
        except Exception as exc:  # noqa: BLE001 - one unreadable index must not hide the others
            collections[name] = {"error": f"{type(exc).__name__}: {exc}"}
    ready = services.ready.is_set()
    status = "ok" if ready else ("error" if services.warm_up_error else "starting")
    body = Health(status=status, ready=ready, error=services.warm_up_error, collections=collections)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)


@router.get("/collections", response_model=CollectionList, tags=["documents"])
def collections(services: ServicesDep, caller: CallerDep) -> CollectionList:
    """The collections this key may use."""
    names = services.collections.names()
    return CollectionList(collections=[n for n in names if caller.collections is None or n in caller.collections])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(services: ServicesDep) -> Response:
    """Requests, errors and latency per route; time per chain stage; answers by outcome."""
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
