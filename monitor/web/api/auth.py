"""Signing in and out: a session token for API clients, the same token as an HttpOnly cookie for browsers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from monitor.auth import throttle
from monitor.auth.audit import Actor, AuditAction, record
from monitor.auth.models import Role, User
from monitor.auth.service import check_sign_in, end_session, start_session
from monitor.config import Settings
from monitor.web.bodies import api_router
from monitor.web.deps import (
    SESSION_COOKIE,
    AuditActor,
    Principal,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    client_address,
)
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


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: its user, its token (the cookie's value) and its CSRF token."""

    user: User
    token: str
    csrf_token: str
    max_age_s: int


def sign_in(username: str, password: str, *, request: Request, session: Session, settings: Settings) -> SignedIn:
    """Check a user name and password through the throttle, record the outcome in the audit log, start a session.

    Wrong passwords slow down the (name, address) pair that makes them, then refuse it for a while (429 with
    Retry-After); an address failing across many names is refused as a whole. Nobody signing in from another
    address is ever held back by someone else's failures on their name. The API's sign-in and the pages' form
    both come through here.
    """
    address = client_address(request)
    key = throttle.client_key(address)
    actor = Actor(name=username, address=address)
    verdict = throttle.admit(username, key, session=session, rules=throttle.ThrottleRules.from_settings(settings))
    if not verdict.allowed:
        reason = "address_refused" if verdict.refused == "address" else "too_many_failures"
        record(AuditAction.SIGN_IN_REFUSED, session=session, actor=actor, target=username, details={"reason": reason})
        session.commit()
        raise HTTPException(
            429,
            f"Đăng nhập sai quá nhiều lần; thử lại sau {verdict.retry_after_s} giây "
            f"(too many failed sign-ins; try again in {verdict.retry_after_s} s)",
            headers={"Retry-After": str(verdict.retry_after_s)},
        )
    session.commit()  # the attempt is counted before the (slow) password check: parallel guesses see it
    user, refusal = check_sign_in(username, password, session=session)
    if user is None or refusal is not None:
        known = Actor.user(user, address) if user is not None else actor
        record(
            AuditAction.SIGN_IN_REFUSED,
            session=session,
            actor=known,
            target=username,
            district_code=user.district_code if user is not None else None,
            details={"reason": refusal},
        )
        session.commit()
        wait = {"Retry-After": str(verdict.retry_after_s)} if verdict.retry_after_s else None
        raise HTTPException(401, "wrong user name or password", headers=wait)
    throttle.succeeded(username, key, session=session)
    record(
        AuditAction.SIGN_IN,
        session=session,
        actor=Actor.user(user, address),
        target=user.username,
        district_code=user.district_code,
    )
    ttl = timedelta(hours=settings.session_hours)
    token, csrf = start_session(user, session=session, ttl=ttl)
    session.commit()
    return SignedIn(user, token, csrf, int(ttl.total_seconds()))


def set_session_cookie(response: Response, signed: SignedIn, settings: Settings) -> None:
    """The session's token as an HttpOnly, SameSite cookie (Secure unless told otherwise), for browsers."""
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=signed.max_age_s,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
    )


def sign_out(request: Request, principal: Principal, actor: Actor, session: Session) -> None:
    """End the request's session (bearer token or cookie) and record it; a personal API token is not ended."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(SESSION_COOKIE, "")
    end_session(token, session=session)
    record(
        AuditAction.SIGN_OUT,
        session=session,
        actor=actor,
        target=principal.user.username,
        district_code=principal.user.district_code,
    )
    session.commit()


@router.post("/login", response_model=LoginResponse, responses=problems(401, 429))
def login(
    body: LoginRequest, request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> LoginResponse:
    """Sign in with a user name and password.

    Wrong passwords slow down the (name, address) pair that makes them, then refuse it for a while (429 with
    Retry-After); an address failing across many names is refused as a whole. Nobody signing in from another
    address is ever held back by someone else's failures on their name. Every refusal is in the audit log.
    """
    signed = sign_in(body.username, body.password, request=request, session=session, settings=settings)
    set_session_cookie(response, signed, settings)
    return LoginResponse(token=signed.token, csrf_token=signed.csrf_token, user=UserPublic.build(signed.user))


@router.post("/logout", status_code=204)
def logout(
    request: Request, response: Response, principal: PrincipalDep, actor: AuditActor, session: SessionDep
) -> None:
    """End this session (the token stops working at once). A personal API token is not ended by this: revoke it."""
    sign_out(request, principal, actor, session)
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me", response_model=UserPublic)
def me(principal: PrincipalDep) -> UserPublic:
    """Who is signed in."""
    return UserPublic.build(principal.user)
