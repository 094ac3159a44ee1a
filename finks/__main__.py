"""`python -m finks`: the same as the `finks` command (how an MCP client can start `finks mcp`)."""

from finks.cli import main

if __name__ == "__main__":
    main()
