"""/api/tutor/calendars/: a tutor's own calendars (CRUD) and "sync now".

Every row is looked up within the signed-in tutor's own sources: another tutor's ids
answer 404.
"""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from bookings.api.tutor import TutorScoped

from . import selectors, services
from .models import CalendarSource
from .serializers import (
    CalendarSourceCreateSerializer,
    CalendarSourceSerializer,
    CalendarSourceUpdateSerializer,
)


@extend_schema(tags=["tutor"])
class CalendarSourceViewSet(TutorScoped, viewsets.ModelViewSet):
    """Your own calendars (ICS links, CalDAV): their busy times hide your open slots.

    Each is synced every few minutes; a failing one keeps its last good busy times.
    Addresses and passwords are stored encrypted and never shown back.
    """

    queryset = CalendarSource.objects.none()  # for the schema; get_queryset() scopes rows
    serializer_class = CalendarSourceSerializer

    def get_queryset(self) -> QuerySet[CalendarSource]:
        return selectors.tutor_sources(tutor=self.tutor)

    def _answer(self, source: CalendarSource, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.tutor_source(tutor=self.tutor, source_id=source.pk)
        return Response(CalendarSourceSerializer(fresh).data, status=code)

    @extend_schema(
        request=CalendarSourceCreateSerializer, responses={201: CalendarSourceSerializer}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = CalendarSourceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source = services.source_create(tutor=self.tutor, now=timezone.now(), **data.validated_data)
        return self._answer(source, status.HTTP_201_CREATED)

    @extend_schema(request=CalendarSourceUpdateSerializer, responses=CalendarSourceSerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        source = self.get_object()
        data = CalendarSourceUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source = services.source_update(source=source, now=timezone.now(), **data.validated_data)
        return self._answer(source)

    @extend_schema(request=CalendarSourceUpdateSerializer, responses=CalendarSourceSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, **kwargs)

    def perform_destroy(self, instance: CalendarSource) -> None:
        services.source_delete(source=instance, now=timezone.now())

    @extend_schema(request=None, responses={202: CalendarSourceSerializer})
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, pk: str | None = None) -> Response:
        """Sync this calendar now (in a worker): the answer is accepted, not finished."""
        source = self.get_object()
        services.source_sync_soon(source=source, now=timezone.now())
        return self._answer(source, status.HTTP_202_ACCEPTED)
