"""The live web dashboard: segment sizes and trends, a segment's history and members, a user's
memberships, and exact reach for drafts, updated over Server-Sent Events from the change feed.

`app` builds the Starlette app, `hub` owns the one change feed per server process, `reads` is
what the pages read, and `server` runs it with uvicorn (in the foreground, or in a thread).
"""
