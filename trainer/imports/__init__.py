"""Bringing metrics from elsewhere into run folders: TensorBoard event files, CSV and JSON.

Qt-free and torch-free. The readers here also serve the live capture of a script's
TensorBoard logs.
"""
