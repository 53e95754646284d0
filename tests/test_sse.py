import pytest

from conformance.wire.sse import StreamSyntaxError, parse_event_stream

BODY = (
    b'data: {"a": 1}\n\n'
    b": keep-alive\n\n"
    b"event: custom\ndata: line one\ndata: line two\n\n"
    b"data: [DONE]\n\n"
)


def _data(body, **kwargs):
    return [e.data for e in parse_event_stream(body, **kwargs).events]


def test_parses_events_comments_and_multiline_data():
    parsed = parse_event_stream(BODY)
    assert [e.data for e in parsed.events] == ['{"a": 1}', "line one\nline two", "[DONE]"]
    assert [e.event for e in parsed.events] == ["message", "custom", "message"]
    assert parsed.comments == ["keep-alive"]
    assert parsed.unterminated is None


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_crlf_and_cr_line_ends_are_legal(newline):
    assert _data(BODY.replace(b"\n", newline)) == _data(BODY)


def test_events_split_at_every_byte_parse_the_same():
    body = BODY.replace(b"\n", b"\r\n") + 'data: "caf\u00e9 \u2603"\r\n\r\n'.encode()
    whole = _data(body)
    for cut in range(1, len(body)):
        assert _data([body[:cut], body[cut:]]) == whole, cut
    assert _data([body[i:i + 1] for i in range(len(body))]) == whole


def test_field_without_space_and_unknown_fields():
    assert _data(b"data:x\nfoo: bar\nid: 7\n\n") == ["x"]


def test_unterminated_last_event_is_reported_not_dispatched():
    parsed = parse_event_stream(b"data: one\n\ndata: two")
    assert [e.data for e in parsed.events] == ["one"]
    assert parsed.unterminated == "data: two"
    assert parse_event_stream(b"data: one\n\ndata: two\n").unterminated == "data: two"
    assert parse_event_stream(b"data: one\n\n: comment").unterminated is None


def test_invalid_utf8_is_a_syntax_error():
    with pytest.raises(StreamSyntaxError):
        parse_event_stream(b"data: \xff\xfe\n\n")


def test_truncated_utf8_sequence_at_the_end_is_a_syntax_error():
    with pytest.raises(StreamSyntaxError):
        parse_event_stream("data: \u2603".encode()[:-1])


def test_bom_at_start_is_skipped():
    assert _data(b"\xef\xbb\xbfdata: x\n\n") == ["x"]
