"""The Jupyter Book, checked like a reader would: built, served, opened in headless Chromium.

The module builds the book with :func:`fmq_book.build_book` (a no-op when the HTML of
``make book`` is fresh for the current sources; otherwise a full build that executes every
notebook with Sphinx warnings as errors), serves ``book/_build/html`` on localhost, and checks

* every page of ``book/_toc.yml`` is reachable by following links from ``index.html``, and
  every internal link (file and ``#anchor``) resolves;
* no page shows a Python traceback, an error output cell, an unresolved reference (``??``) or
  the repr of an IPython display object (a Markdown glue shown with ``{glue:text}``);
* in Chromium, after MathJax has run: every math node holds a rendered ``mjx-container``,
  MathJax reports no TeX error, no raw TeX delimiters are left in the text, every ``<img>``
  has loaded (``naturalWidth > 0``), and every numbered ``sphinx-proof`` environment
  (theorem, lemma, ...) carries its number;
* no table is wider than the page's content column, and no word or number of the text is cut
  across two lines (a number such as ``5.99e-04`` split after its ``-``);
* the landing, claims, empirical and quantizers pages are screenshotted into
  ``artifacts/screenshots/`` (git-ignored) for a human to look at.

Chromium: Debian's ``chromium`` (``make browser`` installs it when missing and root).
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import json
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from fmq_book import BookLayout, build_book

pytestmark = [pytest.mark.book, pytest.mark.slow, pytest.mark.xdist_group("book")]

LAYOUT = BookLayout.default()
SCREENSHOT_DIR = LAYOUT.root / "artifacts" / "screenshots"
#: Pages screenshotted for a human to look at (document names, as in the toc).
SCREENSHOT_PAGES = ("book/intro", "notebooks/claims", "notebooks/empirical", "notebooks/quantizers")
#: Height of the screenshot window (px): enough to show the tables and figures of those pages.
SCREENSHOT_HEIGHT = 6000
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
#: Names of the numbered environments of sphinx-proof (the ``prf:proof`` block is unnumbered).
NUMBERED_PROOF_ENVS = (
    "theorem", "lemma", "definition", "proposition", "corollary", "remark", "conjecture",
    "example", "exercise", "algorithm", "criterion", "axiom", "assumption", "observation",
    "property",
)
CHECK_PATH = "/__fmq_browser_check__.html"


def toc_documents(toc_path: Path, root: Path) -> list[str]:
    """Document names (``book/intro``, ``proofs/x``...) listed by the toc, globs expanded."""
    toc = yaml.safe_load(toc_path.read_text())
    docs = [toc["root"]]
    explicit = set(re.findall(r"^\s*-?\s*file:\s*(\S+)", toc_path.read_text(), flags=re.M))

    def visit(entries):
        for entry in entries:
            if "file" in entry:
                docs.append(entry["file"])
            if "glob" in entry:
                matches = sorted(root.glob(entry["glob"] + ".md"))
                assert matches, f"toc glob {entry['glob']!r} matches no page"
                for match in matches:  # a glob adds only documents not listed elsewhere
                    doc = match.relative_to(root).with_suffix("").as_posix()
                    if doc not in docs and doc not in explicit:
                        docs.append(doc)
            for key in ("sections", "chapters"):
                visit(entry.get(key, []))

    for part in toc.get("parts", []):
        visit(part["chapters"])
    visit(toc.get("chapters", []))
    return docs


class _LinkParser(html.parser.HTMLParser):
    """Collects ``href``/``src`` links, element ids and the meta-refresh target of a page."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.refresh: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            match = re.search(r"url=(.+)", attrs.get("content", ""), flags=re.I)
            if match:
                self.refresh = match.group(1).strip()


