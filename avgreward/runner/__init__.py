"""The experiment runner, in modules named for what they hold.

- :mod:`avgreward.runner.records`: an experiment's files, written atomically,
  checked against their checksums and settings;
- :mod:`avgreward.runner.directory`: the directory's lock, creation and settings;
- :mod:`avgreward.runner.pool`: the runs, in this process or in worker processes;
- :mod:`avgreward.runner.view`: :class:`Experiment`, :func:`load_experiment`.

The public entry points are in :mod:`avgreward.experiment`.
"""
