"""Errors the HTTP layer raises itself (bad requests, keys, limits), with their place."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, message: str, where: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.where = where


__all__ = ["ApiError"]