class _BookHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the book plus one extra page, the in-browser checker."""

    check_page = b""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.split("?")[0] == CHECK_PATH:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(self.check_page)))
            self.end_headers()
            self.wfile.write(self.check_page)
            return
        super().do_GET()

    def log_message(self, format, *args):  # quiet
        pass


CHECK_SCRIPT = r"""
<!doctype html><html><head><meta charset="utf-8"><title>book check</title></head><body>
<pre id="fmq-result">pending</pre>
<script>
const PAGES = __PAGES__;
const SKIP = new Set(["SCRIPT", "STYLE", "PRE", "CODE", "TEXTAREA", "MJX-CONTAINER", "NOSCRIPT"]);
const NUMBERED = new Set(__NUMBERED__);
const SKIP_CUT = new Set(["SCRIPT", "STYLE", "PRE", "TEXTAREA", "MJX-CONTAINER", "NOSCRIPT"]);
function rawTexLeft(doc) {
  const found = [];
  const walker = doc.createTreeWalker(doc.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    let skip = false;
    for (let el = node.parentElement; el; el = el.parentElement) {
      if (SKIP.has(el.tagName) || el.classList.contains("highlight")) { skip = true; break; }
    }
    if (skip) continue;
    const text = node.textContent;
    const m = text.match(/\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\s]|\\begin\{|\\frac|\\mathbb/);
    if (m) found.push(text.slice(Math.max(0, m.index - 40), m.index + 40));
  }
  return found;
}
function cutTokens(doc, root) {
  // Words and numbers of the text that the browser broke across two lines.
  const found = [];
  const walker = doc.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    let skip = false;
    for (let el = node.parentElement; el; el = el.parentElement) {
      if (SKIP_CUT.has(el.tagName) || el.classList.contains("highlight")) { skip = true; break; }
    }
    if (skip) continue;
    const text = node.textContent, re = /\S{2,}/g;
    let m;
    while ((m = re.exec(text))) {
      const range = doc.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set(Array.from(range.getClientRects()).filter((b) => b.width > 0)
                                .map((b) => Math.round(b.top)));
      if (tops.size < 2) continue;
      // Where the line breaks: after a hyphen of a word (flow-matching) is typography; inside a
      // number (5.99e-|04, 0.1|175) or elsewhere in a word it is a cut.
      const first = tops.values().next().value;
      let cut = 1;
      for (; cut < m[0].length; cut++) {
        const ch = doc.createRange();
        ch.setStart(node, m.index + cut);
        ch.setEnd(node, m.index + cut + 1);
        const box = Array.from(ch.getClientRects()).find((b) => b.width > 0);
        if (box && Math.round(box.top) !== first) break;
      }
      const numeric = /^[-+(]?[0-9][0-9.,]*(e[-+]?[0-9]*)?[)%,;:.]?$/i.test(m[0]);
      if (numeric || !"-/–—_".includes(m[0][cut - 1])) found.push(m[0].slice(0, 40));
    }
  }
  return found;
}
async function checkPage(path) {
  const frame = document.createElement("iframe");
  frame.style.width = "1280px"; frame.style.height = "2000px";
  document.body.appendChild(frame);
  await new Promise((resolve) => { frame.onload = resolve; frame.src = path; });
  const win = frame.contentWindow, doc = frame.contentDocument;
  const r = {path: path, title: doc.title};
  r.mathjax = !!(win.MathJax && win.MathJax.version);
  if (r.mathjax && win.MathJax.startup && win.MathJax.startup.promise) {
    await win.MathJax.startup.promise;
  }
  const imgs = Array.from(doc.images);
  imgs.forEach((img) => { img.loading = "eager"; });
  await Promise.all(imgs.map((img) => img.complete ? null :
      new Promise((res) => { img.onload = res; img.onerror = res; })));
  r.images = imgs.map((img) => ({src: img.getAttribute("src"), width: img.naturalWidth,
                                 ok: img.complete && img.naturalWidth > 0}));
  const maths = Array.from(doc.querySelectorAll("span.math, div.math"));
  r.math_nodes = maths.length;
  r.math_unrendered = maths.filter((e) => !e.querySelector("mjx-container"))
                           .map((e) => e.textContent.slice(0, 80));
  r.mjx_containers = doc.querySelectorAll("mjx-container").length;
  r.mjx_errors = Array.from(doc.querySelectorAll("mjx-merror, [data-mjx-error]"))
                      .map((e) => (e.getAttribute("data-mjx-error") || e.textContent).slice(0, 120));
  r.raw_tex = rawTexLeft(doc);
  r.unnumbered_envs = [];
  r.numbered_envs = 0;
  doc.querySelectorAll("div.proof").forEach((div) => {
    const kind = Array.from(div.classList).find((c) => NUMBERED.has(c));
    if (!kind) return;
    const title = div.querySelector(".admonition-title");
    const text = title ? title.textContent.trim() : "";
    if (/^\S+\s+\d+(\.\d+)*/.test(text)) r.numbered_envs += 1;
    else r.unnumbered_envs.push(kind + ": " + text.slice(0, 80));
  });
  r.text_has_qq = doc.body.innerText.includes("??");
  const article = doc.querySelector("article.bd-article") || doc.querySelector("main") || doc.body;
  const column = article.getBoundingClientRect().width;
  r.wide_tables = Array.from(article.querySelectorAll("table"))
      .filter((t) => t.getBoundingClientRect().width > column + 1)
      .map((t) => Math.round(t.getBoundingClientRect().width) + " px > " + Math.round(column) + " px: "
                  + t.textContent.trim().slice(0, 60));
  r.cut_tokens = cutTokens(doc, article);
  frame.remove();
  return r;
}
(async () => {
  const out = [];
  for (const path of PAGES) {
    try { out.push(await checkPage(path)); }
    catch (err) { out.push({path: path, exception: String(err)}); }
  }
  document.getElementById("fmq-result").textContent = JSON.stringify(out);
})();
</script></body></html>
"""


@pytest.fixture(scope="module")
def book():
    """The built book (fresh HTML reused, otherwise rebuilt) and its toc documents."""
    result = build_book(layout=LAYOUT)
    docs = toc_documents(LAYOUT.toc, LAYOUT.root)
    return result.html, docs


@pytest.fixture(scope="module")
def server(book):
    """Base URL of a localhost server of the built HTML (port chosen by the OS)."""
    html_dir, docs = book
    handler = functools.partial(_BookHandler, directory=str(html_dir))
    pages = [f"/{doc}.html" for doc in docs]
    _BookHandler.check_page = (
        CHECK_SCRIPT.replace("__PAGES__", json.dumps(pages))
        .replace("__NUMBERED__", json.dumps(NUMBERED_PROOF_ENVS))
        .encode()
    )
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def chromium():
    """Path of the Chromium executable; fails (never skips) when it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: run `make browser` (apt-get install -y chromium)")
    return path


