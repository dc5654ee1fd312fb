"""Signing in and out: a session token for API clients, the same token as an HttpOnly cookie for browsers."""

from __future__ import annotations

from datetime import timedelta

from fastapi import HTTPException, Request, Response
from pydantic import BaseModel, Field

from monitor.auth import throttle
from monitor.auth.audit import Actor, AuditAction, record
from monitor.auth.models import Role, User
from monitor.auth.service import check_sign_in, end_session, start_session
from monitor.web.bodies import api_router
from monitor.web.deps import SESSION_COOKIE, AuditActor, PrincipalDep, SessionDep, SettingsDep, client_address
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


@router.post("/login", response_model=LoginResponse, responses=problems(401, 429))
def login(
    body: LoginRequest, request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> LoginResponse:
    """Sign in with a user name and password.

    Wrong passwords slow down the (name, address) pair that makes them, then refuse it for a while (429 with
    Retry-After); an address failing across many names is refused as a whole. Nobody signing in from another
    address is ever held back by someone else's failures on their name. Every refusal is in the audit log.
    """
    address = client_address(request)
    key = throttle.client_key(address)
    actor = Actor(name=body.username, address=address)
    verdict = throttle.admit(body.username, key, session=session, rules=throttle.ThrottleRules.from_settings(settings))
    if not verdict.allowed:
        reason = "address_refused" if verdict.refused == "address" else "too_many_failures"
        record(
            AuditAction.SIGN_IN_REFUSED, session=session, actor=actor, target=body.username, details={"reason": reason}
        )
        session.commit()
        raise HTTPException(
            429,
            f"Đăng nhập sai quá nhiều lần; thử lại sau {verdict.retry_after_s} giây "
            f"(too many failed sign-ins; try again in {verdict.retry_after_s} s)",
            headers={"Retry-After": str(verdict.retry_after_s)},
        )
    session.commit()  # the attempt is counted before the (slow) password check: parallel guesses see it
    user, refusal = check_sign_in(body.username, body.password, session=session)
    if user is None or refusal is not None:
        known = Actor.user(user, address) if user is not None else actor
        details = {"reason": refusal}
        record(
            AuditAction.SIGN_IN_REFUSED,
            session=session,
            actor=known,
            target=body.username,
            district_code=user.district_code if user is not None else None,
            details=details,
        )
        session.commit()
        wait = {"Retry-After": str(verdict.retry_after_s)} if verdict.retry_after_s else None
        raise HTTPException(401, "wrong user name or password", headers=wait)
    throttle.succeeded(body.username, key, session=session)
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
def logout(
    request: Request, response: Response, principal: PrincipalDep, actor: AuditActor, session: SessionDep
) -> None:
    """End this session (the token stops working at once). A personal API token is not ended by this: revoke it."""
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
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me", response_model=UserPublic)
def me(principal: PrincipalDep) -> UserPublic:
    """Who is signed in."""
    return UserPublic.build(principal.user)
