"""The chapters' figures in Chinese, drawn from the one execution of each chapter.

**In the kernel** that executes a chapter (once, for both editions), the book's build loads
:func:`load_ipython_extension` (through an IPython profile: see :func:`kernel_profile`):
every matplotlib figure a cell displays gets, beside its ``image/png``, the figure itself,
pickled (:data:`MIME`). MyST-NB renders the ``image/png`` as before, so the English page
does not change; the pickle lives with the outputs in the execution cache, so nothing
runs again for the Chinese edition.

**At build time** the figure is unpickled and its text is read (:func:`figure_texts`:
titles, axis labels, legends, annotations, tick labels that are words) for the page's
catalog, or replaced by its translation (:func:`translate_figure`) and drawn again with a
CJK font (:func:`render`) for the Chinese page. The pickle is the build's own data (its
execution cache); it never reaches a reader: :func:`strip_notebook` takes it out of the
notebooks the site offers for download.

The kernel side needs only the standard library and matplotlib; this file is run in
the kernel by path (``runpy``), so it leaves no name in the chapter's namespace.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import io
import pickle
import re
import zlib
from pathlib import Path

# One display output of a figure: its pickle (zlib, base64), or why it could not be pickled.
MIME = "application/vnd.course.figure+pickle"
ERROR_MIME = "application/vnd.course.figure-error+json"
CAPTURE_MIMES = (MIME, ERROR_MIME)
# Where a figure's tight_layout() call is remembered, to be made again after the text
# changed (tight_layout() sets the positions once; it leaves no layout engine behind).
TIGHT = "_course_tight_layout"

# The Chinese figures' fonts: Noto Sans CJK SC (Debian's fonts-noto-cjk; its Latin letters,
# digits and full-width punctuation included) draws every text, in the family its text
# asks for (sans-serif unless a chapter chose another); matplotlib takes the first family
# of the list that is installed, and what that font lacks is a box (missing_glyphs()).
ZH_RC = {
    "font.sans-serif": ["Noto Sans CJK SC", "DejaVu Sans"],
    "font.serif": ["Noto Serif CJK SC", "DejaVu Serif"],
    "font.monospace": ["Noto Sans Mono CJK SC", "DejaVu Sans Mono"],
    "axes.unicode_minus": True,
}


# ---------------------------------------------------------------- in the kernel ----

def _figure_bundle(fig) -> dict:
    try:
        data = zlib.compress(pickle.dumps(fig, protocol=pickle.HIGHEST_PROTOCOL), 6)
    except Exception as exc:  # a figure that holds something unpicklable (a lambda ...)
        return {ERROR_MIME: {"error": f"{type(exc).__name__}: {exc}"}}
    return {MIME: base64.b64encode(data).decode("ascii")}


def load_ipython_extension(shell) -> None:
    """Display every matplotlib figure with its pickle beside the PNG, and remember each
    figure's ``tight_layout()`` arguments on the figure."""
    from matplotlib.figure import Figure

    original = Figure.tight_layout
    if not getattr(original, "_course", False):
        @functools.wraps(original)  # pyplot reads its name and docstring
        def tight_layout(self, *args, **kwargs):
            setattr(self, TIGHT, (args, kwargs))
            return original(self, *args, **kwargs)

        tight_layout._course = True
        Figure.tight_layout = tight_layout
    shell.display_formatter.mimebundle_formatter.for_type(Figure, _figure_bundle)


def kernel_profile(folder: Path) -> Path:
    """An IPython profile folder (``IPYTHONDIR``) whose kernels load this file's
    :func:`load_ipython_extension` at start-up; written under the build folder."""
    config = folder / "profile_default" / "ipython_kernel_config.py"
    config.parent.mkdir(parents=True, exist_ok=True)
    line = (f"__import__('runpy').run_path({str(Path(__file__).resolve())!r})"
            "['load_ipython_extension'](get_ipython())")
    text = ("# Written by the course's book build (_ext/course_figures.py): the chapters'\n"
            "# figures are displayed with their pickle beside the PNG (the Chinese figures).\n"
            f"c.InteractiveShellApp.exec_lines = [{line!r}]\n")
    if not config.exists() or config.read_text(encoding="utf-8") != text:
        config.write_text(text, encoding="utf-8")
    return folder


# ---------------------------------------------------------------- at build time ----