def _run_chromium(chromium: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="fmq-chromium-") as profile:
        return subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode("utf-8")


def test_every_toc_page_is_reachable_and_links_resolve(book, server):
    html_dir, docs = book
    start = f"{server}/index.html"
    pages: dict[str, _LinkParser] = {}
    queue = [start]
    while queue:
        url = queue.pop()
        if url in pages:
            continue
        parser = _LinkParser()
        parser.feed(_fetch(url))
        pages[url] = parser
        targets = list(parser.links) + ([parser.refresh] if parser.refresh else [])
        for href in targets:
            absolute, _ = urllib.parse.urldefrag(urllib.parse.urljoin(url, href))
            if absolute.startswith(server) and absolute.endswith(".html") and "/_" not in absolute:
                queue.append(absolute)
    reached = {urllib.parse.urlparse(u).path.lstrip("/").removesuffix(".html") for u in pages}
    missing = [doc for doc in docs if doc not in reached]
    assert not missing, f"toc pages not reachable from index.html: {missing}"
    broken = []
    for url, parser in pages.items():
        for href in parser.links:
            absolute = urllib.parse.urljoin(url, href)
            if not absolute.startswith(server):
                continue
            target, fragment = urllib.parse.urldefrag(absolute)
            rel = urllib.parse.unquote(urllib.parse.urlparse(target).path.lstrip("/"))
            path = html_dir / rel
            if not path.is_file():
                broken.append(f"{url} -> {href} (no file {rel})")
            elif fragment and target in pages and fragment not in pages[target].ids:
                broken.append(f"{url} -> {href} (no anchor #{fragment})")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_no_tracebacks_error_cells_or_unresolved_references(book):
    html_dir, docs = book
    problems = []
    for doc in docs:
        text = (html_dir / f"{doc}.html").read_text()
        for needle in ("Traceback", 'class="output error', "output traceback",
                       'class="output stderr', 'class="problematic',
                       "IPython.core.display."):  # an object's repr: a Markdown glue shown by {glue:text}
            if needle in text:
                problems.append(f"{doc}: contains {needle!r}")
    assert not problems, "\n".join(problems)


