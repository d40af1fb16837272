import pytest

from gateway.errors import CouchError
from gateway.replication.paths import Kind, app_enabled, classify, with_query


@pytest.mark.parametrize(
    ("method", "raw", "kind", "doc_id", "raw_rest"),
    [
        ("GET", "", Kind.SERVER, "", ""),
        ("GET", "/", Kind.SERVER, "", ""),
        ("GET", "/notes", Kind.DB, "", ""),
        ("PUT", "/notes/", Kind.DB, "", "/"),
        ("DELETE", "/notes/", Kind.DB, "", "/"),
        ("POST", "/notes", Kind.DB, "", ""),
        ("POST", "/notes/_bulk_docs", Kind.ENDPOINT, "", "/_bulk_docs"),
        ("GET", "/notes/_changes", Kind.ENDPOINT, "", "/_changes"),
        ("POST", "/notes/_changes", Kind.ENDPOINT, "", "/_changes"),
        ("POST", "/notes/_ensure_full_commit", Kind.ENDPOINT, "", "/_ensure_full_commit"),
        ("PUT", "/notes/_local/abc%2Fd", Kind.LOCAL, "_local/abc/d", "/_local/abc%2Fd"),
        ("GET", "/notes/a%2Fb", Kind.DOC, "a/b", "/a%2Fb"),
        ("GET", "/notes/a%2Bb", Kind.DOC, "a+b", "/a%2Bb"),
        ("GET", "/notes/a+b", Kind.DOC, "a+b", "/a+b"),
        ("GET", "/notes/%C3%BC%20x", Kind.DOC, "ü x", "/%C3%BC%20x"),
        ("PUT", "/notes/doc/photo.png", Kind.ATTACHMENT, "doc", "/doc/photo.png"),
        ("GET", "/notes/doc/dir/photo.png", Kind.ATTACHMENT, "doc", "/doc/dir/photo.png"),
    ],
)
def test_allowed_paths(method: str, raw: str, kind: Kind, doc_id: str, raw_rest: str) -> None:
    target = classify(method, raw)
    assert (target.kind, target.doc_id, target.raw_rest) == (kind, doc_id, raw_rest)


@pytest.mark.parametrize(
    ("method", "raw", "status", "error"),
    [
        ("GET", "/_all_dbs", 404, "not_found"),
        ("GET", "/_session", 404, "not_found"),
        ("POST", "/_replicate", 404, "not_found"),
        ("GET", "/Notes", 400, "illegal_database_name"),
        ("GET", "/no%74es", 400, "illegal_database_name"),
        ("GET", "/notes/_design/x", 403, "forbidden"),
        ("GET", "/notes/_design%2Fx", 403, "forbidden"),
        ("PUT", "/notes/%5Fdesign%2Fx", 403, "forbidden"),
        ("GET", "/notes/_design/x/_view/y", 403, "forbidden"),
        ("POST", "/notes/_find", 403, "forbidden"),
        ("POST", "/notes/_index", 403, "forbidden"),
        ("POST", "/notes/_explain", 403, "forbidden"),
        ("GET", "/notes/_security", 403, "forbidden"),
        ("PUT", "/notes/_security", 403, "forbidden"),
        ("POST", "/notes/_purge", 403, "forbidden"),
        ("POST", "/notes/_compact", 403, "forbidden"),
        ("POST", "/notes/_view_cleanup", 403, "forbidden"),
        ("PUT", "/notes/_revs_limit", 403, "forbidden"),
        ("GET", "/notes/_partition/p/_all_docs", 403, "forbidden"),
        ("GET", "/notes/_local%2Fx", 403, "forbidden"),
        ("GET", "/notes/..", 400, "bad_request"),
        ("GET", "/notes/../_all_dbs", 400, "bad_request"),
        ("GET", "/notes/%2e%2e/_all_dbs", 400, "bad_request"),
        ("GET", "/notes/%2E", 400, "bad_request"),
        ("GET", "/notes//x", 400, "bad_request"),
        ("COPY", "/notes/", 405, "method_not_allowed"),
        ("GET", "/notes/_local/x/att", 400, "bad_request"),
        ("PUT", "/notes/_local/x/a/b", 400, "bad_request"),
        ("GET", "/notes/_bulk_docs", 405, "method_not_allowed"),
        ("COPY", "/notes/doc", 405, "method_not_allowed"),
        ("PUT", "/", 405, "method_not_allowed"),
    ],
)
def test_refused_paths(method: str, raw: str, status: int, error: str) -> None:
    with pytest.raises(CouchError) as caught:
        classify(method, raw)
    assert (caught.value.status, caught.value.error) == (status, error)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("filter=app%2Fby_type", "forbidden"),
        ("Filter=app%2Fby_type", "forbidden"),
        ("FILTER=_view&view=a/b", "forbidden"),
        ("filter=_doc_ids&filter=_design", "bad_request"),
        ("feed=normal&feed=continuous", "bad_request"),
        ("feed=normal&Feed=continuous", "bad_request"),
        ("view=a%2Fb", "forbidden"),
    ],
)
def test_changes_queries_that_reach_past_the_allow_list(raw: str, error: str) -> None:
    with pytest.raises(CouchError) as caught:
        with_query(classify("GET", "/notes/_changes"), raw)
    assert caught.value.error == error


