"""Bench-only URLconf: the whole app (config.urls) plus two "floor" views.

bench/core.py points settings.ROOT_URLCONF here for the duration of a run, so the floors
travel through exactly the same middleware, URL resolver, WSGI handler and test client
as the real endpoints. Each floor does the irreducible work of its endpoint and nothing
else:

- slot_floor: the one indexed query behind the public slot list (a tutor's active slots
  starting in a window, by start) as a `.values()` list, returned as JSON;
- insert_floor: parse a JSON body, insert one row inside transaction.atomic() (one
  commit), answer 201 with a small JSON document.

Never routed in production: nothing outside bench/ imports this module.
"""

import json
import secrets
from datetime import datetime, timedelta

from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from bookings.models import Slot


@require_GET
def slot_floor(request: HttpRequest) -> JsonResponse:
    """?tutor_id=&start=&end= (UTC ISO 8601): the slot list's row query, nothing more."""
    rows = list(
        Slot.objects.filter(
            tutor_id=int(request.GET["tutor_id"]),
            removed_at__isnull=True,
            start__gte=datetime.fromisoformat(request.GET["start"]),
            start__lt=datetime.fromisoformat(request.GET["end"]),
        )
        .order_by("start")
        .values()
    )
    return JsonResponse({"count": len(rows), "results": rows})


# DRF's APIView is csrf_exempt too, so both sides skip the same middleware work.
@csrf_exempt
@require_POST
def insert_floor(request: HttpRequest) -> JsonResponse:
    """One ORM insert of a small row in its own transaction, like a hold's write."""
    payload = json.loads(request.body)
    with transaction.atomic():
        session = Session.objects.create(
            session_key=secrets.token_hex(20),
            session_data=json.dumps(payload),
            expire_date=timezone.now() + timedelta(minutes=30),
        )
    return JsonResponse(
        {"key": session.session_key, "expire_date": session.expire_date}, status=201
    )


urlpatterns = [
    path("bench/floor/slots/", slot_floor, name="bench-floor-slots"),
    path("bench/floor/insert/", insert_floor, name="bench-floor-insert"),
    path("", include("config.urls")),
]
