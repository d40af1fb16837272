import json

from gateway.replication.stream import longpoll_ending


def _whole(sent: bytes, since: str | None) -> object:
    ending = longpoll_ending(sent, since)
    assert ending is not None
    return json.loads(sent + ending)


def test_nothing_yet_becomes_an_empty_answer_from_the_same_point() -> None:
    assert _whole(b"", "17") == {"results": [], "last_seq": 17}
    assert _whole(b'{"results":[\n\n\n', "17") == {"results": [], "last_seq": 17}
    assert _whole(b'{"results":[\n', "3-g1AAAA") == {"results": [], "last_seq": "3-g1AAAA"}
    assert _whole(b"", None) == {"results": [], "last_seq": 0}


def test_whole_rows_are_kept_and_the_last_one_says_where_to_go_on() -> None:
    sent = (
        b'{"results":[\n{"seq":4,"id":"a","changes":[{"rev":"1-a"}]},\n'
        b'{"seq":5,"id":"b","changes":[{"rev":"1-b"}]}'
    )
    whole = _whole(sent, "3")
    assert isinstance(whole, dict)
    assert [r["id"] for r in whole["results"]] == ["a", "b"] and whole["last_seq"] == 5


def test_a_feed_cut_inside_a_row_cannot_be_completed() -> None:
    assert longpoll_ending(b'{"results":[\n{"seq":4,"id":"a","chan', "3") is None
    assert longpoll_ending(b'{"results":[\n{"seq":4,"id":"a"},\n', "3") is None
    assert longpoll_ending(b"\xff\xfe", "3") is None