@pytest.mark.parametrize(
    ("raw", "feed", "forwarded"),
    [
        ("", "normal", ""),
        ("feed=continuous&heartbeat=10000", "continuous", "feed=continuous&heartbeat=10000"),
        ("feed=live&heartbeat=10000", "continuous", "feed=continuous&heartbeat=10000"),
        ("Feed=longpoll&Since=12", "longpoll", "feed=longpoll&since=12"),
        (
            "filter=_doc_ids&doc_ids=%5B%22a%22%5D",
            "normal",
            "filter=_doc_ids&doc_ids=%5B%22a%22%5D",
        ),
        ("filter=_selector", "normal", "filter=_selector"),
    ],
)
def test_changes_queries_are_forwarded_as_they_were_checked(
    raw: str, feed: str, forwarded: str
) -> None:
    # As a POST: a GET's filter arguments are checked too (test_get_filters_need_their_argument).
    target = with_query(classify("POST", "/notes/_changes"), raw, "POST")
    assert (target.feed, target.query) == (feed, forwarded)


@pytest.mark.parametrize(
    "raw", ["filter=_selector", "filter=_doc_ids", "filter=_doc_ids&doc_ids=%7B%7D"]
)
def test_get_filters_need_their_argument(raw: str) -> None:
    with pytest.raises(CouchError):
        with_query(classify("GET", "/notes/_changes"), raw)


def test_other_queries_are_forwarded_untouched() -> None:
    raw = "open_revs=%5B%221-a%22%5D&revs=true&latest=true&Feed=x&feed=y"
    assert with_query(classify("GET", "/notes/doc"), raw).query == raw


def test_app_patterns() -> None:
    assert app_enabled(("*",), "notes")
    assert app_enabled(("notes", "todo-*"), "todo-work")
    assert not app_enabled(("notes",), "todo")


@pytest.mark.parametrize(
    ("name", "legal"),
    [
        ("a", True),
        ("notes_2-b", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("a+b", False),
        ("a%2Bb", False),
        ("a$b", False),
        ("a(b)", False),
        ("a%2Fb", False),
        ("1notes", False),
        ("Notes", False),
    ],
)
def test_app_names_follow_the_documented_rule(name: str, legal: bool) -> None:
    """docs/app-names.md: narrower than CouchDB's database names, one spelling in any URL."""
    if legal:
        assert classify("GET", f"/{name}").app == name
    else:
        with pytest.raises(CouchError) as refused:
            classify("GET", f"/{name}")
        assert refused.value.error == "illegal_database_name"
