"""Reviews through the gateway: ratings and summaries, comment threads, moderation, and the
verified-purchase flag after a real purchase."""

import uuid

import pytest

from tests_support import buy_item, problem


@pytest.fixture(scope="module")
def admin(api) -> str:
    return api.admin_token()


def writer(api, name: str) -> str:
    return api.token(api.register(display_name=name))


def review(api, token: str, item_id: str, rating: int, comment: str = "Fine."):
    return api.put(
        f"/api/reviews/items/{item_id}/review", {"rating": rating, "comment": comment}, token
    )


def summary(api, item_id: str) -> dict:
    response = api.get(f"/api/reviews/items/{item_id}/summary")
    assert response.status_code == 200, response.text
    return response.json()


def listed(api, item_id: str, **params) -> dict:
    response = api.get(f"/api/reviews/items/{item_id}/reviews", params=params)
    assert response.status_code == 200, response.text
    return response.json()


# ----------------------------------------------------------------------------- reviews


def test_customers_review_an_item_replace_and_delete_and_the_summary_follows(api, admin) -> None:
    item = api.create_item(admin)["id"]
    assert summary(api, item) == {
        "average": None, "count": 0, "histogram": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0},
    }  # fmt: skip
    ada, bob = writer(api, "Ada"), writer(api, "Bob")

    first = review(api, ada, item, 2, "Meh.")
    assert first.status_code == 201, first.text
    assert review(api, bob, item, 5, "Love it.").status_code == 201
    again = review(api, ada, item, 4, "Grew on me.")  # the same author again: a replacement
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["id"], body["created_at"]) == (first.json()["id"], first.json()["created_at"])
    assert (body["rating"], body["comment"], body["author"]) == (
        4,
        "Grew on me.",
        {"display_name": "Ada"},
    )
    assert body["verified_purchase"] is False and body["updated_at"] >= body["created_at"]

    page = listed(api, item)
    assert (page["total"], page["limit"], page["offset"]) == (2, 20, 0)
    assert [r["author"]["display_name"] for r in page["items"]] == ["Bob", "Ada"]  # newest first
    assert set(page["items"][0]) == {
        "id", "item_id", "rating", "comment", "author", "verified_purchase", "created_at",
        "updated_at",
    }  # fmt: skip
    assert [r["rating"] for r in listed(api, item, sort="rating")["items"]] == [5, 4]
    assert [r["rating"] for r in listed(api, item, limit=1, offset=1)["items"]] == [4]
    assert summary(api, item) == {
        "average": 4.5, "count": 2, "histogram": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1},
    }  # fmt: skip
    mine = api.get(f"/api/reviews/items/{item}/review", ada).json()
    assert (mine["rating"], mine["hidden"]) == (4, False)

    assert api.delete(f"/api/reviews/items/{item}/review", ada).status_code == 204
    gone = api.delete(f"/api/reviews/items/{item}/review", ada)
    assert (gone.status_code, problem(gone)["code"]) == (404, "review_not_found")
    assert api.get(f"/api/reviews/items/{item}/review", ada).status_code == 404
    assert summary(api, item)["count"] == 1 and listed(api, item)["total"] == 1


