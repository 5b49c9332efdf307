"""Question -> hits and answers: retrieve (dense, lexical), fuse, merge into hits, quotes, answers,
and the query service that the CLI, the socket server and the web page share."""

from .retrieve import MODES, Filters, Query
from .service import AnswerResult, AskRequest, QueryService, SearchRequest, SearchResult, answer, search

__all__ = [
    "MODES",
    "AnswerResult",
    "AskRequest",
    "Filters",
    "Query",
    "QueryService",
    "SearchRequest",
    "SearchResult",
    "answer",
    "search",
]
