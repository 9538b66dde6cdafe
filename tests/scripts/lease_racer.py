"""Race for the machine's last GPU: try to lease it N times, hold it briefly, release it.

Usage: lease_racer.py STORE ROUNDS NAME   (prints how many rounds it won)
"""

import sys
import time
from pathlib import Path

from trainer.resources.gpus import SimulatedBackend
from trainer.resources.store import GpuRequest, LeaseStore

store_path, rounds, name = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
devices = SimulatedBackend.from_spec("1x24GiB").devices()
won = 0
with LeaseStore(store_path) as store:
    for _ in range(rounds):
        grant = store.try_acquire(name, GpuRequest(count=1), devices, simulated=True)
        if grant.ok:
            won += 1
            time.sleep(0.002)  # hold the device while the other racer tries
            store.release(name)
print(won)