def test_text_comes_back_as_written_and_bad_input_is_refused(api, admin) -> None:
    item = api.create_item(admin)["id"]
    ada = writer(api, "<b>Ada</b>")
    text = "<script>alert('x')</script> & \"quotes\"\n  ünïcödé 🎉  "
    written = review(api, ada, item, 3, text)
    assert written.status_code == 201, written.text
    assert written.headers["content-type"].startswith("application/json")
    [shown] = listed(api, item)["items"]
    assert (shown["comment"], shown["author"]["display_name"]) == (text, "<b>Ada</b>")

    path = f"/api/reviews/items/{item}/review"
    for bad in (
        {"rating": 3, "comment": ""},
        {"rating": 3, "comment": "   \n"},
        {"rating": 3, "comment": "x" * 2001},
        {"rating": 3, "comment": "nul\u0000byte"},
        {"rating": 0, "comment": "x"},
        {"rating": 6, "comment": "x"},
        {"rating": 3},
        {"rating": 3, "comment": "x", "verified_purchase": True},
    ):
        refused = api.put(path, bad, ada)
        assert (refused.status_code, problem(refused)["code"]) == (422, "invalid_input"), bad
    assert review(api, ada, item, 3, "x" * 2000).status_code == 200

    unknown = str(uuid.uuid4())
    for response in (review(api, ada, unknown, 5), api.get(f"/api/reviews/items/{unknown}/reviews"),
                     api.get(f"/api/reviews/items/{unknown}/summary")):  # fmt: skip
        assert (response.status_code, problem(response)["code"]) == (404, "item_not_found")
    anonymous = api.put(path, {"rating": 5, "comment": "x"})
    assert (anonymous.status_code, problem(anonymous)["code"]) == (401, "unauthenticated")
    for params in ({"limit": 101}, {"offset": -1}, {"sort": "best"}):
        refused = api.get(f"/api/reviews/items/{item}/reviews", params=params)
        assert (refused.status_code, problem(refused)["code"]) == (422, "invalid_input"), params


def test_a_buyer_s_review_shows_a_verified_purchase(api, admin) -> None:
    buyer = writer(api, "Buyer")
    item = buy_item(api, admin, buyer)
    bought = review(api, buyer, item, 5, "Worth every cent.")
    assert bought.status_code == 201, bought.text
    assert bought.json()["verified_purchase"] is True
    assert (
        review(api, writer(api, "Browser"), item, 1, "Never bought it.").json()["verified_purchase"]
        is False
    )
    flags = {
        r["author"]["display_name"]: r["verified_purchase"] for r in listed(api, item)["items"]
    }
    assert flags == {"Buyer": True, "Browser": False}


# ---------------------------------------------------------------------------- comments


