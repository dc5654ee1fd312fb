"""Signing in and out: a session token for API clients, the same token as an HttpOnly cookie for browsers."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from monitor.auth.models import Role, User
from monitor.auth.service import LoginThrottle, authenticate, end_session, start_session
from monitor.web.bodies import api_router
from monitor.web.deps import SESSION_COOKIE, PrincipalDep, SessionDep, SettingsDep
from monitor.web.openapi import problems

router = api_router(prefix="/api/v1/auth", tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserPublic(BaseModel):
    """A user as others see them: never the password hash."""

    id: int
    username: str
    full_name: str
    role: Role
    role_label: str
    district_code: str | None
    language: str

    @classmethod
    def build(cls, user: User) -> UserPublic:
        role = Role(user.role)
        assert user.id is not None
        return cls(
            id=user.id,
            username=user.username,
            full_name=user.full_name,
            role=role,
            role_label=role.label_vi,
            district_code=user.district_code,
            language=user.language,
        )


class LoginResponse(BaseModel):
    token: str
    csrf_token: str
    user: UserPublic


def get_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


@router.post("/login", response_model=LoginResponse, responses=problems(401, 429))
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    throttle: Annotated[LoginThrottle, Depends(get_throttle)],
) -> LoginResponse:
    """Sign in with a user name and password. Too many failures block the name and the address for a while."""
    keys = (f"user:{body.username}", f"addr:{request.client.host if request.client else '-'}")
    if throttle.blocked(*keys):
        raise HTTPException(429, "too many failed sign-ins; try again in 15 minutes")
    user = authenticate(body.username, body.password, session=session)
    if user is None:
        throttle.failed(*keys)
        session.commit()
        raise HTTPException(401, "wrong user name or password")
    throttle.succeeded(*keys)
    ttl = timedelta(hours=settings.session_hours)
    token, csrf = start_session(user, session=session, ttl=ttl)
    session.commit()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
    )
    return LoginResponse(token=token, csrf_token=csrf, user=UserPublic.build(user))


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response, _principal: PrincipalDep, session: SessionDep) -> None:
    """End this session (the token stops working at once)."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(SESSION_COOKIE, "")
    end_session(token, session=session)
    session.commit()
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me", response_model=UserPublic)
def me(principal: PrincipalDep) -> UserPublic:
    """Who is signed in."""
    return UserPublic.build(principal.user)
