"""TrainDesk's performance benchmarks: ``python -m bench`` (or ``make bench``).

Every figure is a ratio of two things measured side by side in the same run (repetitions
interleaved, medians taken), never an absolute time: the machines that run this are shared and
noisy. The results, with the machine and the date, are written to ``docs/performance.md``.
"""