def comments(api, event_id: str, **params) -> dict:
    response = api.get(f"/api/reviews/events/{event_id}/comments", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_event_discussion_with_nested_replies_and_deletions(api, admin) -> None:
    event = api.create_event(admin, "auction")["id"]
    ada, bob = writer(api, "Ada"), writer(api, "Bob")

    def post(token: str, body: str, parent: str | None = None) -> dict:
        path = (
            f"/api/reviews/comments/{parent}/replies"
            if parent
            else f"/api/reviews/events/{event}/comments"
        )
        response = api.post(path, {"body": body}, token)
        assert response.status_code == 201, response.text
        return response.json()

    question = post(ada, "Is the reserve high?")
    answer = post(bob, "Not really.", question["id"])
    follow_up = post(ada, "How do you know?", answer["id"])
    deeper = post(bob, "I asked.", follow_up["id"])
    second_answer = post(bob, "Also: it ships from Lyon.", question["id"])
    later = [post(bob, f"Later thought {n}", None) for n in range(2)]

    page = comments(api, event, limit=2)
    assert (page["total"], [c["body"] for c in page["items"]]) == (
        3,
        ["Later thought 1", "Later thought 0"],
    )
    [thread] = comments(api, event, limit=2, offset=2)["items"]
    assert thread["id"] == question["id"] and thread["author"] == {"display_name": "Ada"}
    assert [r["body"] for r in thread["replies"]] == ["Not really.", "Also: it ships from Lyon."]
    level3 = thread["replies"][0]["replies"][0]["replies"][0]
    assert (level3["id"], level3["depth"], level3["parent_id"]) == (
        deeper["id"],
        3,
        follow_up["id"],
    )

    stranger = api.delete(f"/api/reviews/comments/{answer['id']}", ada)
    assert (stranger.status_code, problem(stranger)["code"]) == (403, "not_author")
    assert api.delete(f"/api/reviews/comments/{answer['id']}", bob).status_code == 204
    [thread] = comments(api, event, offset=2)["items"]
    kept = thread["replies"][0]
    assert (kept["id"], kept["body"], kept["author"], kept["deleted"]) == (
        answer["id"],
        "[deleted]",
        None,
        True,
    )
    assert kept["replies"][0]["body"] == "How do you know?"
    refused = api.post(f"/api/reviews/comments/{answer['id']}/replies", {"body": "hm"}, ada)
    assert (refused.status_code, problem(refused)["code"]) == (404, "comment_not_found")

    # an admin removes the rest below it; the [deleted] one, now without replies, goes too
    assert api.delete(f"/api/reviews/comments/{deeper['id']}", admin).status_code == 204
    assert api.delete(f"/api/reviews/comments/{follow_up['id']}", ada).status_code == 204
    [thread] = comments(api, event, offset=2)["items"]
    assert [r["id"] for r in thread["replies"]] == [second_answer["id"]]
    assert api.delete(f"/api/reviews/comments/{later[0]['id']}", bob).status_code == 204
    assert comments(api, event)["total"] == 2

    for bad in ({"body": ""}, {"body": " "}, {"body": "x" * 2001}, {"text": "x"}):
        invalid = api.post(f"/api/reviews/events/{event}/comments", bad, ada)
        assert (invalid.status_code, problem(invalid)["code"]) == (422, "invalid_input"), bad
    draft = api.create_event(admin, "flash_sale", publish=False)["id"]
    for event_id in (str(uuid.uuid4()), draft):
        missing = api.post(f"/api/reviews/events/{event_id}/comments", {"body": "hi"}, ada)
        assert (missing.status_code, problem(missing)["code"]) == (404, "event_not_found")
    missing = api.post(f"/api/reviews/comments/{uuid.uuid4()}/replies", {"body": "hi"}, ada)
    assert (missing.status_code, problem(missing)["code"]) == (404, "comment_not_found")


# -------------------------------------------------------------------------- moderation


def test_an_admin_hides_a_review_and_a_comment_from_lists_and_summary(api, admin) -> None:
    item = api.create_item(admin)["id"]
    ada, bob = writer(api, "Ada"), writer(api, "Bob")
    abusive = review(api, ada, item, 1, "Terrible seller!!!").json()
    review(api, bob, item, 5, "Great.")
    assert summary(api, item)["count"] == 2

    refused = api.post(f"/api/reviews/admin/reviews/{abusive['id']}/hide", None, bob)
    assert (refused.status_code, problem(refused)["code"]) == (403, "forbidden")
    hidden = api.post(f"/api/reviews/admin/reviews/{abusive['id']}/hide", None, admin)
    assert hidden.status_code == 200 and hidden.json() == {"id": abusive["id"], "hidden": True}
    assert [r["comment"] for r in listed(api, item)["items"]] == ["Great."]
    assert summary(api, item) == {
        "average": 5.0, "count": 1, "histogram": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1},
    }  # fmt: skip
    assert api.get(f"/api/reviews/items/{item}/review", ada).json()["hidden"] is True
    unknown = api.post(f"/api/reviews/admin/reviews/{uuid.uuid4()}/hide", None, admin)
    assert (unknown.status_code, problem(unknown)["code"]) == (404, "review_not_found")

    event = api.create_event(admin, "ranked")["id"]
    spam = api.post(
        f"/api/reviews/events/{event}/comments", {"body": "Buy cheap watches"}, ada
    ).json()
    api.post(f"/api/reviews/comments/{spam['id']}/replies", {"body": "Reported."}, bob)
    api.post(f"/api/reviews/events/{event}/comments", {"body": "Good luck all"}, bob)
    assert (
        api.post(f"/api/reviews/admin/comments/{spam['id']}/hide", None, admin).status_code == 200
    )
    page = comments(api, event)
    assert (page["total"], [c["body"] for c in page["items"]]) == (2, ["Good luck all", "[hidden]"])
    assert (page["items"][1]["author"], page["items"][1]["hidden"]) == (None, True)
    assert [r["body"] for r in page["items"][1]["replies"]] == ["Reported."]  # Bob's stays

    shown = api.post(f"/api/reviews/admin/reviews/{abusive['id']}/unhide", None, admin)
    assert shown.json()["hidden"] is False
    assert summary(api, item)["count"] == 2


