"""``/v1/users…`` exactly as the Cleavr seed shows them, and the hosted onboarding page."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debtgraph.domain.core.errors import DomainValidationError
from debtgraph.domain.creditors import changes as creditors
from debtgraph.domain.creditors import identity_documents
from debtgraph.domain.creditors.models import User
from debtgraph.resolvers import creditors as creditor_cases
from debtgraph.resolvers.errors import NotFound
from debtgraph.rest_compat import hosted_pages
from debtgraph.rest_compat.cleavr import endpoint
from debtgraph.rest_compat.common import JSONResponse, context, iso, json_body


def user_json(user: User, onboarding_url: str | None = None) -> dict[str, Any]:
    """The seed's ``User``; ``onboarding_url`` exists in clear only in the creation response."""
    body: dict[str, Any] = {
        "id": user.public_id,
        "email": user.email,
        "status": user.status,
        "capabilities": creditors.capabilities_of(user).as_dict(),
        "created_at": iso(user.created_at),
    }
    if onboarding_url is not None:
        body["onboarding_url"] = onboarding_url
    return body


@endpoint(idempotent=True)
async def create_user(request: Request) -> Response:
    """Create a creditor account."""
    created = await creditor_cases.create_user(context(request), await json_body(request))
    return JSONResponse(user_json(created.user, created.onboarding_url), status_code=201)


@endpoint
async def get_user(request: Request) -> Response:
    """A creditor within reach."""
    user = await creditor_cases.get_user(context(request), request.path_params["id"])
    return JSONResponse(user_json(user))


@endpoint
async def onboarding_status(request: Request) -> Response:
    """Status, KYB and payout account, with what is currently due."""
    ctx = context(request)
    user = await creditor_cases.get_user(ctx, request.path_params["id"])
    requirements = creditor_cases.requirements(ctx, user)
    return JSONResponse(
        {
            "user_id": user.public_id,
            "status": user.status,
            "kyb_status": user.kyb_status,
            "stripe_account_status": creditors.payout_status_of(user),
            "requirements": list(requirements.currently_due),
        }
    )


@endpoint
async def requirements(request: Request) -> Response:
    """Missing onboarding items by urgency."""
    ctx = context(request)
    user = await creditor_cases.get_user(ctx, request.path_params["id"])
    return JSONResponse(creditor_cases.requirements(ctx, user).as_dict())


# --- Hosted onboarding page ---------------------------------------------------------------------

_CSRF_PURPOSE = "onboarding"
_PROFILE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("company.name", "Company name", "text"),
    ("company.siret", "SIRET", "text"),
    ("company.vat_number", "VAT number (optional)", "text"),
    ("company.address.line1", "Address", "text"),
    ("company.address.line2", "Address line 2 (optional)", "text"),
    ("company.address.postal_code", "Postal code", "text"),
    ("company.address.city", "City", "text"),
    ("company.address.country", "Country (ISO code)", "text"),
    ("contact.first_name", "Your first name", "text"),
    ("contact.last_name", "Your last name", "text"),
    ("contact.phone", "Your phone (optional)", "text"),
    ("bank_account.iban", "IBAN for payouts (optional now, needed to receive payments)", "text"),
)
_DOCUMENT_FIELD = identity_documents.FIELD
_DOCUMENT_LABEL = (
    "Identity document of the company's legal representative: PDF, JPEG or PNG, at most {mb} MB "
    "(optional now, needed to receive payments)"
)
# What the file picker offers; the server judges the file by its bytes, never by this.
_DOCUMENT_ACCEPT = ",".join(
    [k.media_type for k in identity_documents.KINDS] + [".pdf", ".jpg", ".jpeg", ".png"]
)
_UNREADABLE_FORM = "The form could not be read. Reload the page and submit it again."
# The page's form fields and a file: a bound on what a submission may make the parser hold.
_MAX_FORM_FIELDS = 50
_PASSWORD_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("password", "Choose a password (at least 10 characters)", "password"),
    ("password_confirmation", "Repeat the password", "password"),
)


