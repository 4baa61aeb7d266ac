"""plotly.js served from the installed plotly package, so pages need no CDN and the browser's
Plotly always matches the pinned Python package."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_STATIC_PATH = "vendor/plotly.min.js"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.root = Path(plotly.__file__).resolve().parent / "package_data"
        self.storage = FileSystemStorage(location=str(self.root))
        # collectstatic copies what list() yields to <storage.prefix>/<path>.
        self.storage.prefix = "vendor"

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        find_all = find_all or kwargs.get("all", False)
        if path == PLOTLY_STATIC_PATH:
            match = str(self.root / "plotly.min.js")
            return [match] if find_all else match
        return []

    def list(self, ignore_patterns):
        yield "plotly.min.js", self.storage