def test_hiding_a_reply_hides_it_alone_and_the_thread_counts_what_it_shows(api, admin) -> None:
    event = api.create_event(admin, "auction")["id"]
    ada, bob, cy, dee = (writer(api, name) for name in ("Ada", "Bob", "Cy", "Dee"))
    root = api.post(f"/api/reviews/events/{event}/comments", {"body": "Is it original?"}, ada)
    root = root.json()

    def reply(to: str, token: str, body: str) -> dict:
        answer = api.post(f"/api/reviews/comments/{to}/replies", {"body": body}, token)
        assert answer.status_code == 201, answer.text
        return answer.json()

    rude = reply(root["id"], bob, "Rude answer")
    reply(rude["id"], cy, "Please be kind.")
    reply(root["id"], dee, "Yes, with papers.")
    lone = api.post(f"/api/reviews/events/{event}/comments", {"body": "Who cares"}, bob).json()
    answered = reply(lone["id"], cy, "I do.")
    assert api.delete(f"/api/reviews/comments/{lone['id']}", bob).status_code == 204

    for hidden in (rude["id"], answered["id"]):
        moderated = api.post(f"/api/reviews/admin/comments/{hidden}/hide", None, admin)
        assert moderated.status_code == 200, moderated.text
    page = comments(api, event)

    def shape(views: list[dict]) -> list:
        return [(v["body"], v["author"] and v["author"]["display_name"], shape(v["replies"]))
                for v in views]  # fmt: skip

    assert shape(page["items"]) == [
        ("[deleted]", None, [("[hidden]", None, [])]),
        ("Is it original?", "Ada", [
            ("[hidden]", None, [("Please be kind.", "Cy", [])]),
            ("Yes, with papers.", "Dee", []),
        ]),
    ]  # fmt: skip
    assert page["total"] == len(page["items"]) == 2
    to_hidden = api.post(f"/api/reviews/comments/{rude['id']}/replies", {"body": "x"}, dee)
    assert (to_hidden.status_code, problem(to_hidden)["code"]) == (404, "comment_not_found")

    api.post(f"/api/reviews/admin/comments/{rude['id']}/unhide", None, admin)
    again = comments(api, event)["items"][1]["replies"][0]
    assert (again["body"], again["hidden"]) == ("Rude answer", False)


def test_a_hidden_review_stays_hidden_when_its_author_writes_it_again(api, admin) -> None:
    item = api.create_item(admin)["id"]
    ada, bob = writer(api, "Ada"), writer(api, "Bob")
    abusive = review(api, ada, item, 1, "Scam!!!").json()
    review(api, bob, item, 4, "Fine lamp.")
    api.post(f"/api/reviews/admin/reviews/{abusive['id']}/hide", None, admin)

    assert api.delete(f"/api/reviews/items/{item}/review", ada).status_code == 204
    again = review(api, ada, item, 1, "Scam, I said!!!")
    assert again.status_code == 201, again.text
    assert [r["comment"] for r in listed(api, item)["items"]] == ["Fine lamp."]
    assert summary(api, item)["count"] == 1
    assert api.get(f"/api/reviews/items/{item}/review", ada).json()["hidden"] is True

    replaced = review(api, ada, item, 2, "Not so bad after all")  # a replacement keeps it too
    assert replaced.status_code == 200 and summary(api, item)["count"] == 1
    api.post(f"/api/reviews/admin/reviews/{again.json()['id']}/unhide", None, admin)
    assert summary(api, item)["count"] == 2
    api.delete(f"/api/reviews/items/{item}/review", ada)
    assert review(api, ada, item, 3, "Fair.").status_code == 201
    assert summary(api, item)["count"] == 2  # unhidden since: her next review is shown