def _prefill(user: User) -> dict[str, str]:
    address = user.company_address or {}
    values = {
        "company.name": user.company_name,
        "company.siret": user.company_siret,
        "company.vat_number": user.company_vat_number,
        "company.address.line1": address.get("line1"),
        "company.address.line2": address.get("line2"),
        "company.address.postal_code": address.get("postal_code"),
        "company.address.city": address.get("city"),
        "company.address.country": address.get("country") or "FR",
        "contact.first_name": user.contact_first_name,
        "contact.last_name": user.contact_last_name,
        "contact.phone": user.contact_phone,
    }
    return {k: v for k, v in values.items() if isinstance(v, str)}


def _shown_error(name: str, message: str) -> str:
    """An API message as the page shows it beside its field: the field's path, which names it
    for an API client ("company.siret must be 14 digits."), is the field itself here."""
    if message.startswith(f"{name} "):
        message = "This field " + message[len(name) + 1 :]
    return message


def _described(name: str, errors: dict[str, str]) -> tuple[str, str]:
    """The attributes of a field's input and the paragraph after it: a field refused is marked
    invalid and described by its message, which a screen reader reads with the field."""
    error = errors.get(name)
    if not error:
        return "", ""
    return (
        f' aria-invalid="true" aria-describedby="{name}-error"',
        f'<p class="error" id="{name}-error">{hosted_pages.escape(_shown_error(name, error))}</p>',
    )


def _fields_html(
    fields: tuple[tuple[str, str, str], ...], values: dict[str, str], errors: dict[str, str]
) -> str:
    parts = []
    for name, label, kind in fields:
        value = "" if kind == "password" else values.get(name, "")
        marked, message = _described(name, errors)
        parts.append(
            f'<label for="{name}">{hosted_pages.escape(label)}</label>'
            f'<input type="{kind}" id="{name}" name="{name}" '
            f'value="{hosted_pages.escape(value)}"{marked}>' + message
        )
    return "\n".join(parts)


_CHOOSE_AGAIN = (
    "Nothing was saved: choose the document again before sending the form (a browser does not "
    "keep a file when the form comes back)."
)


