"""One error shape for the whole API: {"code": ..., "message": ..., "fields": {...}}."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from bookings.errors import ApplicationError

_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def flatten(fields: Any) -> dict[str, list[str]]:
    """Field errors as {"field": ["message", ...]}: nested errors (list items, nested
    objects) become "index: message" strings, so clients handle one shape."""

    def messages(value: Any, prefix: str = "") -> list[str]:
        if isinstance(value, dict):
            return [m for k, v in value.items() for m in messages(v, f"{prefix}{k}: ")]
        if isinstance(value, list | tuple):
            out: list[str] = []
            for i, item in enumerate(value):
                nested = isinstance(item, dict | list | tuple)
                out += messages(item, f"{prefix}{i}: " if nested else prefix)
            return out
        return [f"{prefix}{value}"]

    if not isinstance(fields, dict):
        return {"non_field_errors": messages(fields)}
    return {str(name): messages(value) for name, value in fields.items()}


def _first_message(fields: Any) -> str:
    if isinstance(fields, dict):
        for name, value in fields.items():
            inner = _first_message(value)
            return inner if name == "non_field_errors" else f"{name}: {inner}"
    if isinstance(fields, list) and fields:
        return _first_message(fields[0])
    return str(fields)


def error_body(
    code: str, message: str, fields: dict[str, Any] | None = None, reason: str = ""
) -> dict[str, Any]:
    body = {"code": code, "message": message, "fields": flatten(fields or {})}
    if reason:
        body["reason"] = reason
    return body


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        body = error_body(exc.code, exc.message, exc.fields, exc.reason)
        return Response({**exc.extra, **body}, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        messages: dict[str, Any] = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return Response(
            error_body("invalid", _first_message(messages), messages),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields: Any = (
            exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        )
        response.data = error_body("invalid", _first_message(fields), fields)
        return response
    if not isinstance(exc, exceptions.APIException):
        return response
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
    response.data = error_body(code, str(exc.detail))
    return response
