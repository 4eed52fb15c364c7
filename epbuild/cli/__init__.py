"""The command line: invoke's tasks and their flags, the project a command runs in, and `invoke matrix`'s listing."""