def _document_html(request: Request, errors: dict[str, str]) -> str:
    limit = creditor_cases.identity_document_limit(context(request))
    label = _DOCUMENT_LABEL.format(mb=max(limit // (1024 * 1024), 1))
    marked, message = _described(_DOCUMENT_FIELD, errors)
    return (
        f'<label for="{_DOCUMENT_FIELD}">{hosted_pages.escape(label)}</label>'
        f'<input type="file" id="{_DOCUMENT_FIELD}" name="{_DOCUMENT_FIELD}" '
        f'accept="{hosted_pages.escape(_DOCUMENT_ACCEPT)}"{marked}>' + message
    )


def _onboarding_form(
    request: Request,
    user: User,
    token: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    ctx = context(request)
    errors = errors or {}
    complete = creditors.profile_complete(user, ctx.clock.now())
    nonce, fresh = hosted_pages.csrf_nonce(request)
    fields = _PASSWORD_FIELDS
    if not complete:
        # Ticked again on a form refused for another field: the caller had accepted already.
        ticked = " checked" if (values or {}).get("tos_acceptance") == "accepted" else ""
        marked, message = _described("tos_acceptance", errors)
        fields_html = (
            _fields_html(_PROFILE_FIELDS, values if values is not None else _prefill(user), errors)
            + f'<label><input type="checkbox" id="tos_acceptance" name="tos_acceptance" '
            f'value="accepted"{ticked}{marked}> I accept the terms of service</label>'
            + message
            + _document_html(request, errors)
            + _fields_html(fields, {}, errors)
        )
    else:
        fields_html = _document_html(request, errors) + _fields_html(fields, {}, errors)
    # Announced as the page comes back (role="alert").
    summary = (
        '<div class="errors" role="alert">Please correct the fields marked below.</div>'
        if errors
        else ""
    )
    return hosted_pages.render(
        "onboarding.html",
        "Set up your account" if not complete else "Choose your password",
        status_code=status_code,
        raw={"fields": fields_html, "errors": summary},
        cookie_nonce=nonce if fresh else None,
        secure_cookie=ctx.public_base_url.startswith("https://"),
        email=user.email,
        action=f"/onboarding/{token}",
        csrf_token=hosted_pages.csrf_token(ctx.settings.secret_key, _CSRF_PURPOSE, nonce, token),
    )


_INVALID_LINK = "This link is invalid or has already been used. Ask your platform for a new one."


async def onboarding_page(request: Request) -> Response:
    """The hosted onboarding (or set-password) form."""
    token = request.path_params["token"]
    user = await creditor_cases.onboarding_user(context(request), token)
    if user is None:
        return hosted_pages.message_page("Link not valid", _INVALID_LINK, 404)
    return _onboarding_form(request, user, token)


def _expired_form() -> Response:
    return hosted_pages.message_page(
        "Form expired", "This form has expired. Reload the page and try again.", 403
    )


async def onboarding_submit(request: Request) -> Response:
    """Save the hosted onboarding form (multipart: it may carry the identity document)."""
    ctx = context(request)
    token = request.path_params["token"]
    # The link is the caller: known, and the browser's CSRF cookie present, before a byte of
    # the body (maybe a file of megabytes) is read.
    if not request.cookies.get(hosted_pages.CSRF_COOKIE):
        return _expired_form()
    user = await creditor_cases.onboarding_caller(ctx, token)
    if user is None:
        return hosted_pages.message_page("Link not valid", _INVALID_LINK, 404)
    try:
        form = await request.form(max_files=1, max_fields=_MAX_FORM_FIELDS)
    except hosted_pages.FormTooLarge:
        message = creditor_cases.identity_document_too_large(ctx).first.message
        return _onboarding_form(
            request, user, token, errors={_DOCUMENT_FIELD: message}, status_code=413
        )
    except HTTPException:
        # A multipart body that does not parse (or has more parts than the form): nothing kept.
        return _onboarding_form(
            request, user, token, errors={_DOCUMENT_FIELD: _UNREADABLE_FORM}, status_code=400
        )
    try:
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        if not hosted_pages.csrf_valid(
            request, ctx.settings.secret_key, _CSRF_PURPOSE, token, values.get("csrf_token", "")
        ):
            return _expired_form()
        try:
            user = await creditor_cases.submit_onboarding(
                ctx, token, values, form.get(_DOCUMENT_FIELD)
            )
        except DomainValidationError as exc:
            errors: dict[str, str] = {}
            for error in exc.errors:
                errors.setdefault(error.field, error.message)
            chosen = form.get(_DOCUMENT_FIELD)
            if isinstance(chosen, StarletteUploadFile) and chosen.filename:
                # Nothing was kept, and no browser refills a file input: said, the person
                # chooses it again; unsaid, the next submission went without it.
                errors.setdefault(_DOCUMENT_FIELD, _CHOOSE_AGAIN)
            return _onboarding_form(
                request, user, token, values=values, errors=errors, status_code=400
            )
        except NotFound:
            # Spent meanwhile, e.g. by a concurrent submission of the same form.
            return hosted_pages.message_page("Link not valid", _INVALID_LINK, 404)
    finally:
        await form.close()
    if user.status == "active":
        message = "Your account is ready. You can now sign in from your platform."
    else:
        message = (
            "Your details are saved. Your account will be active once the company identifiers "
            "are verified."
        )
    return hosted_pages.message_page("All set", message)


routes = [
    Route("/v1/users", create_user, methods=["POST"]),
    Route("/v1/users/{id}", get_user, methods=["GET"]),
    Route("/v1/users/{id}/onboarding-status", onboarding_status, methods=["GET"]),
    Route("/v1/users/{id}/requirements", requirements, methods=["GET"]),
    Route("/onboarding/{token}", onboarding_page, methods=["GET"]),
    Route("/onboarding/{token}", onboarding_submit, methods=["POST"]),
]
