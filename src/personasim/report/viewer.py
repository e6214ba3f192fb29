"""`personasim view`: a local, read-only web app over many runs (Starlette, served by uvicorn on 127.0.0.1).

Pages: the run list (`/`: model roles, health and check-model verdicts, date, cost; filter and sort in
the URL), a run (`/run/KEY`: its results table filtered by version, persona, lens, criterion, grader,
step and flag, sorted and paged on the server, so a page holds at most `PAGE_SIZE` rows; the step x
persona grid, the ranked steps and the issues per step for one version; the personas), a transcript
(`/run/KEY/unit/UNIT`: the judge's cited statements highlighted) and two runs or versions side by side
(`/compare`). Every filter is a GET parameter: a page's URL is its state, and the pages work without
script; `viewer.js` only submits a filter form when a select changes and drops empty parameters.

Pages are plain (sync) endpoints, which Starlette runs in its thread pool, so a slow read of one
run's table does not hold up another request. Every response carries a strict Content-Security-Policy (scripts from this server only, no
connections elsewhere, no frames, forms post nowhere) and jinja2 escapes every string. There are no
routes but GET (and HEAD): nothing is written. The server binds a socket on 127.0.0.1 itself and hands it to uvicorn, so no
host option exists to get wrong.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from personasim.analysis.compare import fmt
from personasim.records.statements import end_statements, step_statements
from personasim.report.steps import grid_view, issues_view, personas_view, priorities_view, step_changes_view
from personasim.report.viewer_data import (
    FILTERS,
    FLAGS,
    PAGE_SIZE,
    SORTABLE,
    Catalog,
    RunEntry,
    filter_rows,
    page_of,
    sort_rows,
)

HOST = "127.0.0.1"
CSP = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data:; connect-src 'none'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")  # fmt: skip
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY", "Cache-Control": "no-store"}  # fmt: skip
TEMPLATES = Path(__file__).parent / "templates"
RUN_SORTS = {"run": lambda e: e.key, "started": lambda e: e.manifest.started_at, "cost": lambda e: e.manifest.cost_usd or 0,
             "rows": lambda e: e.manifest.rows, "learner": lambda e: e.manifest.model, "judge": lambda e: e.judge_model,
             "health": lambda e: e.health[0], "check": lambda e: e.check}  # fmt: skip
TABS = ("results", "steps", "personas")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    env.filters.update(fmt=fmt, q=lambda v: quote(str(v), safe=""))
    return env


def linker(path: str, query: dict[str, str]) -> Callable[..., str]:
    """`link(sort="score", page=None)`: this page's URL with those parameters changed (None drops one)."""

    def link(**changes: Any) -> str:
        merged = {**query, **{k: v for k, v in changes.items()}}
        kept = {k: str(v) for k, v in merged.items() if v not in (None, "")}
        return path + ("?" + urlencode(kept) if kept else "")

    return link


def _cost(entry: RunEntry) -> str:
    return "unknown" if entry.manifest.cost_usd is None else f"${entry.manifest.cost_usd:.4f}"


def _when(stamp: str) -> str:
    return stamp.replace("T", " ")[:16]


