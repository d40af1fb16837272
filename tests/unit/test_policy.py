from gateway.replication.policy import merge_bulk_results, split_bulk


def test_design_docs_are_refused_one_by_one_in_place() -> None:
    docs = [{"_id": "a"}, {"_id": "_design/x", "views": {}}, {"_id": "b"}]
    kept, refused = split_bulk(docs)
    assert kept == [{"_id": "a"}, {"_id": "b"}]
    assert list(refused) == [1]
    upstream = [{"ok": True, "id": "a", "rev": "1-a"}, {"ok": True, "id": "b", "rev": "1-b"}]
    assert merge_bulk_results(docs, refused, upstream) == [
        upstream[0],
        {
            "id": "_design/x",
            "error": "forbidden",
            "reason": "design documents are not available through couchgate",
        },
        upstream[1],
    ]


def test_new_edits_false_answers_only_failures_so_refusals_are_appended() -> None:
    docs = [
        {"_id": "a", "_rev": "1-a"},
        {"_id": "_design/x", "_rev": "1-x"},
        {"_id": "b", "_rev": "1-b"},
    ]
    kept, refused = split_bulk(docs)
    assert len(kept) == 2
    assert merge_bulk_results(docs, refused, []) == [
        {
            "id": "_design/x",
            "error": "forbidden",
            "reason": "design documents are not available through couchgate",
        }
    ]


def test_a_non_object_document_is_a_bad_request() -> None:
    _, refused = split_bulk([{"_id": "a"}, 7])
    assert refused[1].error == "bad_request"
