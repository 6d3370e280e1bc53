//! Operating the gateway: reload, metrics, readiness, Harbor mode, graceful stop.
