"""The MCP server (official `mcp` SDK): `qa mcp` over stdio, and streamable HTTP at /mcp of
`qa serve`. Four read-only tools: `search`, `read_source`, `list_sources`, `index_status`.

The tools return the same records as the REST API (`service`): `search` is the `qa ask --json`
object, as structured output with its schema. No model is loaded until the first search.
"""

# (no `from __future__ import annotations`: the SDK reads the tools' annotations at run time)

from typing import Annotated

from .._version import __version__
from ..config import Settings
from ..errors import BadInput, QAError

INSTRUCTIONS = """\
qa searches the user's own documents and returns passages quoted exactly from them, each with a
citation (file, section, lines). There is no language model behind it: what it returns is the text
of the documents, never a paraphrase.

When you answer from these results:
- Quote the passage text verbatim and cite it as file:Lstart-Lend (or the file with its locator,
  e.g. "report.pdf p.3"). Do not state anything the quoted passages do not say.
- If `found` is false, say the documents do not answer the question (give `reason`), and offer the
  closest passages only as related material.
- Use read_source to read around a citation before relying on it, and list_sources to see which
  files can be searched."""

SEARCH = """\
Search the user's documents for the passages that best answer a question.

Returns `passages` (best first), each an exact span of a file: `text` quoted from it, `source`,
`section`, `start_line`/`end_line`, character offsets, and the score parts that ranked it; `answer`,
the single sentence that best answers, with its own citation; `found`, false when no passage clearly
answers, and `reason`, why.

Quote the text you rely on word for word and cite it as source:Lstart-Lend. If `found` is false, tell
the user their documents do not answer it rather than guessing."""

READ_SOURCE = """\
Read lines of one indexed file (as the index sees it: the extracted text for HTML, PDF and DOCX).
Use it to check a citation in context, e.g. a few lines around a passage's start_line-end_line.
Quote what you use verbatim, with file and line numbers."""

LIST_SOURCES = """\
List the indexed files with their number of passages and whether each changed since the index was
built (a changed file's citations may have moved), plus files not indexed yet and files skipped."""

INDEX_STATUS = """\
The index's status: state ("ok", "stale": the documents changed since the build, "missing"), model,
number of files and passages, build time, and the files added, changed or removed since."""


def build_server(settings: Settings, retriever=None):
    """The MCP server over `settings`' index.

    Args:
        retriever: a `service.LiveRetriever` (or Retriever) to answer with; by default the
            process-wide one, loaded at the first search and reloaded after a rebuild.
    Returns:
        An `mcp.server.mcpserver.MCPServer` (run it with `.run("stdio")`, or serve its
        `.streamable_http_app()`).
    """
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations
    from pydantic import Field

    from . import service, wire

    retriever = retriever if retriever is not None else service.LiveRetriever(settings)
    server = MCPServer(
        "qa",
        title="qa: cited passages from your documents",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
    )
    read_only = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)

    def call(fn, *args):
        try:
            return fn(*args)
        except QAError as exc:  # the message says what to do next; the client shows it as the tool's error
            raise ToolError(str(exc)) from None

    @server.tool(name="search", title="Search the documents", description=SEARCH, annotations=read_only)
    def search(
        question: Annotated[str, Field(description="The question, in the user's words.")],
        k: Annotated[int, Field(description="How many passages (1-100).")] = 5,
        sources: Annotated[
            list[str] | None,
            Field(description='Only search files matching any of these globs or path parts, e.g. ["*.md"].'),
        ] = None,
    ) -> wire.SearchResult:
        return call(service.search_record, retriever, question, k, sources)

    @server.tool(name="read_source", title="Read lines of a file", description=READ_SOURCE, annotations=read_only)
    def read_source(
        file: Annotated[str, Field(description="The file, as in a passage's `source`.")],
        start_line: Annotated[int, Field(description="First line (1-based).")] = 1,
        end_line: Annotated[int | None, Field(description="Last line (inclusive); default: to the end of the file.")] = None,
    ) -> wire.SourceText:
        def read():
            last = end_line if end_line is not None else 10**9  # to the end: clamped to the file
            if start_line < 1 or last < start_line:
                raise BadInput(f"Lines must be 1-based and in order: start_line {start_line}, end_line {end_line}.")
            return service.source_record(settings, retriever, file, (start_line, last))

        return call(read)

    @server.tool(name="list_sources", title="List the indexed files", description=LIST_SOURCES, annotations=read_only)
    def list_sources() -> wire.SourcesResult:
        return call(service.sources_record, settings, retriever)

    @server.tool(name="index_status", title="Index status", description=INDEX_STATUS, annotations=read_only)
    def index_status() -> wire.StatusResult:
        return call(service.status_record, settings)

    return server


def run_stdio(settings: Settings) -> None:
    """Serve MCP over stdin/stdout until the client closes them (what `qa mcp` runs)."""
    build_server(settings).run("stdio")
