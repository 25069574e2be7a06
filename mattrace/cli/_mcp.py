"""``mattrace mcp``: the MCP proxy a client is pointed at instead of its server.

The proxy speaks JSON-RPC on this process's stdin and stdout, so this command prints
nothing on stdout: a problem is one line on stderr (and exit 2 before the session starts).
The MCP SDK and the proxy are imported only when the command runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mattrace.cli._common import CliError, Parents

if TYPE_CHECKING:
    from mattrace.cli._common import Adder, Commands


def _add_mcp(sub: Commands, common: Parents) -> None:
    cmd = sub.add_parser(
        "mcp", help="record, govern, fault and replay an MCP server's tools (a stdio or HTTP proxy)",
        description="Run an MCP server behind a proxy that records each client session as a trace: tools/list, "
        "every tools/call as a tool step (trust and side effects from the tool annotations), resources/read as "
        "retrieval, prompts as messages. Governance (--policy), faults (--faults) and replay (--cassette, "
        "--record) act on every call, and tool definitions are pinned (--pin). Point a client at it by "
        "putting `mattrace mcp --` before the server command in its configuration, or, for a streamable-HTTP "
        "server, by giving it the URL `mattrace mcp --http URL` prints.",
        epilog="example: mattrace mcp --dir traces --policy policy.toml -- uvx mcp-server-git --repository . | "
        "exit status: 0 the session ended (--http: the proxy was stopped), 1 the server died, 2 bad usage or a server "
        "that cannot start.")
    cmd.add_argument("--name", help="the trace's name (default: mcp-<client name> from the client's initialize)")
    cmd.add_argument("--dir", default=".mattrace/traces", help="where traces go (default .mattrace/traces)")
    cmd.add_argument("--record", choices=("none", "once", "new", "all"), default="once",
                     help="how the session uses its cassette: none answers every request from it without starting "
                          "the server; once (default) records unless the cassette exists; new; all")
    cmd.add_argument("--cassette", metavar="PATH", help="the session's cassette (default: beside its trace)")
    cmd.add_argument("--faults", metavar="PLAN.toml", help="a fault plan; targets like tool:git_* name MCP tools")
    cmd.add_argument("--policy", metavar="POLICY.toml", help="a governance policy; a blocked call is answered "
                     "with an MCP error result naming the reason")
    cmd.add_argument("--pin", metavar="LOCK", help="a tools lock file: checked against when it exists, written "
                     "from the first tools/list when it does not")
    for flag, what in (("--trusted", "treat the output as trusted"), ("--untrusted", "treat the output as "
                       "untrusted"), ("--side-effect", "record calls as side effects"),
                       ("--read-only", "record calls as free of side effects")):
        cmd.add_argument(flag, action="append", default=[], metavar="PATTERN",
                         help=f"{what} for tool:GLOB or resource:GLOB, over the annotations (repeatable)")
    cmd.add_argument("--fsync", action="store_true", help="make every step durable as it is recorded (slower)")
    cmd.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                     help="how long a request may wait on a silent server before the client gets a JSON-RPC error "
                          "(default 60; a progress notification restarts the clock, a question to the client "
                          "pauses it; 0: none)")
    cmd.add_argument("--http", metavar="URL", help="stand in front of a streamable-HTTP server at URL instead of "
                     "starting a stdio server; the proxy listens on --listen and prints its URL on stderr")
    cmd.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                     help="where the HTTP proxy listens, on loopback (default 127.0.0.1:0, any free port)")
    cmd.add_argument("server", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                     help="the server command, after --")
    cmd.set_defaults(func=_mcp)


def _mcp(args: argparse.Namespace) -> int:
    from mattrace.faults import load_faults
    from mattrace.governance import load_policy
    from mattrace.integrations.mcp import Marks, ProxyOptions, serve_stdio

    server = list(args.server)
    if server[:1] == ["--"]:
        server = server[1:]
    options = ProxyOptions(
        server=server, name=args.name, dir=args.dir, record_mode=args.record, cassette=args.cassette,
        fsync=args.fsync, faults=load_faults(args.faults) if args.faults else None,
        governor=load_policy(args.policy) if args.policy else None,
        marks=Marks(trusted=tuple(args.trusted), untrusted=tuple(args.untrusted),
                    side_effect=tuple(args.side_effect), read_only=tuple(args.read_only)),
        pin=args.pin, http=args.http, listen=args.listen, timeout=args.timeout or None)
    options.check()
    if server and server[0].startswith("-"):
        raise CliError(f"unknown option {server[0]!r}; the server command goes after --")
    if options.http is not None:
        from mattrace.integrations.mcp import serve_http

        return serve_http(options)
    return serve_stdio(options)


COMMANDS: dict[str, Adder] = {  # the group's commands, each with the function that adds its parser
    "mcp": _add_mcp,
}
