"""The GPU queue in the app: the lease store's queue, listed, reordered and cancelled."""
