"""The model registry: register (or evolve) a model's schema, list models, show one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from api.deps import AdminKey, ReadKey, ServiceDep
from monitor.schema import ModelSchema

router = APIRouter(prefix="/v1/models", tags=["models"])


class ModelPublic(BaseModel):
    name: str
    task: str
    classes: list[str]
    positive_class: str | None = None
    features: dict[str, str]
    segments: list[str]
    embedding: dict[str, Any] | None = None
    description: str | None = None
    owner: str | None = None
    schema_version: int
    created_at: str
    updated_at: str


class ModelRegistered(ModelPublic):
    outcome: str
    changes: list[str]


class ModelDetail(ModelPublic):
    versions: list[dict[str, Any]]
    schema_history: list[dict[str, Any]]


@router.post("", status_code=201, response_model=ModelRegistered)
def register_model(spec: ModelSchema, service: ServiceDep, principal: AdminKey, response: Response) -> dict[str, Any]:
    """Register a model, or add features/segments to it (a new schema version).
    Changing a feature's kind or the task is refused with 409."""
    result = service.registry.register(spec)
    if result.outcome != "created":
        response.status_code = 200
    if result.outcome != "unchanged":
        service.audit.record(principal.id, f"model.{result.outcome}", spec.name, {"changes": result.changes})
    return {**result.model.to_dict(), "outcome": result.outcome, "changes": result.changes}


@router.get("", response_model=list[ModelPublic])
def list_models(service: ServiceDep, _: ReadKey) -> list[dict[str, Any]]:
    return [m.to_dict() for m in service.registry.list()]


@router.get("/{model}", response_model=ModelDetail)
def get_model(model: str, service: ServiceDep, _: ReadKey) -> dict[str, Any]:
    registered = service.registry.get(model)
    return {
        **registered.to_dict(),
        "versions": service.registry.versions(model),
        "schema_history": service.registry.schema_history(model),
    }
