"""The JSON API's OpenAPI 3.1 description (hand-written: the shapes are the CLI's --json ones,
defined by the result dataclasses' ``to_dict``)."""

from __future__ import annotations

from typing import Any

from ..query.retrieve import MODES


def _param(name: str, description: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def _ok(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


_ERRORS = {
    str(code): {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for code, text in (
        (400, "Bad input (the question too long, k out of range, a malformed date, an unknown mode)"),
        (404, "Unknown episode"),
        (429, "Too many requests from this client (see Retry-After)"),
        (503, "The index is missing, damaged or being repaired (a one-line reason)"),
    )
}


def openapi_spec(max_query_chars: int, max_k: int) -> dict[str, Any]:
    span = {"start": {"type": "number", "description": "seconds"}, "end": {"type": "number", "description": "seconds"}}
    link = {"type": "string", "description": "the episode page playing from start: /episode/ID?t=SECONDS"}
    hit = {
        "type": "object",
        "required": ["episode", "title", "start", "end", "text", "score", "link"],
        "properties": {
            "episode": {"type": "string"},
            "title": {"type": "string"},
            **span,
            "text": {"type": "string"},
            "score": {"type": "number"},
            "link": link,
            "page": {"type": ["string", "null"], "description": "the episode's web page, from its feed"},
            "published": {"type": ["string", "null"], "format": "date"},
        },
    }
    sentence = {
        "type": "object",
        "required": ["text", "episode", "title", "start", "end", "score", "link"],
        "properties": {
            "text": {"type": "string"},
            "episode": {"type": "string"},
            "title": {"type": "string"},
            **span,
            "score": {"type": "number"},
            "link": link,
        },
    }
    episode = {
        "type": "object",
        "required": ["episode", "title", "duration", "chunks"],
        "properties": {
            "episode": {"type": "string"},
            "title": {"type": "string"},
            "duration": {"type": "number"},
            "chunks": {"type": "integer", "description": "passages indexed"},
            "source": {"type": "string", "description": "the transcript or audio file's name"},
            "audio": {"type": ["string", "null"], "description": "URL of the audio this app serves (Range)"},
            "url": {"type": ["string", "null"]},
            "enclosure": {"type": ["string", "null"]},
            "published": {"type": ["string", "null"]},
            "language": {"type": ["string", "null"]},
            "content_hash": {"type": "string"},
            "transcript_source": {"type": "string"},
        },
    }
    q = _param(
        "q",
        f'question, keywords or a "quoted phrase" (at most {max_query_chars} characters)',
        {"type": "string", "maxLength": max_query_chars},
        required=True,
    )
    filters = [
        _param("mode", "hybrid (default), semantic or lexical", {"type": "string", "enum": list(MODES)}),
        _param("episode", "search one episode only", {"type": "string"}),
        _param("since", "episodes published on or after", {"type": "string", "format": "date"}),
        _param("until", "episodes published on or before", {"type": "string", "format": "date"}),
    ]
    k = {"type": "integer", "minimum": 1, "maximum": max_k}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hmsearch",
            "version": "1",
            "description": "Search every word said on a podcast. The shapes are those of the CLI's --json.",
        },
        "paths": {
            "/api/search": {
                "get": {
                    "summary": "The passages that match q, best first (`hmsearch search --json`)",
                    "parameters": [q, _param("k", "passages (default 5)", k), *filters],
                    "responses": {"200": _ok("#/components/schemas/SearchResult", "hits"), **_ERRORS},
                }
            },
            "/api/ask": {
                "get": {
                    "summary": "The sentences that answer q, each with its time (`hmsearch ask --json`)",
                    "parameters": [q, _param("k", "supporting passages (default 3)", k), *filters],
                    "responses": {"200": _ok("#/components/schemas/AnswerResult", "answer and hits"), **_ERRORS},
                }
            },
            "/api/episodes": {
                "get": {
                    "summary": "What is indexed (`hmsearch episodes --json`)",
                    "responses": {
                        "200": {
                            "description": "episodes",
                            "content": {
                                "application/json": {
                                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Episode"}}
                                }
                            },
                        },
                        "503": _ERRORS["503"],
                    },
                }
            },
            "/api/episodes/{episode}/transcript": {
                "get": {
                    "summary": "An episode's whole transcript, sentence by sentence with times",
                    "parameters": [{"name": "episode", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": _ok("#/components/schemas/Transcript", "transcript"),
                        "404": _ERRORS["404"],
                        "503": _ERRORS["503"],
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Hit": hit,
                "AnswerSentence": sentence,
                "Episode": episode,
                "SearchResult": {
                    "type": "object",
                    "required": ["query", "hits"],
                    "properties": {
                        "query": {"type": "string"},
                        "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
                    },
                },
                "AnswerResult": {
                    "type": "object",
                    "required": ["question", "answer", "hits"],
                    "properties": {
                        "question": {"type": "string"},
                        "answer": {"type": "array", "items": {"$ref": "#/components/schemas/AnswerSentence"}},
                        "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
                        "abstained": {
                            "type": "boolean",
                            "description": "true when nothing in the index answers: `answer` is empty and "
                            "`hits` are the closest passages",
                        },
                    },
                },
                "Transcript": {
                    "type": "object",
                    "required": ["episode", "sentences"],
                    "properties": {
                        "episode": {"$ref": "#/components/schemas/Episode"},
                        "sentences": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["start", "end", "text"],
                                "properties": {**span, "text": {"type": "string"}},
                            },
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "kind": {"type": "string", "description": "NotFoundError, InputError, ..."},
                                "message": {"type": "string", "description": "one line"},
                            },
                        }
                    },
                },
            }
        },
    }
