"""The public half of the query API: records, pagination, models, errors, CORS, limits, WAL."""

import asyncio
import shutil
from pathlib import Path

import aiohttp
import pytest
import torch
from multiformats import CID

from oracle.api.app import ApiConfig, create_app
from oracle.ml import checkpoint
from oracle.ml.card import CARD_FILE, ModelCard
from oracle.ml.models import build, spec
from oracle.store.db import Database
from oracle.store.models import JobState
from tests.oracle.api.conftest import OTHER, OWNER, job, seed
from tests.support import serve


async def get(url: str, **kw: object) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.get(url, **kw) as r:  # type: ignore[arg-type]
        return r.status, await r.json()


async def test_health(api: str):
    assert await get(api + "/health") == (200, {"status": "ok"})


async def test_image_by_id_in_any_case_but_by_cid_only_for_its_owner(api: str, database: Database):
    record = job(1)
    await seed(database, [record])
    status, body = await get(f"{api}/v1/images/{record.image_id}")
    assert status == 200
    assert body["owner"] == OWNER
    assert body["state"] == "confirmed"
    assert body["result_hash"] == record.result_hash
    assert body["document"] is None, "documents are never public"
    assert (await get(f"{api}/v1/images/{record.image_id.upper().replace('0X', '0x')}"))[1] == body
    for ref in (record.cid, CID.decode(record.cid).encode("base36")):
        status, body = await get(f"{api}/v1/images/{ref}")
        assert (status, body["error"]["code"]) == (401, "sign_in_required")


async def test_unfinished_images_show_no_result_hash(api: str, database: Database):
    record = job(2, state=JobState.CLASSIFIED)
    await seed(database, [record])
    assert (await get(f"{api}/v1/images/{record.image_id}"))[1]["result_hash"] is None


@pytest.mark.parametrize(
    ("ref", "status", "code"),
    [
        ("0x" + "00" * 32, 404, "image_not_found"),
        ("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", 401, "sign_in_required"),
        ("not-a-cid", 400, "invalid_reference"),
        ("0x1234", 400, "invalid_reference"),
    ],
)
async def test_image_errors_have_stable_codes(api: str, ref: str, status: int, code: str):
    got_status, body = await get(f"{api}/v1/images/{ref}")
    assert got_status == status
    assert body["error"]["code"] == code


async def test_owner_pages_are_complete_ordered_and_disjoint(api: str, database: Database):
    await seed(database, [job(i) for i in range(25)] + [job(100 + i, OTHER) for i in range(3)])
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": "10"} | ({"cursor": cursor} if cursor else {})
        status, body = await get(f"{api}/v1/owners/{OWNER.lower()}/images", params=query)
        assert status == 200
        assert body["owner"] == OWNER
        seen += [(i["registration_block"], i["image_id"]) for i in body["images"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 25
    assert seen == sorted(seen)


async def test_owner_images_filter_by_state(api: str, database: Database):
    await seed(database, [job(1), job(2, state=JobState.QUEUED), job(3, state=JobState.QUEUED)])
    status, body = await get(f"{api}/v1/owners/{OWNER}/images", params={"state": "queued"})
    assert status == 200
    assert {i["state"] for i in body["images"]} == {"queued"}
    assert len(body["images"]) == 2


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (f"/v1/owners/{OWNER}/images", {"limit": "0"}),
        (f"/v1/owners/{OWNER}/images", {"limit": "101"}),
        (f"/v1/owners/{OWNER}/images", {"state": "done"}),
        (f"/v1/owners/{OWNER}/images", {"cursor": "x"}),
        ("/v1/owners/0xnothex/images", {}),
    ],
)
async def test_bad_parameters_are_400(api: str, path: str, params: dict[str, str]):
    status, body = await get(api + path, params=params)
    assert status == 400
    assert body["error"]["code"] in {"invalid_parameter", "invalid_address"}


async def test_models_come_from_the_model_directory(api: str, tmp_path: Path):
    torch.manual_seed(0)
    fields = {"name": "m1", "architecture": "basecnn", "labels": ("benign", "malignant"), "threshold": 0.5}
    card = checkpoint.save(
        build("basecnn"),
        tmp_path / "models" / "m1",
        fields | {"preprocessing": spec("basecnn").preprocessing(32)},
    )
    status, body = await get(api + "/v1/models")
    assert status == 200
    assert [m["model_id"] for m in body["models"]] == ["0x" + card.model_id.hex()]
    assert body["models"][0]["labels"] == ["benign", "malignant"]
    served = body["models"][0]["card"]
    assert "Not a diagnosis" in served["intended_use"]
    assert any("H&E" in use for use in served["out_of_scope"])
    assert served["provenance"] == "not recorded"  # a card saved without its data description
    assert served["calibration"] is None
    assert served["feature_check"] is None


