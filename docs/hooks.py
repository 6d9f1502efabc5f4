"""MkDocs hook: the API reference's table of loop methods, generated at
build time by inspecting eloop.Loop (the C methods carry no docstrings for
mkdocstrings to read, and which layer implements a method is exactly what
a reader switching loops wants to know).  Needs eloop built in place."""
import asyncio
import inspect

MARKER = "<!-- loop-methods -->"
ASYNCIO_DOC = "https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop."


def _where(loop_cls, name):
    for klass in loop_cls.__mro__:
        if name in klass.__dict__:
            attr = klass.__dict__[name]
            break
    else:
        return "-"
    if klass.__module__ == "eloop._eloop":
        return "C (`src/ext`)"
    module = getattr(attr, "__module__", "") or ""
    if module.startswith("asyncio."):
        return f"asyncio's own code (`{module}`), on eloop's transports"
    return "Python (`eloop/_loop.py`), run once per program"


def loop_methods_table():
    import eloop

    rows = ["| method | implemented in |", "|---|---|"]
    names = sorted(n for n in dir(asyncio.AbstractEventLoop)
                   if not n.startswith("_")
                   and inspect.isfunction(getattr(asyncio.AbstractEventLoop, n)))
    for name in names:
        rows.append(f"| [`{name}`]({ASYNCIO_DOC}{name}) | "
                    f"{_where(eloop.Loop, name)} |")
    return "\n".join(rows)


def on_page_markdown(markdown, page, **kwargs):
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, loop_methods_table())
    return markdown
