"""The experiment runner: YAML specs -> resumable runs in a content-addressed store -> results.csv.

Modules, in the order data flows: :mod:`~monetk_runner.spec` (load and check a spec),
:mod:`~monetk_runner.expand` (runs and their configs), :mod:`~monetk_runner.identity` (run ids),
:mod:`~monetk_runner.store` (run folders and per-spec views), :mod:`~monetk_runner.plan` (states,
sharing, the dry-run table), :mod:`~monetk_runner.executors` (local, worker processes, Ray),
:mod:`~monetk_runner.progress`, :mod:`~monetk_runner.collect` (results.csv) and
:mod:`~monetk_runner.cli`.
"""