def test_pages_render_in_chromium(book, server, chromium):
    _, docs = book
    proc = _run_chromium(
        chromium, "--virtual-time-budget=300000", "--dump-dom", server + CHECK_PATH,
        timeout=300,
    )
    match = re.search(r'<pre id="fmq-result">(.*?)</pre>', proc.stdout, flags=re.S)
    assert match, f"no result from chromium; stderr tail:\n{proc.stderr[-2000:]}"
    payload = match.group(1)
    assert payload != "pending", "the in-browser check did not finish"
    import html as html_lib

    results = json.loads(html_lib.unescape(payload))
    assert [r["path"] for r in results] == [f"/{doc}.html" for doc in docs]
    problems = []
    total_math = total_images = total_envs = 0
    for r in results:
        where = r["path"]
        if "exception" in r:
            problems.append(f"{where}: check raised {r['exception']}")
            continue
        if r["math_nodes"] and not r["mathjax"]:
            problems.append(f"{where}: has {r['math_nodes']} equations but MathJax did not load")
        if r["math_unrendered"]:
            problems.append(f"{where}: math not rendered: {r['math_unrendered'][:3]}")
        if r["mjx_errors"]:
            problems.append(f"{where}: MathJax errors: {r['mjx_errors'][:3]}")
        if r["raw_tex"]:
            problems.append(f"{where}: raw TeX in text: {r['raw_tex'][:3]}")
        bad = [img["src"] for img in r["images"] if not img["ok"]]
        if bad:
            problems.append(f"{where}: images not loaded: {bad}")
        if r["unnumbered_envs"]:
            problems.append(f"{where}: unnumbered environments: {r['unnumbered_envs']}")
        if r["text_has_qq"]:
            problems.append(f"{where}: '??' (unresolved reference) in the text")
        if r["wide_tables"]:
            problems.append(f"{where}: tables wider than the content column: {r['wide_tables'][:3]}")
        if r["cut_tokens"]:
            problems.append(f"{where}: words or numbers cut across lines: {r['cut_tokens'][:5]}")
        total_math += r["math_nodes"]
        total_images += len(r["images"])
        total_envs += r["numbered_envs"]
    assert not problems, "\n".join(problems)
    # The book has equations, figures and numbered theorems; the check must have seen them.
    assert total_math > 0 and total_images > 0 and total_envs > 0, (total_math, total_images, total_envs)
    print(f"browser check: {len(results)} pages, {total_math} equations, "
          f"{total_images} images, {total_envs} numbered environments")


def test_screenshots(book, server, chromium):
    _, docs = book
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    for doc in SCREENSHOT_PAGES:
        assert doc in docs, f"screenshot page {doc!r} is not in the toc"
        out = SCREENSHOT_DIR / (doc.replace("/", "__") + ".png")
        out.unlink(missing_ok=True)
        proc = _run_chromium(
            chromium, "--virtual-time-budget=20000", f"--window-size=1280,{SCREENSHOT_HEIGHT}",
            f"--screenshot={out}", f"{server}/{doc}.html", timeout=120,
        )
        assert out.is_file() and out.stat().st_size > 10_000, (
            f"no screenshot of {doc}; stderr tail:\n{proc.stderr[-2000:]}"
        )


def test_markdown_helpers_escape_and_validate():
    from fmq_theory.results.tables import escape_markdown, markdown_table

    assert escape_markdown("D*4^8, a_b, $x$, [r]") == r"D\*4^8, a\_b, \$x\$, \[r\]"
    table = markdown_table(header=["a|b", "x"], rows=[["p|q", 0.5]], formats=["", ".2f"])
    assert table.splitlines() == [r"| a\|b | x |", "|---|---|", r"| p\|q | 0.50 |"]
    with pytest.raises(ValueError, match="rows\\[0\\] has 1 cells"):
        markdown_table(header=["a", "b"], rows=[[1]])
    with pytest.raises(TypeError, match="text must be a str"):
        escape_markdown(3)


def test_fingerprint_changes_with_any_input(tmp_path):
    from fmq_book import book_fingerprint

    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "_config.yml").write_text("title: t\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.csv").write_text("a\n1\n")
    layout = BookLayout.from_root(tmp_path)
    before = book_fingerprint(layout)
    assert book_fingerprint(layout) == before
    (tmp_path / "results" / "r.csv").write_text("a\n2\n")
    assert book_fingerprint(layout) != before
    with pytest.raises(FileNotFoundError, match="no book/_config.yml"):
        BookLayout.from_root(tmp_path / "results")


def _page_text(html_dir: Path, doc: str) -> str:
    """The visible text of a built page, tags removed, entities resolved, spaces collapsed."""
    import html as html_lib

    raw = (Path(html_dir) / f"{doc}.html").read_text()
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