def figure_outputs(nb) -> dict[str, dict]:
    """``{sha256 of the PNG: {"cell", "output", "data" | "error"}}`` for every figure
    output of an executed notebook (a dict or an nbformat node), with or without its
    capture; MyST-NB names a PNG by its sha256, so an image of the page finds its figure."""
    found = {}
    for c, cell in enumerate(nb["cells"]):
        for o, output in enumerate(cell.get("outputs", [])):
            data = output.get("data") or {}
            if "image/png" not in data:
                continue
            png = base64.b64decode(data["image/png"])
            entry = {"cell": c, "output": o}
            if MIME in data:
                entry["data"] = data[MIME]
            elif ERROR_MIME in data:
                entry["error"] = data[ERROR_MIME].get("error", "unknown")
            elif not str(data.get("text/plain", "")).startswith("<Figure size"):
                continue  # an image that is not a matplotlib figure
            found[hashlib.sha256(png).hexdigest()] = entry
    return found


def cached_execution(cache_dir: Path | str, source: Path):
    """``(cache, record, sha256 of the cached notebook)`` of a MyST notebook page's
    execution in the jupyter-cache at ``cache_dir``, or None if it has none."""
    from jupyter_cache import get_cache
    from myst_nb.core.read import read_myst_markdown_notebook

    cache = get_cache(str(cache_dir))
    nb = read_myst_markdown_notebook(source.read_text(encoding="utf-8"), path=source)
    try:
        record = cache.match_cache_notebook(nb)
    except KeyError:
        return None
    stored = cache._get_notebook_path_cache(record.hashkey)
    return cache, record, hashlib.sha256(stored.read_bytes()).hexdigest()


def executed_notebook(cache_dir: Path | str, source: Path):
    """A MyST notebook page with the outputs of its execution in the cache, as MyST-NB
    renders it (its cells, their source lines in ``metadata.source_map``), or None.
    (The ``jupyter_execute/<page>.ipynb`` that MyST-NB writes has no outputs when they
    came from the cache; the cache's own copy has only the code cells.)"""
    from jupyter_cache import get_cache
    from myst_nb.core.read import read_myst_markdown_notebook

    nb = read_myst_markdown_notebook(source.read_text(encoding="utf-8"),
                                     add_source_map=True, path=source)
    try:
        return get_cache(str(cache_dir)).merge_match_into_notebook(nb)[1]
    except KeyError:
        return None


def lacks_capture(nb) -> bool:
    """Whether a figure output of the notebook was made without the capture (an
    execution cached before it existed): it must run once more."""
    return any("data" not in e and "error" not in e for e in figure_outputs(nb).values())


@functools.cache
def _detached_figure_class():
    from matplotlib.figure import Figure

    class DetachedFigure(Figure):
        def __setstate__(self, state):
            state.pop("_restore_to_pylab", None)
            super().__setstate__(state)
            self.__class__ = Figure

    return DetachedFigure


class _Unpickler(pickle.Unpickler):
    """A figure comes back detached from pyplot: in the kernel it was registered with
    pyplot, and here it must not create a figure manager (or choose a GUI backend)."""

    def find_class(self, module, name):
        from matplotlib.figure import Figure

        cls = super().find_class(module, name)
        return _detached_figure_class() if cls is Figure else cls


