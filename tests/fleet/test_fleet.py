"""Many shops on a real Dask cluster: each healthy shop ends as it would alone, a broken one fails alone."""

import dagster as dg

from pipeline.cli import main
from pipeline.fleet.definitions import SHOP_NIGHT
from tests.fleet.conftest import DAY, exported, memberships, run_alone, write_shops


def test_three_shops_one_broken_the_healthy_ones_as_alone(tmp_path, fleet_env, capfd, monkeypatch) -> None:
    shops_file = write_shops(tmp_path, {"rome": (40, 1), "paris": (30, 2), "oslo": (20, 3)}, broken=("oslo",))

    status = main(["run", "--shops", str(shops_file), "--data-dir", str(fleet_env), "--as-of", DAY.isoformat()])

    out = capfd.readouterr().out
    assert status == 1
    assert "2 of 3 shops succeeded; failed: oslo" in out
    assert "shop oslo failed:" in out and "customers.jsonl:" in out and "not valid JSON" in out
    # nothing of a shop's lies outside its folder; the fleet's own instance and lock are the only others written
    assert sorted(p.name for p in fleet_env.iterdir()) == ["dagster", "night.lock", "shops"]
    assert sorted(p.name for p in (fleet_env / "shops").iterdir()) == ["oslo", "paris", "rome"]

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "alone-dagster"))
    for name in ("rome", "paris"):
        alone = run_alone(tmp_path, name)
        in_fleet = fleet_env / "shops" / name
        assert memberships(in_fleet) == memberships(alone), name
        assert any(memberships(alone).values()), "a comparison of empty segments would show nothing"
        assert exported(in_fleet) == exported(alone) and exported(alone), name
    assert not (fleet_env / "shops" / "oslo" / "warehouse.duckdb").exists()  # its night never published

    with dg.DagsterInstance.from_config(str(fleet_env / "dagster")) as instance:
        materialized = instance.get_materialized_partitions(SHOP_NIGHT)
        records = instance.fetch_materializations(SHOP_NIGHT, limit=10).records
    assert materialized == {f"{DAY}|paris", f"{DAY}|rome"}
    # each shop's record says what its night did, as its own folder shows it
    for record in records:
        name = record.partition_key.split("|")[1]
        figures = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        changes = [
            line.split(",")[0]
            for path, text in exported(fleet_env / "shops" / name).items()
            if path.endswith(".changes.csv")
            for line in text.splitlines()[1:]
        ]
        assert (figures["segments"], figures["added"], figures["removed"]) == (
            len(memberships(fleet_env / "shops" / name)),
            changes.count("add"),
            changes.count("remove"),
        ), name
        assert figures["added"] > 0
    assert f"{DAY}" in out and "rome" in out  # the table of shops
