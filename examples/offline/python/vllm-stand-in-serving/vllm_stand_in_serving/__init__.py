"""Stand-in for vLLM's serving stack (fastapi, uvicorn, openai): the OpenAI-compatible server's settings."""

API_SERVER_OPTIONS = (
    ("--host", "host name to listen on"),
    ("--port", "port to listen on (default 8000)"),
)
