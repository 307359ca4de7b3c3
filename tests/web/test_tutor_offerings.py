"""The tutor's session types and prices."""

import pytest

from bookings.models import Mode, Offering, Slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def tutor_client(client, tutor, frozen):
    client.force_login(tutor.user)
    return client


def offering_form(**changes):
    data = {
        "mode": "remote",
        "title": "Code review (video)",
        "description": "",
        "duration_minutes": "45",
        "price": "75.50",
        "video_url": "https://meet.example.com/review",
        "place_name": "",
        "place_address": "",
        "is_active": "on",
    }
    data.update(changes)
    return data


def test_the_page_lists_session_types_with_prices(tutor_client, offerings):
    html = tutor_client.get("/tutor/offerings/").content.decode()
    assert "Python (video)" in html and "$90.00" in html
    assert "Python (in person)" in html and "$120.00" in html


def test_adding_a_session_type_stores_the_price_in_cents(tutor_client, tutor):
    response = tutor_client.post("/tutor/offerings/", offering_form())
    assert response.status_code == 302
    offering = Offering.objects.get()
    assert offering.tutor == tutor
    assert offering.price_amount == 7550
    assert offering.currency == "usd"
    assert offering.duration_minutes == 45


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"video_url": ""}, "Remote sessions need a video call link."),
        ({"mode": "in_person", "video_url": ""}, "In-person sessions need a meeting place."),
        ({"duration_minutes": "10"}, "Ensure this value is greater than or equal to 15."),
        ({"price": "-1"}, "Ensure this value is greater than or equal to 0."),
    ],
)
def test_an_incomplete_session_type_is_explained_in_place(tutor_client, changes, message):
    response = tutor_client.post("/tutor/offerings/", offering_form(**changes))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "is violated" not in response.content.decode()
    assert not Offering.objects.exists()


def test_a_new_price_is_saved_and_shown(tutor_client, remote):
    url = f"/tutor/offerings/{remote.pk}/"
    assert b'value="90"' in tutor_client.get(url).content
    data = offering_form(title=remote.title, duration_minutes="60", price="95")
    response = tutor_client.post(url, data)
    assert response.status_code == 302
    remote.refresh_from_db()
    assert remote.price_amount == 9500


def test_a_length_used_by_weekly_rules_cannot_change(tutor_client, weekly_rule, remote):
    data = offering_form(title=remote.title, duration_minutes="90", price="90")
    response = tutor_client.post(f"/tutor/offerings/{remote.pk}/", data)
    assert b"Weekly rules use this session" in response.content
    remote.refresh_from_db()
    assert remote.duration_minutes == 60


def test_withdrawing_a_session_type_takes_it_off_the_slots(tutor_client, weekly_rule, in_person):
    data = offering_form(
        mode=Mode.IN_PERSON,
        title=in_person.title,
        duration_minutes="60",
        price="120",
        video_url="",
        place_name=in_person.place_name,
        place_address=in_person.place_address,
        is_active="",
    )
    assert tutor_client.post(f"/tutor/offerings/{in_person.pk}/", data).status_code == 302
    assert not Slot.objects.filter(
        removed_at__isnull=True, in_person_offering__isnull=False
    ).exists()


def test_another_tutors_offering_is_a_404(client, remote, make_tutor, frozen):
    client.force_login(make_tutor(slug="bo").user)
    assert client.get(f"/tutor/offerings/{remote.pk}/").status_code == 404


def test_a_session_type_no_slot_offers_is_flagged_for_the_tutor(tutor_client, weekly_rule):
    lonely = Offering.objects.create(
        tutor=weekly_rule.tutor,
        mode=Mode.REMOTE,
        title="Interview practice",
        duration_minutes=90,
        price_amount=15000,
        currency="usd",
        video_url="https://meet.example.com/interview",
    )
    html = tutor_client.get("/tutor/offerings/").content.decode()
    rows = {o.title: html.split(o.title)[1].split("</li>")[0] for o in Offering.objects.all()}
    assert "No slots yet: students cannot book it" in rows[lonely.title]
    assert "No slots yet" not in rows["Python (video)"]


def test_the_public_page_says_which_session_types_have_no_open_times(
    client, tutor, weekly_rule, frozen
):
    Offering.objects.create(
        tutor=tutor,
        mode=Mode.REMOTE,
        title="Interview practice",
        duration_minutes=90,
        price_amount=15000,
        currency="usd",
        video_url="https://meet.example.com/interview",
    )
    html = client.get(f"/t/{tutor.slug}/").content.decode()
    offers = {
        title: html.split(title)[0].rsplit('<li class="offer', 1)[1]
        for title in ("Interview practice", "Python (video)", "Python (in person)")
    }
    assert "No open times in the next 8 weeks" in offers["Interview practice"]
    assert "No open times" not in offers["Python (video)"]
    assert "No open times" not in offers["Python (in person)"]
