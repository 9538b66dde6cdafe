"""Machine resources for runs: GPUs (real or simulated), leases, the queue, limits."""
