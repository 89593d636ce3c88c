"""The read-only web dashboard, its JSON API and Prometheus ``/metrics``, served by the
orchestrator (``docs/dashboard.md``, "Inside")."""
