"""One exception class per gRPC status code, so callers can catch what they
mean (``except mnemo.NotFoundError``) instead of inspecting codes."""
from __future__ import annotations

import grpc


class MnemoError(Exception):
    """A failed call. ``code`` is the grpc.StatusCode, ``details`` the
    server's message (it names what was wrong)."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, details: str, code: grpc.StatusCode | None = None):
        super().__init__(details)
        self.details = details
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code.name}: {self.details}"


class CancelledError(MnemoError):
    code = grpc.StatusCode.CANCELLED


class InvalidArgumentError(MnemoError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceededError(MnemoError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFoundError(MnemoError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(MnemoError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDeniedError(MnemoError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(MnemoError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPreconditionError(MnemoError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class AbortedError(MnemoError):
    code = grpc.StatusCode.ABORTED


class OutOfRangeError(MnemoError):
    code = grpc.StatusCode.OUT_OF_RANGE


class UnimplementedError(MnemoError):
    code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(MnemoError):
    code = grpc.StatusCode.INTERNAL


class UnavailableError(MnemoError):
    code = grpc.StatusCode.UNAVAILABLE


class DataLossError(MnemoError):
    code = grpc.StatusCode.DATA_LOSS


class UnauthenticatedError(MnemoError):
    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE = {cls.code: cls for cls in (
    CancelledError, InvalidArgumentError, DeadlineExceededError, NotFoundError,
    AlreadyExistsError, PermissionDeniedError, ResourceExhaustedError,
    FailedPreconditionError, AbortedError, OutOfRangeError, UnimplementedError,
    InternalError, UnavailableError, DataLossError, UnauthenticatedError)}


def from_rpc_error(err: grpc.RpcError) -> MnemoError:
    """The exception for a failed call (MnemoError itself for codes without
    their own class)."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    cls = _BY_CODE.get(code, MnemoError)
    return cls(details or "", code)


__all__ = ["MnemoError", "from_rpc_error"] + sorted(c.__name__ for c in _BY_CODE.values())
