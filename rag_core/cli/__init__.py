"""The `rag` command line: main (parsing, the commands, the audited runner), audit and backup commands."""
