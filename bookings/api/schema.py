"""OpenAPI post-processing: the error answers every operation can give, documented once.

Each view documents its own success and its specific conflicts; the generic answers
(bad input, unknown ids, not signed in, throttled, body too large) are the same shape
everywhere, so they are added here rather than repeated on every view.
"""

from typing import Any

GENERIC_ERRORS = {
    "400": "Invalid input; `fields` names the fields.",
    "404": "Not found (unknown id, token or slug).",
    "413": "Request body too large.",
    "429": "Too many requests; see the Retry-After header.",
}
AUTH_ERRORS = {
    "401": "Not signed in (session or `Authorization: Token ...`).",
    "403": "Signed in, but not as a tutor.",
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def add_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            errors = dict(GENERIC_ERRORS)
            if path.startswith("/api/tutor/"):
                errors.update(AUTH_ERRORS)
            for code, description in errors.items():
                responses.setdefault(code, _error(description))
    return result
