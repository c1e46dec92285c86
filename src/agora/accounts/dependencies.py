"""Typed dependencies that load the caller's account row, for endpoints that need more than
the token's claims: the signature says who may call (``CurrentUser``, ``StaffUser``,
``AdminUser``), and a disabled or deleted account is refused even with a valid token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from agora.accounts import service
from agora.accounts.models import User
from agora.core.dependencies import SessionDep
from agora.core.security import CurrentPrincipal, ensure_admin, ensure_staff


async def current_user(principal: CurrentPrincipal, session: SessionDep) -> User:
    """The caller's active account; 401 without a valid token or for a disabled account."""
    return await service.active_user(session, principal.user_id)


async def staff_user(user: Annotated[User, Depends(current_user)]) -> User:
    """The caller, who must be staff or admin now (the stored role, not the token's); 403."""
    ensure_staff(user.role)
    return user


async def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    """The caller, who must be an admin now; 403 otherwise."""
    ensure_admin(user.role)
    return user


CurrentUser = Annotated[User, Depends(current_user)]
StaffUser = Annotated[User, Depends(staff_user)]
AdminUser = Annotated[User, Depends(admin_user)]