def load_figure(data: str):
    """The figure of a captured output, on an Agg canvas (pyplot is not involved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _Unpickler(io.BytesIO(zlib.decompress(base64.b64decode(data)))).load()
    FigureCanvasAgg(fig)
    return fig


MATH = re.compile(r"(?<!\\)\$.*?(?<!\\)\$", re.S)
WORD = re.compile(r"[A-Za-z]{2,}")


def is_message(text: str) -> bool:
    """Whether a figure's text is for translation: a word of two Latin letters or more
    outside math. Numbers, ``$x_1$``, ``W1`` and ``≈`` are drawn as they are."""
    return bool(WORD.search(MATH.sub(" ", text)))


def _axes_axis(ax) -> list:
    return list(getattr(ax, "_axis_map", {"x": ax.xaxis, "y": ax.yaxis}).values())


def _tick_texts(fig) -> set[int]:
    """The ids of the Text objects that a formatter fills at draw time (tick labels,
    offsets): they are translated through the formatter, not one by one."""
    ids = set()
    for ax in fig.get_axes():
        for axis in _axes_axis(ax):
            ids.add(id(axis.offsetText))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ids.update((id(tick.label1), id(tick.label2)))
    return ids


def _shown(text) -> bool:
    axes = text.axes
    return (text.get_visible() and (axes is None or axes.get_visible())
            and bool(text.get_text().strip()))


def figure_texts(fig) -> list[str]:
    """Every text of the figure that is for translation, once each, in drawing order:
    titles, axis labels, legends, annotations and tick labels (as the figure's
    formatters write them)."""
    import matplotlib
    from matplotlib.text import Text

    with matplotlib.rc_context(ZH_RC):  # the text may be Chinese already
        fig.canvas.draw()  # the formatters write the tick labels
    out: dict[str, None] = {}
    for text in fig.findobj(Text):
        if _shown(text) and is_message(text.get_text()):
            out.setdefault(text.get_text(), None)
    return list(out)


def _translating_formatter(inner, translate):
    from matplotlib.ticker import Formatter

    class TranslatedFormatter(Formatter):
        """The tick labels of ``inner`` (a fixed list, categories, a function ...),
        translated where they are words."""

        def __init__(self):
            self.inner = inner

        def set_axis(self, axis):
            super().set_axis(axis)
            self.inner.set_axis(axis)

        def set_locs(self, locs):
            self.inner.set_locs(locs)

        def format_ticks(self, values):
            return [_tr(translate, s) for s in self.inner.format_ticks(values)]

        def __call__(self, x, pos=None):
            return _tr(translate, self.inner(x, pos))

        def get_offset(self):
            return self.inner.get_offset()

        def format_data(self, value):
            return self.inner.format_data(value)

        def format_data_short(self, value):
            return self.inner.format_data_short(value)

    return TranslatedFormatter()


def _tr(translate, text: str) -> str:
    return translate(text) if is_message(text) else text


def translate_figure(fig, translate) -> bool:
    """Replace each text of the figure by ``translate(text)`` (the tick labels through
    their axis' formatters); return whether any text changed."""
    from matplotlib.text import Text

    changed = any(translate(t) != t for t in figure_texts(fig))
    ticks = _tick_texts(fig)
    for text in fig.findobj(Text):
        if id(text) not in ticks and is_message(text.get_text()):
            text.set_text(translate(text.get_text()))
    for ax in fig.get_axes():
        for axis in _axes_axis(ax):
            for get, put in ((axis.get_major_formatter, axis.set_major_formatter),
                             (axis.get_minor_formatter, axis.set_minor_formatter)):
                if not hasattr(get(), "inner"):
                    put(_translating_formatter(get(), translate))
    return changed


def render(fig) -> bytes:
    """The figure as a PNG, as the kernel's inline backend draws it (IPython's
    ``print_figure``, ``bbox_inches="tight"``), with the Chinese fonts, its
    ``tight_layout()`` made again for the new text."""
    import matplotlib
    from IPython.core.pylabtools import print_figure

    with matplotlib.rc_context(ZH_RC):
        tight = getattr(fig, TIGHT, None)
        if tight is not None:
            fig.tight_layout(*tight[0], **tight[1])
        return print_figure(fig, "png", bbox_inches="tight")


def missing_glyphs(fig, rc: dict | None = None) -> list[str]:
    """``"'c' in 'text'"`` for each character of the figure's texts (math left out) that
    the font matplotlib resolves for that text does not have, as matplotlib lays the
    text out: no glyph, or a glyph of its own last-resort font (a box with the code
    point in it). matplotlib does not warn about the second kind."""
    import matplotlib
    from matplotlib import _text_helpers, font_manager
    from matplotlib.text import Text

    missing = []
    with matplotlib.rc_context(ZH_RC if rc is None else rc):
        fig.canvas.draw()
        for text in fig.findobj(Text):
            if not _shown(text):
                continue
            chars = "".join(c for c in MATH.sub("", text.get_text()) if not c.isspace())
            paths = font_manager.fontManager._find_fonts_by_props(text.get_fontproperties())
            font = font_manager.get_font(paths)
            for item in _text_helpers.layout(chars, font):
                if not item.glyph_index or item.ft_object.family_name.startswith("Last Resort"):
                    missing.append(f"{item.char!r} in {text.get_text()!r}")
    return missing


def strip_notebook(path: Path) -> bool:
    """Take the captured figures out of a notebook (one the site offers for download);
    return whether there was one."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    found = False
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for mime in CAPTURE_MIMES:
                if mime in output.get("data", {}):
                    del output["data"][mime]
                    found = True
    if found:
        nbformat.write(nb, path)
    return found
