"""Unit tests of the Uddata+ client through MockTransport / ASGITransport (no sockets)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import toolkit
from toolkit import Secret, Unauthorized, ValidationError
from toolkit.core.http import ASGITransport, HTTPResponse, MockTransport
from toolkit.sandbox.uddata import UddataEmulator
from toolkit.sandbox.uddata_data import make_photo

SECRET = "s3cr3t-client-secret-value"
TOKEN = "tok-abcdefghijklmnop"
CPR_WITH = "0101901234"
CPR_WITHOUT = "0202024321"


class Fake:
    """A small fake of the contract that records what the client sends."""

    def __init__(self, token_status: int = 200, put_status: int = 201, reject_first_token: bool = False):
        self.requests = []
        self.tokens = 0
        self.token_status = token_status
        self.put_status = put_status
        self.reject_first_token = reject_first_token

    def __call__(self, request):
        self.requests.append(request)
        path = request.url.path
        if path.endswith("token"):
            self.tokens += 1
            if self.token_status != 200:
                return HTTPResponse(self.token_status, json={"error": "invalid_client"})
            return HTTPResponse(200, json={"access_token": f"{TOKEN}{self.tokens}", "token_type": "Bearer",
                                           "expires_in": 3600})
        auth = request.headers.get("authorization", "")
        if self.reject_first_token and auth == f"Bearer {TOKEN}1":
            return HTTPResponse(401, json={"error": "invalid_token"})
        if path.endswith("/elever"):
            return HTTPResponse(200, json=[{"indi_id": "1", "cpr_nr": "0101901234", "fornavn": "A", "efternavn": "B",
                                            "stamhold": "1.a", "uddannelse": "STX", "startdato": "2024-08-12",
                                            "slutdato": "2027-06-30"}])
        if request.method == "GET" and f"/billeder/{CPR_WITH}" in path:
            return HTTPResponse(200, content=make_photo(1), headers={"content-type": "image/jpeg"})
        if request.method == "GET" and "/billeder/" in path:
            return HTTPResponse(404, json={"error": "not_found", "message": "the person has no photo"})
        if request.method == "PUT":
            if self.put_status == 201:
                return HTTPResponse(201)
            return HTTPResponse(self.put_status, json={"error": "x", "message": "refused"})
        return HTTPResponse(404, json={"error": "not_found", "message": "no such endpoint"})


def client(fake, **kw):
    opts = dict(base_url="https://uddata.example", institution="123456", client_id="my.client",
                client_secret=SECRET, transport=MockTransport(fake))
    opts.update(kw)
    return toolkit.uddata.connect(**opts)


def test_token_is_lazy_and_paths_follow_the_contract():
    fake = Fake()
    ud = client(fake)
    assert fake.requests == []  # nothing sent by connect()
    assert ud.get_image(CPR_WITHOUT) is None
    token_req, get_req = fake.requests
    assert token_req.method == "POST" and str(token_req.url) == "https://uddata.example/oauth/token"
    form = dict(x.split("=", 1) for x in token_req.content.decode().split("&"))
    assert form == {"grant_type": "client_credentials", "client_id": "my.client", "client_secret": SECRET}
    assert get_req.url.path == f"/0.7.5/123456/billeder/{CPR_WITHOUT}"
    assert get_req.headers["authorization"] == f"Bearer {TOKEN}1"
    assert SECRET not in str(get_req.url) and TOKEN not in str(get_req.url)
    ud.get_image(CPR_WITHOUT)
    assert fake.tokens == 1  # reused


def test_get_image_returns_a_pillow_image():
    img = client(Fake()).get_image("010190-1234")
    assert img is not None and img.size == (160, 200)


def test_expired_token_is_renewed_once_and_the_call_repeated():
    fake = Fake(reject_first_token=True)
    assert client(fake).get_image(CPR_WITH) is not None
    assert fake.tokens == 2


def test_bad_credentials_give_a_plain_error_without_the_secret():
    ud = client(Fake(token_status=401))
    with pytest.raises(Unauthorized) as info:
        ud.students()
    text = str(info.value)
    assert "Uddata+" in text and "client" in text.lower()
    assert SECRET not in text and SECRET not in repr(ud)


def test_secret_may_be_a_Secret_and_repr_hides_it():
    ud = client(Fake(), client_secret=Secret(SECRET))
    assert ud.students()["cpr"].tolist() == ["0101901234"]
    assert SECRET not in repr(ud)


def test_students_keep_cpr_as_text_masked_on_display():
    df = client(Fake()).students()
    assert list(df.columns[:8]) == ["cpr", "indi_id", "fornavn", "efternavn", "stamhold", "uddannelse",
                                    "startdato", "slutdato"]
    assert df["cpr"].iloc[0] == "0101901234" and str(df["cpr"].dtype) == "cpr"
    # one CPR column: the delivered value equals the normalised one, so no second column repeats it
    assert "cpr_nr" not in df.columns and "cpr_as_delivered" not in df.columns
    assert "0101901234" not in repr(df) and "0101901234" not in df._repr_html_()


def test_students_normalise_a_dashed_cpr_and_keep_the_delivered_value():
    roster = [{"indi_id": "7", "cpr_nr": "020202-0202", "fornavn": "C"}, {"indi_id": "8", "cpr_nr": None}]
    fake = Fake()
    ud = client(lambda r: HTTPResponse(200, json=roster) if r.url.path.endswith("/elever") else fake(r))
    df = ud.students()
    assert df["cpr"].tolist()[0] == "0202020202" and "cpr_nr" not in df.columns
    # the delivered value is kept only where it differs from the normalised number
    assert df["cpr_as_delivered"].tolist()[0] == "020202-0202" and pd.isna(df["cpr_as_delivered"].iloc[1])
    assert pd.isna(df["cpr"].iloc[1]) and len(df) == 2
    assert "020202-0202" not in repr(df) and "0202020202" not in repr(df)


def test_put_image_sends_multipart_billede_and_returns_a_row(tmp_path):
    fake = Fake()
    photo = tmp_path / "p.jpg"
    photo.write_bytes(make_photo(2))
    row = client(fake).put_image(CPR_WITH, photo)
    assert row["outcome"] == "uploaded" and row["http_status"] == 201
    put = fake.requests[-1]
    assert put.method == "PUT" and put.url.path == "/0.7.5/123456/billeder"
    assert put.url.params["cpr"] == CPR_WITH
    body = put.content
    assert b'name="billede"' in body and b"Content-Type: image/jpeg" in body and make_photo(2) in body
    assert CPR_WITH not in repr(row)


@pytest.mark.parametrize("status, outcome", [(404, "unknown_cpr"), (403, "forbidden"), (400, "rejected"),
                                             (413, "rejected")])
def test_put_image_statuses_become_plain_rows(status, outcome):
    row = client(Fake(put_status=status)).put_image(CPR_WITH, make_photo(3))
    assert row["outcome"] == outcome and row["http_status"] == status
    assert str(status) in row["message"]


def test_put_image_checks_before_sending():
    fake = Fake()
    with pytest.raises(ValidationError):
        client(fake).put_image(CPR_WITH, b"not a jpeg at all")
    with pytest.raises(ValidationError):
        client(fake).put_image("3201901234", make_photo(3))
    assert fake.requests == []


def test_environment_mapping_and_overrides(monkeypatch):
    fake = Fake()
    ud = toolkit.uddata.connect(environment="staging", environments={"staging": "https://staging.example"},
                                institution="123456", client_id="c", client_secret=SECRET,
                                transport=MockTransport(fake), token_url="https://login.example/token",
                                path_prefix="api/{api_version}/inst/{institution}", api_version="0.8.0")
    ud.get_image(CPR_WITHOUT)
    assert str(fake.requests[0].url) == "https://login.example/token"
    assert str(fake.requests[1].url).startswith("https://staging.example/api/0.8.0/inst/123456/billeder/")
    with pytest.raises(ValidationError) as info:
        toolkit.uddata.connect(environment="nowhere", institution="1", client_id="c", client_secret=SECRET)
    assert "environment" in str(info.value)
    monkeypatch.setenv("TOOLKIT_UDDATA_ENVIRONMENTS", json.dumps({"qa": "https://qa.example"}))
    assert toolkit.uddata.connect(environment="qa", institution="1", client_id="c",
                                  client_secret=SECRET).aio.base_url == "https://qa.example"


def test_missing_fields_are_named():
    with pytest.raises(ValidationError) as info:
        toolkit.uddata.connect(base_url="https://x.example", institution="1")
    assert "client_id" in str(info.value) and "client_secret" in str(info.value)


def test_audit_reads_every_input_shape(tmp_path):
    emu = UddataEmulator(seed=3, students=12)
    emu.base_url = "http://uddata.test"
    ud = toolkit.uddata.connect(**{**emu.credentials(), "base_url": "http://uddata.test"},
                                transport=ASGITransport(app=emu.build_app()))
    roster = emu.roster()[:6]
    truth = emu.truth()
    csv = tmp_path / "cprs.csv"
    pd.DataFrame({"CPR": roster}).to_csv(csv, index=False)
    headerless = tmp_path / "plain.csv"
    headerless.write_text("\n".join(roster) + "\n")
    xlsx = tmp_path / "cprs.xlsx"
    pd.DataFrame({"navn": ["x"] * 6, "cpr_nr": roster}).to_excel(xlsx, index=False)
    shapes = [roster, pd.Series(roster), pd.DataFrame({"cpr": roster, "other": 1}), csv, str(headerless), xlsx]
    for source in shapes:
        result = ud.audit(source, progress=False)
        assert result["cpr"].tolist() == roster, type(source)
        assert result["has_image"].tolist() == [truth[c] for c in roster]
        assert result["valid"].all()


def test_audit_rows_for_invalid_and_duplicates_and_summary():
    emu = UddataEmulator(seed=4, students=8)
    ud = toolkit.uddata.connect(**{**emu.credentials(), "base_url": "http://uddata.test"},
                                transport=ASGITransport(app=emu.build_app()))
    roster = emu.roster()
    inputs = [roster[0], "junk", roster[1], roster[0], "3201901234"]
    result = ud.audit(inputs, progress=False)
    assert list(result.columns) == ["cpr", "outcome", "message", "valid", "has_image", "width", "height", "bytes",
                                    "http_status"]
    assert len(result) == 5
    assert result["valid"].tolist() == [True, False, True, True, False]
    assert pd.isna(result["http_status"].iloc[1]) and "not sent" in result["message"].iloc[1]
    assert "duplicate of input row 1" in result["message"].iloc[3]
    assert result["has_image"].iloc[3] == result["has_image"].iloc[0]
    # only the unique valid numbers were sent
    assert sum(emu.get_counts.values()) == 2
    assert "invalid 2" in result.summary and "5 items" in result.summary and "duplicate 1" in result.summary
    for c in roster[:2]:
        assert c not in repr(result) and c not in result.summary
    for i, c in ((0, roster[0]), (2, roster[1])):
        row = result.iloc[i]
        if emu.truth()[c]:
            assert row["http_status"] == 200 and row["width"] == 160 and row["height"] == 200 and row["bytes"] > 0
        else:
            assert row["http_status"] == 404 and pd.isna(row["error"])
