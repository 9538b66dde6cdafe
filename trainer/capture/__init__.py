"""Metrics from training code we did not write: a command run by ``trainer run -- CMD``.

The command is a child of the trainer process, which owns the journal. The child's metrics
come back through:

* the capture file (``$TRAINDESK_CAPTURE_FILE``, JSON lines), written by our own API
  (:mod:`trainer.capture.api_run`) and by the W&B-compatible shim (``--capture wandb``);
* TensorBoard event files it writes (``--capture tensorboard[=DIR]``);
* its printed lines (``--capture print:PRESET|REGEX``).
"""
