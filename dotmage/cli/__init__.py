"""The dmage command line: parsing, prompting, printing and exit codes."""