@pytest.fixture
def trained_card_path(checkpoint: tuple[Path, ModelCard]) -> Path:
    return checkpoint[0] / "basecnn" / CARD_FILE


async def test_a_trained_model_s_card_is_served_with_its_intervals_gate_and_checks(
    api: str, tmp_path: Path, trained_card_path: Path
):
    target = tmp_path / "models" / "trained"
    shutil.copytree(trained_card_path.parent, target)
    card = ModelCard.load(target / CARD_FILE)
    status, body = await get(api + "/v1/models")
    assert status == 200
    (served,) = [m["card"] for m in body["models"]]
    assert served["provenance"].startswith("synthetic")
    patient = served["evaluation"]["patient_level"]["roc_auc"]
    assert patient["low"] <= patient["value"] <= patient["high"]
    assert served["evaluation"]["bootstrap"]["resamples"] == 20  # tests/support.py's tiny run
    assert served["calibration"]["summary"] == card.calibration.describe()
    assert served["gate"]["limits"]["min_side"] == 64
    assert set(served["gate"]["refused"]) == {"train", "validation", "test"}
    assert served["gate"]["training"]["tissue"]["p01"] > 0


async def test_cors_preflight_and_headers(api: str):
    headers = {"Origin": "http://localhost:8000", "Access-Control-Request-Method": "GET"}
    async with aiohttp.ClientSession() as s:
        async with s.options(api + "/v1/models", headers=headers) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == "*"
        async with s.get(api + "/v1/images/nope", headers={"Origin": "http://x"}) as r:
            assert r.headers["Access-Control-Allow-Origin"] == "*"


async def test_unknown_routes_and_methods_are_json_errors(api: str):
    assert (await get(api + "/v2/anything"))[1]["error"]["code"] == "not_found"
    async with aiohttp.ClientSession() as s, s.post(api + "/v1/models", data=b"x" * 100_000) as r:
        assert r.status in (405, 413)
        assert (await r.json())["error"]["code"] in {"method_not_allowed", "body_too_large"}


async def test_rate_limit_per_client(database: Database):
    runner, url = await serve(create_app(database, ApiConfig(rate_per_second=0.5, rate_burst=3)))
    try:
        statuses = [(await get(url + "/health"))[0] for _ in range(5)]
        assert statuses[:3] == [200, 200, 200]
        assert statuses[3:] == [429, 429]
        assert (await get(url + "/health"))[1]["error"]["code"] == "rate_limited"
    finally:
        await runner.cleanup()


async def test_reads_keep_working_while_the_oracle_writes(api: str, database: Database, tmp_path: Path):
    """Two engines on one SQLite file, as the oracle and the API run: WAL lets readers go on."""
    writer = Database(f"sqlite+aiosqlite:///{tmp_path / 'oracle.db'}")
    await writer.start()
    done = asyncio.Event()

    async def write() -> None:
        for i in range(200):
            await seed(writer, [job(1000 + i)])
        done.set()

    async def read() -> int:
        count = 0
        while not done.is_set():
            status, body = await get(f"{api}/v1/owners/{OWNER}/images", params={"limit": "100"})
            assert status == 200, body
            count += 1
        return count

    try:
        results = await asyncio.gather(write(), read(), read())
    finally:
        await writer.close()
    assert min(results[1:]) > 0
    _status, body = await get(f"{api}/v1/owners/{OWNER}/images", params={"limit": "100"})
    assert len(body["images"]) == 100
    assert body["next_cursor"] is not None


async def test_a_super_resolution_model_is_served_with_its_task_limits_and_figures(api: str, tmp_path: Path):
    from oracle.ml.sr import checkpoint as sr_checkpoint
    from oracle.ml.sr.models import SRResNet

    torch.manual_seed(0)
    figures = {"psnr_y": 29.9, "ssim_y": 0.81, "bicubic_psnr_y": 28.6, "bicubic_ssim_y": 0.79}
    card = sr_checkpoint.save(
        SRResNet(),
        tmp_path / "models" / "sr",
        {"name": "sr1", "architecture": "srresnet", "metrics": figures},
    )
    status, body = await get(api + "/v1/models")
    assert status == 200
    (served,) = body["models"]
    assert served["model_id"] == "0x" + card.model_id.hex()
    assert served["task"] == "super-resolution"
    assert served["input"]["scale"] == 4
    assert served["input"]["max_pixels"] == card.input.max_pixels
    assert "labels" not in served
    assert served["card"]["metrics"] == figures
    assert "Not for diagnosis" in served["card"]["intended_use"]
