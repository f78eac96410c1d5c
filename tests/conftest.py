"""Test-session settings shared by every test file."""


def pytest_collection_modifyitems(session, config, items):
    """Run the Dask tests last.

    A Dask client leaves Python threads behind (its event loop) after it
    closes, and with other threads alive the local runner spawns its worker
    processes instead of forking them (see ``avgreward.runner.pool._start_method``):
    correct, but a second slower per experiment for every later test.
    """
    items.sort(key=lambda item: item.fspath.basename == "test_cluster.py")
