import json

from gateway.replication.upstream_errors import SERVER_FAILED, client_error

UID = "abcdefghijklmnop"


def answer(status: int, body: bytes) -> dict[str, str]:
    response = client_error(status, body, UID, "notes")
    assert response.status == status and response.content_type == "application/json"
    assert isinstance(response.body, bytes)
    parsed: dict[str, str] = json.loads(response.body)
    return parsed


def test_json_reasons_name_the_app_not_the_internal_database() -> None:
    body = json.dumps({"error": "not_found", "reason": f"u{UID}-notes and u{UID} gone"}).encode()
    got = answer(404, body)
    assert got["error"] == "not_found"
    assert UID not in got["reason"] and "notes" in got["reason"]


def test_pages_and_traces_become_the_error_of_their_status() -> None:
    assert answer(400, b"<html><pre>URIError at decode (/srv/node_modules/x.js)</pre>") == {
        "error": "bad_request",
        "reason": "bad request",
    }
    trace = json.dumps({"error": "error", "reason": '{badarith,[{file,"x.erl"}]}'}).encode()
    assert answer(500, trace) == {"error": "error", "reason": SERVER_FAILED}
    assert answer(502, b"Bad gateway") == {"error": "unknown_error", "reason": SERVER_FAILED}
    assert answer(409, b'{"error":"conflict","reason":"Document update conflict."}') == {
        "error": "conflict",
        "reason": "Document update conflict.",
    }
    assert answer(404, b'{"error":"<b>","reason":"x"}')["error"] == "not_found"


def test_a_cut_json_error_becomes_the_error_of_its_status() -> None:
    assert answer(409, b'{"error":"conflict","rea') == {
        "error": "conflict",
        "reason": "Document update conflict.",
    }
