"""Charts of the selected runs' metrics: Qt-free models and the :class:`ChartsPanel` widget.

The models (``series``, ``smoothing``, ``downsample``, ``model``, ``feed``) import no Qt; the
widgets (``panel`` and the modules it uses) are thin over them. Import the panel from
``desktop_app.charts.panel`` so that the models stay importable without Qt.
"""
