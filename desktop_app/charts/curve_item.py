"""The item that draws one run's line in a chart: a pyqtgraph ``PlotCurveItem`` whose bounds
cost nothing after the first ask.

pyqtgraph forgets a curve's data bounds whenever the view's transform changes (every pan,
zoom, resize and followed point) and asks for them several times per paint; each ask is a
``nanmin``/``nanmax`` over the data, and the bounding rect's pixel padding maps two vectors
through the item's device transform. With ten charts of twenty runs that was a third of a
frame. Here the data bounds are kept until the next ``setData``, and the padding comes from
the view box's range and size (a run line lives directly in the view box, unrotated).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import OpenGLHelpers
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter


class RunCurve(pg.PlotCurveItem):
    """A ``PlotCurveItem`` with data bounds cached per ``setData``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._data_bounds: list[tuple[float | None, float | None] | None] = [None, None]
        super().__init__(*args, **kwargs)

    def updateData(self, *args: Any, **kwargs: Any) -> None:
        self._data_bounds = [None, None]
        if kwargs or len(args) != 2 or self.opts["stepMode"] or not _plain(*args):
            super().updateData(*args, **kwargs)
            return
        # What pyqtgraph's updateData does for ``setData(x, y)`` of two 1-D float arrays of
        # one shape (how a chart always calls it), without its checks of every other option:
        # a third of a live chart's redraw went to those.
        self.xData, self.yData = args
        self.invalidateBounds()
        self.prepareGeometryChange()
        self.informViewBoundsChanged()
        self.path = None
        self.fillPath = None
        self._fillPathList = None
        self._mouseShape = None
        self._lineSegmentsRendered = False
        self.update()
        self.sigPlotChanged.emit(self)

    def setPen(self, *args: Any, **kwargs: Any) -> None:
        self._data_bounds = [None, None]  # a wide non-cosmetic pen widens the bounds
        super().setPen(*args, **kwargs)

    def dataBounds(
        self, ax: int, frac: float = 1.0, orthoRange: Any = None
    ) -> tuple[float | None, float | None]:
        if (
            frac < 1.0
            or orthoRange is not None
            or self.opts["fillLevel"] is not None
            or self.opts["shadowPen"] is not None
        ):
            return super().dataBounds(ax, frac, orthoRange)
        bounds = self._data_bounds[ax]
        if bounds is None:
            bounds = self._data_bounds[ax] = self._finite_bounds(ax)
        return bounds

    def _finite_bounds(self, ax: int) -> tuple[float | None, float | None]:
        """pyqtgraph's bounds of the whole data (NaN and inf left out) without its copies and
        warning filters: fmin/fmax skip NaN in one pass each."""
        data = self.xData if ax == 0 else self.yData
        if data is None or not len(data):
            return None, None
        low, high = float(np.fmin.reduce(data)), float(np.fmax.reduce(data))
        if not (math.isfinite(low) and math.isfinite(high)):
            finite = data[np.isfinite(data)]
            if not len(finite):
                return None, None
            low, high = float(finite.min()), float(finite.max())
        pen = self.opts["pen"]
        if pen is not None and not pen.isCosmetic() and pen.style() != Qt.PenStyle.NoPen:
            low, high = low - pen.widthF() * 0.7072, high + pen.widthF() * 0.7072
        return low, high

    def boundingRect(self) -> QRectF:
        rect: QRectF | None = getattr(self, "_boundingRect", None)
        if rect is None:
            xmn, xmx = self.dataBounds(0)
            ymn, ymx = self.dataBounds(1)
            if xmn is None or xmx is None or ymn is None or ymx is None:
                return QRectF()
            px, py = self._pixel()
            pad = self.pixelPadding()
            px, py = px * pad, py * pad
            rect = QRectF(xmn - px, ymn - py, xmx - xmn + 2 * px, ymx - ymn + 2 * py)
            self._boundingRect = rect
        return rect

    def paint(self, p: QPainter, opt: Any, widget: Any) -> None:
        """pyqtgraph's paint for what a run line is (one pen; no fill, shadow, OpenGL or
        composition mode), without its per-paint checks of all the others."""
        opts = self.opts
        if (
            self._exportOpts is not False
            or opts["fillLevel"] is not None
            or opts["shadowPen"] is not None
            or opts["compositionMode"] is not None
            or isinstance(widget, OpenGLHelpers.GraphicsViewGLWidget)
        ):
            super().paint(p, opt, widget)
            return
        pen = opts["pen"]
        if (
            self.xData is None
            or not len(self.xData)
            or pen is None
            or pen.style() == Qt.PenStyle.NoPen
        ):
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing, opts["antialias"])
        p.setPen(pen)
        if self._shouldUseDrawLineSegments(pen):
            p.drawLines(*self._getLineSegments())
        else:
            p.drawPath(self.getPath())

    def _pixel(self) -> tuple[float, float]:
        """The size of one screen pixel in data units (0 before the view box is laid out)."""
        vb = self.getViewBox()
        if vb is None or not hasattr(vb, "viewRange"):
            return 0.0, 0.0
        (x0, x1), (y0, y1) = vb.viewRange()
        width, height = vb.width(), vb.height()
        if width <= 0 or height <= 0:
            return 0.0, 0.0
        return abs(x1 - x0) / width, abs(y1 - y0) / height


def _plain(x: Any, y: Any) -> bool:
    """True for two 1-D real ndarrays (not subclasses) of one shape."""
    return (
        type(x) is np.ndarray
        and type(y) is np.ndarray
        and x.ndim == 1
        and x.shape == y.shape
        and x.dtype.kind in "fiu"
        and y.dtype.kind in "fiu"
    )
