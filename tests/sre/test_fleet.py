import polars as pl
import pytest

from dwcpkit.errors import ParameterError, SourceError
from dwcpkit.sre import fleet, slo
from dwcpkit.telemetry.schema import normalize


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return fleet.write_fleet(tmp_path_factory.mktemp("fleet"), nodes=12, days=0.2, seed=3)


def _in_memory(folder):
    full = normalize(pl.concat([pl.read_parquet(f) for f in fleet.partitions(folder)]))
    return slo.error_ratio(full.filter(metric=fleet.ERRORS), full.filter(metric=fleet.OPS), "5m", ["region"],
                           step="5m", start=full["timestamp"].min(), end=full["timestamp"].max())


def _assert_same(a, b):
    j = a.join(b, on=["timestamp", "region"], how="full", suffix="_b")
    assert j.height == a.height == b.height and j["value_b"].null_count() == 0
    assert (j["value"] - j["value_b"]).abs().max() < 1e-12


def test_dataset_has_one_partition_per_node_with_whole_series(dataset):
    files = fleet.partitions(dataset)
    assert len(files) == 12
    f = pl.read_parquet(files[0])
    assert f["node_id"].n_unique() == 1 and f.group_by("metric", "component").len()["len"].n_unique() == 1


def test_polars_engine_equals_in_memory(dataset):
    _assert_same(_in_memory(dataset), fleet.fleet_error_ratio(dataset))


def test_dask_engine_on_a_memory_limited_cluster_equals_in_memory(dataset, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="300MB", dashboard_address=None,
                                  local_directory=str(tmp_path)) as cluster, distributed.Client(cluster) as client:
        _assert_same(_in_memory(dataset), fleet.fleet_error_ratio(dataset, engine="dask", client=client))


def test_errors(tmp_path, dataset):
    with pytest.raises(SourceError, match="no parquet partitions"):
        fleet.fleet_error_ratio(tmp_path)
    with pytest.raises(ParameterError, match="needs client"):
        fleet.fleet_error_ratio(dataset, engine="dask")
    with pytest.raises(ParameterError, match="use 'polars' or 'dask'"):
        fleet.fleet_error_ratio(dataset, engine="spark")
