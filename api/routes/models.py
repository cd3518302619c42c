"""The model registry: register (or evolve) a model's schema, list models, show one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from api.deps import AdminKey, AppDep, ReadKey
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
def register_model(spec: ModelSchema, app: AppDep, principal: AdminKey, response: Response) -> dict[str, Any]:
    """Register a model, or add features/segments to it (a new schema version).
    Changing a feature's kind or the task is refused with 409."""
    result = app.models.register(principal.id, spec)
    if result["outcome"] != "created":
        response.status_code = 200
    return result


@router.get("", response_model=list[ModelPublic])
def list_models(app: AppDep, _: ReadKey) -> list[dict[str, Any]]:
    return app.models.list()


@router.get("/{model}", response_model=ModelDetail)
def get_model(model: str, app: AppDep, _: ReadKey) -> dict[str, Any]:
    return app.models.get(model)
