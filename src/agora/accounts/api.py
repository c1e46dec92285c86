"""The accounts API: register, OAuth2 password login, refresh, logout, the caller's account,
password change, and staff/admin views of accounts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from agora.accounts import service
from agora.accounts.dependencies import AdminUser, CurrentUser, StaffUser
from agora.accounts.schemas import (
    ChangePasswordRequest,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
    UserResponse,
    UserUpdateRequest,
)
from agora.core.dependencies import RateLimiterDep, RedisDep, SessionDep, SettingsDep
from agora.core.errors import error_response
from agora.core.ratelimit import RateLimit, client_ip, rate_limit
from agora.settings import Settings

router = APIRouter(tags=["accounts"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _password_budgets(
    settings: Settings, email: str, request: Request
) -> list[tuple[RateLimit, str]]:
    """What a password guess spends: its account from its address, its address across
    accounts, and the account from anywhere (a slower backstop against guesses spread over many
    addresses). Keyed this way, nobody can lock an account out from the addresses they do not
    hold, short of the backstop. Only failures count: a success gives its units back."""
    address = client_ip(request)
    return [
        (rate_limit("login", settings.rate_limit_login), f"account:{email}|ip:{address}"),
        (rate_limit("login-ip", settings.rate_limit_login_ip), f"ip:{address}"),
        (rate_limit("login-account", settings.rate_limit_login_account), f"account:{email}"),
    ]


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserResponse,
    summary="Create a customer account",
)
async def register(
    body: RegisterRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> UserResponse:
    """Register; 409 ``email_taken`` if the email has an account, 429 past the per-IP budget."""
    await limiter.enforce(
        rate_limit("register-ip", settings.rate_limit_register), client_ip(request)
    )
    user = await service.register(
        session, email=body.email, password=body.password, full_name=body.full_name
    )
    response.headers["Location"] = str(request.url_for("get_user", user_id=user.id).path)
    return UserResponse.model_validate(user)


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="Log in (OAuth2 password flow)",
    responses={401: {"description": "Wrong email or password"}},
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> TokenResponse:
    """Exchange email (``username``) and password for an access and a refresh token."""
    budgets = _password_budgets(settings, service.normalise_email(form.username), request)
    await limiter.enforce_all(budgets)
    pair = await service.login(session, settings, form.username, form.password)
    await limiter.refund(budgets)
    response.headers.update(NO_STORE)
    return TokenResponse.model_validate(pair)


@router.post(
    "/auth/refresh",
    response_model=TokenResponse,
    summary="Rotate a refresh token for a new pair",
    responses={401: {"description": "Invalid, expired, revoked or reused refresh token"}},
)
async def refresh(
    body: RefreshRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> TokenResponse | Response:
    """Spend the refresh token for a new pair; a reused one revokes its whole session and the
    user's access tokens (401)."""
    outcome = await service.refresh(session, redis, settings, body.refresh_token)
    if isinstance(outcome, service.RefreshTokenReused):
        return error_response(outcome, request.url.path)
    response.headers.update(NO_STORE)
    return TokenResponse.model_validate(outcome)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End the session of a refresh token",
)
async def logout(
    body: RefreshRequest, session: SessionDep, redis: RedisDep, settings: SettingsDep
) -> None:
    """Revoke the refresh token's whole family and every access token of its user (they are
    refused at once, their WebSockets closed); answers 204 whatever the token."""
    await service.logout(session, redis, settings, body.refresh_token)


@router.get("/me", response_model=UserResponse, summary="The caller's account")
async def me(user: CurrentUser) -> UserResponse:
    """The account of the access token's owner."""
    return UserResponse.model_validate(user)


@router.post(
    "/me/password",
    response_model=TokenResponse,
    summary="Change the caller's password",
)
async def change_password(
    body: ChangePasswordRequest,
    user: CurrentUser,
    request: Request,
    response: Response,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> TokenResponse:
    """Replace the password (403 ``wrong_password``); ends every session and access token,
    returns a new session."""
    budgets = _password_budgets(settings, user.email, request)
    await limiter.enforce_all(budgets)
    pair = await service.change_password(
        session, redis, settings, user, body.current_password, body.new_password
    )
    await limiter.refund(budgets)
    response.headers.update(NO_STORE)
    return TokenResponse.model_validate(pair)


@router.get("/users/{user_id}", response_model=UserResponse, summary="An account (staff)")
async def get_user(user_id: uuid.UUID, _: StaffUser, session: SessionDep) -> UserResponse:
    """Any account, for staff."""
    return UserResponse.model_validate(await service.get_user(session, user_id))


@router.patch("/users/{user_id}", response_model=UserResponse, summary="Change a role (admin)")
async def update_user(
    user_id: uuid.UUID,
    body: UserUpdateRequest,
    _: AdminUser,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> UserResponse:
    """Change an account's role or disable it (which ends its sessions); either revokes its
    access tokens."""
    user = await service.update_user(
        session, redis, settings, user_id, role=body.role, is_active=body.is_active
    )
    return UserResponse.model_validate(user)
