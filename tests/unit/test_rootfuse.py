"""Root fusion (core/rootfuse.py) on real graphs and a real LocalCluster: same numbers, fewer
bytes between workers, and nothing fused that must stay a task of its own."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from naist_dask_tui.core import rootfuse  # noqa: E402


def lab(shape=(600, 600, 10), chunks=(100, 100, 5), seed=None):
    if seed is None:
        x = da.random.random(shape, chunks=chunks)
        y = da.random.random(shape, chunks=chunks)
    else:
        rs = da.random.RandomState(seed)
        x = rs.random_sample(shape, chunks=chunks)
        y = rs.random_sample(shape, chunks=chunks)
    return (da.arcsin(x) + da.arccos(y)).sum(axis=(1, 2)), x, y


def optimized(collection, fuse: bool) -> dict:
    with rootfuse.enabled(fuse):
        (opt,) = dask.optimize(collection)
    return dict(opt.__dask_graph__())


def prefixes(graph) -> set[str]:
    return {(k[0] if isinstance(k, tuple) else k).rsplit("-", 1)[0] for k in graph}


def test_lab_graph_generates_each_chunk_in_the_task_that_uses_it():
    result, x, _ = lab()
    plain = optimized(result, False)
    fused = optimized(result, True)
    assert "random_sample" in prefixes(plain)  # dask alone leaves the roots as tasks
    assert "random_sample" not in prefixes(fused)
    n_chunks = x.npartitions
    assert len(plain) - len(fused) == 2 * n_chunks  # x_i and y_i went into each sum task
    graph, count = rootfuse.fuse_roots(plain, result.__dask_keys__())
    assert count == n_chunks and len(graph) == len(fused)


def test_shared_roots_outputs_and_one_input_stay_as_they_are():
    x = da.random.random((400, 400), chunks=(100, 100))
    # x's chunks feed two tasks each: fusing would compute them twice
    shared = optimized((x + x.T).sum(), True)
    assert "random_sample" in prefixes(shared)
    # a root asked for as an output stays a task of its own
    y = da.random.random((400, 400), chunks=(100, 100))
    total = (x + y).sum()
    plain = optimized(total, False)
    graph, count = rootfuse.fuse_roots(plain, [total.__dask_keys__(), x.__dask_keys__()])
    assert count == 0 and graph == plain
    assert rootfuse.fuse_roots(plain, [total.__dask_keys__()])[1] == x.npartitions
    # two chunks of the same array into one task (a rechunk): not a blockwise pair, left alone
    merged = optimized(da.random.random((400,), chunks=100).rechunk(200), True)
    assert "random_sample" in prefixes(merged)


def test_annotated_graphs_are_left_to_dask():
    with dask.annotate(retries=2):
        x = da.random.random((400, 400), chunks=(100, 100))
    y = da.random.random((400, 400), chunks=(100, 100))
    graph = optimized((x + y).sum(), True)
    assert "random_sample" in prefixes(graph)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def moved_bytes(client) -> int:
    return sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values())


def test_same_numbers_and_no_chunk_copied_between_workers(client):
    result, x, y = lab(seed=1234)
    xs, ys = dask.compute(x, y)
    expected = (np.arcsin(xs) + np.arccos(ys)).sum(axis=(1, 2))

    before = moved_bytes(client)
    plain = result.compute()
    copied = moved_bytes(client) - before
    with rootfuse.enabled():
        before = moved_bytes(client)
        fused = result.compute()
        fused_copied = moved_bytes(client) - before
    np.testing.assert_allclose(plain, expected)
    np.testing.assert_allclose(fused, expected)
    # 36 chunk pairs of 400 KB on 2 workers: without fusion some pairs land apart
    assert copied > 400_000, copied
    assert fused_copied < 50_000, fused_copied  # only the partial sums move


def test_enabled_is_scoped_and_off_means_off():
    result, _, _ = lab()

    def graph() -> dict:
        (opt,) = dask.optimize(result)
        return dict(opt.__dask_graph__())

    assert "random_sample" in prefixes(graph())  # dask as it is
    with rootfuse.enabled():
        assert "random_sample" not in prefixes(graph())
        with rootfuse.enabled(False):  # off inside on: dask's own optimization
            assert "random_sample" in prefixes(graph())
        assert "random_sample" not in prefixes(graph())
    assert "random_sample" in prefixes(graph())  # the block ended: as before it
