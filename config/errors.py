"""Error pages for URLs no view matched: JSON under /api/, HTML elsewhere."""

from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def _api(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/payments/stripe/"))


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _api(request):
        return JsonResponse(
            {"code": "not_found", "message": "Not found.", "fields": {}}, status=404
        )
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if _api(request):
        return JsonResponse(
            {"code": "server_error", "message": "Something went wrong on our side.", "fields": {}},
            status=500,
        )
    return render(request, "500.html", status=500)


class NotFoundPageMiddleware:
    """A view that finds nothing (a wrong or cut-off manage link, a rotated feed link)
    answers with the site's own 404 page, with DEBUG on too: Django's technical page
    would show a student the URL patterns. Only URLs that match no view still get the
    technical page under DEBUG, where it helps a developer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return not_found(request, exception)
        return None
