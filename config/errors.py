"""Error pages for URLs no view matched: JSON under /api/, HTML elsewhere."""

from django.http import HttpRequest, HttpResponse, JsonResponse
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
