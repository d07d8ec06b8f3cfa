"""The language server over stdio (pygls, lsprotocol types): the protocol's side of the
features in this package. Every open buffer is checked as the editor has it, saved or not;
a change is checked once typing pauses (DEBOUNCE_S), and a request made before that sees the
latest text, checked on the spot."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from .. import __version__
from ..diagnostics import Diagnostic, DiagnosticSink, Severity
from ..files import read_bytes
from ..sema.load_modules import MAX_SPEC_BYTES
from ..source import SourceFile, Span
from ..syntax.format import format_text
from ..syntax.parser import get_parser, parse_source
from . import completion, hover, navigate, symbols
from .analysis import Analysis, analyse, entry_for
from .dispatch import serve
from .framing import FrameReader
from .positions import offset, position, to_range

DEBOUNCE_S = 0.15
FILE_START = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
log = logging.getLogger(__name__)


class SynthServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("synthc", __version__)
        self.generation = 0                                   # bumped on every edit of any buffer
        self.analyses: dict[Path, tuple[int, Analysis]] = {}  # entry -> (generation, analysis)
        self.published: dict[Path, set[Path]] = {}            # entry -> files it sent diagnostics for
        self.pending: dict[Path, asyncio.TimerHandle] = {}

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serves the client over stdio until it exits or closes the stream. pygls's own loop, but
        reading through framing.py and dispatch.py, which keep a broken or hostile client from
        ending the server or leaving a request of its unanswered."""
        self._stop_event = threading.Event()   # set by pygls's shutdown()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        stream = stdin or sys.stdin.buffer
        # read1, not read: a buffered read(n) waits for all n bytes, and a message may be shorter;
        # an unbuffered stream's read(n) already returns what has come
        frames = FrameReader(getattr(stream, "read1", None) or stream.read)
        try:
            asyncio.run(serve(self._stop_event, frames, self.protocol, self.thread_pool, self.warn))
        except BrokenPipeError:
            log.error("the client closed the connection")
        except (KeyboardInterrupt, SystemExit):   # SystemExit: pygls's handler of `exit`
            pass
        finally:
            self.shutdown()

    def warn(self, message: str) -> None:
        """Tells the client's log (the editor's output panel for the server) and stderr."""
        log.warning("%s", message)
        self.window_log_message(types.LogMessageParams(type=types.MessageType.Warning, message=message))

    # buffers and checks ------------------------------------------------------------------------
    @property
    def encoding(self) -> str:
        return str(self.workspace.position_encoding or types.PositionEncodingKind.Utf16)

    def overlay(self) -> dict[Path, str]:
        out = {}
        for uri, doc in self.workspace.text_documents.items():
            path = _path(uri)
            if path is not None:
                out[path] = doc.source
        return out

    def analysis(self, path: Path) -> Analysis:
        """The check of the spec a file belongs to, as the buffers are now."""
        return self.check(entry_for(path, self.overlay()))

    def check(self, entry: Path) -> Analysis:
        cached = self.analyses.get(entry)
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        try:
            result = analyse(entry, self.overlay())
        except Exception as exc:  # a bug in the checker must not take the editor's server down
            log.exception("checking %s failed", entry)
            self.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Error,
                message=f"synthc: internal error while checking {entry.name}: {type(exc).__name__}: {exc}. "
                        "Please report it with the spec."))
            if cached is not None:
                return cached[1]
            raise
        self.analyses[entry] = (self.generation, result)
        self.publish(entry, result)
        self.window_log_message(types.LogMessageParams(
            type=types.MessageType.Log, message=f"checked {entry.name} in {result.seconds * 1000:.1f} ms"))
        return result

    def edited(self, path: Path, now: bool) -> None:
        """A buffer changed: re-check the spec it belongs to, or, for a seed file, every spec
        that read it."""
        self.generation += 1
        entries = [entry_for(path, self.overlay())] if path.suffix == ".synth" else self.readers({path})
        for entry in entries:
            handle = self.pending.pop(entry, None)
            if handle is not None:
                handle.cancel()
            if now:
                self.check(entry)
            else:
                self.pending[entry] = asyncio.get_running_loop().call_later(DEBOUNCE_S, self._debounced, entry)

    def readers(self, paths: set[Path]) -> list[Path]:
        """The checked specs that are, or read, one of these files."""
        return [e for e, (_, a) in list(self.analyses.items()) if paths & {e, *a.result.context.inputs}]

    def _debounced(self, entry: Path) -> None:
        self.pending.pop(entry, None)
        self.check(entry)

    def publish(self, entry: Path, analysis: Analysis) -> None:
        sent = set()
        for path, diags in analysis.diagnostics.items():
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
                uri=_uri(path),
                diagnostics=[self.diagnostic(analysis, d) for d in diags]))
            sent.add(path)
        for gone in self.published.get(entry, set()) - sent:
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
                uri=_uri(gone), diagnostics=[]))
        self.published[entry] = sent

    def diagnostic(self, analysis: Analysis, d: Diagnostic) -> types.Diagnostic:
        message = d.message + (f"\nhelp: {d.help}" if d.help else "")
        related = [types.DiagnosticRelatedInformation(location=self.location(analysis, n.span), message=n.message)
                   for n in d.notes]
        return types.Diagnostic(
            range=to_range(d.span, self.encoding) if d.span else FILE_START, message=message, code=d.code,
            source="synthc", related_information=related or None,
            severity=types.DiagnosticSeverity.Error if d.severity is Severity.ERROR
            else types.DiagnosticSeverity.Warning)

    def location(self, analysis: Analysis, span: Span) -> types.Location:
        path = analysis.path_of(span)
        return types.Location(uri=_uri(path), range=to_range(span, self.encoding))

    def at(self, uri: str, pos: types.Position) -> tuple[Analysis, Path, int] | None:
        path = _path(uri)
        if path is None or path.suffix != ".synth":
            return None
        analysis = self.analysis(path)
        source = analysis.source_of(path)
        if source is None:
            return None
        return analysis, path, offset(source, pos, self.encoding)


