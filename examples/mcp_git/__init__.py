"""Record an MCP session with ``mcp-server-git`` through ``mattrace mcp``, check it with
contracts, and replay it without the server (see README.md)."""