def _cli_json(capsys, *argv) -> dict:
    from fmq_theory.cli import main

    assert main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _close(shown: str, exact: float) -> bool:
    """``shown`` (a number as printed, to its digits) is ``exact`` rounded to those digits."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return abs(float(shown) - exact) <= 0.5 * 10.0 ** -decimals * (1 + 1e-9)


def test_page_numbers_agree_with_the_cli(book, capsys):
    """A number on a page and the same quantity printed by ``fmq`` must agree (glue check).

    Covers the Max (1960) table values and the full-precision FIDs, each with the label of
    whose it is (paper or ours), the data set and the protocol.
    """
    from fmq_theory.results.schema import SWEEP
    from fmq_theory.theory.published import MAX_1960, PAPER_FID_FP

    html_dir, _ = book
    problems = []
    # Distortion page: Lloyd-Max at b = 2, 3 against `fmq distortion`, and Max's printed values.
    text = _page_text(html_dir, "notebooks/distortion")
    rows = {r["bits"]: r for r in _cli_json(capsys, "distortion", "--law", "gaussian", "--method", "lloyd_max",
                                             "--bits", "1:4")["rows"]}
    em = {r["bits"]: r for r in _cli_json(capsys, "distortion", "--law", "gaussian", "--method", "equal_mass",
                                           "--bits", "1:4")["rows"]}
    # (tags become spaces in the page text, so a glued number may be followed by " )")
    m = re.search(r"unit Gaussian at \\\(b = 2\\\) is ([0-9.]+) \(Max.s table .*? prints ([0-9.]+) ?\); "
                  r"at \\\(b = 3\\\) it is ([0-9.]+) \(Max: ([0-9.]+) ?\)\. Equal-mass gives ([0-9.]+) and ([0-9.]+)",
                  text)
    if m is None:
        problems.append("distortion: the sentence with the b = 2, 3 Lloyd-Max values is missing")
    else:
        lm2, max2, lm3, max3, em2, em3 = m.groups()
        for shown, exact, what in ((lm2, rows[2]["distortion"], "Lloyd-Max b=2"),
                                   (lm3, rows[3]["distortion"], "Lloyd-Max b=3"),
                                   (em2, em[2]["distortion"], "equal-mass b=2"),
                                   (em3, em[3]["distortion"], "equal-mass b=3"),
                                   (max2, MAX_1960[2], "Max b=2"), (max3, MAX_1960[3], "Max b=3")):
            if not _close(shown, exact):
                problems.append(f"distortion: {what} shown {shown}, fmq prints {exact!r}")
    for b in (2, 3, 4):  # the page's table: b, K, Max's printed value, ours (Lloyd-Max), ours (equal-mass)
        found = re.search(rf"\b{b} {2 ** b} {re.escape(str(MAX_1960[b]))} ([0-9.]+) ([0-9.]+)", text)
        if found is None:
            problems.append(f"distortion: the Max table has no row b = {b} with Max's value {MAX_1960[b]}")
        elif not (_close(found.group(1), rows[b]["distortion"]) and _close(found.group(2), em[b]["distortion"])):
            problems.append(f"distortion: table b={b} shows {found.groups()}, fmq prints "
                            f"{rows[b]['distortion']!r}, {em[b]['distortion']!r}")
    # Full-precision FIDs, each labelled: paper (CIFAR-10, MNIST) or ours (MNIST, FashionMNIST).
    claim_2d = _cli_json(capsys, "report", "--claim", "2d")["rows"][0]["evidence"]
    paper_cifar = re.search(r"FID_fp = ([0-9.]+)", claim_2d).group(1)
    checks = [("notebooks/claims", r"FID_fp = ([0-9.]+) \(paper, CIFAR-10;", float(paper_cifar)),
              ("notebooks/claims", r"FID_fp = ([0-9.]+) \(paper, CIFAR-10;", PAPER_FID_FP["cifar10"]),
              ("notebooks/bound_chain", r"= ([0-9.]+) \(paper, MNIST:", PAPER_FID_FP["mnist"])]
    root = LAYOUT.root / "results"
    for key, label in (("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")):
        fp = next(r for r in SWEEP.read(root / f"{key}.csv") if r["method"] == "none")
        checks.append(("notebooks/empirical", rf"([0-9.]+) \(ours, {label}\)", float(fp["fid"])))
    evidence_4 = _cli_json(capsys, "report", "--claim", "4")["rows"][0]["evidence"]
    for doc, pattern, exact in checks:
        found = re.search(pattern, _page_text(html_dir, doc))
        if found is None:
            problems.append(f"{doc}: no number labelled by {pattern!r}")
        elif not _close(found.group(1), exact):
            problems.append(f"{doc}: {pattern!r} shows {found.group(1)}, the library/CLI gives {exact!r}")
    mnist_fp = re.search(r"mnist b=2 \(1\.7M\)[^:]*: FID_fp ([0-9.]+)", evidence_4).group(1)
    shown = re.search(r"([0-9.]+) \(ours, MNIST\)", _page_text(html_dir, "notebooks/empirical"))
    if shown and f"{float(shown.group(1)):.3g}" != mnist_fp:
        problems.append(f"empirical: ours MNIST FID_fp {shown.group(1)} disagrees with fmq report ({mnist_fp})")
    assert not problems, "\n".join(problems)
