"""Progress bars: widgets in interactive Jupyter (ipywidgets), text in a terminal and in the
notebooks `reproduce` executes in batch: it sets GRADFEAT_PROGRESS=text for them, since a widget
in an executed notebook read later shows nothing."""
import os

if os.environ.get("GRADFEAT_PROGRESS") == "text":
    from tqdm.std import tqdm  # noqa: F401
else:
    from tqdm.auto import tqdm  # noqa: F401  (a widget under a Jupyter kernel, else text)
