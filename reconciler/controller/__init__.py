"""``reconciler watch``: a controller that keeps fleets whole between CI runs.

- :mod:`.policy` (pure): which planned changes a watcher may carry out on its own;
- :mod:`.backoff` (pure): per-address exponential backoff after failed heals;
- :mod:`.events`: what happened, as readable lines or JSON objects, and the last ones kept;
- :mod:`.metrics`: the Prometheus metrics;
- :mod:`.watcher`: the loop (refresh, plan, decide, lock, act, release);
- :mod:`.server`: ``/metrics``, ``/healthz`` and the status page.
"""