class Viewer:
    def __init__(self, folders: list[Path]) -> None:
        self.catalog = Catalog([Path(f) for f in folders])
        self.env = _environment()
        self.script = (TEMPLATES / "viewer.js").read_text(encoding="utf-8")

    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def missing(self, what: str) -> HTMLResponse:
        return self.page("viewer_missing.html.j2", 404, title="not found", what=what)

    # ----------------------------------------------------------------------- pages

    def runs(self, request: Request) -> Response:
        query = dict(request.query_params)
        entries = self.catalog.runs()
        text = query.get("q", "").casefold()
        if text:
            entries = [e for e in entries if text in " ".join((e.key, e.manifest.model, e.judge_model,
                                                               *e.refs)).casefold()]  # fmt: skip
        sort = query.get("sort", "started") if query.get("sort") in RUN_SORTS else "started"
        entries.sort(key=RUN_SORTS[sort], reverse=query.get("dir", "desc" if sort == "started" else "asc") == "desc")
        rows = [{"key": e.key, "learner": e.manifest.model, "judge": e.judge_model, "health": e.health[0],
                 "healthy": e.health[1], "check": e.check or "none", "started": _when(e.manifest.started_at),
                 "cost": _cost(e), "rows": e.manifest.rows, "refs": e.refs, "path": str(e.path)} for e in entries]  # fmt: skip
        return self.page("viewer_runs.html.j2", title="runs", rows=rows, query=query, sort=sort,
                         link=linker("/", query), folders=[str(f) for f in self.catalog.folders])  # fmt: skip

    def run(self, request: Request) -> Response:
        entry = self.catalog.get(request.path_params["key"])
        if entry is None:
            return self.missing("no run with this id")
        query = {k: v for k, v in request.query_params.items() if k in (*FILTERS, "sort", "dir", "page", "tab")}
        tab = query.get("tab") if query.get("tab") in TABS else "results"
        base = f"/run/{quote(entry.key, safe='')}"
        link = linker(base, query)
        frame = self.catalog.results(entry)
        context: dict[str, Any] = {"title": entry.key, "entry": entry, "tab": tab, "query": query, "link": link,
                                   "options": self.catalog.options(entry), "flags": FLAGS, "filters": FILTERS, "base": base,
                                   "cost": _cost(entry), "started": _when(entry.manifest.started_at),
                                   "others": self._others()}  # fmt: skip
        if tab == "results":
            kept = sort_rows(filter_rows(frame, query), query.get("sort", ""), query.get("dir") == "desc")
            page = int(query["page"]) if query.get("page", "").isdigit() else 1
            rows, pages = page_of(kept, page)
            context |= {"rows": rows, "pages": pages, "page": min(max(1, page), pages), "total": len(kept),
                        "all": len(frame), "sortable": SORTABLE, "page_size": PAGE_SIZE}  # fmt: skip
        else:
            ref = self._ref(entry, query.get("version", ""))
            sl = self.catalog.slice(entry, ref) if ref else None
            persona = query.get("persona", "")
            if sl is not None and persona:  # the views over this persona's conversations only
                sl = replace(sl, frame=sl.frame[sl.frame["persona_id"] == persona].reset_index(drop=True),
                             transcripts=[t for t in sl.transcripts if t.persona_id == persona])  # fmt: skip
            context |= {"ref": ref, "slice": self._slice_view(sl, base, tab) if sl else None}
        return self.page("viewer_run.html.j2", **context)

    def _ref(self, entry: RunEntry, version: str) -> str:
        refs = entry.refs
        return next((r for r in refs if r.partition("@")[2] == version), refs[0] if refs else "")

    def _slice_view(self, sl: Any, base: str, tab: str, elsewhere: bool = False) -> dict[str, Any]:
        """The report's views of one version; `elsewhere`: on another page than the run's steps tab,
        so links to a step's answers go there."""
        version = sl.module_ref.partition("@")[2]
        prefix = f"{base}?" + urlencode({"tab": "steps", "version": version}) if elsewhere else ""

        def grade_href(c: Any) -> str:
            return f"{base}?" + urlencode({"tab": "results", "version": version, "persona": c.persona_id,
                                           "criterion": c.criterion_id})  # fmt: skip

        view: dict[str, Any] = {"anchor": sl.anchor, "module_ref": sl.module_ref, "label": sl.label}
        if tab == "steps":
            view |= {
                "grid": grid_view(sl, prefix),
                "priorities": priorities_view(sl, grade_href, prefix),
                "issues": issues_view(sl),
            }
        else:
            view |= {"personas": personas_view(sl)}
        return view

    def _others(self) -> list[tuple[str, str]]:
        """(key, module ref) of every run's versions: what a run can be put beside."""
        return [(e.key, ref) for e in self.catalog.runs() for ref in e.refs]

    def unit(self, request: Request) -> Response:
        entry = self.catalog.get(request.path_params["key"])
        unit_id = request.path_params["unit"]
        t = self.catalog.transcript(entry, unit_id) if entry else None
        if entry is None or t is None:
            return self.missing("no such run or transcript")
        focus = request.query_params.get("criterion", "")
        frame = self.catalog.results(entry)
        rows = frame[frame["unit_id"] == unit_id]
        cited: dict[str, list[str]] = {}
        for r in rows.to_dict("records"):
            if focus and r["criterion_id"] != focus:
                continue
            for item in _evidence(r.get("evidence")):
                score = r.get("score")
                shown = "–" if score is None or score != score else f"{float(score):g}"  # NaN != NaN
                cited.setdefault(item, []).append(f"{r['criterion_id']} ({shown})")
        turns = [{"index": turn.step_index, "step_id": turn.step_id, "reaction": turn.reaction,
                  "statements": step_statements(turn.step_index, turn.reaction)} for turn in t.turns]  # fmt: skip
        end = end_statements(t.reflection.reflection) if t.reflection else []
        criteria = sorted({str(c) for c in rows["criterion_id"]})
        base = f"/run/{quote(entry.key, safe='')}"
        return self.page("viewer_unit.html.j2", title=unit_id, entry=entry, t=t, turns=turns, end=end, cited=cited,
                         focus=focus, criteria=criteria, base=base,
                         link=linker(f"{base}/unit/{quote(unit_id, safe='')}", {"criterion": focus}))  # fmt: skip

    def compare(self, request: Request) -> Response:
        q = request.query_params
        sides = []
        for key, version in ((q.get("a", ""), q.get("va", "")), (q.get("b", ""), q.get("vb", ""))):
            entry = self.catalog.get(key)
            ref = self._ref(entry, version) if entry else ""
            sl = self.catalog.slice(entry, ref) if entry and ref else None
            if sl is None:
                return self.missing(f"no run {key!r} with a version {version!r}")
            base = f"/run/{quote(entry.key, safe='')}"
            sides.append((sl, self._slice_view(sl, base, "steps", elsewhere=True), base))
        (a, _, _), (b, _, _) = sides
        return self.page("viewer_compare.html.j2", title=f"{b.label} vs {a.label}", sides=[s[1:] for s in sides],
                         changes=step_changes_view(a, b), a=a.label, b=b.label)  # fmt: skip

    def script_file(self, request: Request) -> Response:
        return Response(self.script, media_type="text/javascript", headers=HEADERS)


def _evidence(value: Any) -> list[str]:
    try:
        items = json.loads(value) if isinstance(value, str) and value else []
    except ValueError:
        return []
    return [str(i.get("id")) for i in items if isinstance(i, dict) and i.get("id")]


def create_app(folders: list[Path]) -> Starlette:
    """The viewer over `folders` (run folders, or folders of them such as results/)."""
    viewer = Viewer(folders)
    return Starlette(routes=[
        Route("/", viewer.runs),
        Route("/run/{key}", viewer.run),
        Route("/run/{key}/unit/{unit}", viewer.unit),
        Route("/compare", viewer.compare),
        Route("/static/viewer.js", viewer.script_file),
    ])  # fmt: skip


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 only (port 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(128)
    return sock


def serve(folders: list[Path], port: int, *, open_browser: bool = False, say: Callable[[str], None] = print) -> None:
    """Serve until interrupted; prints the URL, and opens a browser only when asked."""
    import uvicorn

    sock = bind(port)
    url = f"http://{HOST}:{sock.getsockname()[1]}/"
    server = uvicorn.Server(uvicorn.Config(create_app(folders), log_level="warning", access_log=False,
                                           lifespan="off", server_header=False))  # fmt: skip
    say(url)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    server.run(sockets=[sock])