def _uri(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()


def _path(uri: str) -> Path | None:
    fs = to_fs_path(uri)
    return Path(fs).resolve() if fs else None


def _text(ls: SynthServer, uri: str) -> str | None:
    """A document's text as the editor has it: its open buffer, else its file on disk read as the
    compiler reads one; None when there is neither (no such file, not UTF-8)."""
    doc = ls.workspace.text_documents.get(unquote(uri))   # pygls keeps open buffers by unquoted URI
    if doc is not None:
        return doc.source
    path = _path(uri)
    if path is None:
        return None
    # not pygls's reading of a document not open: that reads anything the client names, a FIFO
    # (stalling the server for good) or a file of any size; this one reads regular files within
    # the spec size limit
    try:
        return read_bytes(path, MAX_SPEC_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


server = SynthServer()


@server.feature(types.INITIALIZED)
def initialized(ls: SynthServer, params: types.InitializedParams) -> None:
    # the first check pays for the grammar: pay it now, not on the first keystroke
    get_parser()


def _edited(ls: SynthServer, uri: str, now: bool) -> None:
    path = _path(uri)
    if path is not None:
        ls.edited(path, now)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: SynthServer, params: types.DidOpenTextDocumentParams) -> None:
    _edited(ls, params.text_document.uri, now=True)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: SynthServer, params: types.DidChangeTextDocumentParams) -> None:
    _edited(ls, params.text_document.uri, now=False)   # checked once typing pauses


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: SynthServer, params: types.DidSaveTextDocumentParams) -> None:
    _edited(ls, params.text_document.uri, now=True)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: SynthServer, params: types.DidCloseTextDocumentParams) -> None:
    path = _path(params.text_document.uri)
    if path is not None and path.exists():
        ls.edited(path, now=True)   # back to the file on disk
    else:                           # an unsaved new file, or one deleted: nothing left to show
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                            diagnostics=[]))


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_files(ls: SynthServer, params: types.DidChangeWatchedFilesParams) -> None:
    """A spec, import or seed file changed on disk (a checkout, a script): re-check the specs
    that read it."""
    changed = {p for p in (_path(c.uri) for c in params.changes) if p is not None}
    ls.generation += 1
    for entry in ls.readers(changed):
        ls.check(entry)


