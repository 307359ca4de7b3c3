"""bookings/sql.py: the hold's hand-written reads answer exactly what the ORM would."""

from datetime import timedelta

import pytest
from django.forms.models import model_to_dict

from bookings import services, sql
from bookings.models import ACTIVE_STATUSES, Booking, BookingStatus, Slot
from tests.conftest import add_offerings, make_slot

pytestmark = pytest.mark.django_db


def fields(obj: object) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}  # type: ignore[attr-defined]


def hold_on(slot: Slot, *, email: str, now, mode: str = "remote") -> Booking:
    return services.booking_hold(
        slot_id=slot.pk, mode=mode, student_name="Sam", student_email=email, now=now
    ).booking


def test_the_slot_comes_with_its_tutor_and_offerings_as_select_related_gives_them(slot):
    expected = Slot.objects.select_related("tutor", "remote_offering", "in_person_offering").get(
        pk=slot.pk
    )
    got = sql.slot_with_tutor(slot.pk)

    assert got is not None
    assert fields(got) == fields(expected)
    assert fields(got.tutor) == fields(expected.tutor)
    assert fields(got.remote_offering) == fields(expected.remote_offering)
    assert fields(got.in_person_offering) == fields(expected.in_person_offering)
    assert model_to_dict(got) == model_to_dict(expected)
    assert got.start.tzinfo is not None  # converted like the ORM's, on SQLite too


def test_the_slot_read_loads_only_fields_the_database_returns_as_the_orm_would(db):
    """On PostgreSQL sql.slot_with_tutor builds the slot, its tutor and offerings from a
    plain row with Model.from_db(), skipping Django's compile of a select_related (see
    its module). That is right only while no field of these tables needs a database
    converter: a new field type (JSON, decimal, a custom field) must fail here, and be
    taught to the read, rather than reach a hold as a raw value."""
    from django.db import connection, models

    from bookings.models import Offering, Tutor

    plain = (
        models.AutoField, models.BigAutoField, models.CharField, models.TextField,
        models.IntegerField, models.BooleanField, models.DateTimeField, models.ForeignKey,
    )  # fmt: skip
    for model in (Slot, Tutor, Offering):
        for field in sql.stored_fields(model):
            assert isinstance(field, plain), f"{model.__name__}.{field.name}: {type(field)}"
            assert not hasattr(field, "from_db_value"), f"{model.__name__}.{field.name}"
            assert field.get_db_converters(connection) == [], f"{model.__name__}.{field.name}"


def test_the_postgresql_slot_read_locks_the_tutor_after_the_advisory_keys():
    text = sql._slot_sql(lock_tutor=True, keys=2)
    assert text.count("pg_advisory_xact_lock(hashtextextended(%s, 0))") == 2
    assert text.endswith('WHERE s."id" = %s FOR UPDATE OF t')
    assert "FOR UPDATE" not in sql._slot_sql(lock_tutor=False, keys=0)


@pytest.mark.postgres
def test_on_postgresql_the_slot_is_read_without_the_orm_in_one_statement(slot):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        got = sql.slot_with_tutor(slot.pk, lock_tutor=True, lock_keys=["email:a", "client:b"])
        assert got is not None
        assert got.tutor.timezone and got.remote_offering and got.in_person_offering
        assert got._state.adding is False and got.tutor._state.db == connection.alias
    assert len(queries) == 1
    assert 'FROM "bookings_slot" s' in queries[0]["sql"]


def test_a_slot_offered_in_one_mode_has_no_other_offering(tutor, remote, now):
    only_remote = make_slot(tutor, now + timedelta(days=3), remote=remote)
    got = sql.slot_with_tutor(only_remote.pk)
    assert got is not None
    assert got.in_person_offering is None
    assert got.remote_offering == remote


def test_an_unknown_slot_is_none(db):
    assert sql.slot_with_tutor(987654) is None


def test_the_bookings_around_a_slot_are_those_within_the_margin(
    tutor, remote, in_person, make_tutor, now
):
    day = now + timedelta(days=2)
    before = make_slot(tutor, day - timedelta(hours=1), remote=remote)
    target = make_slot(tutor, day, remote=remote, in_person=in_person)
    far = make_slot(tutor, day + timedelta(hours=3), remote=remote)
    near = hold_on(before, email="a@example.com", now=now)
    hold_on(far, email="b@example.com", now=now)
    # Another tutor's booking at the very same time is not this tutor's business.
    other = make_tutor()
    hold_on(make_slot(other, day, remote=add_offerings(other)[0]), email="c@example.com", now=now)

    around = sql.busy_around(target, margin=timedelta(minutes=30), now=now)
    busy = around.busy

    assert [(b.booking_id, b.slot_id, b.mode) for b in busy] == [(near.pk, before.pk, "remote")]
    assert (busy[0].start, busy[0].end) == (before.start, before.end)
    assert around.holds_by_email == around.holds_by_client == 0


def test_only_the_emails_unexpired_unpaid_holds_are_counted(tutor, remote, now):
    slots = [make_slot(tutor, now + timedelta(days=d), remote=remote) for d in (2, 3, 4)]
    hold_on(slots[0], email="sam@example.com", now=now)
    hold_on(slots[1], email="sam@example.com", now=now - timedelta(hours=1))  # expired
    hold_on(slots[2], email="kim@example.com", now=now)
    probe = make_slot(tutor, now + timedelta(days=9), remote=remote)

    around = sql.busy_around(
        probe, margin=timedelta(minutes=30), holds_of="sam@example.com", now=now
    )
    assert around.holds_by_email == 1
    assert Booking.objects.filter(status=BookingStatus.PENDING_PAYMENT).count() == 3


def test_the_statuses_written_into_the_sql_are_the_models():
    active = "IN ({})".format(", ".join(f"'{s}'" for s in ACTIVE_STATUSES))
    assert active in sql._BUSY_SQL
    assert f"b.status = '{BookingStatus.PENDING_PAYMENT}'" in sql._HOLDS_SQL
    assert f"b.status = '{BookingStatus.PENDING_PAYMENT}'" in sql._CLIENT_HOLDS_SQL
