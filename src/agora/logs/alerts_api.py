"""The alert API (staff): rules and their episodes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from agora.core.dependencies import SessionDep, SettingsDep
from agora.core.security import StaffPrincipal
from agora.logs import alerts
from agora.logs.models import AlertState
from agora.logs.schemas import (
    AlertEpisodeResponse,
    AlertRuleCreate,
    AlertRuleCreated,
    AlertRulePatch,
    AlertRuleResponse,
)

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.post(
    "/rules",
    status_code=status.HTTP_201_CREATED,
    response_model=AlertRuleCreated,
    summary="Create an alert rule; its webhook secret is shown once",
)
async def create_rule(
    body: AlertRuleCreate,
    response: Response,
    _: StaffPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> AlertRuleCreated:
    """Create a rule; it is evaluated from the next round on."""
    rule, secret = await alerts.create_rule(
        session, body.model_dump(), allow_private=settings.webhook_allow_private
    )
    response.headers["Location"] = f"/api/v1/alerts/rules/{rule.id}"
    created = AlertRuleResponse.model_validate(rule).model_dump()
    return AlertRuleCreated(**created, webhook_secret=secret)


@router.get("/rules", response_model=list[AlertRuleResponse], summary="List the alert rules")
async def list_rules(_: StaffPrincipal, session: SessionDep) -> list[AlertRuleResponse]:
    """Every rule with its state."""
    return [AlertRuleResponse.model_validate(rule) for rule in await alerts.list_rules(session)]


@router.get("/rules/{rule_id}", response_model=AlertRuleResponse, summary="One alert rule")
async def get_rule(rule_id: uuid.UUID, _: StaffPrincipal, session: SessionDep) -> AlertRuleResponse:
    """A rule with its state and last value."""
    return AlertRuleResponse.model_validate(await alerts.get_rule(session, rule_id))


@router.patch("/rules/{rule_id}", response_model=AlertRuleResponse, summary="Change a rule")
async def update_rule(
    rule_id: uuid.UUID,
    body: AlertRulePatch,
    _: StaffPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> AlertRuleResponse:
    """Change the fields sent."""
    changes = body.model_dump(exclude_unset=True)
    rule = await alerts.update_rule(
        session, rule_id, changes, allow_private=settings.webhook_allow_private
    )
    return AlertRuleResponse.model_validate(rule)


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a rule")
async def delete_rule(rule_id: uuid.UUID, _: StaffPrincipal, session: SessionDep) -> None:
    """Delete a rule, its episodes and their delivery log."""
    await alerts.delete_rule(session, rule_id)


@router.get("", response_model=list[AlertEpisodeResponse], summary="Alert episodes")
async def list_episodes(
    _: StaffPrincipal,
    session: SessionDep,
    rule_id: uuid.UUID | None = None,
    state: Annotated[AlertState | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AlertEpisodeResponse]:
    """Pending, firing and resolved episodes, most recent first."""
    episodes = await alerts.list_episodes(session, rule_id=rule_id, status=state, limit=limit)
    return [AlertEpisodeResponse.model_validate(episode) for episode in episodes]