@server.feature(types.TEXT_DOCUMENT_HOVER)
def on_hover(ls: SynthServer, params: types.HoverParams) -> types.Hover | None:
    found = ls.at(params.text_document.uri, params.position)
    if found is None:
        return None
    text = hover.hover_text(*found)
    if text is None:
        return None
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def on_definition(ls: SynthServer, params: types.DefinitionParams) -> types.Location | None:
    found = ls.at(params.text_document.uri, params.position)
    if found is None:
        return None
    target = navigate.definition(*found)
    if target is None:
        return None
    path, span = target
    if span is None:
        return types.Location(uri=_uri(path), range=FILE_START)
    return ls.location(found[0], span)


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
def on_references(ls: SynthServer, params: types.ReferenceParams) -> list[types.Location]:
    found = ls.at(params.text_document.uri, params.position)
    if found is None:
        return []
    spans = navigate.references(*found, params.context.include_declaration)
    return [ls.location(found[0], s) for s in spans]


@server.feature(types.TEXT_DOCUMENT_COMPLETION,
                types.CompletionOptions(trigger_characters=[".", "~", ":", "{", '"', " "]))
def on_completion(ls: SynthServer, params: types.CompletionParams) -> types.CompletionList:
    path = _path(params.text_document.uri)
    source = _text(ls, params.text_document.uri) if path is not None and path.suffix == ".synth" else None
    if path is None or source is None:
        return types.CompletionList(is_incomplete=False, items=[])
    text = source.replace("\r\n", "\n")
    try:
        analysis: Analysis | None = ls.analysis(path)
    except Exception:
        log.exception("check failed")
        analysis = None
    items = completion.complete(analysis, text, offset(SourceFile(str(path), text), params.position, ls.encoding))
    return types.CompletionList(is_incomplete=False, items=[
        types.CompletionItem(label=i.label, kind=getattr(types.CompletionItemKind, i.kind),
                             detail=i.detail or None, insert_text=i.insert) for i in items])


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def on_symbols(ls: SynthServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
    path = _path(params.text_document.uri)
    if path is None or path.suffix != ".synth":
        return []
    analysis = ls.analysis(path)
    source = analysis.source_of(path)
    module = next((m for m in analysis.result.context.modules if m.source is source), None)
    if module is None:
        return []

    def convert(s: symbols.Symbol) -> types.DocumentSymbol:
        return types.DocumentSymbol(name=s.name, kind=getattr(types.SymbolKind, s.kind), detail=s.detail or None,
                                    range=to_range(s.span, ls.encoding),
                                    selection_range=to_range(s.name_span, ls.encoding),
                                    children=[convert(c) for c in s.children] or None)
    return [convert(s) for s in symbols.outline(module)]


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
def on_formatting(ls: SynthServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
    uri = params.text_document.uri
    text = _text(ls, uri) if uri.endswith(".synth") else None
    if text is None or parse_source(SourceFile(uri, text), DiagnosticSink()) is None:
        return None  # no text to format, or a syntax error in it: left as it is
    formatted = format_text(text)
    if formatted == text:
        return []
    end = position(SourceFile(uri, text), len(text), ls.encoding)
    return [types.TextEdit(range=types.Range(start=FILE_START.start, end=end),
                           new_text=formatted)]


@server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
def on_prepare_rename(ls: SynthServer, params: types.PrepareRenameParams) -> types.Range | None:
    found = ls.at(params.text_document.uri, params.position)
    occ = navigate.rename_target(*found) if found else None
    return to_range(occ.span, ls.encoding) if occ else None


@server.feature(types.TEXT_DOCUMENT_RENAME)
def on_rename(ls: SynthServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
    found = ls.at(params.text_document.uri, params.position)
    if found is None:
        return None
    try:
        edits = navigate.rename(*found, params.new_name)
    except navigate.RenameError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    return types.WorkspaceEdit(changes={
        _uri(path): [types.TextEdit(range=to_range(span, ls.encoding), new_text=new)
                                                  for span, new in spans]
        for path, spans in edits.items()})


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    server.start_io()
    return 0
